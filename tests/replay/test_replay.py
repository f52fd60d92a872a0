"""Every recorded history must replay against today's workflow code.

Histories are recorded from real runs (``CO_RECORD_HISTORIES=1 make test`` writes
them from the integration tests). A workflow change that breaks one goes behind
``workflow.patched(...)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.registry import workflows

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.skipif(not HISTORIES, reason="no recorded histories yet")
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=list(workflows()), data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def test_an_unpatched_change_is_caught_by_the_recorded_histories() -> None:
    from temporalio.workflow import NondeterminismError

    from tests.replay.altered_workflows import SubmissionWorkflowWithoutBegin

    path = Path(__file__).parent / "histories" / "submission_runtime_error.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[SubmissionWorkflowWithoutBegin], data_converter=pydantic_data_converter
    )
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)
