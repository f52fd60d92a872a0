"""Finding stuck work: each stuck case is created for real and found with the exact query
the README's runbook prints (``tools.runbook``), then released so it finishes."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from devservices.testing import serve
from domain.contracts import (
    WorkflowName,
)
from domain.settings import Settings
from domain.submissions import SubmissionOutcome
from domain.upstream import Verdict
from tests.conftest import DevServices, Stack, isolated_stack
from tests.support import FaultyProxy, eventually, record_history
from tools.runbook import STUCK_QUERIES, queries

README = Path(__file__).resolve().parents[2] / "README.md"
SUM_OK = "def sum_evens(numbers):\n    return sum(n for n in numbers if n % 2 == 0)\n"
DOWN = [503] * 10_000  # every call fails until the faults are cleared


def runbook_query(name: str) -> str:
    """The runbook's query, with a cut-off just after now (a threshold of 0 s)."""
    return queries(timedelta(0), now=datetime.now(UTC) + timedelta(seconds=2))[name]


async def found(temporal: Client, query: str, workflow_id: str, timeout: float = 30.0) -> list[str]:
    """Poll visibility (eventually consistent) until ``workflow_id`` is among the results."""
    ids: list[str] = []

    async def listed() -> bool:
        ids[:] = [wf.id async for wf in temporal.list_workflows(query)]
        return workflow_id in ids

    await eventually(
        listed,
        timeout=timeout,
        every=0.3,
        failure=lambda: f"{workflow_id} not found by {query!r}; found {ids}",
    )
    return ids


def test_the_readme_runbook_prints_exactly_the_queries_of_tools_runbook() -> None:
    text = README.read_text()
    section = text.split("### Finding stuck work", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    assert block, "the runbook section has no query block"
    lines = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert lines == [template for _, template in STUCK_QUERIES.values()]


@dataclass
class Bent:
    stack: Stack
    eval_proxy: FaultyProxy
    bank_proxy: FaultyProxy


@pytest.fixture(scope="module")
async def bent(
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    devservices: DevServices,
    seeded: dict[str, str],
) -> AsyncIterator[Bent]:
    """A stack whose Eval and Problem Bank sit behind proxies that can be taken down."""
    eval_proxy = FaultyProxy(devservices.eval)
    bank_proxy = FaultyProxy(devservices.problem_bank)
    async with AsyncExitStack() as exits:
        eval_url = await exits.enter_async_context(serve(eval_proxy))
        bank_url = await exits.enter_async_context(serve(bank_proxy))
        stack = await exits.enter_async_context(
            isolated_stack(
                make_settings,
                temporal_client,
                devservices,
                eval_base=eval_url,
                problem_bank_base=bank_url,
            )
        )
        yield Bent(stack, eval_proxy, bank_proxy)


async def test_a_submission_waiting_on_a_down_eval_is_found_by_the_runbook_query(
    bent: Bent, auth: dict[str, str]
) -> None:
    bent.eval_proxy.faults = list(DOWN)
    r = await bent.stack.client.post(
        "/v1/submissions",
        json={"problem_id": "py-sum-evens", "language": "python", "code": SUM_OK},
        headers=auth,
    )
    assert r.status_code == 202, r.text
    workflow_id = f"submission-{r.json()['id']}"
    try:
        await found(bent.stack.temporal, runbook_query("eval"), workflow_id)
    finally:
        bent.eval_proxy.faults.clear()  # Eval is back: the retry goes through
    result = await bent.stack.temporal.get_workflow_handle(
        workflow_id, result_type=SubmissionOutcome
    ).result()
    assert result.verdict == Verdict.accepted
    await record_history(bent.stack.temporal, workflow_id, "submission_one_activity_eval_down")
    ids = [wf.id async for wf in bent.stack.temporal.list_workflows(runbook_query("eval"))]
    assert workflow_id not in ids


async def test_a_publication_waiting_on_a_down_problem_bank_is_found(
    bent: Bent, token_for: Callable[..., str]
) -> None:
    admin = {"Authorization": f"Bearer {token_for(f'author-{uuid.uuid4().hex[:6]}', ['admin'])}"}
    slug = f"stuck-{uuid.uuid4().hex[:8]}"
    module = {"slug": "m", "title": "M", "prerequisites": [], "items": []}
    module["items"] = [{"problem_id": "math-solve-linear"}]
    created = await bent.stack.client.post(
        "/v1/tracks",
        json={
            "slug": slug,
            "title": "Stuck",
            "domain": "math",
            "description": "d",
            "modules": [module],
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    bent.bank_proxy.faults = list(DOWN)
    publish = asyncio.create_task(
        bent.stack.client.post(f"/v1/tracks/{slug}/publish", headers=admin)
    )
    try:
        workflow_id = await _publish_workflow_id(bent.stack.temporal, slug)
        query = runbook_query("problem-bank")  # its cut-off: after the step began
        ids = await found(bent.stack.temporal, query + f' AND CoTrackSlug = "{slug}"', workflow_id)
        assert ids
    finally:
        bent.bank_proxy.faults.clear()
    answer = await publish
    assert answer.status_code in (200, 201), answer.text
    await record_history(bent.stack.temporal, workflow_id, "publish_problem_bank_down_with_step")


async def _publish_workflow_id(temporal: Client, slug: str) -> str:
    """The id of the running publication of ``slug``: the API's dry-run check
    (``curriculum-check-…``) comes first and is the one that waits on Problem Bank,
    then the publication itself (``publish-{version}``)."""
    query = (
        f'WorkflowType = "{WorkflowName.PUBLISH_TRACK}" AND CoTrackSlug = "{slug}" '
        'AND ExecutionStatus = "Running"'  # not the check that creating the track ran
    )

    async def started() -> str | None:
        async for wf in temporal.list_workflows(query):
            if wf.id.startswith(("curriculum-check-", "publish-")):
                return wf.id
        return None

    return await eventually(
        started, timeout=30, every=0.2, failure=lambda: f"no publication of {slug} started"
    )


async def test_a_session_whose_final_write_postgresql_refuses_is_found(
    stack: Stack, auth: dict[str, str], database_url: str, seeded: dict[str, str]
) -> None:
    slug = sorted(seeded)[0]
    r = await stack.client.post("/v1/sessions", json={"track_slug": slug}, headers=auth)
    assert r.status_code in (200, 201), r.text
    session_id = r.json()["id"]
    workflow_id = f"session-{session_id}"
    trigger = f"co_test_refuse_{uuid.uuid4().hex[:8]}"
    dsn = database_url.replace("+asyncpg", "")
    db = await asyncpg.connect(dsn)
    try:
        # The workflow writes the session's first state itself (the API only claims the
        # row): refuse the writes after that one, so the session is found over, not new.
        async def first_state_written() -> bool:
            seq = await db.fetchval(
                "SELECT state_seq FROM sessions WHERE id = $1", uuid.UUID(session_id)
            )
            return seq is not None and seq >= 0

        await eventually(first_state_written, timeout=30)
        await db.execute(
            "CREATE OR REPLACE FUNCTION co_test_refuse() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'session writes refused (test)'; END $$ LANGUAGE plpgsql"
        )
        await db.execute(
            f"CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON sessions FOR EACH ROW "
            f"WHEN (NEW.id = '{session_id}') EXECUTE FUNCTION co_test_refuse()"
        )
        end = asyncio.create_task(stack.client.post(f"/v1/sessions/{session_id}/end", headers=auth))
        try:
            await found(stack.temporal, runbook_query("sessions-over"), workflow_id)
            await found(stack.temporal, runbook_query("database"), workflow_id)
        finally:
            await db.execute(f"DROP TRIGGER IF EXISTS {trigger} ON sessions")
        answered = await end
        assert answered.status_code == 200, answered.text
        assert answered.json()["status"] == "ended"
    finally:
        await db.execute(f"DROP TRIGGER IF EXISTS {trigger} ON sessions")
        await db.close()
    await stack.temporal.get_workflow_handle(workflow_id).result()
    await record_history(stack.temporal, workflow_id, "session_write_refused_status_first")
    row = await _session_status(dsn, session_id)
    assert row == "ended"


async def _session_status(dsn: str, session_id: str) -> Any:
    db = await asyncpg.connect(dsn)
    try:
        return await db.fetchval("SELECT status FROM sessions WHERE id = $1", uuid.UUID(session_id))
    finally:
        await db.close()
