"""What the dev Tutor says: a deterministic answer built from the public hint ladder.

No model is reachable here, so the answer is assembled from the request alone: the
problem's hints up to the granted level, the learner's first failing *public* test, and
a closing question. The same request always gives the same text, which is what lets a
retried request resume at a character offset (``continue_from``) with nothing repeated.

The learner's message is never echoed (it is only classified), so nothing a learner
types can make the Tutor print it back – or print anything it was not given.
"""

from __future__ import annotations

import json
import re
from typing import Any

from domain.upstream import TutorLastResult, TutorRequest, Verdict

_TOKEN = re.compile(r"\s*\S+|\s+")
_ASKS_FOR_SECRETS = re.compile(
    r"hidden|secret|private|internal|reference|solution|answer key|expected output|"
    r"ignore (all |the )?(previous|above)|system prompt|print (all |the )?tests?",
    re.IGNORECASE,
)

_INTRO = {
    1: "Here is a nudge for “{title}”.",
    2: "Let's name the idea behind “{title}”.",
    3: "Here is an approach for “{title}”.",
}
_OUTRO = {
    1: "What do you notice if you work through a small example by hand?",
    2: "Which part of your attempt does this idea change?",
    3: "Try writing these steps as code, then submit again.",
}


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def _about_last_result(result: TutorLastResult) -> str:
    if result.total == 0:  # an answer (math, numeric, choice): no tests to speak of
        if result.verdict == Verdict.accepted:
            return "Your last answer was correct; here is how to think about it anyway."
        return f"Your last answer was not accepted: {_short(result.message, 160)}"
    if result.verdict == Verdict.accepted:
        return "Your last attempt passed every test; here is how to think about it anyway."
    failing = result.failing_public_tests[0] if result.failing_public_tests else None
    if failing is None:
        return (
            f"Your last attempt passed {result.passed} of {result.total} tests. "
            "The failing ones are hidden, so think about the cases the examples do not show: "
            "empty input, negative or very large values."
        )
    if failing.error:
        return f"Your last attempt failed {failing.label} with an error: {_short(failing.error)}."
    return (
        f"Your last attempt failed {failing.label}: for the input {_short(failing.args)} "
        f"the expected result is {_short(failing.expected)}, "
        f"but your code returned {_short(failing.actual)}."
    )


def compose_answer(request: TutorRequest) -> str:
    """The whole answer to ``request`` (independent of ``continue_from``)."""
    problem = request.problem
    level = request.hint_level
    parts = [_INTRO[level].format(title=problem.title)]
    if _ASKS_FOR_SECRETS.search(request.message):
        parts.append(
            "I can't show hidden tests or a reference solution: they stay private so that "
            "your own solution is judged fairly. I can help you get there, though."
        )
    if request.last_result is not None:
        parts.append(_about_last_result(request.last_result))
    ladder = problem.hints[:level] or ["Start from what the statement asks for."]
    parts.extend(ladder)
    if level >= 2 and problem.skills:
        parts.append("The key ideas here: " + ", ".join(problem.skills) + ".")
    if level >= 3 and request.allow_solution:
        parts.append(
            "You have tried this a few times, so you may now look at a worked solution in the "
            "course materials and compare it step by step with yours."
        )
    parts.append(_OUTRO[level])
    return " ".join(" ".join(p.split()) for p in parts)


def tokenize(text: str) -> list[str]:
    """Split like a language model would, roughly: words with their leading whitespace."""
    return _TOKEN.findall(text)


def tokens_from(text: str, offset: int) -> list[tuple[int, str]]:
    """The tokens of ``text[offset:]`` with their offsets in ``text``.

    An offset inside a token yields that token's remainder first, so resuming at any
    character gives exactly the rest of the text.
    """
    out: list[tuple[int, str]] = []
    position = 0
    for token in tokenize(text):
        end = position + len(token)
        if end > offset:
            start = max(position, offset)
            out.append((start, text[start:end]))
        position = end
    return out
