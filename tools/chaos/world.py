"""The chaos run's own world: every server it needs, on free ports, in a temporary folder.

A PostgreSQL cluster made with ``initdb`` and run with ``pg_ctl``, a ``redis-server``, the
Temporal dev server, the dev services, a fault proxy in front of Eval and one in front of
the Tutor, two workers and two API processes. Each child runs in its own process group
with stdout and stderr in a log file of the run (the hidden-marker check reads them all);
the driver can kill, stop and restart any of them. ``World.close`` stops everything and
removes the folder, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.tutor_stream import free_port, temporal_dev_server
from tools.devkeys import generate_key_pair

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TASK_QUEUE = "co-chaos"
INTERNAL_TOKEN = "chaos-internal-token"
# PostgreSQL refuses to run as root: the cluster belongs to this user when we are root.
PG_USER_WHEN_ROOT = "postgres"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pg_bindir() -> Path:
    """Debian puts the server binaries (initdb, pg_ctl) outside PATH; pg_config knows where."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    raise RuntimeError("initdb not found: install Debian's postgresql package")


class WorldError(RuntimeError):
    pass


@dataclass
class Child:
    """One long-running process of the world, restartable under the same name and port."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    down: bool = False  # stopped on purpose by the driver: not a crash

    def start(self) -> None:
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- chaos: start #{self.starts} of {self.name}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: killed as a whole
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL to the whole group, as a crashed host would: nothing runs a finally."""
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait()


@dataclass
class World:
    tmp: Path
    env: dict[str, str]
    ports: dict[str, int]
    private_key: str
    children: dict[str, Child] = field(default_factory=dict)
    pg_data: Path | None = None
    pg_owner: str | None = None

    # ------------------------------------------------------------------ addresses

    @property
    def logs(self) -> Path:
        return self.tmp / "logs"

    @property
    def db_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports['pg']}/co_chaos"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.ports['temporal']}"

    def api(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[f'api{i}']}"

    def proxy(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[f'{name}_proxy']}"

    @property
    def bank(self) -> str:
        return f"http://127.0.0.1:{self.ports['bank']}"

    # ------------------------------------------------------------------ children

    def add(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        child = Child(name, argv, env or self.env, self.logs / f"{name}.log")
        self.children[name] = child
        child.start()
        return child

    def check(self) -> None:
        for child in self.children.values():
            if not child.down and child.proc is not None and child.proc.poll() is not None:
                raise WorldError(f"{child.name} exited; see {child.log_path}")

    async def wait_port(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not port_open(port):
            if time.monotonic() > deadline:
                raise WorldError(f"port {port} did not open in {timeout:.0f}s")
            await asyncio.sleep(0.2)

    async def wait_http(self, url: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=3) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url)).is_success:
                        return
                if time.monotonic() > deadline:
                    raise WorldError(f"{url} did not answer in {timeout:.0f}s")
                await asyncio.sleep(0.3)

    # ------------------------------------------------------------------ PostgreSQL

    def _as_pg_owner(self, argv: list[str]) -> list[str]:
        if self.pg_owner is None:
            return argv
        return ["runuser", "-u", self.pg_owner, "--", *argv]

    def init_postgres(self) -> None:
        bindir = pg_bindir()
        self.pg_data = self.tmp / "pg"
        self.pg_data.mkdir()
        if os.geteuid() == 0:
            self.pg_owner = PG_USER_WHEN_ROOT
            entry = pwd.getpwnam(PG_USER_WHEN_ROOT)
            os.chown(self.pg_data, entry.pw_uid, entry.pw_gid)
            os.chmod(self.tmp, 0o755)  # mkdtemp's 0700 would keep its owner out
        subprocess.run(
            self._as_pg_owner(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.pg_data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def pg_ctl(self, *args: str) -> None:
        assert self.pg_data is not None
        options = (
            f"-p {self.ports['pg']} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.pg_data} -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.logs / "postgres.log"
        if self.pg_owner is not None:
            log = self.pg_data / "postgres.log"  # writable by its owner; read at the end
        subprocess.run(
            self._as_pg_owner(
                [str(pg_bindir() / "pg_ctl"), "-D", str(self.pg_data), "-l", str(log)]
                + ["-o", options, "-w", "-t", "60", *args]
            ),
            check=True,
            capture_output=True,
        )

    def pg_log(self) -> Path | None:
        if self.pg_data is None:
            return None
        path = self.pg_data / "postgres.log"
        return path if path.exists() else self.logs / "postgres.log"

    # ------------------------------------------------------------------ Redis

    def start_redis(self) -> None:
        self.add(
            "redis",
            ["redis-server", "--port", str(self.ports["redis"]), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
        )

    # ------------------------------------------------------------------ all

    def close(self, keep_logs: Path | None = None) -> None:
        for child in reversed(list(self.children.values())):
            with contextlib.suppress(Exception):
                child.stop()
        if self.pg_data is not None and (self.pg_data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.pg_ctl("stop", "-m", "immediate")
        if keep_logs is not None:
            keep_logs.mkdir(parents=True, exist_ok=True)
            shutil.copytree(self.logs, keep_logs, dirs_exist_ok=True)
            if (pg := self.pg_log()) is not None and pg.exists():
                shutil.copy(pg, keep_logs / "postgres.log")
        shutil.rmtree(self.tmp, ignore_errors=True)


def new_world(*, rate_limit: int) -> World:
    """The folder, the ports and the environment every CO process of the run shares."""
    tmp = Path(tempfile.mkdtemp(prefix="co-chaos-"))
    (tmp / "logs").mkdir()
    private, public = generate_key_pair()
    names = "pg redis temporal bank eval tutor main_api eval_proxy tutor_proxy api1 api2".split()
    ports = {n: free_port() for n in names}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CO_")}
    env.update(
        {
            "CO_ENV": "development",
            "CO_DB_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{ports['pg']}/co_chaos",
            "CO_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
            "CO_JWT_PUBLIC_KEY": public,
            "CO_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "CO_PROBLEM_BANK_BASE": f"http://127.0.0.1:{ports['bank']}",
            # The worker reaches Eval and the Tutor through the fault proxies.
            "CO_EVAL_BASE": f"http://127.0.0.1:{ports['eval_proxy']}",
            "CO_TUTOR_BASE": f"http://127.0.0.1:{ports['tutor_proxy']}",
            "CO_API_BASE": f"http://127.0.0.1:{ports['main_api']}",
            "CO_DEV_PROBLEM_BANK_PORT": str(ports["bank"]),
            "CO_DEV_EVAL_PORT": str(ports["eval"]),
            "CO_DEV_TUTOR_PORT": str(ports["tutor"]),
            "CO_DEV_MAIN_API_PORT": str(ports["main_api"]),
            "CO_DEV_TUTOR_TOKEN_DELAY_MS": "20",
            "CO_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
            "CO_TEMPORAL_TASK_QUEUE": TASK_QUEUE,
            "CO_API_METRICS_PORT": "0",
            "CO_WORKER_METRICS_PORT": "0",
            "CO_RATE_LIMIT_PER_MINUTE": str(rate_limit),
            # Learners submit several at once; the in-flight cap is exercised by the tests.
            "CO_MAX_SUBMISSIONS_IN_FLIGHT": "50",
            "CO_TUTOR_IDLE_TIMEOUT_SECONDS": "30",
            "CO_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "5",
            "CO_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return World(tmp=tmp, env=env, ports=ports, private_key=private)


async def start(world: World, *, seed: int) -> None:
    """Bring every server up, in dependency order, and wait until each answers."""
    py = str(BIN / "python")
    world.init_postgres()
    world.pg_ctl("start")
    subprocess.run(
        world._as_pg_owner(
            [
                str(pg_bindir() / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(world.ports["pg"]),
                "-U",
                "postgres",
                "co_chaos",
            ]
        ),
        check=True,
        capture_output=True,
    )
    world.start_redis()
    world.add("temporal", temporal_dev_server(world.ports["temporal"]))
    subprocess.run(
        [str(BIN / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=world.env,
        check=True,
        capture_output=True,
    )
    world.add("devservices", [py, "-m", "devservices"])
    for name in ("eval", "tutor"):
        world.add(
            f"{name}-proxy",
            [py, "-m", "tools.chaos.proxy", "--port", str(world.ports[f"{name}_proxy"])]
            + ["--target", f"http://127.0.0.1:{world.ports[name]}", "--seed", str(seed)],
        )
    await world.wait_port(world.ports["temporal"])
    await world.wait_port(world.ports["redis"])
    for i in (1, 2):
        world.add(f"worker{i}", [py, "-m", "worker"])
        api_env = {**world.env, "CO_API_PORT": str(world.ports[f"api{i}"])}
        world.add(f"api{i}", [py, "-m", "api"], api_env)
    await world.wait_http(world.bank + "/healthz")
    await world.wait_http(f"http://127.0.0.1:{world.ports['eval']}/healthz")
    await world.wait_http(world.proxy("tutor") + "/healthz")
    await world.wait_http(world.proxy("eval") + "/healthz")
    for i in (1, 2):
        await world.wait_http(world.api(i) + "/readyz")
