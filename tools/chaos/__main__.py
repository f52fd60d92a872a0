"""``make chaos`` (``python -m tools.chaos``): load the platform while it fails, then prove
from the database, Temporal and what the learners saw that nothing was lost or done twice.

``python -m tools.chaos [--submissions N] [--learners M] [--span S] [--pg-outage S]``

It starts its own world (``tools.chaos.world``: PostgreSQL from ``initdb``, Redis, the
Temporal dev server, dev services, fault proxies, two workers, two APIs), seeds the demo
tracks, and lets M learners make N submissions, session advances, tutor turns (streamed
over SSE, hung up and resumed with ``Last-Event-ID``) and review grades over ``S``
seconds, while the driver injects, in this order: Eval answering 20 % ``503`` and 5 %
slow and the Tutor cutting 10 % of its streams (all along the load); then, as 10, 25, 50,
65 and 80 % of the submissions are acknowledged: a worker killed with SIGKILL, PostgreSQL
stopped for 10 s, Redis restarted (empty: no persistence) and the rate limit probed across
both APIs, the other worker killed, an API process killed. Each dead process is started
again. Then it waits for the drain and checks every figure; any figure off makes the exit
status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client

from domain.contracts import WorkflowName
from tools.chaos import world as w
from tools.chaos.learners import Api, Learner, Plan, Seen, leaked
from tools.devkeys import make_token

RETRY_SHARED_AFTER = 5.0  # api.ratelimit.RateLimiter's default: how soon it asks Redis again
RATE_LIMIT = 300  # per learner and minute: the load stays under it, the probe goes over
PROBE_EXTRA = 7  # the probe sends RATE_LIMIT + this many requests: exactly this many 429


@dataclass
class Faults:
    """What the driver did, when, and what it saw while doing it."""

    log: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    readyz: dict[str, Counter[str]] = field(default_factory=dict)
    last_end: float = 0.0
    rate_probe: str = "not run"
    rate_probe_ok: bool = False
    t0: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        line = f"+{time.monotonic() - self.t0:6.1f}s  {what}"
        self.log.append(line)
        print(line, flush=True)


async def watch_readyz(world: w.World, faults: Faults, dep: str, stop: asyncio.Event) -> None:
    """Ask both APIs' /readyz while ``dep`` is down: each answer is recorded by detail."""
    seen = faults.readyz.setdefault(dep, Counter())
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            for i in (1, 2):
                try:
                    r = await http.get(world.api(i) + "/readyz")
                except httpx.HTTPError:
                    seen["no answer"] += 1
                    continue
                if r.status_code == 503:
                    detail = str(r.json().get("detail", ""))
                    seen["503 names " + dep if dep in detail else f"503 {detail}"] += 1
                else:
                    seen[str(r.status_code)] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


async def outage(
    world: w.World,
    faults: Faults,
    dep: str,
    seconds: float,
    down: Callable[[], None],
    up: Callable[[], None],
) -> None:
    stop = asyncio.Event()
    faults.note(f"{dep} down for {seconds:g}s")
    await asyncio.to_thread(down)
    watcher = asyncio.create_task(watch_readyz(world, faults, dep, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await watcher
    await asyncio.to_thread(up)
    faults.counts[f"{dep} outage"] += 1
    faults.note(f"{dep} back")
    faults.last_end = time.monotonic()


async def kill_and_restart(
    world: w.World, faults: Faults, name: str, *, wait_url: str = ""
) -> None:
    child = world.children[name]
    child.down = True
    child.kill()
    faults.note(f"{name} killed (SIGKILL)")
    await asyncio.sleep(1.0)
    child.start()
    child.down = False
    if wait_url:
        await world.wait_http(wait_url)
    faults.counts[f"{name.rstrip('12')} SIGKILL"] += 1
    faults.note(f"{name} started again")
    faults.last_end = time.monotonic()


async def rate_probe(world: w.World, faults: Faults) -> None:
    """Right after Redis returned: one user's RATE_LIMIT + k requests over both APIs must
    get exactly k 429s (each process handed its in-memory limit back to Redis)."""
    for i in (1, 2):
        await world.wait_http(world.api(i) + "/readyz", timeout=60)
    await asyncio.sleep(RETRY_SHARED_AFTER + 1)
    token = make_token(world.private_key, f"chaos-probe-{uuid.uuid4().hex[:8]}")
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(i: int) -> str:
            async with sem:
                try:
                    r = await http.get(
                        world.api(1 + i % 2) + "/v1/tracks",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except httpx.HTTPError as exc:
                    return type(exc).__name__
                return str(r.status_code)

        got = Counter(await asyncio.gather(*(one(i) for i in range(RATE_LIMIT + PROBE_EXTRA))))
    faults.rate_probe = ", ".join(f"{n}x {s}" for s, n in sorted(got.items()))
    faults.rate_probe_ok = got == Counter({"200": RATE_LIMIT, "429": PROBE_EXTRA})
    faults.note(f"rate-limit probe after Redis returned: {faults.rate_probe}")


async def set_faults(world: w.World, name: str, **faults: float) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.put(world.proxy(name) + "/__chaos__", json=faults)
        r.raise_for_status()
        answer: dict[str, Any] = r.json()
        return answer


async def schedule(world: w.World, faults: Faults, seen: Seen, n: int, pg_outage: float) -> None:
    """The faults, spread over the load by its progress (so a slower machine gets them at
    the same points of the load, not after it)."""

    async def at(fraction: float) -> None:
        while len(seen.acked) < fraction * n:
            await asyncio.sleep(0.2)
        faults.note(f"{len(seen.acked)}/{n} submissions acknowledged")

    await set_faults(world, "eval", error_rate=0.20, slow_rate=0.05, slow_seconds=3.0)
    await set_faults(world, "tutor", cut_rate=0.10)
    faults.note("Eval: 20% 503 and 5% slow (3 s); Tutor: 10% of streams cut mid-way")
    await at(0.10)
    await kill_and_restart(world, faults, "worker1")
    await at(0.25)
    await outage(
        world,
        faults,
        "postgres",
        pg_outage,
        lambda: world.pg_ctl("stop", "-m", "fast"),
        lambda: world.pg_ctl("start"),
    )
    await at(0.50)
    redis = world.children["redis"]

    def redis_down() -> None:
        redis.down = True
        redis.stop()

    def redis_up() -> None:
        redis.start()
        redis.down = False

    await outage(world, faults, "redis", 3.0, redis_down, redis_up)
    await rate_probe(world, faults)
    await at(0.65)
    await kill_and_restart(world, faults, "worker2")
    await at(0.80)
    await kill_and_restart(world, faults, "api1", wait_url=world.api(1) + "/healthz")


async def drain(world: w.World, seen: Seen, timeout: float) -> tuple[float, int]:
    """Wait until every acknowledged submission is finished; (seconds, still pending)."""
    start = time.monotonic()
    ids = list(seen.acked.values())
    conn = await asyncpg.connect(world.db_dsn)
    try:
        while True:
            pending = int(
                await conn.fetchval(
                    "SELECT count(*) FROM submissions WHERE user_id LIKE 'chaos-%' "
                    "AND status IN ('queued', 'running')"
                )
            )
            done = int(
                await conn.fetchval(
                    "SELECT count(*) FROM results r JOIN submissions s ON s.id = r.submission_id "
                    "WHERE s.id = ANY($1::uuid[])",
                    ids,
                )
            )
            if pending == 0 and done >= len(set(ids)):
                return time.monotonic() - start, 0
            if time.monotonic() - start > timeout:
                return time.monotonic() - start, pending
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


@dataclass
class Figure:
    name: str
    value: str
    ok: bool


async def figures(
    world: w.World,
    seen: Seen,
    faults: Faults,
    n: int,
    drained: tuple[float, float, float],
    pending: int,
) -> list[Figure]:
    out: list[Figure] = []
    acked_ids = set(seen.acked.values())
    conn = await asyncpg.connect(world.db_dsn)
    try:
        rows = await conn.fetch(
            "SELECT s.id, s.status, count(r.id) AS results FROM submissions s "
            "LEFT JOIN results r ON r.submission_id = s.id WHERE s.user_id LIKE 'chaos-%' "
            "GROUP BY s.id, s.status"
        )
    finally:
        await conn.close()
    stored = {str(r["id"]): r for r in rows}
    results = sum(1 for r in rows if r["results"] >= 1)
    dup_results = sum(r["results"] - 1 for r in rows if r["results"] > 1)
    lost = len(acked_ids - {i for i, r in stored.items() if r["results"] >= 1})
    left = sum(1 for r in rows if r["status"] in ("queued", "running"))
    out.append(Figure("submissions", str(n), True))
    out.append(Figure("acknowledged (202/200)", str(len(acked_ids)), len(acked_ids) == n))
    out.append(Figure("rows stored / results stored", f"{len(rows)} / {results}", results == n))
    out.append(Figure("lost (acknowledged, no result)", str(lost), lost == 0))
    out.append(Figure("duplicate results", str(dup_results), dup_results == 0))
    out.append(Figure("left queued/running after drain", str(left), left == 0 and pending == 0))
    if seen.rejected:
        out.append(Figure("refused submissions", "; ".join(seen.rejected[:3]), False))

    client = await Client.connect(world.temporal_address)
    runs: Counter[str] = Counter()
    histories: list[str] = []
    async for execution in client.list_workflows(
        f"WorkflowType = '{WorkflowName.SUBMISSION}' OR WorkflowType = '{WorkflowName.TUTOR_TURN}'"
    ):
        runs[execution.id] += 1
    sub_runs = {k: v for k, v in runs.items() if k.startswith("submission-")}
    dup_runs = sum(v - 1 for v in runs.values() if v > 1)
    out.append(
        Figure(
            "submission workflows / duplicate runs",
            f"{len(sub_runs)} / {dup_runs}",
            len(sub_runs) == n and dup_runs == 0,
        )
    )
    sem = asyncio.Semaphore(8)

    async def history(workflow_id: str) -> None:
        async with sem:
            h = await client.get_workflow_handle(workflow_id).fetch_history()
            histories.append(h.to_json())

    await asyncio.gather(*(history(i) for i in runs))

    # Every tutor transcript as streamed equals the stored one.
    api = Api([world.api(1), world.api(2)], seen, random.Random(0))
    token_of = {t.message_id: t for t in seen.turns if t.message_id}
    # Only the owner may read a transcript (another learner's answers 404).
    unequal: list[str] = []
    ends: Counter[str] = Counter(t.ended for t in seen.turns)
    try:
        for message_id, turn in token_of.items():
            owner = turn_owner[message_id]
            r = await api.call(
                "GET",
                f"/v1/tutor/messages/{message_id}",
                route="GET /v1/tutor/messages/{id}",
                token=owner,
            )
            stored_text = r.json().get("response", "")
            if stored_text != turn.text:
                unequal.append(
                    f"{message_id} ({turn.ended}, {turn.connections} conns): "
                    f"saw {len(turn.text)} chars, stored {len(stored_text)}"
                )
    finally:
        await api.aclose()
    resumed = sum(t.resumed for t in seen.turns)
    resets = sum(t.resets for t in seen.turns)
    out.append(
        Figure(
            "tutor turns: SSE text = stored transcript",
            f"{len(token_of) - len(unequal)}/{len(token_of)} "
            f"({resumed} resumes, {resets} stream resets; ends: {dict(ends)})",
            not unequal and len(token_of) == len(seen.turns),
        )
    )
    for line in unequal[:5]:
        print("  transcript differs:", line)

    log_leaks = []
    for path in sorted(world.logs.glob("*.log")) + [p for p in [world.pg_log()] if p]:
        with contextlib.suppress(OSError):
            if found := leaked(path.read_text(errors="replace")):
                log_leaks.append(f"{path.name}: {found}")
    history_leaks = sum(1 for h in histories if leaked(h))
    leak_total = len(seen.leaks) + len(log_leaks) + history_leaks
    out.append(
        Figure(
            "hidden-test markers (responses+SSE / logs / histories)",
            f"{len(seen.leaks)} / {len(log_leaks)} / {history_leaks} "
            f"({len(histories)} histories, {len(list(world.logs.glob('*.log'))) + 1} logs)",
            leak_total == 0,
        )
    )
    for line in (seen.leaks + log_leaks)[:5]:
        print("  leak:", line)

    fives = sum(c for (_, s), c in seen.statuses.items() if s == "500")
    out.append(Figure("500 answers", str(fives), fives == 0))
    out.append(
        Figure(
            "other violations (hangs, 503 w/o Retry-After)",
            str(len(seen.violations) - fives),
            not seen.violations,
        )
    )
    for line in seen.violations[:8]:
        print("  violation:", line)
    for dep in ("postgres", "redis"):
        got = faults.readyz.get(dep, Counter())
        named = got.get(f"503 names {dep}", 0)
        out.append(
            Figure(
                f"/readyz while {dep} down",
                ", ".join(f"{c}x {k}" for k, c in got.items()) or "not asked",
                named > 0 and set(got) <= {f"503 names {dep}", "200"},
            )
        )
    out.append(
        Figure(
            f"rate limit after Redis returned ({RATE_LIMIT}+{PROBE_EXTRA} over 2 APIs)",
            faults.rate_probe,
            faults.rate_probe_ok,
        )
    )
    out.append(
        Figure(
            "drain: all results stored",
            f"{drained[0]:.1f} s after the last fault, {drained[1]:.1f} s after the last "
            f"submission was acknowledged, {drained[2]:.1f} s after the load ended",
            pending == 0,
        )
    )
    return out


turn_owner: dict[str, str] = {}


def print_table(faults: Faults, figs: list[Figure], seen: Seen, extra: list[str]) -> None:
    injected = dict(faults.counts)
    width = max(len(f.name) for f in figs)
    print("\n=== chaos run: closing table ===")
    print("faults injected: " + ", ".join(f"{k} x{v}" for k, v in injected.items()))
    for line in extra:
        print(line)
    for f in figs:
        print(f"{'ok ' if f.ok else 'BAD'} {f.name.ljust(width)}  {f.value}")
    by_status: Counter[str] = Counter()
    for (_, status), c in seen.statuses.items():
        by_status[status] += c
    print(
        "statuses seen by learners: " + ", ".join(f"{s}: {c}" for s, c in sorted(by_status.items()))
    )


async def run(args: argparse.Namespace, world: w.World) -> int:
    rng = random.Random(args.seed)
    print(f"chaos world in {world.tmp}; starting servers…", flush=True)
    await w.start(world, seed=args.seed)
    from store.db import make_engine, make_sessionmaker
    from tools.seed_demo import seed

    engine = make_engine(world.env["CO_DB_URL"], pool_size=1)
    try:
        await seed(make_sessionmaker(engine), world.bank, internal_token=w.INTERNAL_TOKEN)
    finally:
        await engine.dispose()
    seen = Seen()
    api = Api([world.api(1), world.api(2)], seen, rng)
    per = [args.submissions // args.learners] * args.learners
    for i in range(args.submissions % args.learners):
        per[i] += 1
    turns = max(1, round(args.tutor_turns / args.learners)) if args.tutor_turns else 0
    learners = []
    for i, count in enumerate(per):
        user = f"chaos-{i:03d}-{uuid.uuid4().hex[:6]}"
        learners.append(
            Learner(
                api,
                user,
                make_token(world.private_key, user),
                Plan(submissions=count, tutor_turns=turns, span_seconds=args.span),
                random.Random(rng.random()),
            )
        )
    faults = Faults()
    print(
        f"world up; {args.submissions} submissions by {args.learners} learners over "
        f"~{args.span:g}s, with faults",
        flush=True,
    )

    load = asyncio.gather(*(owned(learner) for learner in learners))
    chaos = asyncio.create_task(schedule(world, faults, seen, args.submissions, args.pg_outage))
    load_failed: BaseException | None = None
    try:
        await load
    except Exception as exc:
        load_failed = exc
    load_end = time.monotonic()
    if load_failed is not None:
        chaos.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await chaos
    faults.note("load done")
    for name in ("eval", "tutor"):
        got = await set_faults(world, name, error_rate=0, slow_rate=0, cut_rate=0)
        kinds = ("503", "slow") if name == "eval" else ("cut",)
        for k in kinds:
            faults.counts[f"{name} {k}"] = int(got["counts"].get(k, 0))
        faults.counts[f"{name} calls"] = int(got["counts"].get("requests", 0))
    faults.note("Eval and Tutor faults off: draining")
    last_process_fault = faults.last_end
    world.check()
    drain_s, pending = await drain(world, seen, args.drain_timeout)
    since_fault = time.monotonic() - last_process_fault
    since_write = time.monotonic() - seen.last_write
    faults.note(
        f"all stored {since_fault:.1f}s after the last fault, {since_write:.1f}s after "
        f"the last submission was acknowledged, {drain_s:.1f}s after the load ended"
    )
    drained = (since_fault, since_write, drain_s)
    figs = await figures(world, seen, faults, args.submissions, drained, pending)
    await api.aclose()
    if load_failed is not None:
        figs.append(Figure("load", f"failed: {load_failed!r}"[:300], False))
    extra = [
        (
            f"load: {args.learners} learners, {seen.advances} session advances, "
            f"{seen.sessions_completed} sessions completed, {len(seen.turns)} tutor turns, "
            f"{seen.cards_seen} review cards; graded {seen.due_grades} due, "
            f"{seen.forced_grades} early with force (none fell due within the run)"
            if not seen.due_grades
            else f"load: {args.learners} learners, {seen.advances} advances, "
            f"{len(seen.turns)} tutor turns, {seen.due_grades} due grades"
        ),
        f"load span {load_end - faults.t0:.1f}s",
    ]
    print("\nfaults, in order:")
    for line in faults.log:
        print("  " + line)
    print_table(faults, figs, seen, extra)
    ok = all(f.ok for f in figs)
    print("\nchaos run: " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


async def owned(learner: Learner) -> None:
    """Run a learner and remember which token reads each of its tutor turns."""
    try:
        await learner.run()
    finally:
        for t in learner.turns:
            if t.message_id:
                turn_owner[t.message_id] = learner.token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__)
    parser.add_argument("--submissions", type=int, default=500)
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--tutor-turns", type=int, default=100, help="in all, over the learners")
    parser.add_argument("--span", type=float, default=90.0, help="seconds the load is spread over")
    parser.add_argument("--pg-outage", type=float, default=10.0, help="seconds PostgreSQL is down")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep-logs", type=Path, help="copy every process's log here")
    args = parser.parse_args(argv)
    world = w.new_world(rate_limit=RATE_LIMIT)

    def terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        return asyncio.run(run(args, world))
    except KeyboardInterrupt:
        print("interrupted: stopping the chaos world", file=sys.stderr)
        return 130
    finally:
        world.close(keep_logs=args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
