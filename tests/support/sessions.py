"""Starting a SessionWorkflow on a test server, on a small plan of three problems
(``p-a``, a skippable ``p-b``, then ``p-c`` that needs two accepted answers)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.progression import ItemPlan, ModulePlan, SessionPlan
from domain.sessions import SessionInput, SessionOutcome
from workflows.session import SessionWorkflow

PLAN = SessionPlan(
    modules=[
        ModulePlan(
            slug="basics",
            items=[
                ItemPlan(problem_id="p-a", skills=["arith"]),
                ItemPlan(problem_id="p-b", skippable=True, skills=["logic"]),
            ],
        ),
        ModulePlan(
            slug="more",
            prerequisites=["basics"],
            items=[ItemPlan(problem_id="p-c", mastery_threshold=2, skills=["arith"])],
        ),
    ]
)

Session = WorkflowHandle[SessionWorkflow, SessionOutcome]


async def start_session(
    env: WorkflowEnvironment,
    queue: str,
    *,
    idle: timedelta = timedelta(days=14),
    max_events: int = 200,
    plan: SessionPlan = PLAN,
) -> Session:
    session_id = uuid.uuid4()
    data = SessionInput(
        session_id=session_id,
        user_id="u1",
        track_id=uuid.uuid4(),
        track_slug="demo",
        track_version_id=uuid.uuid4(),
        track_version=1,
        plan=plan,
        started_at=await env.get_current_time(),
        idle_timeout=idle,
        max_events_per_run=max_events,
    )
    return await env.client.start_workflow(
        SessionWorkflow.run, data, id=f"session-{session_id}", task_queue=queue
    )
