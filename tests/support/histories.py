"""Recording workflow histories for the replay tests (never overwriting one)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from temporalio.client import Client

HISTORY_DIR = Path(__file__).parent.parent / "replay" / "histories"


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
