"""Helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

HISTORY_DIR = Path(__file__).parent / "replay" / "histories"


async def record_history(
    client: Client, workflow_id: str, name: str, *, run_id: str | None = None
) -> None:
    """With CO_RECORD_HISTORIES=1, save a finished workflow's history for the replay tests."""
    if os.environ.get("CO_RECORD_HISTORIES") != "1":
        return
    path = HISTORY_DIR / f"{name}.json"
    if path.exists():  # a recorded history is never overwritten: it is what shipped
        return
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    HISTORY_DIR.mkdir(parents=True, exist_ok=True)
    data = json.loads(history.to_json())
    path.write_text(json.dumps(data, indent=1) + "\n")


class FaultyProxy:
    """An ASGI reverse proxy that answers its first requests with scripted faults
    (an HTTP status, or ``"drop"`` to close the connection) and forwards the rest."""

    def __init__(self, target: str, faults: list[int | str] | None = None) -> None:
        self.target = target.rstrip("/")
        self.faults = list(faults or [])
        self.calls = 0
        self.forwarded = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls += 1
        if self.faults:
            fault = self.faults.pop(0)
            status = 503 if fault == "drop" else int(fault)
            payload = json.dumps({"title": "injected fault", "status": status}).encode()
            headers = [(b"content-type", b"application/problem+json")]
            if status == 429:
                headers.append((b"retry-after", b"1"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return
        self.forwarded += 1
        headers = {
            k.decode(): v.decode()
            for k, v in scope["headers"]
            if k.lower() not in (b"host", b"content-length")
        }
        url = self.target + scope["path"]
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode()
        async with httpx.AsyncClient(timeout=120) as http:
            upstream = await http.request(scope["method"], url, content=body, headers=headers)
        await send(
            {
                "type": "http.response.start",
                "status": upstream.status_code,
                "headers": [
                    (k.encode(), v.encode())
                    for k, v in upstream.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
                ],
            }
        )
        await send({"type": "http.response.body", "body": upstream.content})


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 15.0, every: float = 0.05
) -> None:
    """Wait until ``check()`` is true (raises TimeoutError after ``timeout`` seconds)."""

    async def loop() -> None:
        while not await check():
            await asyncio.sleep(every)

    await asyncio.wait_for(loop(), timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpProxy:
    """A TCP proxy on a free local port in front of ``host:port`` that can be cut (the
    listener closes and every open connection drops, as when the server stops) and
    restored on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


class RedisServer:
    """A throwaway ``redis-server`` on a free port, no persistence, stoppable and
    restartable on the same port (an empty database again, as after a crash)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self._proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        async def answers() -> bool:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            w.close()
            return True

        await eventually(answers, timeout=10)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
