"""Learning sessions: the SessionWorkflow's contracts and the API's shapes.

The workflow's input carries the plan of its track version (ids and numbers) so it
never needs the database to decide anything; its projection carries the raw
``Progress`` plus a few summary numbers, and the API renders the rest.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from domain.curriculum import Slug
from domain.problems import ProblemView
from domain.progression import (
    Progress,
    ProgressSummary,
    SessionPlan,
    SessionStatus,
    SessionView,
)
from domain.upstream import Verdict

# How many recent submission ids a session remembers to ignore a redelivered signal.
RECENT_SUBMISSIONS = 100
# Handled signals and updates after which a run continues as new (history stays short).
DEFAULT_MAX_EVENTS_PER_RUN = 200


# --------------------------------------------------------------------------- workflow


class SessionCarry(BaseModel):
    """Everything a run hands to the next one when it continues as new."""

    progress: Progress
    recent_submissions: list[uuid.UUID] = Field(default_factory=list)


class SessionInput(BaseModel):
    session_id: uuid.UUID
    user_id: str
    track_id: uuid.UUID
    track_slug: str
    track_version_id: uuid.UUID
    track_version: int
    plan: SessionPlan
    started_at: datetime = Field(
        description="The API's clock when it created the row, so both agree on the start."
    )
    idle_timeout: timedelta = Field(description="CO_SESSION_IDLE_DAYS, read by the API.")
    max_events_per_run: int = Field(default=DEFAULT_MAX_EVENTS_PER_RUN, ge=1)
    carried: SessionCarry | None = None


class SubmissionFinished(BaseModel):
    """Signal from SubmissionWorkflow once a submission's result is stored."""

    submission_id: uuid.UUID
    problem_id: str
    verdict: Verdict


class HintGiven(BaseModel):
    """Signal from the tutor once it has given a hint on a problem of the session."""

    problem_id: str
    level: int = Field(ge=1, le=3)
    message_id: uuid.UUID | None = None


class AdvanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_problem_id: str | None = Field(
        default=None,
        max_length=120,
        description=(
            "The problem the learner is moving past. When given and no longer current "
            "(a retried request), the advance is refused instead of skipping another item."
        ),
    )


class EndRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionDocument(BaseModel):
    """What the ``sessions.state`` column holds."""

    progress: Progress
    summary: ProgressSummary


class SessionProjection(BaseModel):
    """One write of a session's state; ``document.progress.seq`` orders the writes."""

    session_id: uuid.UUID
    user_id: str
    track_id: uuid.UUID
    track_version_id: uuid.UUID
    document: SessionDocument


class SessionOutcome(BaseModel):
    session_id: uuid.UUID
    status: SessionStatus
    seq: int


# --------------------------------------------------------------------------- API


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    track_slug: Slug


class SessionDetail(SessionView):
    id: uuid.UUID
    track_slug: str
    track_title: str
    track_version: int
    current_problem: ProblemView | None = Field(
        default=None,
        description=(
            "The current item's problem, as `GET /v1/problems/{id}?session_id=` answers it "
            "(null when nothing is current)."
        ),
    )
    links: dict[str, str] = Field(default_factory=dict)


class CurrentRef(BaseModel):
    """The current item in a list: the same names as the detail's ``current``."""

    module_slug: str
    problem_id: str
    title: str | None = None


class SessionSummary(BaseModel):
    """A session in a list. Every field has the name and meaning it has in the detail
    view (``SessionDetail``); the list leaves out modules, mastery and next actions."""

    id: uuid.UUID
    track_slug: str
    track_title: str
    track_version: int
    status: SessionStatus
    current: CurrentRef | None
    progress: ProgressSummary
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None
    links: dict[str, str] = Field(default_factory=dict)


class SessionList(BaseModel):
    """Newest first (by ``started_at``, then ``id``); pass ``next_cursor`` as ``cursor``
    for the next page (null on the last page)."""

    items: list[SessionSummary]
    next_cursor: str | None = None
