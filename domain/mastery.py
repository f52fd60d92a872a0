"""Skill mastery from a learner's evaluated submissions."""

from __future__ import annotations


def mastery_score(attempts: int, accepted: int) -> float:
    """Laplace-smoothed share of accepted submissions: 0.5 with no evidence is
    avoided by starting from a prior of one failure, so a first acceptance scores
    0.5 and mastery grows with repeated success. Always within [0, 1]."""
    if attempts <= 0:
        return 0.0
    accepted = max(0, min(accepted, attempts))
    return round(accepted / (attempts + 1), 4)
