"""Hidden tests keep nothing but their number and outcome."""

from __future__ import annotations

from domain.submissions import redact_response
from domain.upstream import EvalResponse, EvalTestResult, Verdict

MARKER = "ZZ-SECRET-7781"


def _response(verdict: Verdict, message: str = "") -> EvalResponse:
    return EvalResponse(
        verdict=verdict,
        message=message,
        tests=[
            EvalTestResult(index=0, hidden=False, passed=True, args=[1], expected=1, actual=1),
            EvalTestResult(
                index=1,
                hidden=True,
                passed=False,
                verdict=Verdict.runtime_error,
                args=[MARKER],
                expected=MARKER,
                actual=MARKER,
                stdout=MARKER,
                error=f"ValueError: {MARKER}",
            ),
        ],
    )


def test_hidden_fields_are_dropped_even_if_the_evaluator_sends_them() -> None:
    outcome = redact_response(_response(Verdict.runtime_error, f"boom {MARKER}"))
    dumped = outcome.model_dump_json()
    assert MARKER not in dumped
    hidden = outcome.tests[1]
    assert hidden.label == "hidden test 2: failed"
    assert hidden.args is None
    assert hidden.stdout is None
    assert hidden.error is None
    assert "hidden test 2" in outcome.message


def test_public_failures_explain_themselves() -> None:
    response = EvalResponse(
        verdict=Verdict.wrong_answer,
        tests=[
            EvalTestResult(index=0, hidden=False, passed=False, args=[2], expected=4, actual=5),
        ],
    )
    outcome = redact_response(response)
    assert outcome.tests[0].expected == 4
    assert outcome.tests[0].actual == 5
    assert "test 1: failed" in outcome.message


def test_compile_errors_keep_the_evaluator_message() -> None:
    outcome = redact_response(_response(Verdict.compile_error, "SyntaxError at line 1"))
    assert outcome.message == "SyntaxError at line 1"


def test_large_public_outputs_are_clipped() -> None:
    response = EvalResponse(
        verdict=Verdict.wrong_answer,
        tests=[
            EvalTestResult(
                index=0, hidden=False, passed=False, actual="x" * 50_000, stdout="y" * 9999
            )
        ],
    )
    outcome = redact_response(response)
    assert len(outcome.model_dump_json()) < 5_000
