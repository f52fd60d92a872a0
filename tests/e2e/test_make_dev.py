"""The first README command, end to end: the dev stack starts, serves the demo tracks
with the printed token, shows the Temporal UI with the search attributes, and
Ctrl-C leaves no process behind. It runs on ports, a database and a state folder
of its own, so a developer's running `make dev` is not disturbed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PG_HOST, PG_USER, ROOT, venv_binary
from tests.support import eventually, free_ports


def descendants(pid: int) -> set[int]:
    """Every process whose ancestry leads to pid (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        nxt = {child for child, parent in parents.items() if parent in frontier}
        nxt -= found
        found |= nxt
        frontier = nxt
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
async def test_make_dev_serves_demo_tracks_and_stops_cleanly(tmp_path: Path) -> None:
    db = f"co_e2e_{os.getpid()}"
    names = ("api", "temporal", "ui", "pb", "eval", "tutor", "api_m", "worker_m")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CO_")}
    env.update(
        {
            "CO_DB_URL": f"postgresql+asyncpg://{PG_USER}@{PG_HOST}/{db}",
            "CO_REDIS_URL": "redis://127.0.0.1:6379/14",
            "CO_API_PORT": str(ports["api"]),
            "CO_API_METRICS_PORT": str(ports["api_m"]),
            "CO_WORKER_METRICS_PORT": str(ports["worker_m"]),
            "CO_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
            "CO_TEMPORAL_TASK_QUEUE": f"e2e-{uuid.uuid4().hex[:6]}",
            "CO_DEV_TEMPORAL_UI_PORT": str(ports["ui"]),
            "CO_DEV_STATE_DIR": str(tmp_path),
            "CO_DEV_PROBLEM_BANK_PORT": str(ports["pb"]),
            "CO_DEV_EVAL_PORT": str(ports["eval"]),
            "CO_DEV_TUTOR_PORT": str(ports["tutor"]),
            "CO_PROBLEM_BANK_BASE": f"http://127.0.0.1:{ports['pb']}",
            "CO_EVAL_BASE": f"http://127.0.0.1:{ports['eval']}",
            "CO_TUTOR_BASE": f"http://127.0.0.1:{ports['tutor']}",
        }
    )
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.dev"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:

        async def up() -> bool:
            if "The platform is up" in log_path.read_text(errors="replace"):
                return True
            assert proc.poll() is None, log_path.read_text()
            return False

        await eventually(up, timeout=120, every=0.5, failure=log_path.read_text)
        out = log_path.read_text()
        token = re.search(r"^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$", out, re.MULTILINE)
        assert token, out
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        # The banner's command works as printed, pasted into a shell.
        command = re.search(r"^curl .*$", out, re.MULTILINE)
        assert command, out
        pasted = subprocess.run(
            ["bash", "-c", command.group(0)], capture_output=True, text=True, timeout=30
        )
        assert pasted.returncode == 0, pasted.stderr
        assert len(json.loads(pasted.stdout)["items"]) == 3
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(f"http://127.0.0.1:{ports['api']}/v1/tracks", headers=headers)
            assert r.status_code == 200, r.text
            domains = sorted(t["domain"] for t in r.json()["items"])
            assert domains == ["coding", "math", "systems"]
            ui = await http.get(f"http://127.0.0.1:{ports['ui']}/")
            assert ui.status_code == 200
            # `make dev` prints both metrics endpoints, and they serve.
            for url, series in (
                (f"http://127.0.0.1:{ports['api_m']}/metrics", "co_http_requests_total"),
                (f"http://127.0.0.1:{ports['worker_m']}/metrics", "temporal_"),
            ):
                assert url in out, out
                scraped = await http.get(url)
                assert scraped.status_code == 200
                assert series in scraped.text, url
        listed = subprocess.run(
            [
                venv_binary("temporal"),
                "operator",
                "search-attribute",
                "list",
                "--address",
                f"127.0.0.1:{ports['temporal']}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name in ("CoUserId", "CoTrackSlug", "CoProblemId", "CoStatus", "CoStep"):
            assert name in listed

        children = descendants(proc.pid)
        assert len(children) >= 4  # temporal, devservices, worker, api
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(60) == 0, log_path.read_text()

        async def all_gone() -> bool:
            return not any(alive(pid) for pid in children)

        await eventually(
            all_gone,
            timeout=5,
            failure=lambda: f"still alive: {[pid for pid in children if alive(pid)]}",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        admin = await asyncpg.connect(host=PG_HOST, user=PG_USER, database="postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CO_REDIS_URL", "redis://127.0.0.1:1/0", "Redis is not reachable"),
        ("CO_DB_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/x", "PostgreSQL is not reachable"),
    ],
)
def test_make_dev_says_what_is_unreachable_and_exits_non_zero(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CO_")}
    env.update({"CO_DEV_STATE_DIR": str(tmp_path), variable: value})
    done = subprocess.run(
        [sys.executable, "-m", "tools.dev"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert says in done.stderr
    assert "start it" in done.stderr.split(says, 1)[1].lower()  # and how to start it
