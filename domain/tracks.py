"""Track and curriculum shapes as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

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
    problem_count: int


class TrackDetail(TrackSummary):
    modules: list[ModuleOut]


class TrackList(BaseModel):
    items: list[TrackSummary]
