"""The relational data model: what users read, written by workflows' activities.

Unique keys make every write idempotent: a retried activity upserts on the
workflow's own ids and never produces a second row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonB = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Track(Base):
    """A learning track; its content lives in versions."""

    __tablename__ = "tracks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[datetime] = _now()

    versions: Mapped[list[TrackVersion]] = relationship(
        back_populates="track", order_by="TrackVersion.version"
    )

    __table_args__ = (
        CheckConstraint("domain IN ('coding','math','systems')", name="domain"),
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]*$'", name="slug_format"),
    )


class TrackVersion(Base):
    """One version of a track's curriculum: draft, then published (immutable)."""

    __tablename__ = "track_versions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    track_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    # Moves on every change of a draft; the draft's ETag is derived from it.
    updated_at: Mapped[datetime] = _now()

    track: Mapped[Track] = relationship(back_populates="versions")
    modules: Mapped[list[Module]] = relationship(
        back_populates="track_version", order_by="Module.position", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("track_id", "version"),
        CheckConstraint("status IN ('draft','published','archived')", name="status"),
        CheckConstraint("version >= 1", name="version_positive"),
        # At most one draft per track at a time.
        Index(
            "uq_track_versions_one_draft",
            "track_id",
            unique=True,
            postgresql_where=text("status = 'draft'"),
        ),
    )


class Module(Base):
    __tablename__ = "modules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    track_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track_versions.id", ondelete="CASCADE")
    )
    slug: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    prerequisites: Mapped[list[str]] = mapped_column(ARRAY(String(80)), default=list)

    track_version: Mapped[TrackVersion] = relationship(back_populates="modules")
    items: Mapped[list[CurriculumItem]] = relationship(
        back_populates="module", order_by="CurriculumItem.position", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("track_version_id", "slug"),
        UniqueConstraint("track_version_id", "position"),
    )


class CurriculumItem(Base):
    """One problem of a module, referencing Problem Bank by id."""

    __tablename__ = "curriculum_items"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    module_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("modules.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    problem_id: Mapped[str] = mapped_column(String(120), index=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(80)), default=list)
    difficulty: Mapped[int] = mapped_column(Integer, default=1)
    mastery_threshold: Mapped[int] = mapped_column(Integer, default=1)
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    skippable: Mapped[bool] = mapped_column(Boolean, default=False)

    module: Mapped[Module] = relationship(back_populates="items")

    __table_args__ = (
        UniqueConstraint("module_id", "position"),
        UniqueConstraint("module_id", "problem_id"),
        CheckConstraint("mastery_threshold >= 1", name="threshold_positive"),
    )


class ProblemSnapshot(Base):
    """The public part of a problem (``ProblemPublic``) as Problem Bank served it when
    a track version was published: learners read problems from here, never from
    Problem Bank, and a session reads the problem of its own version."""

    __tablename__ = "problem_snapshots"

    track_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track_versions.id", ondelete="CASCADE"), primary_key=True
    )
    problem_id: Mapped[str] = mapped_column(String(120), primary_key=True, index=True)
    problem: Mapped[dict[str, Any]] = mapped_column(JsonB)
    created_at: Mapped[datetime] = _now()


class LearningSession(Base):
    """Projection of a SessionWorkflow (id ``session-{id}``)."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    track_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tracks.id"))
    track_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("track_versions.id"))
    status: Mapped[str] = mapped_column(String(20), default="active")
    current_problem_id: Mapped[str | None] = mapped_column(String(120))
    # Written by SessionWorkflow's projection alone; NULL until its first one arrives
    # (the API inserts identity and the active claim, then starts the workflow).
    state: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    state_seq: Mapped[int] = mapped_column(BigInteger, default=-1)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('active','completed','ended','abandoned')", name="status"),
        # One active session per learner and track.
        Index(
            "uq_sessions_one_active",
            "user_id",
            "track_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )


class Submission(Base):
    """A learner's code or answer; the row is written by SubmissionWorkflow."""

    __tablename__ = "submissions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200))
    problem_id: Mapped[str] = mapped_column(String(120))
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id"))
    kind: Mapped[str] = mapped_column(String(30))
    language: Mapped[str | None] = mapped_column(String(30))
    code: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    verdict: Mapped[str | None] = mapped_column(String(40))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # Which attempt of the evaluation activity is running (1 = the first), and the class
    # of the failure that made it retry (``domain.submissions.RetryReason``); written by
    # the activity, which owns the row while it runs.
    evaluation_attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        CheckConstraint("status IN ('queued','running','completed','failed')", name="status"),
        Index("ix_submissions_user_created", "user_id", "created_at"),
        Index("ix_submissions_session", "session_id"),
    )


class Result(Base):
    """The verdict of one submission: exactly one row per submission."""

    __tablename__ = "results"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), unique=True
    )
    verdict: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text, default="")
    tests: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    time_ms: Mapped[int] = mapped_column(Integer, default=0)
    memory_kb: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _now()


class TutorMessage(Base):
    """One tutor turn (TutorTurnWorkflow ``tutor-{id}``) and its transcript."""

    __tablename__ = "tutor_messages"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id"))
    problem_id: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(Text)
    hint_level_requested: Mapped[int | None] = mapped_column(Integer)
    hint_level: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="streaming")
    response: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('streaming','completed','failed')", name="status"),
        Index("ix_tutor_messages_session", "session_id", "created_at"),
    )


class ReviewItem(Base):
    """Projection of one FSRS card of a learner's ReviewScheduleWorkflow (its only writer)."""

    __tablename__ = "review_items"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(200))
    problem_id: Mapped[str] = mapped_column(String(120))
    track_slug: Mapped[str | None] = mapped_column(String(80))
    card: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    state: Mapped[int] = mapped_column(Integer, default=1)
    stability: Mapped[float | None] = mapped_column(Float)
    difficulty: Mapped[float | None] = mapped_column(Float)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_review_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_rating: Mapped[str | None] = mapped_column(String(10))
    reps: Mapped[int] = mapped_column(Integer, default=0)
    lapses: Mapped[int] = mapped_column(Integer, default=0)
    # 'scheduled', or 'due' once the timer fired and the learner was told (batch_id).
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    notified_batch: Mapped[uuid.UUID | None] = mapped_column()
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        UniqueConstraint("user_id", "problem_id"),
        Index("ix_review_items_due", "user_id", "due_at"),
        CheckConstraint("status IN ('scheduled','due')", name="status"),
    )


class ReviewLog(Base):
    """One review (rating, time, elapsed days, state before and after), written once by
    the ReviewScheduleWorkflow; its id is the review's own, so a retry adds nothing."""

    __tablename__ = "review_logs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200))
    problem_id: Mapped[str] = mapped_column(String(120))
    rating: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(20))
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    elapsed_days: Mapped[int | None] = mapped_column(Integer)
    state_before: Mapped[int] = mapped_column(Integer)
    state_after: Mapped[int] = mapped_column(Integer)
    stability_before: Mapped[float | None] = mapped_column(Float)
    stability_after: Mapped[float | None] = mapped_column(Float)
    difficulty_before: Mapped[float | None] = mapped_column(Float)
    difficulty_after: Mapped[float | None] = mapped_column(Float)
    due_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint("rating IN ('again','hard','good','easy')", name="rating"),
        CheckConstraint("source IN ('self','submission')", name="source"),
        Index("ix_review_logs_user_reviewed", "user_id", "reviewed_at"),
    )


class ReviewSchedule(Base):
    """Projection of a ReviewScheduleWorkflow's summary and the learner's settings."""

    __tablename__ = "review_schedules"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    desired_retention: Mapped[float] = mapped_column(Float, default=0.9)
    next_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    card_count: Mapped[int] = mapped_column(Integer, default=0)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint("desired_retention >= 0.7 AND desired_retention <= 0.97", name="retention"),
    )


class Mastery(Base):
    """Per-learner, per-skill mastery, updated from finished submissions."""

    __tablename__ = "mastery"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    skill: Mapped[str] = mapped_column(String(80), primary_key=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (CheckConstraint("score >= 0 AND score <= 1", name="score_range"),)
