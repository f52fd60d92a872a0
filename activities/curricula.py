"""Activities of PublishTrackWorkflow: problem facts from Problem Bank, and the
publication of a draft in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import ActivityDeps
from activities.upstream import UpstreamClient
from domain.authoring import (
    FetchProblemsInput,
    ProblemFacts,
    ProblemFactsList,
    PublishedVersion,
    PublishVersionInput,
)
from domain.contracts import (
    ActivityName,
    FailureType,
)
from domain.upstream import ProblemList, ProblemPublic
from store import curricula as repo
from store import problems as problem_repo

# Problem Bank's list endpoint takes ids comma-separated in the query string.
IDS_PER_REQUEST = 100


class CurriculumActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self._db = deps.sessionmaker
        settings = deps.settings
        self._bank = UpstreamClient(
            deps.http, "Problem Bank", str(settings.problem_bank_base), settings.problem_bank_token
        )

    async def _public(self, problem_ids: Iterable[str]) -> dict[str, ProblemPublic]:
        """The public part of those of the ids Problem Bank knows."""
        wanted = sorted(set(problem_ids))
        found: dict[str, ProblemPublic] = {}
        for start in range(0, len(wanted), IDS_PER_REQUEST):
            chunk = wanted[start : start + IDS_PER_REQUEST]
            listing = await self._bank.call(
                "GET", "/v1/problems?ids=" + ",".join(chunk), ProblemList
            )
            found.update({p.id: p for p in listing.items if p.id in chunk})
        return found

    @activity.defn(name=ActivityName.CURRICULUM_FETCH_PROBLEMS)
    async def fetch_problems(self, data: FetchProblemsInput) -> ProblemFactsList:
        """The facts of those of the ids Problem Bank knows; unknown ids are left out
        (the caller reports them). Only public data is fetched."""
        found = await self._public(data.problem_ids)
        return ProblemFactsList(
            items=[
                ProblemFacts(
                    id=p.id,
                    title=p.title,
                    domain=p.domain,
                    kind=p.kind,
                    skills=list(p.skills),
                    difficulty=p.difficulty,
                )
                for _, p in sorted(found.items())
            ]
        )

    @activity.defn(name=ActivityName.CURRICULUM_PUBLISH_VERSION)
    async def publish_version(self, data: PublishVersionInput) -> PublishedVersion:
        """Publish the draft and snapshot the public part of its problems in the same
        transaction, so learners read problems from PostgreSQL. The problems are
        fetched here, not carried through the workflow: history keeps ids only (and the
        workflow's command sequence is unchanged)."""
        problems = {p.id: p for p in data.problems}
        public = await self._public(problems)
        missing = sorted(set(problems) - set(public))
        if missing:
            raise ApplicationError(
                f"Problem Bank no longer knows {', '.join(missing)[:300]}",
                type=FailureType.DRAFT_CHANGED,
                non_retryable=True,
            )
        try:
            async with self._db() as db, db.begin():
                version = await repo.publish_draft(db, data.version_id, data.spec, problems)
                await problem_repo.write_snapshots(db, version.id, public.values())
                assert version.published_at is not None
                published = PublishedVersion(
                    version_id=version.id,
                    version=version.version,
                    published_at=version.published_at,
                )
        except repo.DraftChanged as exc:
            raise ApplicationError(
                str(exc), type=FailureType.DRAFT_CHANGED, non_retryable=True
            ) from None
        return published
