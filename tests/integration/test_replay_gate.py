"""The replay gate against the dev server: today's code replays what the namespace ran;
an altered workflow (an unpatched change of its commands) fails the gate."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta

from domain.contracts import (
    WorkflowName,
)
from tests.conftest import ROOT, Stack
from tests.replay.altered_workflows import SubmissionWorkflowWithoutBegin
from tools.replay_gate import gate

SUM_OK = "def sum_evens(numbers):\n    return sum(n for n in numbers if n % 2 == 0)\n"


async def _traffic(stack: Stack, auth: dict[str, str], slug: str) -> None:
    r = await stack.client.post(
        "/v1/submissions",
        json={"problem_id": "py-sum-evens", "language": "python", "code": SUM_OK},
        headers={**auth, "Prefer": "wait=30"},
    )
    assert r.status_code == 200, r.text
    session = await stack.client.post("/v1/sessions", json={"track_slug": slug}, headers=auth)
    assert session.status_code in (200, 201), session.text


async def test_the_gate_passes_current_code_and_fails_an_unpatched_change(
    stack: Stack, auth: dict[str, str], seeded: dict[str, str]
) -> None:
    await _traffic(stack, auth, sorted(seeded)[0])
    only_ours = f'TaskQueue = "{stack.settings.temporal_task_queue}"'
    env = {
        "PATH": "/usr/bin:/bin",
        "CO_TEMPORAL_ADDRESS": stack.settings.temporal_address,
        "CO_TEMPORAL_NAMESPACE": stack.settings.temporal_namespace,
    }
    passed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tools.replay_gate", "--since", "1h", "--limit", "10"]
        + ["--query", only_ours],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    counts = dict(line.split(": ", 1) for line in passed.stdout.splitlines() if "histories" in line)
    assert not counts[WorkflowName.SUBMISSION].startswith("0 ")
    assert not counts[WorkflowName.SESSION].startswith("0 ")
    assert "replay gate: passed" in passed.stdout

    failed = await gate(
        stack.temporal,
        [SubmissionWorkflowWithoutBegin],
        since=timedelta(hours=1),
        limit=5,
        extra_query=only_ours,
    )
    assert failed.replayed[WorkflowName.SUBMISSION] >= 1
    assert not failed.passed
    assert any("Nondeterminism" in error for error in failed.failures.values()), failed.failures
