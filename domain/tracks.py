"""Track and curriculum shapes as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.upstream import Domain


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ItemOut(_Out):
    problem_id: str
    title: str
    kind: str
    skills: list[str]
    difficulty: int
    position: int
    mastery_threshold: int
    required: bool
    skippable: bool


class ModuleOut(_Out):
    slug: str
    title: str
    position: int
    prerequisites: list[str]
    items: list[ItemOut]


class TrackSummary(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    domain: Domain
    description: str
    version: int
    published_at: datetime | None
    module_count: int
    problem_count: int = Field(description="Every item of the curriculum, optional ones included.")
    items_total: int = Field(
        description=(
            "Required items only: what a session's `progress.items_total` counts "
            "(optional items can be skipped and do not count towards completion)."
        )
    )


class TrackDetail(TrackSummary):
    modules: list[ModuleOut]


class TrackList(BaseModel):
    """Ordered by domain, then slug; pass ``next_cursor`` as ``cursor`` for the next
    page (null on the last page)."""

    items: list[TrackSummary]
    next_cursor: str | None = None
