"""PublishTrackWorkflow's decisions, with stand-in activities."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.authoring import (
    FetchProblemsInput,
    ProblemFacts,
    ProblemFactsList,
    PublishedVersion,
    PublishOutcome,
    PublishStatus,
    PublishTrackInput,
    PublishVersionInput,
)
from domain.contracts import (
    ActivityName,
)
from domain.curriculum import CurriculumSpec
from domain.upstream import Domain, EvalKind
from workflows.publish import PublishTrackWorkflow

SPEC = CurriculumSpec.model_validate(
    {
        "modules": [
            {"slug": "m1", "title": "One", "items": [{"problem_id": "p-1"}]},
            {
                "slug": "m2",
                "title": "Two",
                "prerequisites": ["m1"],
                "items": [{"problem_id": "p-2"}, {"problem_id": "p-3"}],
            },
        ]
    }
)


class Fakes:
    def __init__(
        self, known: set[str], *, bank_error: Exception | None = None, draft_changed: bool = False
    ) -> None:
        self.known = known
        self.bank_error = bank_error
        self.draft_changed = draft_changed
        self.published: list[PublishVersionInput] = []

    @activity.defn(name=ActivityName.CURRICULUM_FETCH_PROBLEMS)
    async def fetch_problems(self, data: FetchProblemsInput) -> ProblemFactsList:
        if self.bank_error is not None:
            raise self.bank_error
        return ProblemFactsList(
            items=[
                ProblemFacts(
                    id=i, title=i.upper(), domain=Domain.math, kind=EvalKind.numeric, skills=["s"]
                )
                for i in data.problem_ids
                if i in self.known
            ]
        )

    @activity.defn(name=ActivityName.CURRICULUM_PUBLISH_VERSION)
    async def publish_version(self, data: PublishVersionInput) -> PublishedVersion:
        if self.draft_changed:
            raise ApplicationError("edited", type="DraftChanged", non_retryable=True)
        self.published.append(data)
        return PublishedVersion(
            version_id=data.version_id, version=2, published_at=datetime.now(UTC)
        )


async def run(env: WorkflowEnvironment, fakes: Fakes, *, dry_run: bool = False) -> PublishOutcome:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[PublishTrackWorkflow],
        activities=[fakes.fetch_problems, fakes.publish_version],
    ):
        return await env.client.execute_workflow(
            PublishTrackWorkflow.run,
            PublishTrackInput(
                track_slug="t",
                version_id=uuid.uuid4(),
                spec=SPEC,
                dry_run=dry_run,
                requested_by="author",
            ),
            id=f"publish-{uuid.uuid4()}",
            task_queue=queue,
        )


async def test_unknown_problems_are_reported_and_nothing_is_published(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = Fakes({"p-1", "p-3"})
    outcome = await run(time_env, fakes)
    assert outcome.status == PublishStatus.invalid
    assert [(i.type, i.loc) for i in outcome.issues] == [
        ("unknown_problem", ["modules", "1", "items", "0", "problem_id"])
    ]
    assert fakes.published == []


async def test_a_dry_run_returns_the_facts_without_publishing(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = Fakes({"p-1", "p-2", "p-3"})
    outcome = await run(time_env, fakes, dry_run=True)
    assert outcome.status == PublishStatus.valid
    assert sorted(p.id for p in outcome.problems) == ["p-1", "p-2", "p-3"]
    assert fakes.published == []


async def test_a_valid_draft_is_published_with_the_problem_facts(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = Fakes({"p-1", "p-2", "p-3"})
    outcome = await run(time_env, fakes)
    assert outcome.status == PublishStatus.published
    assert outcome.published is not None
    assert outcome.published.version == 2
    assert [p.title for p in fakes.published[0].problems] == ["P-1", "P-2", "P-3"]


async def test_problem_bank_down_answers_unavailable_within_the_budget(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = Fakes(set(), bank_error=ApplicationError("503", type="UpstreamUnavailable"))
    outcome = await run(time_env, fakes)  # retried until the 20 s budget, skipped in time
    assert outcome.status == PublishStatus.unavailable


async def test_a_draft_edited_meanwhile_is_not_published(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes({"p-1", "p-2", "p-3"}, draft_changed=True)
    outcome = await run(time_env, fakes)
    assert outcome.status == PublishStatus.draft_changed
