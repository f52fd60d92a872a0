"""One vocabulary: every problem type the API can answer is catalogued (and the README
shows the catalogue); limits agree between schema, settings and README."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import api
from api.errors import _STATUS_SLUGS, ApiError
from api.problem_types import CATALOGUE, readme_table, type_uri
from domain.limits import TUTOR_MAX_MESSAGE_CHARS
from domain.settings import Settings
from domain.tutor import TutorMessageCreate

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _all_subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


def test_every_api_error_and_status_default_uses_a_catalogued_type() -> None:
    for info in pkgutil.walk_packages(api.__path__, "api."):
        importlib.import_module(info.name)
    errors = _all_subclasses(ApiError) | {ApiError}
    assert len(errors) > 10
    for error in errors:
        assert error.slug in CATALOGUE, error
        assert CATALOGUE[error.slug].status == error.status, error
    for status, (slug, _title) in _STATUS_SLUGS.items():
        assert slug in CATALOGUE, status
        assert CATALOGUE[slug].status == status


def test_one_cause_has_one_type() -> None:
    """No two catalogue entries share a title; the types differ per cause."""
    titles = [entry.title for entry in CATALOGUE.values()]
    assert len(titles) == len(set(titles))


def test_the_readme_shows_the_catalogue_as_generated() -> None:
    assert readme_table() in README, "run `make openapi` to refresh the README's catalogue"
    for slug in CATALOGUE:
        assert type_uri(slug) in README


def test_the_tutor_message_limit_is_one_number_everywhere() -> None:
    schema = TutorMessageCreate.model_json_schema()["properties"]["message"]
    assert schema["maxLength"] == TUTOR_MAX_MESSAGE_CHARS
    assert Settings.model_fields["tutor_max_message_chars"].default == TUTOR_MAX_MESSAGE_CHARS
    row = re.search(r"^\| `CO_TUTOR_MAX_MESSAGE_CHARS` \|.*\| `(\d+)` \|$", README, re.M)
    assert row is not None
    assert int(row.group(1)) == TUTOR_MAX_MESSAGE_CHARS


def test_readme_defaults_equal_the_settings() -> None:
    rows = re.findall(r"^\| `(CO_[A-Z_]+)` \| [^|]* \| `([^`]*)` \|$", README, re.M)
    assert len(rows) > 20
    for name, documented in rows:
        field = Settings.model_fields.get(name[3:].lower())
        if field is None or field.is_required() or field.default is None:
            continue
        default = field.default
        if isinstance(default, bool):
            assert documented == str(default).lower(), name
        elif isinstance(default, int | float):
            assert float(documented) == float(default), name
        elif isinstance(default, str):
            assert documented == default, name
