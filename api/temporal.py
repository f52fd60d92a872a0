"""Starting workflows from the API: one helper for every route.

It sets the search attributes operators query by (``domain.contracts``), and turns a
Temporal that cannot be reached into ``503 dependency-unavailable`` naming it, so no
route answers 500 or hangs because the engine is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.outage import TEMPORAL, failed_dependency
from api.problem_types import DependencyUnavailable


async def start_workflow(
    temporal: Client,
    workflow: str,
    arg: Any,
    *,
    id: str,
    task_queue: str,
    attributes: Sequence[SearchAttributePair[Any]],
    unavailable: str,
    **options: Any,
) -> WorkflowHandle[Any, Any] | None:
    """Start ``workflow`` (a ``domain.contracts.WorkflowName``) with ``arg``.

    Returns ``None`` when a workflow with this id already ran and its id-reuse policy
    refuses another run: the stored outcome is then the answer. ``unavailable`` says
    what the learner cannot do while Temporal is unreachable. ``options`` go to
    ``Client.start_workflow`` (id policies, ``result_type``, ``start_signal``, …)."""
    try:
        return await temporal.start_workflow(
            workflow,
            arg,
            id=id,
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes(list(attributes)),
            **options,
        )
    except WorkflowAlreadyStartedError:
        return None
    except RPCError as err:
        raise DependencyUnavailable(f"temporal: {unavailable}") from err
    except RuntimeError as err:  # a lazy client's failed first connect (api.outage)
        if failed_dependency(err) != TEMPORAL:
            raise
        raise DependencyUnavailable(f"temporal: {unavailable}") from err
