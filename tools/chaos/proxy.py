"""The fault proxy: a reverse proxy in front of one upstream (Eval or the Tutor) that the
chaos driver tells, while the load runs, to answer ``503``, to be slow, or to cut a
streamed answer mid-way.

``python -m tools.chaos.proxy --port P --target URL [--seed S]``

Faults apply to ``POST`` requests (``/v1/evaluate``, ``/v1/hints/stream``); health probes
and the rest pass untouched. ``PUT /__chaos__`` with ``{"error_rate", "slow_rate",
"slow_seconds", "cut_rate"}`` sets them, ``GET /__chaos__`` answers what was injected.
Bodies are forwarded, never logged: Eval's requests carry the hidden tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections import Counter
from typing import Any

import httpx
import uvicorn

CONTROL = "/__chaos__"
# A cut stream forwards this many upstream chunks (NDJSON lines: tokens) before it breaks.
CUT_AFTER_CHUNKS = (2, 12)


class CutStream(Exception):
    """Raised inside the response to break the connection as a crashed upstream would."""


class FaultProxy:
    """ASGI app: forwards to ``target``, injecting the faults currently set."""

    def __init__(self, target: str, seed: int = 0) -> None:
        self.target = target.rstrip("/")
        self.rng = random.Random(seed)
        self.faults: dict[str, float] = {
            "error_rate": 0.0,
            "slow_rate": 0.0,
            "slow_seconds": 0.0,
            "cut_rate": 0.0,
        }
        self.counts: Counter[str] = Counter()
        self.http: httpx.AsyncClient | None = None

    async def _json(self, send: Any, status: int, body: dict[str, Any]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.http = httpx.AsyncClient(
                        timeout=httpx.Timeout(120, connect=5),
                        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                    )
                    await send({"type": "lifespan.startup.complete"})
                else:
                    if self.http is not None:
                        await self.http.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == CONTROL:
            if scope["method"] == "PUT":
                update = json.loads(body or b"{}")
                self.faults.update({k: float(v) for k, v in update.items() if k in self.faults})
            await self._json(send, 200, {"faults": self.faults, "counts": dict(self.counts)})
            return
        faulty = scope["method"] == "POST"
        if faulty:
            self.counts["requests"] += 1
            roll = self.rng.random()
            if roll < self.faults["error_rate"]:
                self.counts["503"] += 1
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [
                            (b"content-type", b"application/problem+json"),
                            (b"retry-after", b"1"),
                        ],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b'{"title":"injected 503","status":503}',
                    }
                )
                return
            if roll < self.faults["error_rate"] + self.faults["slow_rate"]:
                self.counts["slow"] += 1
                await asyncio.sleep(self.faults["slow_seconds"])
        await self._forward(scope, send, body, cut=faulty and self._cut())

    def _cut(self) -> bool:
        if self.faults["cut_rate"] and self.rng.random() < self.faults["cut_rate"]:
            self.counts["cut"] += 1
            return True
        return False

    async def _forward(self, scope: Any, send: Any, body: bytes, *, cut: bool) -> None:
        assert self.http is not None
        headers = [
            (k.decode(), v.decode())
            for k, v in scope["headers"]
            if k.lower() not in (b"host", b"content-length", b"connection")
        ]
        url = self.target + scope["path"]
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode()
        request = self.http.build_request(scope["method"], url, content=body, headers=headers)
        try:
            upstream = await self.http.send(request, stream=True)
        except httpx.HTTPError:
            self.counts["upstream_unreachable"] += 1
            await self._json(send, 502, {"title": "upstream unreachable"})
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": upstream.status_code,
                    "headers": [
                        (k.encode(), v.encode())
                        for k, v in upstream.headers.items()
                        if k.lower()
                        not in ("content-length", "transfer-encoding", "content-encoding")
                    ],
                }
            )
            cut_after = self.rng.randint(*CUT_AFTER_CHUNKS) if cut else -1
            sent = 0
            async for chunk in upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += 1
                if sent == cut_after:
                    # Leaves the chunked body unterminated: the reader sees a broken stream.
                    raise CutStream("stream cut by the chaos proxy")
            await send({"type": "http.response.body", "body": b""})
        finally:
            await upstream.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos.proxy", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    uvicorn.run(
        FaultProxy(args.target, args.seed),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
