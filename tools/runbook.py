"""``python -m tools.runbook [--older-than 5m]``: print the visibility queries that find
stuck work, with the cut-off time filled in, ready for the Temporal UI's search box or
``temporal workflow list --query``. The README's runbook lists the same templates (a test
keeps them equal and runs each against a real stuck workflow)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta

#: name -> (what it finds, query template; ``{since}`` is the cut-off, RFC 3339 UTC).
STUCK_QUERIES: dict[str, tuple[str, str]] = {
    "eval": (
        "submissions waiting on Eval (or Problem Bank's bundle) since before the cut-off",
        'WorkflowType = "SubmissionWorkflow" AND ExecutionStatus = "Running" '
        'AND CoStep = "eval" AND CoStepSince < "{since}"',
    ),
    "problem-bank": (
        "publications waiting on Problem Bank since before the cut-off",
        'WorkflowType = "PublishTrackWorkflow" AND ExecutionStatus = "Running" '
        'AND CoStep = "problem-bank" AND CoStepSince < "{since}"',
    ),
    "database": (
        "any workflow stuck writing to PostgreSQL since before the cut-off",
        'ExecutionStatus = "Running" AND CoStep = "database" AND CoStepSince < "{since}"',
    ),
    "sessions-over": (
        "sessions over for the learner whose final write has not gone through",
        'WorkflowType = "SessionWorkflow" AND ExecutionStatus = "Running" '
        'AND CoStatus IN ("completed", "ended", "abandoned")',
    ),
}

_DURATION = re.compile(r"^(\d+)([smhd])$")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration like 30s, 5m, 2h or 1d: {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: amount})


def cutoff(older_than: timedelta, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)) - older_than
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def queries(older_than: timedelta, now: datetime | None = None) -> dict[str, str]:
    since = cutoff(older_than, now)
    return {name: template.format(since=since) for name, (_, template) in STUCK_QUERIES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--older-than", type=parse_duration, default=timedelta(minutes=5))
    args = parser.parse_args(argv)
    filled = queries(args.older_than)
    for name, (what, _) in STUCK_QUERIES.items():
        print(f"# {name}: {what}\n{filled[name]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
