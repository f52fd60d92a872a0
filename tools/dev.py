"""``make dev``: the whole platform on one machine.

Starts the Temporal dev server (state in ``.dev/temporal.db``, Web UI on 8233, the
custom search attributes registered), creates and migrates the database, starts
the dev services, the worker and the API, loads the demo tracks, prints the URLs
and a development token, and on Ctrl-C (or SIGTERM) stops every child it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
from redis.asyncio import Redis

from domain.settings import (
    DEV_API_TOKEN,
    DEV_EVAL_TOKEN,
    DEV_PROBLEM_BANK_TOKEN,
    DEV_TUTOR_TOKEN,
)
from tools.devkeys import DEV_DIR, ensure_dev_keys, make_token

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

DEFAULTS = {
    "CO_DB_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/scimigo_co",
    "CO_REDIS_URL": "redis://127.0.0.1:6379/0",
    "CO_PROBLEM_BANK_BASE": "http://127.0.0.1:8101",
    "CO_EVAL_BASE": "http://127.0.0.1:8102",
    "CO_TUTOR_BASE": "http://127.0.0.1:8103",
    # The main API's notifications: the dev stand-in (devservices/main_api).
    "CO_API_BASE": "http://127.0.0.1:8104",
    "CO_TEMPORAL_ADDRESS": "127.0.0.1:7233",
    "CO_ENV": "development",
    # One credential per upstream; the dev services accept only their own.
    "CO_PROBLEM_BANK_TOKEN": DEV_PROBLEM_BANK_TOKEN,
    "CO_EVAL_TOKEN": DEV_EVAL_TOKEN,
    "CO_TUTOR_TOKEN": DEV_TUTOR_TOKEN,
    "CO_API_TOKEN": DEV_API_TOKEN,
    "CO_CORS_ORIGINS": "http://localhost:3000,http://127.0.0.1:3000",
    "CO_LOG_JSON": "false",
    "CO_API_PORT": "8000",
    "CO_API_METRICS_PORT": "9100",
    "CO_WORKER_METRICS_PORT": "9101",
    # Dev-stack knobs (the end-to-end test runs a second stack beside a developer's).
    "CO_DEV_TEMPORAL_UI_PORT": "8233",
    "CO_DEV_STATE_DIR": str(DEV_DIR),
}


class DevError(RuntimeError):
    pass


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    _, public = ensure_dev_keys(Path(env["CO_DEV_STATE_DIR"]))
    if not env.get("CO_JWT_PUBLIC_KEY"):
        env.setdefault("CO_JWT_PUBLIC_KEY_FILE", str(public))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


async def check_postgres_and_redis(env: dict[str, str]) -> None:
    db = urlsplit(env["CO_DB_URL"].replace("+asyncpg", ""))
    try:
        conn = await asyncpg.connect(
            host=db.hostname or "127.0.0.1",
            port=db.port or 5432,
            user=db.username or "postgres",
            password=db.password,
            database="postgres",
            timeout=5,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DevError(
            f"PostgreSQL is not reachable at {db.hostname}:{db.port or 5432} ({exc}).\n"
            "Start it, e.g.: pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start"
        ) from None
    try:
        name = (db.path or "/scimigo_co").lstrip("/")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    finally:
        await conn.close()
    redis = Redis.from_url(env["CO_REDIS_URL"])
    try:
        await redis.ping()
    except Exception as exc:  # redis raises several connection error types
        raise DevError(
            f"Redis is not reachable at {env['CO_REDIS_URL']} ({exc}).\n"
            "Start it, e.g.: redis-server --daemonize yes --port 6379"
        ) from None
    finally:
        await redis.aclose()


class Stack:
    """Child processes, each in its own session so Ctrl-C reaches only us."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *argv: str) -> None:
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True)
        self.children.append((name, proc))
        print(f"started {name} (pid {proc.pid})")

    def dead(self) -> list[str]:
        return [name for name, p in self.children if p.poll() is not None]

    def stop(self, timeout: float = 15.0) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in time: killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.children.clear()


async def wait_until(what: str, check: object, stack: Stack, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dead := stack.dead():
            raise DevError(f"{', '.join(dead)} exited while waiting for {what}")
        try:
            if await check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, OSError):
            pass
        await asyncio.sleep(0.5)
    raise DevError(f"{what} did not become ready in {timeout:.0f}s")


async def run() -> int:
    env = _env()
    await check_postgres_and_redis(env)
    subprocess.run([str(BIN / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True)

    stack = Stack(env)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        host, _, port = env["CO_TEMPORAL_ADDRESS"].rpartition(":")
        if _port_open(host, int(port)):
            print(f"Temporal already listens on {env['CO_TEMPORAL_ADDRESS']}: using it")
        else:
            state_dir = Path(env["CO_DEV_STATE_DIR"])
            state_dir.mkdir(parents=True, exist_ok=True)
            stack.start(
                "temporal",
                str(BIN / "temporal"),
                "server",
                "start-dev",
                "--ip",
                host,
                "--port",
                port,
                "--ui-port",
                env["CO_DEV_TEMPORAL_UI_PORT"],
                "--db-filename",
                str(state_dir / "temporal.db"),
                "--log-level",
                "warn",
            )

            async def temporal_up() -> bool:
                return _port_open(host, int(port))

            await wait_until("Temporal", temporal_up, stack)
        # The same command a real namespace gets (idempotent): the worker refuses to start
        # without the attributes.
        subprocess.run(
            [str(BIN / "python"), "-m", "tools.temporal_setup"], cwd=ROOT, env=env, check=True
        )

        stack.start("devservices", str(BIN / "python"), "-m", "devservices")
        stack.start("worker", str(BIN / "python"), "-m", "worker")
        stack.start("api", str(BIN / "python"), "-m", "api")

        api = f"http://127.0.0.1:{env['CO_API_PORT']}"
        async with httpx.AsyncClient(timeout=3) as http:

            async def bank_up() -> bool:
                return (await http.get(env["CO_PROBLEM_BANK_BASE"] + "/healthz")).is_success

            async def api_up() -> bool:
                return (await http.get(api + "/readyz")).is_success

            await wait_until("the dev services", bank_up, stack)
            await wait_until("the API", api_up, stack)

        from domain.settings import load_settings
        from store.db import make_engine, make_sessionmaker
        from tools.seed_demo import seed

        os.environ.update(env)
        settings = load_settings()
        engine = make_engine(str(settings.db_url), pool_size=2)
        try:
            outcome = await seed(
                make_sessionmaker(engine),
                str(settings.problem_bank_base),
                internal_token=settings.problem_bank_token,
            )
        finally:
            await engine.dispose()
        for slug, what in outcome.items():
            print(f"demo track {slug}: {what}")

        private, _ = ensure_dev_keys(Path(env["CO_DEV_STATE_DIR"]))
        token = make_token(private.read_text(), "dev-user", roles=["admin"])
        print(
            "\nThe platform is up.\n"
            f"  API:          {api}  (docs: {api}/docs)\n"
            f"  Temporal UI:  http://127.0.0.1:{env['CO_DEV_TEMPORAL_UI_PORT']}\n"
            f"  Problem Bank: {env['CO_PROBLEM_BANK_BASE']}   Eval: {env['CO_EVAL_BASE']}"
            f"   Tutor: {env['CO_TUTOR_BASE']}   Main API (notifications): {env['CO_API_BASE']}\n"
            f"  Metrics:      API http://127.0.0.1:{env['CO_API_METRICS_PORT']}/metrics"
            f"   worker (Temporal SDK) http://127.0.0.1:{env['CO_WORKER_METRICS_PORT']}/metrics\n"
            "  Token (user dev-user, role admin; `make token USER=<id>` for others):\n\n"
            f"{token}\n\n"
            "  Try it (works as printed, in another terminal):\n\n"
            f"{try_it_command(api, token)}\n\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while not stop.is_set():
            if dead := stack.dead():
                raise DevError(f"{', '.join(dead)} exited unexpectedly")
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
        print("\nstopping…")
        return 0
    finally:
        stack.stop()


def try_it_command(api: str, token: str) -> str:
    """A shell command that works exactly as printed: the token is in it, not a variable
    the reader would first have to set."""
    return f"curl -s -H 'Authorization: Bearer {token}' {api}/v1/tracks"


def main() -> int:
    try:
        return asyncio.run(run())
    except DevError as exc:
        print(f"make dev: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"make dev: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
