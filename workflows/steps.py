"""``CoStep``/``CoStepSince``: what a running workflow waits for, and since when.

Operators find "waiting on Eval for more than 5 minutes" or "stuck writing to the
database" with one visibility query (the README's runbook; ``python -m tools.runbook``).
The upsert is a new command, so it sits behind one patch: histories recorded before it
replay unchanged, and runs started before it never get the attributes.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        CO_STEP,
        CO_STEP_SINCE,
    )

STEP_PATCH = "co-step-search-attributes"


def enter(step: str) -> None:
    """Record that the workflow now waits on ``step`` (one of ``domain.contracts.Step``)."""
    if workflow.patched(STEP_PATCH):
        workflow.upsert_search_attributes(
            [CO_STEP.value_set(step), CO_STEP_SINCE.value_set(workflow.now())]
        )
