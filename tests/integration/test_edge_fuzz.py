"""Schemathesis against the running app (uvicorn on a free port; PostgreSQL, Redis and Temporal
behind it), every operation, with a valid token: no 5xx, and every response — status, content
type, headers, body — conforms to the published spec.

Bounded: ``CO_FUZZ_EXAMPLES`` examples per operation and mode (positive and negative data),
12 by default; raise it locally for a deeper run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from temporalio.worker import Worker

from devservices.testing import serve
from domain.settings import Settings
from tests.support.edge import new_app

EXAMPLES = int(os.environ.get("CO_FUZZ_EXAMPLES", "12"))
BUDGET_SECONDS = 60

# "No 5xx, and every response conforms to the spec". Not schemathesis' negative_data_rejection:
# it counts an unknown query parameter as invalid data that must be refused, while this API
# ignores unknown parameters on purpose (clients and proxies add them); and it would see the
# token we add to every request as "missing" in cases where it mutated it away.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


def spec_operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``"GET /v1/tracks"`` -> its operation object, for every operation in the spec."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {
        f"{method.upper()} {path}": operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in methods
    }


def breakable(operation: dict[str, Any]) -> bool:
    """Whether negative data exists for ``operation``: a parameter or a body to break."""
    return bool(operation.get("parameters")) or "requestBody" in operation


def fuzz(
    spec: dict[str, Any], base_url: str, headers: dict[str, str]
) -> tuple[list[str], set[str]]:
    """Run every operation in both modes; the failures, and the operations that ran."""
    schema = schemathesis.openapi.from_dict(spec)
    operations = spec_operations(spec)
    failures: list[str] = []
    ran: set[str] = set()
    deadline = time.monotonic() + BUDGET_SECONDS
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"an operation the spec cannot describe: {result.err()}")
            continue
        operation = result.ok()
        ran.add(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() > deadline:
                failures.append(f"out of time before {operation.label} [{mode.value}]")
                continue

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,  # no .hypothesis/ directory in the repository
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                print_blob=True,
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                case.call_and_validate(
                    base_url=base_url, headers=headers, checks=CHECKS, timeout=20
                )

            try:
                check()
            except Unsatisfiable:
                # Only an operation with nothing to break has no negative cases (/healthz).
                if mode is GenerationMode.POSITIVE or breakable(operations[operation.label]):
                    failures.append(f"{operation.label} [{mode.value}]: no example generated")
            except Exception as exc:  # schemathesis' FailureGroup, or a transport error
                failures.append(f"{operation.label} [{mode.value}]:\n{exc}"[:4000])
    return failures, ran


@pytest.mark.slow
@pytest.mark.timeout(BUDGET_SECONDS + 60)
async def test_fuzz_every_operation_against_the_spec(
    make_settings: Callable[..., Settings],
    token_for: Callable[..., str],
    seeded: dict[str, str],
    worker: Worker,
    task_queue: str,
) -> None:
    # A high limit: the fuzzer is one user firing hundreds of requests. The run's worker
    # serves the task queue, so operations that wait for a workflow get their answer.
    app = new_app(make_settings(rate_limit_per_minute=1_000_000, temporal_task_queue=task_queue))
    spec = app.openapi()
    headers = {"Authorization": f"Bearer {token_for('fuzzer', roles=['admin'])}"}
    async with serve(app) as base_url:
        # Schemathesis is synchronous; the server keeps serving on this loop meanwhile.
        failures, ran = await asyncio.to_thread(fuzz, spec, base_url, headers)
    expected = set(spec_operations(spec))
    assert len(expected) >= 20, sorted(expected)
    assert (
        ran == expected
    ), f"not fuzzed: {sorted(expected - ran)}; unknown: {sorted(ran - expected)}"
    assert not failures, "\n\n".join(failures)
