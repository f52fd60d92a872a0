"""What the worker runs: every workflow class and the activities bound to their
dependencies. Adding a workflow or an activity class means adding it here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.curricula import CurriculumActivities
from activities.deps import ActivityDeps
from activities.reviews import ReviewActivities
from activities.sessions import SessionActivities
from activities.submissions import SubmissionActivities
from activities.tutor import TutorActivities
from workflows.publish import PublishTrackWorkflow
from workflows.reviews import ReviewScheduleWorkflow
from workflows.session import SessionWorkflow
from workflows.submission import SubmissionWorkflow
from workflows.tutor import TutorTurnWorkflow


def workflows() -> Sequence[type]:
    return [
        SubmissionWorkflow,
        SessionWorkflow,
        PublishTrackWorkflow,
        TutorTurnWorkflow,
        ReviewScheduleWorkflow,
    ]


def activities(deps: ActivityDeps) -> Sequence[Callable[..., Any]]:
    submissions = SubmissionActivities(deps)
    sessions = SessionActivities(deps)
    curricula = CurriculumActivities(deps)
    tutor = TutorActivities(deps)
    reviews = ReviewActivities(deps)
    return [
        submissions.evaluate_and_store,
        submissions.begin,
        submissions.evaluate,
        submissions.persist_result,
        sessions.project,
        curricula.fetch_problems,
        curricula.publish_version,
        tutor.begin,
        tutor.stream,
        tutor.finish,
        tutor.fail,
        reviews.project,
        reviews.mark_due,
        reviews.notify,
        reviews.tell_submission,
    ]
