"""A stand-in SessionWorkflow that only records ``hint_given`` signals.

In a module of its own: the sandbox re-imports the module that defines a workflow, and
this one imports nothing but what it passes through.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        SignalName,
        WorkflowName,
    )
    from domain.sessions import HintGiven


@workflow.defn(name=WorkflowName.SESSION)
class StandInSession:
    def __init__(self) -> None:
        self.hints: list[HintGiven] = []

    @workflow.signal(name=SignalName.HINT_GIVEN)
    def hint_given(self, data: HintGiven) -> None:
        self.hints.append(data)

    @workflow.run
    async def run(self) -> list[HintGiven]:
        await workflow.wait_condition(lambda: bool(self.hints))
        return self.hints
