"""An ASGI proxy in front of an upstream dev service that answers scripted faults."""

from __future__ import annotations

import json
from typing import Any

import httpx


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
