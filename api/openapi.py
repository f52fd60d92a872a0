"""The published contract: the app's OpenAPI document, with the edge's errors on every operation.

Routes document their own errors (``problem_responses``); what the edge adds to every
request — 401 without a valid token, 429 with the rate-limit headers, 422 for NUL text,
413 for large bodies, 500 — is added here, once, so a route added later is described
without anyone remembering to. The document is cached on the app like FastAPI's own.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import PROBLEM_JSON, Problem, status_title

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

# One tag per resource, in the order a reader meets them (Swagger UI and ReDoc group by it).
TAGS: list[dict[str, Any]] = [
    {"name": "tracks", "description": "Published tracks and their curricula."},
    {"name": "problems", "description": "Problems as a learner may read them, with hints."},
    {"name": "sessions", "description": "A learner working through a track, item by item."},
    {"name": "submissions", "description": "Code or answers sent for evaluation."},
    {"name": "tutor", "description": "Questions to the tutor, answered as an SSE stream."},
    {"name": "reviews", "description": "Spaced-repetition review cards (FSRS), grades and stats."},
    {"name": "recommendations", "description": "What to learn next, each with a reason."},
    {"name": "authoring", "description": "(admin) Drafts, validation and publication."},
    {"name": "health", "description": "Liveness and readiness probes (no token)."},
]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit": {
        "description": 'Quota left in the current window: `"default";r=<left>;t=<seconds>` '
        "(IETF draft-ietf-httpapi-ratelimit-headers).",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The quota policy: `"default";q=<requests>;w=<seconds>`.',
        "schema": {"type": "string"},
    },
    "X-RateLimit-Limit": {
        "description": "Requests allowed per window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "Unix time (seconds) at which a request slot frees up.",
        "schema": {"type": "integer"},
    },
}

_EDGE_RESPONSES: dict[str, dict[str, Any]] = {
    "401": {
        "description": "No token, or a token that is malformed, expired, not yet valid, for "
        "another audience or issuer, not RS256, or signed by an unknown key.",
        "headers": {
            "WWW-Authenticate": {
                "description": "An RFC 6750 Bearer challenge.",
                "schema": {"type": "string"},
            }
        },
    },
    "400": {"description": "The request body could not be parsed."},
    "413": {"description": "The request body is larger than CO_MAX_BODY_BYTES."},
    "422": {
        "description": "The request is not valid (including text with NUL characters, "
        "which cannot be stored)."
    },
    "429": {
        "description": "Too many requests from this user (or address, without a token).",
        "headers": {
            "Retry-After": {
                "description": "Seconds until a request slot frees up.",
                "schema": {"type": "integer"},
            },
            **_RATE_LIMIT_HEADERS,
        },
    },
    "500": {"description": "An unexpected error; the body carries only a request id to quote."},
}


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": PROBLEM_REF}}


def _is_error(status: str) -> bool:
    return status[:1] in ("4", "5")


def _describe_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    secured = bool(operation.get("security"))
    wanted = ["422", "500"]
    if secured:
        wanted += ["401", "429"]
    if "requestBody" in operation:
        wanted += ["400", "413"]
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        wanted.append("404")  # unknown, or somebody else's: the same answer
    for status in wanted:
        edge = _EDGE_RESPONSES.get(status, {})
        entry = responses.setdefault(status, {})
        if entry.get("description") in (None, "", status_title(int(status))):
            entry["description"] = edge.get("description", status_title(int(status)))
        if "headers" in edge:
            entry.setdefault("headers", {}).update(edge["headers"])
    for status, entry in responses.items():
        if _is_error(status):
            # problem+json only: FastAPI's default 422 (HTTPValidationError) and the
            # application/json twin that ``model=`` adds are not what the API sends.
            entry["content"] = _problem_content()
        elif secured:
            entry.setdefault("headers", {}).update(_RATE_LIMIT_HEADERS)
    operation["responses"] = dict(sorted(responses.items()))


def _drop_unreferenced(schema: dict[str, Any], names: tuple[str, ...]) -> None:
    schemas: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    for name in names:
        if name not in schemas:
            continue
        rest = {k: v for k, v in schema.items() if k != "components"}
        other = {k: v for k, v in schemas.items() if k not in names}
        if f"#/components/schemas/{name}" not in repr((rest, other)):
            del schemas[name]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app`` with the edge's responses on every operation."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    bearer = components.setdefault("securitySchemes", {}).setdefault(
        "HTTPBearer", {"type": "http", "scheme": "bearer"}
    )
    bearer["bearerFormat"] = "JWT"
    bearer["description"] = (
        "A JWT signed with RS256 by the SciMigo identity service (iss/aud/exp required); "
        "the `roles` claim carries `admin` for author endpoints."
    )
    for path_item in schema.get("paths", {}).values():
        for method in METHODS:
            if method in path_item:
                _describe_operation(path_item[method])
    _drop_unreferenced(schema, ("HTTPValidationError", "ValidationError"))
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) serve ``build_openapi``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
