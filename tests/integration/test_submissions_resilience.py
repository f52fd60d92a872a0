"""Submissions when upstreams fail, workers die, or a learner hunts for hidden tests."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import Client

from devservices.testing import serve
from domain.contracts import (
    ActivityName,
)
from domain.settings import Settings
from store.models import Result
from tests.conftest import ROOT, DevServices, Stack, isolated_stack, settings_env
from tests.support import FaultyProxy, eventually, record_history
from tests.support.submissions import RIGHT, SUM_OK, code_body, finished, submit


async def _with_faulty_eval(
    stack_args: tuple[Callable[..., Settings], Client, DevServices],
    faults: list[int | str],
    exit_stack: AsyncExitStack,
) -> tuple[Stack, FaultyProxy]:
    make_settings, temporal, devservices = stack_args
    proxy = FaultyProxy(devservices.eval, faults)
    url = await exit_stack.enter_async_context(serve(proxy))
    iso = await exit_stack.enter_async_context(
        isolated_stack(make_settings, temporal, devservices, eval_base=url)
    )
    return iso, proxy


@pytest.fixture
def stack_args(
    make_settings: Callable[..., Settings], temporal_client: Client, devservices: DevServices
) -> tuple[Callable[..., Settings], Client, DevServices]:
    return make_settings, temporal_client, devservices


async def test_eval_503_twice_then_the_right_verdict(
    stack: Stack, stack_args: Any, auth: dict[str, str]
) -> None:
    async with AsyncExitStack() as es:
        iso, proxy = await _with_faulty_eval(stack_args, [503, 503, 429], es)
        r = await submit(iso.client, auth, code_body("def sum_evens(xs):\n    return 0\n"))
        assert r.json()["verdict"] == "wrong_answer", r.json()
        assert proxy.calls == 4
        assert proxy.forwarded == 1
        sid = r.json()["id"]
        await record_history(iso.temporal, f"submission-{sid}", "submission_eval_retried")


async def test_eval_400_ends_in_internal_error_promptly(
    stack: Stack, stack_args: Any, auth: dict[str, str]
) -> None:
    async with AsyncExitStack() as es:
        iso, proxy = await _with_faulty_eval(stack_args, [400] * 20, es)
        r = await submit(iso.client, auth, code_body(SUM_OK))
        body = r.json()
        assert body["status"] == "failed"
        assert body["verdict"] == "internal_error"
        assert "not your fault" in body["failure_reason"]
        assert "injected" not in json.dumps(body)  # upstream text is for operators only
        # Promptly: not retried, so finished within the POST's own wait (no clock asserted).
        assert proxy.calls == 1
        sid = body["id"]
        await record_history(iso.temporal, f"submission-{sid}", "submission_internal_error")


async def test_eval_500_is_retried_three_times_then_internal_error(
    stack: Stack, stack_args: Any, auth: dict[str, str]
) -> None:
    """A 500 says Eval failed on this request: bounded, unlike 503 (long budget)."""
    from activities.upstream import SERVER_ERROR_ATTEMPTS

    async with AsyncExitStack() as es:
        iso, proxy = await _with_faulty_eval(stack_args, [500] * 20, es)
        r = await submit(iso.client, auth, code_body(SUM_OK))
        sid = r.json()["id"]
        body = await finished(iso.client, auth, sid)
        assert body["status"] == "failed"
        assert body["verdict"] == "internal_error"
        assert "not your fault" in body["failure_reason"]
        assert "injected" not in json.dumps(body)
        assert proxy.calls == SERVER_ERROR_ATTEMPTS
        # The cause is in the workflow's history for operators.
        history = await iso.temporal.get_workflow_handle(f"submission-{sid}").fetch_history()
        assert "Eval answered 500" in history.to_json()
        assert f"final after {SERVER_ERROR_ATTEMPTS} attempts" in history.to_json()


HOSTILE_E2E = [
    "introspect frames and print",
    "write the input to every descriptor",
    "exit code carries the input",
    "deep return value",
    "forged result records",
    "socket to loopback services",
]


@pytest.mark.parametrize("name", HOSTILE_E2E)
async def test_hostile_submission_end_to_end_leaks_nothing(
    stack: Stack, auth: dict[str, str], caplog: pytest.LogCaptureFixture, name: str
) -> None:
    from tests.support.hostile import HOSTILE, leaked

    caplog.set_level(logging.DEBUG)
    case = HOSTILE[name]
    r = await submit(stack.client, auth, {"problem_id": "py-secret-sum", "code": case.code})
    sid = r.json()["id"]
    body = await finished(stack.client, auth, sid)
    assert body["verdict"] in case.verdicts, body
    texts = [r.text, json.dumps(body)]
    texts.append((await stack.client.get("/v1/submissions", headers=auth)).text)
    history = await stack.temporal.get_workflow_handle(f"submission-{sid}").fetch_history()
    texts.append(history.to_json())
    texts.append(caplog.text)
    for text in texts:
        assert leaked(text) == []
    # Eval answered every call with a verdict: no 5xx from it reached the worker.
    assert "Eval answered 5" not in caplog.text
    assert "Eval answered 5" not in history.to_json()


async def test_hidden_test_markers_never_leave_the_service(
    stack: Stack,
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from devservices.problem_bank import SECRET_MARKERS

    caplog.set_level(logging.DEBUG)
    # Prints and raises with whatever it was called with: hidden inputs included.
    code = (
        "def secret_sum(label, numbers):\n"
        "    print('ARGS', label, numbers)\n"
        "    raise ValueError(f'leak {label} {numbers}')\n"
    )
    r = await submit(stack.client, auth, {"problem_id": "py-secret-sum", "code": code})
    body = r.json()
    assert body["verdict"] == "runtime_error", body
    sid = body["id"]
    texts = [r.text]
    texts.append((await stack.client.get(f"/v1/submissions/{sid}", headers=auth)).text)
    texts.append((await stack.client.get("/v1/submissions", headers=auth)).text)
    history = await stack.temporal.get_workflow_handle(f"submission-{sid}").fetch_history()
    texts.append(history.to_json())
    texts.append(caplog.text)
    hidden = [t for t in body["result"]["tests"] if t["hidden"]]
    assert hidden, "the problem must have hidden tests"
    assert all(set(t) >= {"label"} and t.get("args") is None for t in hidden)
    for marker in SECRET_MARKERS:
        for text in texts:
            assert str(marker) not in text
    await record_history(stack.temporal, f"submission-{sid}", "submission_runtime_error")


def _start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    # Output goes to a file, not a pipe nobody drains (a full pipe would block the worker).
    log = tempfile.NamedTemporaryFile(
        prefix="co-worker-", suffix=".log", delete=False
    )  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env=settings_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    return proc


async def _wait_for_line(proc: subprocess.Popen[bytes], needle: str, timeout: float) -> None:
    path = Path(proc.log_path)  # type: ignore[attr-defined]

    async def logged() -> bool:
        if needle in path.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}: {path.read_text()}")
        return False

    await eventually(
        logged,
        timeout=timeout,
        every=0.1,
        failure=lambda: f"worker never logged {needle!r}: {path.read_text()}",
    )


@pytest.mark.slow
async def test_worker_killed_mid_evaluation_completes_once_on_a_new_worker(
    stack: Stack, stack_args: Any, auth: dict[str, str]
) -> None:
    make_settings, temporal, devservices = stack_args
    async with isolated_stack(make_settings, temporal, devservices, with_worker=False) as iso:
        first = _start_worker(iso.settings)
        second: subprocess.Popen[bytes] | None = None
        try:
            await _wait_for_line(first, "worker started", 30)
            slow = "import time\ndef sum_evens(xs):\n    time.sleep(0.4)\n" + RIGHT
            r = await submit(iso.client, auth, code_body(slow), wait=False)
            sid = r.json()["id"]
            # Kill it while the evaluation activity is in flight.
            handle = temporal.get_workflow_handle(f"submission-{sid}")

            async def evaluating() -> bool:
                pending = (await handle.describe()).raw_description.pending_activities
                return any(
                    p.activity_type.name == ActivityName.SUBMISSION_EVALUATE for p in pending
                )

            await eventually(evaluating, failure=lambda: "evaluation never started")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            second = _start_worker(iso.settings)
            done = await finished(iso.client, auth, sid)
            assert done["verdict"] == "accepted"
            async with iso.app.state.resources.sessionmaker() as db:
                n = await db.scalar(
                    select(func.count())
                    .select_from(Result)
                    .where(Result.submission_id == uuid.UUID(sid))
                )
            assert n == 1
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(10)


@pytest.mark.slow
async def test_worker_drains_and_exits_0_on_sigterm(
    stack: Stack, stack_args: Any, auth: dict[str, str]
) -> None:
    make_settings, temporal, devservices = stack_args
    async with isolated_stack(make_settings, temporal, devservices, with_worker=False) as iso:
        proc = _start_worker(iso.settings)
        try:
            await _wait_for_line(proc, "worker started", 30)
            slow = "import time\ndef sum_evens(xs):\n    time.sleep(0.2)\n" + RIGHT
            r = await submit(iso.client, auth, code_body(slow), wait=False)
            sid = r.json()["id"]
            await asyncio.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
            assert code == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        # Whatever was in flight is finished by the next worker.
        restarted = _start_worker(iso.settings)
        try:
            done = await finished(iso.client, auth, sid)
            assert done["verdict"] == "accepted"
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(30)


async def test_a_post_that_died_after_starting_the_workflow_is_finished_by_its_retry(
    stack: Stack, auth: dict[str, str], user_id: str
) -> None:
    """The API starts the workflow before it writes the row; if it dies in between, the
    client's retry (same Idempotency-Key) writes the row and the waiting workflow
    evaluates it, once."""
    from api.services.submissions import start_workflow
    from domain.submissions import submission_id_for_key

    key = f"k-{uuid.uuid4()}"
    sid = submission_id_for_key(user_id, key)
    # What the first POST managed before it "crashed": only the workflow start.
    await start_workflow(stack.temporal, stack.settings, sid, user_id, "py-sum-evens")
    await asyncio.sleep(1.0)  # the workflow is now waiting for its row
    r = await submit(stack.client, auth, code_body(SUM_OK), extra={"Idempotency-Key": key})
    assert r.json()["id"] == str(sid)
    assert r.json()["verdict"] == "accepted"
    runs = [w async for w in stack.temporal.list_workflows(f"WorkflowId = 'submission-{sid}'")]
    assert len(runs) == 1


async def test_one_learner_cannot_hold_every_evaluation_slot(
    stack: Stack, stack_args: Any, token_for: Callable[..., str]
) -> None:
    """With no worker on its queue, submissions stay in flight: the third one of a user
    (cap 2) is refused with 429 + Retry-After; a retried POST and another user are not."""
    make_settings, temporal, devservices = stack_args
    me = {"Authorization": f"Bearer {token_for('cap-' + uuid.uuid4().hex[:8])}"}
    other = {"Authorization": f"Bearer {token_for('cap-' + uuid.uuid4().hex[:8])}"}
    async with isolated_stack(
        make_settings, temporal, devservices, with_worker=False, max_submissions_in_flight=2
    ) as iso:
        ids = []
        for n in range(2):
            r = await submit(
                iso.client, me, code_body(SUM_OK), wait=False, extra={"Idempotency-Key": f"k{n}"}
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        refused = await submit(iso.client, me, code_body(SUM_OK), wait=False)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) > 0
        assert "at most 2" in refused.json()["detail"]
        again = await submit(
            iso.client, me, code_body(SUM_OK), wait=False, extra={"Idempotency-Key": "k0"}
        )
        assert again.status_code in (200, 202)
        assert again.json()["id"] == ids[0]
        assert (await submit(iso.client, other, code_body(SUM_OK), wait=False)).status_code == 202
        for sid in ids:
            await iso.temporal.get_workflow_handle(f"submission-{sid}").terminate("test over")
