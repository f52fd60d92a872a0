"""The dev services over real HTTP: the in-process ``serve`` helper, the registry, and the
``python -m devservices`` runner with a clean SIGTERM/SIGINT shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from devservices.registry import build_apps
from devservices.testing import serve
from domain.upstream import EvalRequest, EvalResponse, EvalTest, ProblemBundle, Verdict
from tests.support import eventually, free_ports

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "integration-internal-token"


async def test_served_apps_work_together_over_http() -> None:
    apps = build_apps(internal_token=TOKEN)
    assert {"problem_bank", "eval"} <= set(apps)
    async with serve(apps["problem_bank"]) as bank, serve(apps["eval"]) as evaluator:
        async with httpx.AsyncClient(timeout=30, headers={"X-Internal-Token": TOKEN}) as http:
            listing = (await http.get(f"{bank}/v1/problems")).json()
            assert len(listing["items"]) >= 24
            raw = (await http.get(f"{bank}/internal/v1/problems/py-two-sum")).json()
            bundle = ProblemBundle.model_validate(raw)
            tests = [
                EvalTest(args=t.args, expected=t.expected) for t in bundle.problem.public_tests
            ]
            tests += [
                EvalTest(args=t.args, expected=t.expected, hidden=True) for t in bundle.hidden_tests
            ]
            request = EvalRequest(
                kind=bundle.problem.kind,
                code=bundle.reference_solution,
                function_name=bundle.problem.function_name,
                tests=tests,
            )
            response = await http.post(
                f"{evaluator}/v1/evaluate", json=request.model_dump(mode="json")
            )
            result = EvalResponse.model_validate(response.json())
            assert result.verdict is Verdict.accepted
            assert (await http.get(f"{evaluator}/healthz")).json() == {"status": "ok"}


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_runner_starts_both_services_and_stops_cleanly(
    stop_signal: signal.Signals, tmp_path_factory: pytest.TempPathFactory
) -> None:
    names = ("CO_DEV_PROBLEM_BANK_PORT", "CO_DEV_EVAL_PORT", "CO_DEV_TUTOR_PORT")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "CO_INTERNAL_TOKEN": TOKEN}
    # a bytecode cache of the test run's own makes the second start faster
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.getbasetemp() / "pycache")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devservices",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    bank = f"http://127.0.0.1:{ports['CO_DEV_PROBLEM_BANK_PORT']}"
    evaluator = f"http://127.0.0.1:{ports['CO_DEV_EVAL_PORT']}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:

            async def healthy() -> bool:
                assert proc.returncode is None, "runner exited during start-up"
                return (await http.get(f"{bank}/healthz")).is_success and (
                    await http.get(f"{evaluator}/healthz")
                ).is_success

            await eventually(
                healthy,
                timeout=30,
                ignoring=(httpx.TransportError,),
                failure=lambda: "dev services did not start",
            )
            denied = await http.get(f"{bank}/internal/v1/problems/py-two-sum")
            assert denied.status_code == 401
            allowed = await http.get(
                f"{bank}/internal/v1/problems/py-two-sum", headers={"X-Internal-Token": TOKEN}
            )
            assert allowed.status_code == 200
        proc.send_signal(stop_signal)
        assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    log = (await proc.stderr.read()).decode()
    assert "Traceback" not in log
