"""Authoring tracks: the API's shapes and PublishTrackWorkflow's contracts.

Problem ids are checked against Problem Bank by an activity run through
``PublishTrackWorkflow`` (the API never calls Problem Bank itself); the workflow
returns the problem facts the curriculum items copy (title, kind, skills,
difficulty), never statements or tests.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.curriculum import CurriculumIssue, CurriculumSpec
from domain.tracks import ModuleOut
from domain.upstream import Domain, EvalKind

# --------------------------------------------------------------------------- workflow


class ProblemFacts(BaseModel):
    """What a curriculum item copies from Problem Bank when it is saved or published."""

    id: str
    title: str
    domain: Domain
    kind: EvalKind
    skills: list[str] = Field(default_factory=list)
    difficulty: int = 1


class FetchProblemsInput(BaseModel):
    problem_ids: list[str]


class ProblemFactsList(BaseModel):
    items: list[ProblemFacts]


class PublishTrackInput(BaseModel):
    """Check a curriculum against Problem Bank and, unless ``dry_run``, publish the
    draft ``version_id`` (which must still equal ``spec``)."""

    track_slug: str
    version_id: uuid.UUID | None = None
    spec: CurriculumSpec
    dry_run: bool = False
    requested_by: str


class PublishVersionInput(BaseModel):
    version_id: uuid.UUID
    spec: CurriculumSpec
    problems: list[ProblemFacts]


class PublishedVersion(BaseModel):
    version_id: uuid.UUID
    version: int
    published_at: datetime


class PublishStatus(StrEnum):
    valid = "valid"  # a dry run found nothing wrong
    invalid = "invalid"  # issues listed
    published = "published"
    draft_changed = "draft_changed"  # edited while being published: nothing published
    unavailable = "unavailable"  # Problem Bank could not be asked


class PublishOutcome(BaseModel):
    status: PublishStatus
    issues: list[CurriculumIssue] = Field(default_factory=list)
    problems: list[ProblemFacts] = Field(default_factory=list)
    published: PublishedVersion | None = None
    message: str = ""


# --------------------------------------------------------------------------- API

Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=4000)]


class TrackPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None


class DraftOut(BaseModel):
    version: int = Field(description="The number it gets when published (newest + 1).")
    created_at: datetime = Field(description="When this draft was started.")
    updated_at: datetime = Field(description="When its curriculum last changed.")
    etag: str = Field(
        description="The draft's current entity tag, also sent as the `ETag` header: give "
        "it as `If-Match` to publish (or replace) exactly this draft."
    )
    modules: list[ModuleOut]


class AuthorTrack(BaseModel):
    """A track as its authors see it: metadata, the draft and the newest published version."""

    id: uuid.UUID
    slug: str
    title: str
    domain: Domain
    description: str
    published_version: int | None
    draft: DraftOut | None


class DraftRef(BaseModel):
    """A draft in a list: the names of ``DraftOut`` without the modules."""

    version: int
    created_at: datetime
    updated_at: datetime
    etag: str


class AuthorTrackSummary(BaseModel):
    """A track in the authors' list: the names of ``AuthorTrack`` without modules."""

    id: uuid.UUID
    slug: str
    title: str
    domain: Domain
    published_version: int | None
    draft: DraftRef | None = Field(description="Null when the track has no draft.")


class AuthorTrackList(BaseModel):
    """Ordered by slug; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[AuthorTrackSummary]
    next_cursor: str | None = None
