"""The custom search attributes on a namespace: registered idempotently through the
operator API (``python -m tools.temporal_setup``) and checked by the worker at start-up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

from domain.contracts import (
    SEARCH_ATTRIBUTES,
)


class MissingSearchAttributes(RuntimeError):
    """The namespace lacks attributes the workflows set (they would fail their tasks)."""


def _wanted(keys: Iterable[SearchAttributeKey[Any]]) -> dict[str, int]:
    return {k.name: int(k.indexed_value_type) for k in keys}


async def registered(client: Client, namespace: str) -> dict[str, int]:
    """Custom attributes of ``namespace``: name -> IndexedValueType."""
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return {name: int(kind) for name, kind in resp.custom_attributes.items()}


async def problems(
    client: Client, namespace: str, keys: Iterable[SearchAttributeKey[Any]] = SEARCH_ATTRIBUTES
) -> tuple[list[str], list[str]]:
    """(missing names, names registered with another type)."""
    have = await registered(client, namespace)
    missing, mistyped = [], []
    for name, kind in _wanted(keys).items():
        if name not in have:
            missing.append(name)
        elif have[name] != kind:
            mistyped.append(
                f"{name} is {IndexedValueType.Name(have[name])}, "  # type: ignore[arg-type]
                f"needs {IndexedValueType.Name(kind)}"  # type: ignore[arg-type]
            )
    return missing, mistyped


async def ensure(
    client: Client, namespace: str, keys: Iterable[SearchAttributeKey[Any]] = SEARCH_ATTRIBUTES
) -> list[str]:
    """Register what is missing; returns the names added (empty: nothing to do)."""
    keys = list(keys)
    missing, mistyped = await problems(client, namespace, keys)
    if mistyped:
        raise MissingSearchAttributes(
            f"namespace {namespace!r}: search attributes with the wrong type "
            f"(remove them first): {'; '.join(mistyped)}"
        )
    if missing:
        wanted = _wanted(keys)
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={name: wanted[name] for name in missing},  # type: ignore[misc]
            )
        )
    return missing


async def require_search_attributes(client: Client, namespace: str) -> None:
    missing, mistyped = await problems(client, namespace)
    if missing or mistyped:
        raise MissingSearchAttributes(
            f"namespace {namespace!r} lacks the custom search attributes "
            f"{', '.join(missing + mistyped)}; run `python -m tools.temporal_setup` "
            "against it first"
        )
