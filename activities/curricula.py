"""Activities of PublishTrackWorkflow: problem facts from Problem Bank, and the
publication of a draft in PostgreSQL."""

from __future__ import annotations

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
from domain.upstream import ProblemList
from store import curricula as repo

# Problem Bank's list endpoint takes ids comma-separated in the query string.
IDS_PER_REQUEST = 100

DRAFT_CHANGED = "DraftChanged"


class CurriculumActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self._db = deps.sessionmaker
        settings = deps.settings
        self._bank = UpstreamClient(
            deps.http, "Problem Bank", str(settings.problem_bank_base), settings.problem_bank_token
        )

    @activity.defn(name="curriculum.fetch_problems")
    async def fetch_problems(self, data: FetchProblemsInput) -> ProblemFactsList:
        """The facts of those of the ids Problem Bank knows; unknown ids are left out
        (the caller reports them). Only public data is fetched."""
        wanted = sorted(set(data.problem_ids))
        found: dict[str, ProblemFacts] = {}
        for start in range(0, len(wanted), IDS_PER_REQUEST):
            chunk = wanted[start : start + IDS_PER_REQUEST]
            listing = await self._bank.call(
                "GET", "/v1/problems?ids=" + ",".join(chunk), ProblemList
            )
            for p in listing.items:
                if p.id in chunk:
                    found[p.id] = ProblemFacts(
                        id=p.id,
                        title=p.title,
                        domain=p.domain,
                        kind=p.kind,
                        skills=list(p.skills),
                        difficulty=p.difficulty,
                    )
        return ProblemFactsList(items=[found[i] for i in wanted if i in found])

    @activity.defn(name="curriculum.publish_version")
    async def publish_version(self, data: PublishVersionInput) -> PublishedVersion:
        problems = {p.id: p for p in data.problems}
        try:
            async with self._db() as db, db.begin():
                version = await repo.publish_draft(db, data.version_id, data.spec, problems)
                assert version.published_at is not None
                published = PublishedVersion(
                    version_id=version.id,
                    version=version.version,
                    published_at=version.published_at,
                )
        except repo.DraftChanged as exc:
            raise ApplicationError(str(exc), type=DRAFT_CHANGED, non_retryable=True) from None
        return published
