"""Headless Chromium driven over the DevTools protocol (``--remote-debugging-port`` and
the ``websockets`` package), for the browser tests in ``tests/e2e``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets

from tests.support.polling import eventually

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Every host name resolves to nothing but loopback: a page that needs the internet
# (a CDN script) fails as it would on a machine without network.
OFFLINE_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"


class DevTools:
    """The few DevTools protocol calls this test needs (flat sessions)."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._next = 0

    async def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(await self._ws.recv())
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply["result"])

    async def page_value(self, url: str, ready: str, value: str, timeout: float = 30.0) -> Any:
        """Open ``url``, wait until the JS expression ``ready`` is true, return ``value``."""
        target = await self.call("Target.createTarget", {"url": "about:blank"})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        session = attached["sessionId"]
        await self.call("Page.enable", session=session)
        await self.call("Page.navigate", {"url": url}, session=session)
        try:

            async def is_ready() -> bool:
                done = await self.call(
                    "Runtime.evaluate",
                    {"expression": f"!!({ready})", "returnByValue": True},
                    session=session,
                )
                return done["result"].get("value") is True

            # RuntimeError: navigation swapped the context under the call.
            await eventually(is_ready, timeout=timeout, every=0.1, ignoring=(RuntimeError,))
            result = await self.call(
                "Runtime.evaluate", {"expression": value, "returnByValue": True}, session=session
            )
            return result["result"].get("value")
        finally:
            await self.call("Target.closeTarget", {"targetId": target["targetId"]})

    async def run_page(self, url: str, timeout: float = 30.0) -> dict[str, Any]:
        """Open ``url`` in a new tab and return what its script resolved ``__result`` to."""
        target = await self.call("Target.createTarget", {"url": "about:blank"})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        session = attached["sessionId"]
        await self.call("Page.enable", session=session)
        await self.call("Page.navigate", {"url": url}, session=session)

        async def has_result() -> bool:
            ready = await self.call(
                "Runtime.evaluate",
                {
                    "expression": "document.readyState === 'complete' && "
                    "location.href !== 'about:blank' && !!window.__result",
                    "returnByValue": True,
                },
                session=session,
            )
            return ready["result"].get("value") is True

        async with asyncio.timeout(timeout):
            # RuntimeError: the context changed under us while navigating.
            await eventually(has_result, timeout=timeout, ignoring=(RuntimeError,))
            result = await self.call(
                "Runtime.evaluate",
                {"expression": "window.__result", "awaitPromise": True, "returnByValue": True},
                session=session,
            )
        await self.call("Target.closeTarget", {"targetId": target["targetId"]})
        return dict(result["result"]["value"])


@contextlib.asynccontextmanager
async def chromium(profile: Path, *, offline: bool = False) -> AsyncIterator[DevTools]:
    """A headless Chromium; ``offline`` leaves it no way to reach anything but loopback."""
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            *([f"--host-resolver-rules={OFFLINE_RULES}"] if offline else []),
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        endpoint = await asyncio.wait_for(asyncio.to_thread(_devtools_url, proc.stderr), 30)
        async with websockets.connect(endpoint, max_size=None) as ws:
            yield DevTools(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _devtools_url(stderr: Any) -> str:
    for line in stderr:
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1)
    raise RuntimeError("Chromium exited without a DevTools endpoint")
