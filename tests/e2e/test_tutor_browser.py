"""A real browser asks the tutor: headless Chromium on a page of an approved origin POSTs
with ``fetch`` and an ``Authorization`` header (so with a CORS preflight) and reads the
SSE stream as it comes; the same page on an origin that is not approved is refused.

Chromium is driven over the DevTools protocol (``--remote-debugging-port`` and the
``websockets`` package): ``--dump-dom`` cannot wait for a stream to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from temporalio.client import Client

from devservices.testing import serve
from domain.settings import Settings
from tests.conftest import DevServices, isolated_stack
from tests.integration.tutor_support import (
    OTHER_PROBLEM,
    new_session,
    publish_tutor_track,
    serve_started,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>tutor</title></head>
<body><pre id="out">pending</pre>
<script>
const q = new URLSearchParams(location.search);
window.__result = (async () => {
  const out = {status: null, contentType: null, events: [], error: null};
  const t0 = performance.now();
  try {
    const response = await fetch(q.get("api") + "/v1/tutor/messages", {
      method: "POST",
      headers: {"Authorization": "Bearer " + q.get("token"),
                "Content-Type": "application/json"},
      body: JSON.stringify({session_id: q.get("session"), problem_id: q.get("problem"),
                            message: "How should I begin?"}),
    });
    out.status = response.status;
    out.contentType = response.headers.get("content-type");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.search(/\\r?\\n\\r?\\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\\r?\\n\\r?\\n/, "");
        const event = {event: "message", id: null, data: "", at: performance.now() - t0};
        let hasData = false;
        for (const line of block.split(/\\r?\\n/)) {
          if (line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const name = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (name === "data") { event.data += (hasData ? "\\n" : "") + val; hasData = true; }
          else if (name === "event") event.event = val;
          else if (name === "id") event.id = val;
        }
        if (hasData) { event.data = JSON.parse(event.data); out.events.push(event); }
      }
    }
  } catch (err) {
    out.error = String(err);
  }
  document.getElementById("out").textContent = JSON.stringify(out);
  return out;
})();
</script></body></html>
"""


async def page(_: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


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

    async def run_page(self, url: str, timeout: float = 30.0) -> dict[str, Any]:
        """Open ``url`` in a new tab and return what its script resolved ``__result`` to."""
        target = await self.call("Target.createTarget", {"url": "about:blank"})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        session = attached["sessionId"]
        await self.call("Page.enable", session=session)
        await self.call("Page.navigate", {"url": url}, session=session)
        async with asyncio.timeout(timeout):
            while True:
                try:
                    ready = await self.call(
                        "Runtime.evaluate",
                        {
                            "expression": "document.readyState === 'complete' && "
                            "location.href !== 'about:blank' && !!window.__result",
                            "returnByValue": True,
                        },
                        session=session,
                    )
                    if ready["result"].get("value") is True:
                        break
                except RuntimeError:
                    pass  # the context changed under us while navigating
                await asyncio.sleep(0.05)
            result = await self.call(
                "Runtime.evaluate",
                {"expression": "window.__result", "awaitPromise": True, "returnByValue": True},
                session=session,
            )
        await self.call("Target.closeTarget", {"targetId": target["targetId"]})
        return dict(result["result"]["value"])


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[DevTools]:
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


async def test_a_browser_on_an_approved_origin_streams_the_answer_and_others_are_refused(
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    devservices: DevServices,
    token_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    user_id = f"browser-{uuid.uuid4().hex[:8]}"
    token = token_for(user_id)
    pages = Starlette(routes=[Route("/", page)])
    async with serve(pages) as approved, serve(pages) as other:
        async with isolated_stack(
            make_settings, temporal_client, devservices, cors_origins=[approved]
        ) as stack:
            await publish_tutor_track(stack.app, devservices.problem_bank)
            session_id = await new_session(stack.app.state.resources.sessionmaker, user_id)
            async with serve_started(stack.app) as api, chromium(tmp_path / "profile") as browser:
                query = urlencode(
                    {
                        "api": api,
                        "token": token,
                        "session": str(session_id),
                        "problem": OTHER_PROBLEM,
                    }
                )
                ok = await browser.run_page(f"{approved}/?{query}")
                refused = await browser.run_page(f"{other}/?{query}")

                async with httpx.AsyncClient(base_url=api) as http:
                    auth = {"Authorization": f"Bearer {token}"}
                    listing = (
                        await http.get(f"/v1/sessions/{session_id}/tutor", headers=auth)
                    ).json()

    assert ok["error"] is None, ok
    assert ok["status"] == 200
    assert ok["contentType"].startswith("text/event-stream")
    kinds = [e["event"] for e in ok["events"]]
    assert kinds[0] == "meta"
    assert kinds[-1] == "done"
    assert kinds.count("token") > 10
    tokens = [e for e in ok["events"] if e["event"] == "token"]
    text = "".join(e["data"]["text"] for e in tokens)
    # The page read tokens as they came, not one buffered body at the end.
    assert tokens[-1]["at"] - tokens[0]["at"] > 0.2 * 1000

    assert refused["status"] is None, refused
    assert "Failed to fetch" in str(refused["error"]), refused
    # The refused preflight started nothing: only the approved page's turn exists.
    assert len(listing["items"]) == 1
    assert listing["items"][0]["response"] == text
