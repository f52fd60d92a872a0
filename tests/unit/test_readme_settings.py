"""Every setting is documented in the README's table of environment variables."""

from __future__ import annotations

from pathlib import Path

from domain.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = [f"CO_{n.upper()}" for n in Settings.model_fields if f"`CO_{n.upper()}" not in README]
    assert missing == []
