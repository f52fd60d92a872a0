"""Walking every route of the app (from ``app.routes``, so a new route is covered the day
it is added): the endpoints, a request body made from each one's schema, and one call.
Used by the edge walk (tokens, ownership) and the outage walk (503s, never 500)."""

from __future__ import annotations

import random
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.deps import require_admin
from api.docs import PUBLIC_PATHS as DOCS_PATHS

OWNED_PREFIXES = ("/v1/sessions/", "/v1/submissions/", "/v1/tutor/messages/", "/v1/reviews/")
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})  # HEAD mirrors GET; OPTIONS is CORS's


# --------------------------------------------------------------------------- the routes


def _route_contexts(app: FastAPI) -> list[Any]:
    """Every route, with included routers expanded (FastAPI >= 0.16x keeps them lazy)."""
    expand = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(expand(app.routes)) if expand is not None else list(app.routes)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the template, e.g. /v1/submissions/{submission_id}
    route: Any  # a RouteContext (or a plain route): path_format, param_convertors, ...

    @property
    def owned(self) -> bool:
        return self.path.startswith(OWNED_PREFIXES) and "{" in self.path

    @property
    def admin_only(self) -> bool:
        """The route depends (directly or not) on ``require_admin``."""
        route = self.api_route
        todo = list(route.dependant.dependencies) if route is not None else []
        while todo:
            dep = todo.pop()
            if dep.call is require_admin:
                return True
            todo.extend(dep.dependencies)
        return False

    @property
    def api_route(self) -> APIRoute | None:
        original = getattr(self.route, "original_route", self.route)
        return original if isinstance(original, APIRoute) else None

    def url(self, params: dict[str, str]) -> str:
        values = dict(params)
        for name, convertor in self.route.param_convertors.items():
            if name not in values:
                is_int = convertor.regex == "-?[0-9]+"
                values[name] = str(random.randint(10**6, 10**9) if is_int else uuid.uuid4())
        quoted = {k: urllib.parse.quote(str(v), safe="") for k, v in values.items()}
        return str(self.route.path_format.format(**quoted))

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: FastAPI) -> list[Endpoint]:
    found: list[Endpoint] = []
    for route in _route_contexts(app):
        methods, path = route.methods, route.path
        unknown = f"{route!r} is not an HTTP route: extend the route walk so it is checked too"
        assert methods is not None, unknown
        assert path is not None, unknown
        for method in sorted(set(methods) - SKIPPED_METHODS):
            found.append(Endpoint(method, path, route))
    return found


def public_paths(app: FastAPI) -> frozenset[str]:
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    return PUBLIC_PATHS | DOCS_PATHS | {p for p in docs if p}


# --------------------------------------------------------------------------- request bodies


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def example_from_schema(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """The smallest value that a JSON schema (as FastAPI writes them) accepts, roughly."""
    schema = _resolve(schema, spec)
    if "examples" in schema and schema["examples"]:
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [o for o in schema[combinator] if o.get("type") != "null"]
            return example_from_schema(options[0] if options else {"type": "null"}, spec)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {
            name: example_from_schema(properties.get(name, {}), spec)
            for name in schema.get("required", [])
        }
    if kind == "array":
        return [example_from_schema(schema.get("items", {}), spec)] * schema.get("minItems", 0)
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("format") == "date-time":
        return "2030-01-01T00:00:00Z"
    return "x" * max(int(schema.get("minLength", 1)), 1)


def request_body(
    app: FastAPI, endpoint: Endpoint, overrides: dict[tuple[str, str], Any] | None = None
) -> Any | None:
    """A body for ``endpoint`` made from its schema, unless ``overrides`` names one."""
    if overrides and (endpoint.method, endpoint.path) in overrides:
        return overrides[(endpoint.method, endpoint.path)]
    if endpoint.api_route is None or endpoint.api_route.body_field is None:
        return None
    spec = app.openapi()
    operation = spec["paths"][endpoint.path][endpoint.method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    return example_from_schema(schema, spec)


# --------------------------------------------------------------------------- the walk


async def call(
    client: httpx.AsyncClient,
    app: FastAPI,
    endpoint: Endpoint,
    url: str,
    headers: dict[str, str],
    *,
    with_body: bool = True,
    bodies: dict[tuple[str, str], Any] | None = None,
) -> httpx.Response:
    # Without a token no body is needed: authentication comes before body validation.
    body = request_body(app, endpoint, bodies) if with_body else None
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    return await client.request(endpoint.method, url, **kwargs)


def bearer(token_for: Callable[..., str], user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user)}"}
