"""The catalogue of problem types: every ``type`` URI the API answers, with its status
and what it means. The README's table is generated from ``CATALOGUE`` (``make openapi``)
and a test checks that every ``ApiError`` subclass and every status default is listed.

Errors with a cause of their own live here too, so that one cause has one type.
"""

from __future__ import annotations

from typing import NamedTuple

from api.errors import (
    DEPENDENCY_RETRY_AFTER_SECONDS,
    TYPE_BASE,
    ApiError,
    Conflict,
    ServiceUnavailable,
    Unprocessable,
)


class ProblemType(NamedTuple):
    status: int
    title: str
    meaning: str


CATALOGUE: dict[str, ProblemType] = {
    "bad-request": ProblemType(400, "Bad request", "The request cannot be read (framing)."),
    "unauthorized": ProblemType(
        401, "Authentication required", "No, an expired or a foreign bearer token."
    ),
    "forbidden": ProblemType(403, "Not allowed", "The token lacks a role (e.g. `admin`)."),
    "not-found": ProblemType(404, "Not found", "No such resource, or it belongs to another user."),
    "method-not-allowed": ProblemType(405, "Method not allowed", "Wrong HTTP method."),
    "not-acceptable": ProblemType(406, "Not acceptable", "The `Accept` header cannot be met."),
    "conflict": ProblemType(409, "Conflict", "The resource's state does not allow the request."),
    "advance-refused": ProblemType(
        409,
        "The session cannot advance",
        "The current item is not mastered and cannot be skipped, or `from_problem_id` "
        "names an item the learner has not reached; `errors[0].type` gives the code.",
    ),
    "session-closed": ProblemType(
        409,
        "The session is over",
        "A write (advance, submission, tutor message) to a session that is completed, "
        "ended or abandoned. Ending it again is not an error.",
    ),
    "item-not-available": ProblemType(
        409,
        "The item is not available in this session",
        "A submission with `session_id` to a problem that is not the session's current "
        "item; `errors[0].type` says why (`not_in_track`, `module_locked`, `not_current`).",
    ),
    "track-exists": ProblemType(
        409, "The track exists already", "`POST /v1/tracks` with a slug that is taken."
    ),
    "no-draft": ProblemType(
        409, "The track has no draft", "Publishing a track whose draft was already published."
    ),
    "draft-changed": ProblemType(
        409,
        "The draft changed meanwhile",
        "The draft was edited (or created) by another request while this one ran; retry.",
    ),
    "review-not-due": ProblemType(
        409,
        "The review is not due",
        "Grading a review card before its due time without `force: true`.",
    ),
    "gone": ProblemType(410, "Gone", "A tutor stream that has expired; read the transcript."),
    "precondition-failed": ProblemType(
        412, "Precondition failed", "`If-Match` does not match the draft's current `ETag`."
    ),
    "payload-too-large": ProblemType(413, "Payload too large", "A body or field over its limit."),
    "unsupported-media-type": ProblemType(
        415, "Unsupported media type", "A body that is not `application/json`."
    ),
    "validation-error": ProblemType(
        422,
        "The request is not valid",
        "The body, a header or a parameter breaks the schema; `errors` lists each field.",
    ),
    "idempotency-key-reused": ProblemType(
        422,
        "Idempotency-Key reused",
        "The `Idempotency-Key` was already used by this user with a different request body.",
    ),
    "invalid-curriculum": ProblemType(
        422,
        "The curriculum is not valid",
        "An authored curriculum with problems; `errors` lists every issue at once "
        "(structure, unknown problem ids, problems of another domain).",
    ),
    "too-many-requests": ProblemType(
        429, "Too many requests", "Rate limit or tutor stream slots; see `Retry-After`."
    ),
    "internal": ProblemType(500, "Internal error", "A bug; quote `request_id` when reporting it."),
    "unavailable": ProblemType(
        503, "Service unavailable", "A dependency (Temporal, Problem Bank) is down; retry."
    ),
    "dependency-unavailable": ProblemType(
        503,
        "A dependency is down",
        "PostgreSQL, Redis or Temporal cannot be reached; `detail` names which one. "
        "Retry after `Retry-After` seconds (with the same `Idempotency-Key`).",
    ),
}


def type_uri(slug: str) -> str:
    return TYPE_BASE + slug


class AdvanceRefused(Conflict):
    slug, title = "advance-refused", CATALOGUE["advance-refused"].title


class SessionClosed(Conflict):
    slug, title = "session-closed", CATALOGUE["session-closed"].title


class ItemNotAvailable(Conflict):
    slug, title = "item-not-available", CATALOGUE["item-not-available"].title


class TrackExists(Conflict):
    slug, title = "track-exists", CATALOGUE["track-exists"].title


class NoDraft(Conflict):
    slug, title = "no-draft", CATALOGUE["no-draft"].title


class DraftChanged(Conflict):
    slug, title = "draft-changed", CATALOGUE["draft-changed"].title


class ReviewNotDue(Conflict):
    slug, title = "review-not-due", CATALOGUE["review-not-due"].title


class IdempotencyKeyReused(Unprocessable):
    slug, title = "idempotency-key-reused", CATALOGUE["idempotency-key-reused"].title


class InvalidCurriculum(Unprocessable):
    slug, title = "invalid-curriculum", CATALOGUE["invalid-curriculum"].title


class PreconditionFailed(ApiError):
    status, slug, title = 412, "precondition-failed", CATALOGUE["precondition-failed"].title


class DependencyUnavailable(ServiceUnavailable):
    """PostgreSQL, Redis or Temporal is down; ``detail`` names which."""

    slug, title = "dependency-unavailable", CATALOGUE["dependency-unavailable"].title

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(DEPENDENCY_RETRY_AFTER_SECONDS)})


def readme_table() -> str:
    """The README's catalogue table (generated; edit ``CATALOGUE`` instead)."""
    lines = ["| `type` | status | title | when |", "| --- | --- | --- | --- |"]
    for slug, entry in CATALOGUE.items():
        lines.append(f"| `{type_uri(slug)}` | {entry.status} | {entry.title} | {entry.meaning} |")
    return "\n".join(lines)
