"""The contract's vocabulary: a list shows a resource under the names its detail view
uses, every list is cursor-paginated the same way, and every operation has a tag."""

from __future__ import annotations

from typing import Any

import pytest

from tools.openapi import generate

# (list item schema, detail schema): the list item's fields are a subset of the
# detail's, with the same JSON types.
PAIRS = [
    ("SessionSummary", "SessionDetail"),
    ("CurrentRef", "CurrentItem"),
    ("TrackSummary", "TrackDetail"),
    ("SubmissionOut", "SubmissionOut"),
    ("TutorMessageOut", "TutorMessageOut"),
    ("AuthorTrackSummary", "AuthorTrack"),
    ("DraftRef", "DraftOut"),
]
PAGES = ["SessionList", "TrackList", "SubmissionPage", "TutorMessagePage", "AuthorTrackList"]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return generate()


def _shape(schema: dict[str, Any]) -> Any:
    """A field's type with descriptions, titles and defaults left out."""
    if isinstance(schema, dict):
        return {
            k: _shape(v)
            for k, v in schema.items()
            if k not in {"description", "title", "default", "examples"}
        }
    if isinstance(schema, list):
        return [_shape(v) for v in schema]
    return schema


@pytest.mark.parametrize(("listed", "detail"), PAIRS)
def test_list_items_use_the_detail_names(spec: dict[str, Any], listed: str, detail: str) -> None:
    schemas = spec["components"]["schemas"]
    small, big = schemas[listed]["properties"], schemas[detail]["properties"]
    missing = set(small) - set(big)
    assert not missing, f"{listed} has {missing}, which {detail} names differently"
    for name in set(small) & set(big):
        if name in {"current", "draft"}:  # a reference in the list, checked as its own pair
            continue
        assert _shape(small[name]) == _shape(big[name]), name


@pytest.mark.parametrize("page", PAGES)
def test_every_list_is_cursor_paginated(spec: dict[str, Any], page: str) -> None:
    properties = spec["components"]["schemas"][page]["properties"]
    assert set(properties) == {"items", "next_cursor"}


def test_every_list_endpoint_takes_limit_and_cursor(spec: dict[str, Any]) -> None:
    for path, ops in spec["paths"].items():
        get = ops.get("get")
        if get is None:
            continue
        content = get["responses"].get("200", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema", {})
        if schema.get("$ref", "").rsplit("/", 1)[-1] in PAGES:
            names = {p["name"] for p in get.get("parameters", [])}
            assert {"limit", "cursor"} <= names, path


def test_every_operation_has_one_resource_tag(spec: dict[str, Any]) -> None:
    declared = {t["name"] for t in spec.get("tags", [])}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert len(op.get("tags", [])) == 1, (method, path)
            assert op["tags"][0] in declared, (method, path)
