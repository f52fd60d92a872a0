"""Limits that appear in several places (the request schema, the settings, the README):
defined once here. Settings may tighten a limit, never loosen it past the schema."""

from __future__ import annotations

from typing import Final

# Longest learner message to the tutor: TutorMessageCreate's max_length, the default and
# upper bound of CO_TUTOR_MAX_MESSAGE_CHARS, and the README's table (a test checks it).
TUTOR_MAX_MESSAGE_CHARS: Final = 2000
