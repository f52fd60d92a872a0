"""``python -m tools.replay_gate``: replay recent histories of every workflow type from a
live namespace against the workflow code about to be deployed; exit 1 on the first sign
of non-determinism, before any worker runs the new code.

The pipeline runs it (``.github/workflows/deploy.yml``) with the namespace's
``CO_TEMPORAL_*`` settings before updating the ECS services. Histories are found by
visibility query, per workflow type: the newest ``--limit`` runs started within
``--since``, running or closed (running ones matter most: the new code will pick them up).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.settings import SettingsError
from ops.temporal import connect, exit_without_teardown
from tools.runbook import cutoff, parse_duration
from tools.temporal_setup import temporal_settings


@dataclass
class GateResult:
    replayed: dict[str, int] = field(default_factory=dict)  # workflow type -> histories
    failures: dict[str, str] = field(default_factory=dict)  # "type/id/run" -> error

    @property
    def passed(self) -> bool:
        return not self.failures


def workflow_type(cls: type) -> str:
    defn = getattr(cls, "__temporal_workflow_definition", None)
    if defn is None or defn.name is None:
        raise ValueError(f"{cls.__name__} is not a named @workflow.defn class")
    return str(defn.name)


async def _histories(client: Client, query: str, limit: int) -> list[WorkflowHistory]:
    return [h async for h in client.list_workflows(query, limit=limit).map_histories()]


async def gate(
    client: Client,
    workflows: Sequence[type],
    *,
    since: timedelta = timedelta(days=7),
    limit: int = 50,
    extra_query: str | None = None,
) -> GateResult:
    """Replay up to ``limit`` histories of each type in ``workflows``."""
    result = GateResult()
    replayer = Replayer(workflows=list(workflows), data_converter=pydantic_data_converter)
    for cls in workflows:
        name = workflow_type(cls)
        query = f'WorkflowType = "{name}" AND StartTime > "{cutoff(since)}"'
        if extra_query:
            query += f" AND ({extra_query})"
        histories = await _histories(client, query, limit)
        result.replayed[name] = len(histories)

        async def feed(items: list[WorkflowHistory] = histories) -> AsyncIterator[WorkflowHistory]:
            for h in items:
                yield h

        outcome = await replayer.replay_workflows(feed(), raise_on_replay_failure=False)
        for run_id, error in outcome.replay_failures.items():
            history_id = next((h.workflow_id for h in histories if _run_id(h) == run_id), "?")
            result.failures[f"{name}/{history_id}/{run_id}"] = f"{type(error).__name__}: {error}"
    return result


def _run_id(history: WorkflowHistory) -> str:
    first = history.events[0] if history.events else None
    if first is None:
        return ""
    return str(first.workflow_execution_started_event_attributes.original_execution_run_id)


def main(argv: list[str] | None = None) -> int:
    from worker.registry import workflows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", type=parse_duration, default=timedelta(days=7))
    parser.add_argument("--limit", type=int, default=50, help="histories per workflow type")
    parser.add_argument("--query", help="an extra visibility filter, ANDed to each query")
    parser.add_argument("--address", help="overrides CO_TEMPORAL_ADDRESS")
    parser.add_argument("--namespace", help="overrides CO_TEMPORAL_NAMESPACE")
    args = parser.parse_args(argv)
    overrides = {
        k: v
        for k, v in (("temporal_address", args.address), ("temporal_namespace", args.namespace))
        if v
    }

    async def run() -> GateResult:
        client = await connect(temporal_settings(**overrides))
        return await gate(
            client, workflows(), since=args.since, limit=args.limit, extra_query=args.query
        )

    try:
        result = asyncio.run(run())
    except (SettingsError, RuntimeError) as exc:
        print(f"replay gate: {exc}", file=sys.stderr)
        return 2
    for name, count in result.replayed.items():
        print(f"{name}: {count} histories replayed")
    if result.failures:
        for where, error in result.failures.items():
            print(f"NON-DETERMINISTIC {where}: {error}", file=sys.stderr)
        print("replay gate: FAILED (do not deploy this code)", file=sys.stderr)
        return 1
    print("replay gate: passed")
    return 0


if __name__ == "__main__":
    exit_without_teardown(main())
