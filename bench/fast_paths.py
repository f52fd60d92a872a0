"""The four fast paths of issue 11, each beside its bare baseline, in one run.

``python -m bench.fast_paths [--rounds N] [--load N] [--users N] [--wrk-seconds S]
[--wrk-rounds N] [--only abcd] [--profile FILE] [--trace] [--env CO_NAME=VALUE ...]``

``--env`` sets a CO setting for the worker and the API (e.g. to compare worker settings in
the same conditions).

Starts the same stack as ``bench.tutor_stream`` (Temporal dev server, scratch database,
dev services, worker, API on free ports) and measures, side by side:

a. ``POST /v1/submissions`` + ``Prefer: wait=30`` on a math problem, p50/p99, against
   Problem Bank's bundle + Eval called directly (overhead = end to end minus those);
b. N submissions from U users, POST -> result stored, against a bare Temporal workflow
   of the same shape (bundle read, Eval, row write through the same dev services and
   database) on the same server: with regular activities, and with local activities and
   eager start;
c. ``GET /v1/tracks`` (JWT + rate limit + CORS) at 16 connections with Debian's ``wrk``
   (installed with apt when we are root and it is missing), against a bare FastAPI app
   returning the same JSON under the same uvicorn;
d. tutor time to first token through CO minus the dev Tutor read directly.

``wrk`` runs on the same 2 cores as the server it loads: both rows (c) pay that alike.
``--only c`` measures just row (c) (the stack still starts whole: ``/readyz`` needs it).
``--profile FILE`` (row c) samples the API process with ``py-spy`` (PyPI; not a dependency of
the project, it must be on ``PATH``) during one more ``wrk`` run of ``GET /v1/tracks``, writes
the collapsed stacks to FILE (``flamegraph.pl`` or speedscope read them) and prints where the
samples went.
Benchmarks print; tests never assert times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.common import RetryPolicy
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from bench import tutor_stream as ts
from domain.upstream import (
    INTERNAL_TOKEN_HEADER,
    EvalLimits,
    EvalRequest,
    ProblemBundle,
    ProblemPublic,
)
from tools.devkeys import generate_key_pair, make_token

MATH_PROBLEM = "math-derivative-power"
MATH_ANSWER = "3*x**2"
BARE_QUEUE = "co-bench-bare"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def eval_body(bundle_json: bytes, answer: str) -> dict[str, Any]:
    """The Eval request CO builds for an answer problem (``build_eval_request``)."""
    bundle = ProblemBundle.model_validate_json(bundle_json)
    problem = bundle.problem
    return EvalRequest(
        kind=problem.kind,
        answer=answer,
        expected_answer=bundle.expected_answer,
        variables=list(problem.variables),
        tolerance=problem.tolerance,
        choices=[c.id for c in problem.choices],
        limits=EvalLimits(
            time_limit_ms=problem.time_limit_ms, memory_limit_mb=problem.memory_limit_mb
        ),
    ).model_dump(mode="json")


@dataclass
class Row:
    path: str
    co: str
    bare: str
    ratio: str


# --------------------------------------------------------------------------- (a)


_WT = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
)
_ACT = (
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
)


def history_phases(history: WorkflowHistory) -> dict[str, float]:
    """Where one run's time went, in ms, from its event timestamps: each workflow task
    and activity split into waiting (scheduled -> started: matching, pollers, a worker
    slot) and running (started -> completed), and the whole run."""
    out: dict[str, float] = {}
    marks: dict[tuple[str, int], list[float]] = {}
    counts = {"workflow task": 0, "activity": 0}
    for event in history.events:
        at = event.event_time.ToNanoseconds() / 1e6
        for name, kinds in (("workflow task", _WT), ("activity", _ACT)):
            if event.event_type in kinds:
                step = kinds.index(event.event_type)
                if step == 0:
                    counts[name] += 1
                marks.setdefault((name, counts[name]), []).append(at)
    for (name, n), times in marks.items():
        if len(times) == 3:
            out[f"{name} {n} wait"] = times[1] - times[0]
            out[f"{name} {n} run"] = times[2] - times[1]
    events = history.events
    out["run (started -> closed)"] = (
        events[-1].event_time.ToNanoseconds() - events[0].event_time.ToNanoseconds()
    ) / 1e6
    return out


async def profile_rows(temporal: str, workflow_ids: list[str], e2e_p50: float) -> list[Row]:
    """Medians of ``history_phases`` over the row's submissions, and what is left of the
    end-to-end time outside the run (the API's work, the start and the result wait)."""
    client = await Client.connect(temporal)
    phases: dict[str, list[float]] = {}
    for wid in workflow_ids:
        for k, v in history_phases(await client.get_workflow_handle(wid).fetch_history()).items():
            phases.setdefault(k, []).append(v)
    rows = [
        Row(f"(a)   profile: {k}", f"{statistics.median(v):.1f} ms", "", "median")
        for k, v in phases.items()
    ]
    run = statistics.median(phases["run (started -> closed)"])
    rows.append(Row("(a)   profile: outside the run", f"{e2e_p50 - run:.1f} ms", "", "p50 - run"))
    return rows


async def row_a(
    api: str, bank: str, eval_: str, token: str, rounds: int, temporal: str
) -> list[Row]:
    internal = {INTERNAL_TOKEN_HEADER: ts.INTERNAL_TOKEN}
    e2e: list[float] = []
    upstream: list[float] = []
    workflow_ids: list[str] = []
    async with httpx.AsyncClient(timeout=60) as http:

        async def direct() -> float:
            start = time.perf_counter()
            got = await http.get(f"{bank}/internal/v1/problems/{MATH_PROBLEM}", headers=internal)
            got.raise_for_status()
            request = eval_body(got.content, MATH_ANSWER)
            done = await http.post(f"{eval_}/v1/evaluate", json=request, headers=internal)
            done.raise_for_status()
            return time.perf_counter() - start

        async def via_co() -> float:
            start = time.perf_counter()
            got = await http.post(
                f"{api}/v1/submissions",
                json={"problem_id": MATH_PROBLEM, "answer": MATH_ANSWER},
                headers={"Authorization": f"Bearer {token}", "Prefer": "wait=30"},
            )
            elapsed = time.perf_counter() - start
            if got.status_code != 200:
                raise RuntimeError(f"submission not evaluated within the wait: {got.text}")
            workflow_ids.append(f"submission-{got.json()['id']}")
            return elapsed

        await direct()
        await via_co()
        for i in range(rounds):
            if i % 2:
                upstream.append(await direct())
                e2e.append(await via_co())
            else:
                e2e.append(await via_co())
                upstream.append(await direct())
    base50, base99 = pct(upstream, 0.5) * 1000, pct(upstream, 0.99) * 1000
    co50, co99 = pct(e2e, 0.5) * 1000, pct(e2e, 0.99) * 1000
    return [
        Row(
            f"(a) POST+wait=30 p50 ({rounds}x)",
            f"{co50:.1f} ms",
            f"{base50:.1f} ms",
            f"overhead {co50 - base50:.1f} ms (goal <= 60)",
        ),
        Row(
            "(a) POST+wait=30 p99",
            f"{co99:.1f} ms",
            f"{base99:.1f} ms",
            f"overhead {co99 - base99:.1f} ms (goal <= 150)",
        ),
        *await profile_rows(temporal, workflow_ids[1:], co50),
    ]


# --------------------------------------------------------------------------- (b)


@dataclass
class BareInput:
    run_id: str
    problem_id: str
    answer: str


class BareActivities:
    """The submission's shape without CO: read the bundle, ask Eval, write a row."""

    def __init__(self, bank: str, eval_: str, db_dsn: str) -> None:
        self.bank, self.eval_, self.dsn = bank, eval_, db_dsn
        self.http = httpx.AsyncClient(
            timeout=30, headers={INTERNAL_TOKEN_HEADER: ts.INTERNAL_TOKEN}
        )
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=10)
        assert self.pool is not None
        await self.pool.execute(
            "CREATE TABLE IF NOT EXISTS bench_bare (id text PRIMARY KEY, verdict text)"
        )

    async def close(self) -> None:
        await self.http.aclose()
        if self.pool is not None:
            await self.pool.close()

    @activity.defn(name="bare.read")
    async def read(self, data: BareInput) -> dict[str, Any]:
        # The row read of CO's first step, then (as CO does) the bundle inside evaluate.
        assert self.pool is not None
        await self.pool.fetchval("SELECT count(*) FROM bench_bare WHERE id = $1", data.run_id)
        return {"problem_id": data.problem_id, "answer": data.answer}

    @activity.defn(name="bare.evaluate")
    async def evaluate(self, facts: dict[str, Any]) -> str:
        got = await self.http.get(f"{self.bank}/internal/v1/problems/{facts['problem_id']}")
        got.raise_for_status()
        done = await self.http.post(
            f"{self.eval_}/v1/evaluate", json=eval_body(got.content, facts["answer"])
        )
        done.raise_for_status()
        return str(done.json().get("verdict", "done"))

    @activity.defn(name="bare.write")
    async def write(self, args: list[str]) -> None:
        assert self.pool is not None
        await self.pool.execute(
            "INSERT INTO bench_bare VALUES ($1, $2) ON CONFLICT DO NOTHING", args[0], args[1]
        )


_RETRY = RetryPolicy(maximum_attempts=3)
_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name="BareRegular")
class BareRegular:
    @workflow.run
    async def run(self, data: BareInput) -> str:
        facts = await workflow.execute_activity(
            "bare.read", data, start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY
        )
        verdict: str = await workflow.execute_activity(
            "bare.evaluate", facts, start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY
        )
        await workflow.execute_activity(
            "bare.write",
            [data.run_id, verdict],
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        return verdict


@workflow.defn(name="BareLocal")
class BareLocal:
    @workflow.run
    async def run(self, data: BareInput) -> str:
        facts = await workflow.execute_local_activity(
            "bare.read", data, start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY
        )
        verdict: str = await workflow.execute_local_activity(
            "bare.evaluate", facts, start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY
        )
        await workflow.execute_local_activity(
            "bare.write",
            [data.run_id, verdict],
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        return verdict


async def bare_load(client: Client, kind: str, n: int, eager: bool) -> tuple[float, float]:
    """Start ``n`` at once; returns (completions per second, p50 single-run seconds)."""
    durations: list[float] = []

    async def one() -> None:
        start = time.perf_counter()
        handle = await client.start_workflow(
            kind,
            BareInput(
                run_id=f"{kind}-{uuid.uuid4().hex}", problem_id=MATH_PROBLEM, answer=MATH_ANSWER
            ),
            id=f"bare-{kind}-{uuid.uuid4().hex}",
            task_queue=BARE_QUEUE,
            request_eager_start=eager,
        )
        await handle.result()
        durations.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - start), statistics.median(durations)


async def co_load(api: str, db_dsn: str, tokens: list[str], n: int) -> tuple[float, float]:
    """``n`` submissions spread over the users' tokens, all POSTed at once; the clock
    stops when every result row is stored (polled in the database, not via the API)."""
    ids: list[str] = []
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64)) as http:

        async def post(i: int) -> None:
            got = await http.post(
                f"{api}/v1/submissions",
                json={"problem_id": MATH_PROBLEM, "answer": MATH_ANSWER},
                headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
            )
            got.raise_for_status()
            ids.append(got.json()["id"])

        start = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(n)))
        posted = time.perf_counter() - start
        conn = await asyncpg.connect(db_dsn)
        try:
            while True:
                left = await conn.fetchval(
                    "SELECT count(*) FROM submissions WHERE id = ANY($1::uuid[]) "
                    "AND status IN ('queued', 'running')",
                    ids,
                )
                if not left:
                    break
                if time.perf_counter() - start > 300:
                    raise RuntimeError(f"{left} submissions still pending after 300 s")
                await asyncio.sleep(0.02)
        finally:
            await conn.close()
    return n / (time.perf_counter() - start), posted


_TASK_COUNT = re.compile(
    r"^temporal_(workflow_task|activity)_execution_latency(?:_seconds)?_count\{([^}]*)\} (\S+)$",
    re.MULTILINE,
)


async def task_counts(metrics_url: str) -> dict[str, float]:
    """Workflow tasks and activities the worker has run, by type (its SDK metrics)."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(metrics_url)).text
    out: dict[str, float] = {}
    for kind, labels, value in _TASK_COUNT.findall(text):
        found = re.search(r'(?:workflow|activity)_type="([^"]+)"', labels)
        name = f"{'workflow tasks' if kind == 'workflow_task' else 'activities'} "
        name += found.group(1) if found else "?"
        out[name] = out.get(name, 0.0) + float(value)
    return out


async def row_b(
    api: str,
    temporal: str,
    bank: str,
    eval_: str,
    db_dsn: str,
    tokens: list[str],
    n: int,
    worker_metrics: str,
) -> list[Row]:
    before = await task_counts(worker_metrics)
    co_rate, _ = await co_load(api, db_dsn, tokens, n)
    after = await task_counts(worker_metrics)
    # What one submission costs the worker service (the review schedule's tasks included).
    per_submission = [
        Row(f"(b)   per submission: {k}", f"{(v - before.get(k, 0.0)) / n:.2f}", "", "worker")
        for k, v in sorted(after.items())
        if v - before.get(k, 0.0) > 0
    ]
    client = await Client.connect(temporal)
    acts = BareActivities(bank, eval_, db_dsn)
    await acts.open()
    try:
        async with Worker(
            client,
            task_queue=BARE_QUEUE,
            workflows=[BareRegular, BareLocal],
            activities=[acts.read, acts.evaluate, acts.write],
            # Sandboxed like CO's worker, so both pay the same per-task cost.
            workflow_runner=SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_modules(
                    "bench", "httpx", "asyncpg", "domain", "tools", "store", "pydantic"
                )
            ),
            max_concurrent_activities=50,
        ):
            await bare_load(client, "BareRegular", 10, False)  # warm-up
            reg_rate, reg_p50 = await bare_load(client, "BareRegular", n, False)
            loc_rate, loc_p50 = await bare_load(client, "BareLocal", n, True)
    finally:
        await acts.close()
    best = max(reg_rate, loc_rate)
    return [
        Row(
            f"(b) {n} subs/{len(tokens)} users, regular acts",
            f"{co_rate:.1f} /s",
            f"{reg_rate:.1f} /s (p50 {reg_p50 * 1000:.0f} ms loaded)",
            f"x{co_rate / reg_rate:.2f}",
        ),
        Row(
            "(b)   ... local acts + eager start",
            f"{co_rate:.1f} /s",
            f"{loc_rate:.1f} /s (p50 {loc_p50 * 1000:.0f} ms loaded)",
            f"x{co_rate / best:.2f} of best (goal >= 0.8, >= 40/s)",
        ),
        *per_submission,
    ]


# --------------------------------------------------------------------------- (c)


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        print("wrk is missing: installing it from Debian (apt-get install wrk)…", flush=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=False,
            capture_output=True,
        )
        return shutil.which("wrk")
    print("wrk is missing and we are not root: install it with `apt-get install wrk`")
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class WrkRun:
    rate: float  # requests per second, as wrk saw them
    cpu_us: float  # CPU time the server process spent per request, in microseconds


def wrk(url: str, headers: dict[str, str], seconds: int, pid: int) -> WrkRun:
    """``wrk`` at 16 connections, and the CPU the server ``pid`` spent per request: a
    figure the other load on a shared machine barely moves (the rate depends on how
    much of the 2 cores the server got; its CPU per request does not)."""
    argv = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    cpu_before = cpu_seconds(pid)
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} non-2xx answers from {url}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not found or not total:
        raise RuntimeError(f"wrk printed no rate: {out}")
    return WrkRun(float(found.group(1)), cpu / max(1, int(total.group(1))) * 1e6)


BARE_APP = """
import os, sys
from pathlib import Path
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

body = Path(sys.argv[1]).read_bytes()
app = FastAPI()

@app.get("/v1/tracks")
async def tracks() -> Response:
    return Response(body, media_type="application/json")

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_config=None, proxy_headers=True,
            access_log=False)
"""


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``: lines apart, one entry per function."""
    m = re.match(r"(.*) \((.*?):\d+\)$", frame)
    return f"{m.group(1)} ({Path(m.group(2)).name})" if m else frame


def profile_summary(collapsed: Path, top: int = 30) -> str:
    """Share of samples per function, inclusive (anywhere on the stack) and self (on top)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    if not total:
        return "no samples"
    out = [f"{total} samples of the API process", "inclusive:"]
    for name, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * n / total:5.1f}%  {name}")
    out.append("self:")
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * n / total:5.1f}%  {name}")
    return "\n".join(out)


def profile_api(
    url: str, headers: dict[str, str], procs: ts.Processes, secs: int, out: Path
) -> None:
    """Sample the API with py-spy during one more wrk run of ``url``; print where the time
    went."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        print("--profile: py-spy is not on PATH (pip install py-spy); no profile taken")
        return
    pid = procs.pid("api")
    # --nonblocking: sampling without pausing the process, so the rate wrk sees stays close.
    recorder = subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", "250", "--nonblocking",
         "--format", "raw", "--duration", str(secs + 1), "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        rate = wrk(url, headers, secs, pid).rate
    finally:
        recorder.wait(timeout=secs + 30)
    print(f"\nprofile of GET {url} ({rate:.0f} req/s while sampled), stacks in {out}")
    print(profile_summary(out))


async def row_c(
    api: str,
    token: str,
    procs: ts.Processes,
    env: dict[str, str],
    secs: int,
    rounds: int = 3,
    profile: Path | None = None,
) -> list[Row]:
    if ensure_wrk() is None:
        return [Row("(c) GET /v1/tracks, 16 conns", "n/a", "n/a", "wrk missing")]
    headers = {"Authorization": f"Bearer {token}", "Origin": "http://localhost:3000"}
    async with httpx.AsyncClient(timeout=10) as http:
        got = await http.get(f"{api}/v1/tracks", headers=headers)
        got.raise_for_status()
    tmp = Path(tempfile.mkdtemp(prefix="co-bench-"))
    (tmp / "tracks.json").write_bytes(got.content)
    (tmp / "bare_app.py").write_text(BARE_APP)
    port = ts.free_port()
    procs.start(
        "bare-app",
        [str(ts.BIN / "python"), str(tmp / "bare_app.py"), str(tmp / "tracks.json"), str(port)],
        env,
    )
    bare_url = f"http://127.0.0.1:{port}/v1/tracks"
    await ts.wait_http(bare_url, procs)
    # Interleaved rounds, medians: the machine is shared, and its load drifts within a run
    # more than between two neighbouring wrk runs.
    api_pid = procs.pid("api")
    bare_pid = procs.pid("bare-app")
    co_runs: list[WrkRun] = []
    bare_runs: list[WrkRun] = []
    probe_runs: list[WrkRun] = []
    for _ in range(rounds):
        co_runs.append(wrk(f"{api}/v1/tracks", headers, secs, api_pid))
        bare_runs.append(wrk(bare_url, headers, secs, bare_pid))
        # Where the rest goes: the same stack and middlewares on a route with no token
        # check, no limit and no database (the probes are exempt from both).
        probe_headers = {"Origin": "http://localhost:3000"}
        probe_runs.append(wrk(f"{api}/healthz", probe_headers, secs, api_pid))
    co_rate = statistics.median(r.rate for r in co_runs)
    bare_rate = statistics.median(r.rate for r in bare_runs)
    probe_rate = statistics.median(r.rate for r in probe_runs)
    co_cpu = statistics.median(r.cpu_us for r in co_runs)
    bare_cpu = statistics.median(r.cpu_us for r in bare_runs)
    probe_cpu = statistics.median(r.cpu_us for r in probe_runs)
    print(
        "(c) rounds, req/s (server CPU us/request): "
        + "; ".join(
            f"tracks {c.rate:.0f} ({c.cpu_us:.0f}) bare {b.rate:.0f} ({b.cpu_us:.0f}) "
            f"healthz {h.rate:.0f} ({h.cpu_us:.0f})"
            for c, b, h in zip(co_runs, bare_runs, probe_runs, strict=True)
        ),
        flush=True,
    )
    if profile is not None:
        profile_api(f"{api}/v1/tracks", headers, procs, secs, profile)
        # The floor: the same process and middlewares with no token, limit or handler work.
        probe_headers = {"Origin": "http://localhost:3000"}
        probe_profile = profile.with_name(profile.name + ".healthz")
        profile_api(f"{api}/healthz", probe_headers, procs, secs, probe_profile)
    return [
        Row(
            f"(c) GET /v1/tracks, wrk 16 conns (median of {rounds})",
            f"{co_rate:.0f} req/s",
            f"{bare_rate:.0f} req/s",
            f"x{co_rate / bare_rate:.2f} (goal >= 0.7)",
        ),
        Row(
            "(c)   floor: CO GET /healthz (no auth/db)",
            f"{probe_rate:.0f} req/s",
            f"{bare_rate:.0f} req/s",
            f"x{probe_rate / bare_rate:.2f}",
        ),
        # CPU per request, the load-independent view: bare / CO is the throughput ratio
        # the two would reach on cores of their own.
        Row(
            "(c)   server CPU per request, /v1/tracks",
            f"{co_cpu:.0f} us",
            f"{bare_cpu:.0f} us",
            f"x{bare_cpu / co_cpu:.2f} (bare/CO)",
        ),
        Row(
            "(c)   server CPU per request, /healthz",
            f"{probe_cpu:.0f} us",
            f"{bare_cpu:.0f} us",
            f"x{bare_cpu / probe_cpu:.2f} (bare/CO)",
        ),
    ]


# --------------------------------------------------------------------------- (d)


async def co_turn(
    http: httpx.AsyncClient, api: str, token: str, session_id: uuid.UUID
) -> tuple[ts.Sample, uuid.UUID, float, float]:
    """``ts.through_co`` that also keeps the turn's message id (from ``meta``) and the
    wall-clock time the POST was sent and when ``meta`` arrived (the API's own work), so
    the turn's history can be laid beside it."""
    body: dict[str, Any] = {
        "session_id": str(session_id),
        "problem_id": ts.PROBLEM,
        "message": ts.MESSAGE,
        "hint_level": 1,
    }
    sent = time.time()
    start = time.perf_counter()
    first = last = 0.0
    parts: list[str] = []
    event = ""
    message_id: uuid.UUID | None = None
    meta = 0.0
    async with http.stream(
        "POST", api + "/v1/tutor/messages", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "meta":
                message_id = uuid.UUID(json.loads(line[5:])["message_id"])
                meta = time.perf_counter() - start
            elif line.startswith("data:") and event == "token":
                last = time.perf_counter()
                first = first or last
                parts.append(json.loads(line[5:])["text"])
            elif line.startswith("data:") and event in ("done", "error"):
                if event == "error":
                    raise RuntimeError(f"CO answered an error: {line}")
                break
    assert message_id is not None
    span = last - first
    rate = (len(parts) - 1) / span if span > 0 else float("nan")
    return ts.Sample(first - start, len(parts), rate, "".join(parts)), message_id, sent, meta


async def turn_phases(client: Client, message_id: uuid.UUID, sent: float) -> dict[str, float]:
    """Milliseconds from the POST to each step of the turn's history before the stream's
    first token: where the time to first token goes (same machine, same clock)."""
    from domain.contracts import ActivityName, tutor_workflow_id

    history = await client.get_workflow_handle(tutor_workflow_id(message_id)).fetch_history()
    at: dict[str, float] = {}
    scheduled_names: dict[int, str] = {}
    wft = 0
    for event in history.events:
        ms = event.event_time.ToDatetime().timestamp() * 1000 - sent * 1000
        kind = event.WhichOneof("attributes")
        if kind == "workflow_execution_started_event_attributes":
            at["started"] = ms
        elif kind == "workflow_task_started_event_attributes":
            wft += 1
            at.setdefault(f"wft{wft} started", ms)
        elif kind == "workflow_task_completed_event_attributes":
            at.setdefault(f"wft{wft} completed", ms)
        elif kind == "activity_task_scheduled_event_attributes":
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled_names[event.event_id] = name
            if name == ActivityName.TUTOR_STREAM:
                at.setdefault("stream scheduled", ms)
        elif kind == "activity_task_started_event_attributes":
            attrs = event.activity_task_started_event_attributes
            if scheduled_names.get(attrs.scheduled_event_id) == ActivityName.TUTOR_STREAM:
                at.setdefault("stream started", ms)
    return at


async def row_d(
    api: str,
    tutor: str,
    bank: str,
    token: str,
    session_id: uuid.UUID,
    rounds: int,
    temporal: str | None = None,
) -> list[Row]:
    """Interleaved CO and direct turns; with ``temporal`` (an address) also prints the
    median time of each step of the turns' histories after the POST."""
    phases: list[dict[str, float]] = []
    client = await Client.connect(temporal) if temporal else None
    async with httpx.AsyncClient(timeout=60) as http:
        problem = ProblemPublic.model_validate_json(
            (
                await http.get(
                    f"{bank}/v1/problems/{ts.PROBLEM}",
                    headers={INTERNAL_TOKEN_HEADER: ts.INTERNAL_TOKEN},
                )
            ).content
        )
        await ts.direct(http, tutor, problem)
        await co_turn(http, api, token, session_id)
        added: list[float] = []
        co: list[float] = []
        raw: list[float] = []
        for i in range(rounds):
            if i % 2:
                c, message_id, sent, meta = await co_turn(http, api, token, session_id)
                d = await ts.direct(http, tutor, problem)
            else:
                d = await ts.direct(http, tutor, problem)
                c, message_id, sent, meta = await co_turn(http, api, token, session_id)
            if c.text != d.text:
                raise RuntimeError("CO relayed a different text than the Tutor wrote")
            co.append(c.ttft)
            raw.append(d.ttft)
            added.append(c.ttft - d.ttft)
            if client is not None:
                got = await turn_phases(client, message_id, sent)
                got["first token (client)"] = c.ttft * 1000
                got["meta event (client)"] = meta * 1000
                phases.append(got)
    if phases:
        print("\n(d) where a turn's time goes: median ms after the POST was sent")
        names = sorted(
            {k for p in phases for k in p},
            key=lambda k: statistics.median(p[k] for p in phases if k in p),
        )
        for name in names:
            values = [p[name] for p in phases if name in p]
            print(f"    {name:<24} {statistics.median(values):7.1f}   (n={len(values)})")
    co_sorted = sorted(co)
    return [
        Row(
            f"(d) tutor TTFT median ({rounds}x)",
            f"{statistics.median(co) * 1000:.1f} ms",
            f"{statistics.median(raw) * 1000:.1f} ms",
            f"+{statistics.median(added) * 1000:.1f} ms (goal <= +15)",
        ),
        Row(
            "(d) tutor TTFT p90",
            f"{pct(co_sorted, 0.9) * 1000:.1f} ms",
            f"{pct(raw, 0.9) * 1000:.1f} ms",
            f"+{(pct(co_sorted, 0.9) - pct(raw, 0.9)) * 1000:.1f} ms",
        ),
    ]


# --------------------------------------------------------------------------- the run


async def run(args: argparse.Namespace) -> None:
    private, public = generate_key_pair()
    ports = {n: ts.free_port() for n in ("temporal", "bank", "eval", "tutor", "main_api", "api")}
    (ts.ROOT / ".dev").mkdir(exist_ok=True)
    async with ts.scratch_database() as db_url:
        env = ts.stack_env(db_url, public, ports)
        env.update(
            {
                "CO_TEMPORAL_TASK_QUEUE": "co-bench",
                "CO_API_PORT": str(ports["api"]),
                # Free ports: another bench or `make dev` on this machine holds the defaults.
                "CO_API_METRICS_PORT": str(ts.free_port()),
                "CO_WORKER_METRICS_PORT": str(ts.free_port()),
                "CO_CORS_ORIGINS": "http://localhost:3000",
                # High enough that the load rows measure the limiter's cost, not its refusals.
                "CO_RATE_LIMIT_PER_MINUTE": "100000000",
                "CO_MAX_SUBMISSIONS_IN_FLIGHT": "1000",
            }
        )
        env.update(dict(item.split("=", 1) for item in args.env))
        dsn = db_url.replace("+asyncpg", "")
        subprocess.run(
            [str(ts.BIN / "alembic"), "upgrade", "head"], cwd=ts.ROOT, env=env, check=True
        )
        with ts.processes() as procs:
            procs.start("temporal", ts.temporal_dev_server(ports["temporal"]), env)
            procs.start("devservices", [str(ts.BIN / "python"), "-m", "devservices"], env)
            await ts.wait_port(ports["temporal"], procs)
            procs.start("worker", [str(ts.BIN / "python"), "-m", "worker"], env)
            procs.start("api", [str(ts.BIN / "python"), "-m", "api"], env)
            bank, eval_ = env["CO_PROBLEM_BANK_BASE"], env["CO_EVAL_BASE"]
            api = f"http://127.0.0.1:{ports['api']}"
            await ts.wait_http(bank + "/healthz", procs)
            await ts.wait_http(eval_ + "/healthz", procs)
            await ts.wait_http(env["CO_TUTOR_BASE"] + "/healthz", procs)
            await ts.wait_http(api + "/readyz", procs)
            user = f"bench-{uuid.uuid4().hex[:8]}"
            session_id = await ts.learner_session(db_url, bank, user)
            # The demo tracks too, so the track list has real size.
            from store.db import make_engine, make_sessionmaker
            from tools.seed_demo import seed

            engine = make_engine(db_url, pool_size=1)
            try:
                await seed(make_sessionmaker(engine), bank, internal_token=ts.INTERNAL_TOKEN)
            finally:
                await engine.dispose()
            token = make_token(private, user)
            tokens = [make_token(private, f"bench-u{i}") for i in range(args.users)]
            print("stack up; measuring…", flush=True)
            rows: list[Row] = []
            if "a" in args.only:
                rows += await row_a(
                    api, bank, eval_, token, args.rounds, env["CO_TEMPORAL_ADDRESS"]
                )
            if "b" in args.only:
                rows += await row_b(
                    api,
                    env["CO_TEMPORAL_ADDRESS"],
                    bank,
                    eval_,
                    dsn,
                    tokens,
                    args.load,
                    f"http://127.0.0.1:{env['CO_WORKER_METRICS_PORT']}/metrics",
                )
            if "c" in args.only:
                rows += await row_c(
                    api, token, procs, env, args.wrk_seconds, args.wrk_rounds, args.profile
                )
            if "d" in args.only:
                rows += await row_d(
                    api,
                    env["CO_TUTOR_BASE"],
                    bank,
                    token,
                    session_id,
                    args.rounds,
                    env["CO_TEMPORAL_ADDRESS"] if args.trace else None,
                )
            print_table(rows)


def print_table(rows: list[Row]) -> None:
    head = Row("path", "via CO", "bare baseline (same run)", "ratio / overhead")
    widths = [
        max(len(getattr(r, f)) for r in [head, *rows]) for f in ("path", "co", "bare", "ratio")
    ]
    print()
    for r in [head, *rows]:
        cells = (r.path, r.co, r.bare, r.ratio)
        print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        if r is head:
            print("-+-".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fast_paths", description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--load", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--wrk-seconds", type=int, default=8)
    parser.add_argument("--wrk-rounds", type=int, default=3)
    parser.add_argument(
        "--only",
        default="abcd",
        type=lambda v: (
            set(v.replace(",", ""))
            if v and set(v.replace(",", "")) <= set("abcd")
            else parser.error("--only: of abcd")
        ),
        help="the rows to measure, e.g. 'c' or 'ac' (default: all four)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="row (c): sample the API with py-spy into this file (collapsed stacks)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="row d: also print when each step of the turns' histories happened",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="CO_NAME=VALUE", help="a CO setting"
    )
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
