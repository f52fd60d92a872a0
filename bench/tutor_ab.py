"""Row (d) of ``bench.fast_paths`` for two checkouts at once, turn by turn.

``python -m bench.tutor_ab --base DIR --new DIR [--rounds N] [--env-new CO_X=Y ...]``

On a shared machine the load swings by a factor of two within a minute, so two runs of
``bench.fast_paths --only d`` one after the other do not compare like with like. This
starts both checkouts side by side – each its own scratch database (migrated by its own
Alembic), worker and API, run from its own directory – on one Temporal dev server, one
set of dev services and one Redis, and asks the same question in each round of the dev
Tutor directly, of ``base`` and of ``new``, rotating who goes first. Every figure is a
median over paired rounds, so the load of a moment hits all three alike. Then the
engine's own floor on the same server: a bare workflow's start until its one activity
runs (dispatched through the task queue, and with an eager start).
Benchmarks print; tests never assert times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench import tutor_stream as ts
from bench.fast_paths import co_turn, pct
from domain.upstream import INTERNAL_TOKEN_HEADER, ProblemPublic
from tools.devkeys import generate_key_pair, make_token


class Stacks(ts.Processes):
    """``ts.Processes`` whose children may run from another checkout."""

    def start_in(self, name: str, root: Path, argv: list[str], env: dict[str, str]) -> None:
        log = self.logs.enter_context(open(ts.ROOT / ".dev" / f"bench-ab-{name}.log", "wb"))
        proc = subprocess.Popen(
            argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children.append((name, proc))


@contextlib.contextmanager
def stacks() -> Iterator[Stacks]:
    procs = Stacks()
    try:
        yield procs
    finally:
        procs.stop()


async def learner(db_url: str, bank: str, user_id: str) -> uuid.UUID:
    """The one-problem track of ``ts.learner_session`` and a session row, in plain SQL so
    that either checkout's schema takes it."""
    from domain.curriculum import ItemSpec, ModuleSpec, TrackSpec
    from domain.upstream import Domain
    from store import tracks as track_repo
    from store.db import make_engine, make_sessionmaker
    from tools.seed_demo import seed

    spec = TrackSpec(
        slug="bench-tutor",
        title="Tutor benchmark",
        domain=Domain.coding,
        modules=[ModuleSpec(slug="m", title="M", items=[ItemSpec(problem_id=ts.PROBLEM)])],
    )
    engine = make_engine(db_url, pool_size=1)
    try:
        maker = make_sessionmaker(engine)
        await seed(maker, bank, specs=[spec], internal_token=ts.INTERNAL_TOKEN)
        async with maker() as db:
            version = await track_repo.get_published(db, spec.slug)
            assert version is not None
            track_id, version_id = version.track_id, version.id
    finally:
        await engine.dispose()
    session_id = uuid.uuid4()
    conn = await asyncpg.connect(db_url.replace("+asyncpg", ""))
    try:
        await conn.execute(
            "INSERT INTO sessions (id, user_id, track_id, track_version_id, status, state,"
            " state_seq) VALUES ($1, $2, $3, $4, 'active', '{}'::jsonb, 0)",
            session_id,
            user_id,
            track_id,
            version_id,
        )
    finally:
        await conn.close()
    return session_id


@activity.defn(name="bench.first_token")
async def first_token(sent: float) -> float:
    """The bare turn's stream activity: says when it began running."""
    return time.perf_counter() - sent


@workflow.defn(name="BenchBareTurn", sandboxed=False)
class BareTurn:
    """A turn's shape with nothing of CO in it: start -> one workflow task -> one
    activity. The time until that activity runs is what Temporal alone adds."""

    @workflow.run
    async def run(self, sent: float) -> float:
        return float(
            await workflow.execute_activity(
                first_token, sent, start_to_close_timeout=timedelta(seconds=30)
            )
        )


async def engine_floor(address: str, rounds: int) -> dict[str, float]:
    """Median ms from ``start_workflow`` to the first activity running, on the same dev
    server: worker and starter on separate clients (every task dispatched through the
    task queue, as CO's), and on one client with an eager start."""
    out: dict[str, float] = {}
    worker_client = await Client.connect(address)
    starter = await Client.connect(address)
    queue = f"bench-floor-{uuid.uuid4().hex[:6]}"
    async with Worker(
        worker_client, task_queue=queue, workflows=[BareTurn], activities=[first_token]
    ):
        for name, client, eager in (
            ("dispatched", starter, False),
            ("eager start", worker_client, True),
        ):
            times = []
            for _ in range(rounds):
                handle = await client.start_workflow(
                    BareTurn.run,
                    time.perf_counter(),
                    id=f"bench-floor-{uuid.uuid4()}",
                    task_queue=queue,
                    request_eager_start=eager,
                )
                times.append(await handle.result() * 1000)
            out[name] = statistics.median(times)
    return out


async def run(args: argparse.Namespace) -> None:
    private, public = generate_key_pair()
    names = ("base", "new")
    roots = {"base": Path(args.base).resolve(), "new": Path(args.new).resolve()}
    ports = {n: ts.free_port() for n in ("temporal", "bank", "eval", "tutor", "main_api")}
    api_ports = {n: ts.free_port() for n in names}
    (ts.ROOT / ".dev").mkdir(exist_ok=True)
    async with ts.scratch_database("base") as base_db, ts.scratch_database("new") as new_db:
        dbs = {"base": base_db, "new": new_db}
        # Each stack's own database comes below; the rest is shared.
        common = ts.stack_env("", public, ports)
        common["CO_RATE_LIMIT_PER_MINUTE"] = "100000000"
        envs = {}
        for n in names:
            env = dict(common)
            env.update(
                {
                    "CO_DB_URL": dbs[n],
                    "CO_TEMPORAL_TASK_QUEUE": f"co-bench-{n}",
                    "CO_API_PORT": str(api_ports[n]),
                    "CO_API_METRICS_PORT": str(ts.free_port()),
                    "CO_WORKER_METRICS_PORT": str(ts.free_port()),
                }
            )
            if n == "new":
                env.update(dict(item.split("=", 1) for item in args.env_new))
            envs[n] = env
            subprocess.run(
                [str(ts.BIN / "alembic"), "upgrade", "head"],
                cwd=roots[n],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        with stacks() as procs:
            procs.start("temporal", ts.temporal_dev_server(ports["temporal"]), common)
            procs.start("devservices", [str(ts.BIN / "python"), "-m", "devservices"], common)
            await ts.wait_port(ports["temporal"], procs)
            for n in names:
                py = str(ts.BIN / "python")
                procs.start_in(f"{n}-worker", roots[n], [py, "-m", "worker"], envs[n])
                procs.start_in(f"{n}-api", roots[n], [py, "-m", "api"], envs[n])
            bank, tutor = common["CO_PROBLEM_BANK_BASE"], common["CO_TUTOR_BASE"]
            apis = {n: f"http://127.0.0.1:{api_ports[n]}" for n in names}
            await ts.wait_http(bank + "/healthz", procs)
            await ts.wait_http(tutor + "/healthz", procs)
            for n in names:
                await ts.wait_http(apis[n] + "/readyz", procs)
            user = f"bench-{uuid.uuid4().hex[:8]}"
            sessions = {n: await learner(dbs[n], bank, user) for n in names}
            token = make_token(private, user)
            print(f"stacks up (base {roots['base']}, new {roots['new']}); measuring…", flush=True)
            await measure(apis, tutor, bank, token, sessions, args.rounds)
            floor = await engine_floor(common["CO_TEMPORAL_ADDRESS"], args.rounds)
            print(
                "engine floor, same server: start_workflow -> its first activity running, "
                + ", ".join(f"{k} {v:.1f} ms" for k, v in floor.items())
            )


async def measure(
    apis: dict[str, str],
    tutor: str,
    bank: str,
    token: str,
    sessions: dict[str, uuid.UUID],
    rounds: int,
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        problem = ProblemPublic.model_validate_json(
            (
                await http.get(
                    f"{bank}/v1/problems/{ts.PROBLEM}",
                    headers={INTERNAL_TOKEN_HEADER: ts.INTERNAL_TOKEN},
                )
            ).content
        )

        async def one(who: str) -> float:
            if who == "direct":
                return (await ts.direct(http, tutor, problem)).ttft
            sample, *_ = await co_turn(http, apis[who], token, sessions[who])
            return sample.ttft

        order = ["direct", "base", "new"]
        for who in order:  # warm-up: connections, imports, caches
            await one(who)
        ttft: dict[str, list[float]] = {who: [] for who in order}
        for i in range(rounds):
            turn = order[i % 3 :] + order[: i % 3]
            for who in turn:
                ttft[who].append(await one(who))
    ms = {who: [v * 1000 for v in values] for who, values in ttft.items()}
    added = {n: [c - d for c, d in zip(ms[n], ms["direct"], strict=True)] for n in ("base", "new")}
    gain = [b - n for b, n in zip(ms["base"], ms["new"], strict=True)]
    print(f"\n{rounds} paired rounds, tutor time to first token (ms)")
    print(f"{'':<22}{'median':>9}{'p90':>9}{'CO minus direct, median':>26}")
    for who in order:
        extra = f"+{statistics.median(added[who]):.1f}" if who in added else ""
        print(f"{who:<22}{statistics.median(ms[who]):>9.1f}{pct(ms[who], 0.9):>9.1f}{extra:>26}")
    print(f"new faster than base by (paired median): {statistics.median(gain):.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tutor_ab", description=__doc__)
    parser.add_argument("--base", required=True, help="checkout measured as the baseline")
    parser.add_argument("--new", required=True, help="checkout measured against it")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument(
        "--env-new", action="append", default=[], metavar="CO_NAME=VALUE", help="for new only"
    )
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
