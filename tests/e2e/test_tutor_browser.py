"""A real browser asks the tutor: headless Chromium on a page of an approved origin POSTs
with ``fetch`` and an ``Authorization`` header (so with a CORS preflight) and reads the
SSE stream as it comes; the same page on an origin that is not approved is refused.

Chromium is driven over the DevTools protocol (``--remote-debugging-port`` and the
``websockets`` package): ``--dump-dom`` cannot wait for a stream to finish.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from temporalio.client import Client

from devservices.testing import serve
from domain.settings import Settings
from tests.conftest import DevServices, isolated_stack
from tests.support.browser import CHROMIUM, chromium
from tests.support.tutor import (
    OTHER_PROBLEM,
    new_session,
    publish_tutor_track,
    serve_started,
)

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
