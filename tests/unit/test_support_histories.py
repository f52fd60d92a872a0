"""A recorded history is never overwritten: re-recording would hide non-determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import histories, record_history


class NoClient:
    def get_workflow_handle(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an existing history was about to be fetched again")


async def test_recording_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_RECORD_HISTORIES", "1")
    monkeypatch.setattr(histories, "HISTORY_DIR", tmp_path)
    shipped = tmp_path / "shipped.json"
    shipped.write_text('{"events": []}\n')
    await record_history(NoClient(), "wf-1", "shipped")  # type: ignore[arg-type]
    assert shipped.read_text() == '{"events": []}\n'
