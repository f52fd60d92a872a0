"""Evaluation of one :class:`EvalRequest`: python, math_expr, numeric, multiple_choice."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from devservices.common import ProblemError
from devservices.eval import mathexpr
from devservices.eval.math_worker import MathWorkerError, MathWorkerPool, MathWorkerTimeout
from devservices.eval.sandbox import (
    HiddenOutcome,
    RunOutcome,
    SandboxSettings,
    TestRecord,
    check_boundary,
    run_hidden,
    run_python,
)
from devservices.settings import DEFAULT_INTERNAL_TOKEN
from domain.upstream import (
    EvalKind,
    EvalRequest,
    EvalResponse,
    EvalTest,
    EvalTestResult,
    Verdict,
)

log = logging.getLogger(__name__)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PUBLIC_STDOUT_CHARS = 2000
DEFAULT_NUMERIC_TOLERANCE = 1e-6
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class EvalSettings:
    internal_token: str = DEFAULT_INTERNAL_TOKEN
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    max_concurrent_runs: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    math_workers: int = 2
    math_timeout_s: float = 3.0  # budget of the symbolic check of one answer
    math_worker_memory_mb: int = 1024
    warm_up_math: bool = True  # start a sympy worker when the app starts


def _bad_request(detail: str) -> ProblemError:
    return ProblemError(422, detail)


# -- comparison of JSON values ------------------------------------------------------------


def values_equal(actual: Any, expected: Any) -> bool:
    """Deep equality of JSON values; floats compare with a 1e-9 tolerance, bools strictly."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, int) and isinstance(actual, int):
            return actual == expected
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(values_equal(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(values_equal(actual[k], expected[k]) for k in expected)
        )
    return type(actual) is type(expected) and bool(actual == expected)


def _as_json(value: Any) -> Any:
    """What a value looks like after a JSON round trip (tuples become lists, ...)."""
    return json.loads(json.dumps(value))


# -- python ---------------------------------------------------------------------------------

_STATUS_VERDICT = {
    "timeout": Verdict.time_limit_exceeded,
    "memory": Verdict.memory_limit_exceeded,
    "error": Verdict.runtime_error,
    "too_large": Verdict.wrong_answer,
    "unserializable": Verdict.wrong_answer,
    "too_deep": Verdict.wrong_answer,
    "tampered": Verdict.runtime_error,
    "crashed": Verdict.runtime_error,
    "not_run": Verdict.runtime_error,
}


def _public_result(
    index: int, test: EvalTest, record: TestRecord | None, passed: bool, verdict: Verdict | None
) -> EvalTestResult:
    error: str | None = None
    stdout: str | None = None
    actual: Any = None
    if record is None:
        error = "not run"
    else:
        stdout = record.stdout[:PUBLIC_STDOUT_CHARS] or None
        actual = record.value if record.status == "ok" else None
        if record.status == "timeout":
            error = "time limit exceeded"
        elif record.status == "memory":
            error = "memory limit exceeded"
        elif record.status == "too_large":
            error = "return value too large"
        elif record.status == "too_deep":
            error = "return value nested too deeply"
        else:
            error = record.error
    return EvalTestResult(
        index=index,
        hidden=False,
        passed=passed,
        time_ms=record.time_ms if record else 0,
        verdict=verdict,
        args=test.args,
        expected=test.expected,
        actual=actual,
        stdout=stdout,
        error=error,
    )


def _hidden_result(
    index: int, record: TestRecord | None, passed: bool, verdict: Verdict | None
) -> EvalTestResult:
    return EvalTestResult(
        index=index,
        hidden=True,
        passed=passed,
        time_ms=record.time_ms if record else 0,
        verdict=verdict,
    )


def _not_run(index: int, test: EvalTest) -> EvalTestResult:
    if test.hidden:
        return _hidden_result(index, None, False, None)
    return _public_result(index, test, None, False, None)


def _label(index: int, test: EvalTest) -> str:
    return f"hidden test {index + 1}" if test.hidden else f"test {index + 1}"


def python_response(
    request: EvalRequest, outcome: RunOutcome, hidden: HiddenOutcome | None = None
) -> EvalResponse:
    """Turn the two runs' outcomes into the response, comparing with expected values here.

    ``outcome`` is the public run's (its records are indexed among the public tests only),
    ``hidden`` the hidden run's (one status and value per hidden test, in order).
    """
    tests = request.tests
    memory_kb = outcome.max_rss_kb
    if outcome.kind == "compile_error":
        return EvalResponse(verdict=Verdict.compile_error, message=outcome.message)
    if outcome.kind == "missing_function":
        return EvalResponse(
            verdict=Verdict.compile_error,
            message=f"Your code must define a function named {request.function_name!r}.",
        )
    if outcome.kind == "internal_error":
        return EvalResponse(verdict=Verdict.internal_error, message="The sandbox could not start.")
    if outcome.kind in ("tampered", "output_limit"):
        return EvalResponse(
            verdict=Verdict.runtime_error,
            message=f"Rejected: {outcome.message}.",
            tests=[_not_run(i, t) for i, t in enumerate(tests)],
        )
    if outcome.kind == "setup_failed":
        setup_verdict = _STATUS_VERDICT.get(outcome.setup_status or "error", Verdict.runtime_error)
        detail = {
            Verdict.time_limit_exceeded: "Loading your code took too long.",
            Verdict.memory_limit_exceeded: "Loading your code used too much memory.",
        }.get(setup_verdict, f"Loading your code failed: {outcome.message}")
        return EvalResponse(verdict=setup_verdict, message=detail)

    public_at = [i for i, t in enumerate(tests) if not t.hidden]
    hidden_at = [i for i, t in enumerate(tests) if t.hidden]
    records = {public_at[r.index]: r for r in outcome.tests if 0 <= r.index < len(public_at)}
    crashed_at = (
        public_at[len(outcome.tests)]
        if outcome.kind == "crashed" and len(outcome.tests) < len(public_at)
        else None
    )
    hidden_status = {
        at: (hidden.statuses[n], hidden.values[n]) if hidden else ("not_run", None)
        for n, at in enumerate(hidden_at)
    }
    results: list[EvalTestResult] = []
    first_failure: tuple[int, Verdict] | None = None
    for index, test in enumerate(tests):
        record = records.get(index)
        verdict: Verdict | None
        if test.hidden:
            status, value = hidden_status[index]
            if status == "ok":
                passed = values_equal(value, _as_json(test.expected))
                verdict = Verdict.accepted if passed else Verdict.wrong_answer
            else:
                passed = False
                verdict = _STATUS_VERDICT.get(status, Verdict.runtime_error)
            if not passed and first_failure is None:
                first_failure = (index, verdict)
            results.append(_hidden_result(index, None, passed, None))
            continue
        if record is None and index == crashed_at:
            status = outcome.setup_status or "error"
            record = TestRecord(index=index, status=status, error=outcome.message)
        if record is None:
            passed, verdict = False, None
        elif record.status == "ok":
            passed = values_equal(record.value, _as_json(test.expected))
            verdict = Verdict.accepted if passed else Verdict.wrong_answer
        else:
            passed = False
            verdict = _STATUS_VERDICT.get(record.status, Verdict.runtime_error)
        if not passed and first_failure is None:
            first_failure = (index, verdict or Verdict.runtime_error)
        results.append(_public_result(index, test, record, passed, verdict))
    # Hidden tests count only in the whole submission's time, never one by one.
    total_ms = sum(r.time_ms for r in results) + (hidden.total_ms if hidden else 0)
    if first_failure is None:
        return EvalResponse(
            verdict=Verdict.accepted,
            message=f"All {len(tests)} tests passed.",
            tests=results,
            time_ms=total_ms,
            memory_kb=memory_kb,
        )
    index, verdict = first_failure
    passed_count = sum(r.passed for r in results)
    message = (
        f"{passed_count}/{len(tests)} tests passed; "
        f"{_label(index, tests[index])} failed: {verdict.value.replace('_', ' ')}."
    )
    return EvalResponse(
        verdict=verdict, message=message, tests=results, time_ms=total_ms, memory_kb=memory_kb
    )


# -- the evaluator --------------------------------------------------------------------------


class Evaluator:
    def __init__(self, settings: EvalSettings, math_pool: MathWorkerPool) -> None:
        self.settings = settings
        self.math_pool = math_pool
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self._boundary_ok = False
        self._boundary_error: str | None = None
        self._boundary_checked = 0.0

    async def _require_boundary(self) -> None:
        """Refuse (503) to run code when the OS sandbox cannot be set up here."""
        if self._boundary_ok:
            return
        now = asyncio.get_running_loop().time()
        if self._boundary_error is None or now - self._boundary_checked > 30:
            self._boundary_error = await check_boundary(self.settings.sandbox) or ""
            self._boundary_checked = now
            self._boundary_ok = not self._boundary_error
            if self._boundary_error:
                log.error("eval refuses to run code: sandbox unavailable: %s", self._boundary_error)
        if not self._boundary_ok:
            raise ProblemError(503, "The code sandbox is unavailable; no code was run.")

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(loop)
        if sem is None:
            # one per event loop (tests may drive the same app from several loops)
            self._semaphores = {lp: s for lp, s in self._semaphores.items() if not lp.is_closed()}
            sem = self._semaphores[loop] = asyncio.Semaphore(self.settings.max_concurrent_runs)
        return sem

    async def evaluate(self, request: EvalRequest) -> EvalResponse:
        """Evaluate; ``time_ms`` is the evaluation's wall time (whole milliseconds,
        rounded up), never less than the sum of the tests' own times."""
        started = time.perf_counter()
        response = await self._judge(request)
        wall_ms = math.ceil((time.perf_counter() - started) * 1000)
        return response.model_copy(update={"time_ms": max(response.time_ms, wall_ms)})

    async def _judge(self, request: EvalRequest) -> EvalResponse:
        """Judge one request. Learner input always ends as a verdict, never as a 5xx."""
        try:
            return await self._evaluate(request)
        except ProblemError:
            raise
        except RecursionError:
            return EvalResponse(
                verdict=Verdict.invalid_answer, message="The answer is too deeply nested to judge."
            )
        except Exception as exc:  # a bug here must not become an endless 5xx retry upstream
            # Only the type and place: the message could quote the request's hidden data.
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            log.error(
                "eval could not judge a %s request: %s at %s",
                request.kind.value,
                type(exc).__name__,
                where,
            )
            return EvalResponse(
                verdict=Verdict.internal_error,
                message="The evaluator could not judge this submission.",
            )

    async def _evaluate(self, request: EvalRequest) -> EvalResponse:
        if request.kind is EvalKind.python:
            return await self.python(request)
        if request.kind is EvalKind.math_expr:
            return await self.math_expr(request)
        if request.kind is EvalKind.numeric:
            return self.numeric(request)
        return self.multiple_choice(request)

    async def python(self, request: EvalRequest) -> EvalResponse:
        sandbox = self.settings.sandbox
        if request.code is None:
            raise _bad_request("python evaluation needs 'code'.")
        if not request.function_name or not _IDENTIFIER.match(request.function_name):
            raise _bad_request("python evaluation needs a valid 'function_name'.")
        if not request.tests:
            raise _bad_request("python evaluation needs at least one test.")
        if len(request.tests) > sandbox.max_tests:
            raise _bad_request(f"At most {sandbox.max_tests} tests per request.")
        if len(request.code.encode()) > sandbox.max_code_bytes:
            raise _bad_request(f"Code is larger than {sandbox.max_code_bytes} bytes.")
        await self._require_boundary()
        public = [list(t.args) for t in request.tests if not t.hidden]
        hidden = [list(t.args) for t in request.tests if t.hidden]
        code, name = request.code, request.function_name
        time_ms, memory_mb = request.limits.time_limit_ms, request.limits.memory_limit_mb
        async with self._semaphore():
            outcome = await run_python(
                code,
                name,
                public,
                time_limit_ms=time_ms,
                memory_limit_mb=memory_mb,
                settings=sandbox,
            )
        if outcome.kind == "internal_error":
            # The harness died before any learner code ran (it reports ready first): our
            # failure, not the learner's. 503 lets the caller retry; re-probe the boundary.
            log.error("eval sandbox failed to start: %s", outcome.message[:300])
            self._boundary_ok = False
            self._boundary_error = None
            raise ProblemError(503, "The code sandbox failed to start; no verdict was given.")
        hidden_outcome: HiddenOutcome | None = None
        if hidden and outcome.kind == "finished":
            # A process of its own: nothing the public run saw or printed is in it, and
            # nothing it sees can come back as text.
            async with self._semaphore():
                hidden_outcome = await run_hidden(
                    code,
                    name,
                    hidden,
                    time_limit_ms=time_ms,
                    memory_limit_mb=memory_mb,
                    settings=sandbox,
                )
        return python_response(request, outcome, hidden_outcome)

    async def math_expr(self, request: EvalRequest) -> EvalResponse:
        if request.answer is None or request.expected_answer is None:
            raise _bad_request("math_expr evaluation needs 'answer' and 'expected_answer'.")
        variables = list(request.variables)
        try:
            expected = mathexpr.parse(request.expected_answer, variables)
        except mathexpr.MathSyntaxError as exc:
            raise _bad_request(f"expected_answer is not a valid expression: {exc}") from exc
        try:
            answer = mathexpr.parse(request.answer, variables)
        except mathexpr.MathSyntaxError as exc:
            return EvalResponse(verdict=Verdict.invalid_answer, message=f"Cannot read: {exc}.")
        symbolic = "unknown"
        try:
            reply = await asyncio.to_thread(
                self.math_pool.check,
                {"a": answer, "b": expected},
                self.settings.math_timeout_s,
            )
            symbolic = reply.get("result", "unknown")
        except MathWorkerTimeout:
            symbolic = "timeout"
        except MathWorkerError:
            symbolic = "error"
        if symbolic == "equal":
            return EvalResponse(
                verdict=Verdict.accepted, message="Equivalent to the expected answer."
            )
        if symbolic == "different":
            return EvalResponse(
                verdict=Verdict.wrong_answer,
                message="Not equivalent: it differs from the expected answer by a constant.",
            )
        seed = zlib.crc32(f"{request.answer}\x00{request.expected_answer}".encode())
        numeric = mathexpr.compare_numerically(answer, expected, variables, seed=seed)
        if not numeric.equal:
            where = ", ".join(f"{k} = {v:.4g}" for k, v in (numeric.mismatch_at or {}).items())
            at = f" at {where}" if where else ""
            return EvalResponse(
                verdict=Verdict.wrong_answer,
                message=f"Not equivalent: your expression takes a different value{at}.",
            )
        needed = 3 if mathexpr.free_variables(answer) | mathexpr.free_variables(expected) else 1
        if numeric.valid_points >= needed:
            return EvalResponse(
                verdict=Verdict.accepted,
                message=(
                    f"Equivalent to the expected answer (checked at {numeric.valid_points} points)."
                ),
            )
        return EvalResponse(
            verdict=Verdict.wrong_answer,
            message="Could not confirm that your expression is equivalent to the expected one.",
        )

    def numeric(self, request: EvalRequest) -> EvalResponse:
        if request.answer is None or request.expected_answer is None:
            raise _bad_request("numeric evaluation needs 'answer' and 'expected_answer'.")
        try:
            expected = mathexpr.evaluate(mathexpr.parse(request.expected_answer), {})
        except (mathexpr.MathSyntaxError, ArithmeticError, ValueError) as exc:
            raise _bad_request(f"expected_answer is not a number: {exc}") from exc
        try:
            value = mathexpr.evaluate(mathexpr.parse(request.answer), {})
        except mathexpr.MathSyntaxError as exc:
            return EvalResponse(verdict=Verdict.invalid_answer, message=f"Cannot read: {exc}.")
        except (ArithmeticError, ValueError):
            return EvalResponse(verdict=Verdict.invalid_answer, message="Not a finite number.")
        if not math.isfinite(value):
            return EvalResponse(verdict=Verdict.invalid_answer, message="Not a finite number.")
        tol = DEFAULT_NUMERIC_TOLERANCE if request.tolerance is None else abs(request.tolerance)
        if abs(value - expected) <= max(tol, RELATIVE_TOLERANCE * abs(expected)):
            return EvalResponse(verdict=Verdict.accepted, message="Correct.")
        return EvalResponse(verdict=Verdict.wrong_answer, message="Not the expected value.")

    def multiple_choice(self, request: EvalRequest) -> EvalResponse:
        if request.answer is None or request.expected_answer is None:
            raise _bad_request("multiple_choice evaluation needs 'answer' and 'expected_answer'.")
        answer = request.answer.strip().casefold()
        if not answer:
            return EvalResponse(verdict=Verdict.invalid_answer, message="No choice selected.")
        choices = [c.strip().casefold() for c in request.choices]
        if choices and answer not in choices:
            shown = ", ".join(c.strip() for c in request.choices)
            return EvalResponse(
                verdict=Verdict.invalid_answer,
                message=f"Unknown choice {request.answer.strip()[:40]!r} (choices: {shown}).",
            )
        if answer == request.expected_answer.strip().casefold():
            return EvalResponse(verdict=Verdict.accepted, message="Correct.")
        return EvalResponse(verdict=Verdict.wrong_answer, message="Not the right choice.")
