"""What the worker runs: every workflow class and the activities bound to their
dependencies. Adding a workflow or an activity class means adding it here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.deps import ActivityDeps
from activities.submissions import SubmissionActivities
from workflows.submission import SubmissionWorkflow


def workflows() -> Sequence[type]:
    return [SubmissionWorkflow]


def activities(deps: ActivityDeps) -> Sequence[Callable[..., Any]]:
    submissions = SubmissionActivities(deps)
    return [submissions.begin, submissions.evaluate, submissions.persist_result]
