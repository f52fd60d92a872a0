"""Seeing inside the running system: Prometheus metrics of the API and of the worker
(scraped over HTTP after real traffic), one OpenTelemetry trace from the POST to the
upstream calls, and the log lines that name requests, workflows and activities."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from domain.contracts import (
    ActivityName,
    WorkflowName,
)
from domain.settings import Settings
from tests.conftest import started_app
from tests.support import free_ports

SUM_OK = "def sum_evens(numbers):\n    return sum(n for n in numbers if n % 2 == 0)\n"


@dataclass
class Observed:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    spans: InMemorySpanExporter


@pytest.fixture(scope="module")
async def observed(
    make_settings: Callable[..., Settings], seeded: dict[str, str]
) -> AsyncIterator[Observed]:
    """API + worker with metrics on ports of their own and spans kept in memory, the way
    ``python -m api`` / ``python -m worker`` build them."""
    from api.app import create_app
    from ops.temporal import connect, metrics_runtime
    from ops.tracing import temporal_interceptors
    from worker.__main__ import build_worker, close_deps, make_deps

    api_metrics_port, worker_metrics_port = free_ports(2)
    settings = make_settings(
        temporal_task_queue=f"co-obs-{uuid.uuid4().hex[:8]}",
        api_metrics_port=api_metrics_port,
        worker_metrics_port=worker_metrics_port,
        rate_limit_per_minute=8,
    )
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with AsyncExitStack() as stack:
        app = await started_app(create_app(settings, tracer_provider=provider), stack)
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://co.test")
        )
        temporal = await connect(
            settings,
            interceptors=temporal_interceptors(provider),
            runtime=metrics_runtime(settings.metrics_host, settings.worker_metrics_port),
        )
        deps = make_deps(settings, provider)
        stack.push_async_callback(close_deps, deps)
        await stack.enter_async_context(build_worker(temporal, deps))
        yield Observed(app, client, settings, spans)
    provider.shutdown()


@pytest.fixture(scope="module")
async def traffic(observed: Observed, token_for: Callable[..., str]) -> dict[str, object]:
    """A submission evaluated end to end, a tutor stream, a 404 and a user over the rate
    limit."""
    from tests.support.tutor import OTHER_PROBLEM, new_session, publish_tutor_track

    learner_id = f"obs-{uuid.uuid4().hex[:6]}"
    learner = {"Authorization": f"Bearer {token_for(learner_id)}"}
    r = await observed.client.post(
        "/v1/submissions",
        json={"problem_id": "py-sum-evens", "language": "python", "code": SUM_OK},
        headers={**learner, "Prefer": "wait=30"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == "accepted"
    submission = r.json()
    missing = await observed.client.get(f"/v1/submissions/{uuid.uuid4()}", headers=learner)
    assert missing.status_code == 404
    resources = observed.app.state.resources
    await publish_tutor_track(observed.app, str(observed.settings.problem_bank_base))
    session_id = await new_session(resources.sessionmaker, learner_id)
    stream = await observed.client.post(
        "/v1/tutor/messages",
        json={"session_id": str(session_id), "problem_id": OTHER_PROBLEM, "message": "Hint?"},
        headers=learner,
    )
    assert stream.status_code == 200, stream.text
    assert "event: done" in stream.text
    spammer = {"Authorization": f"Bearer {token_for(f'spam-{uuid.uuid4().hex[:6]}')}"}
    statuses = [
        (await observed.client.get("/v1/tracks", headers=spammer)).status_code for _ in range(9)
    ]
    assert statuses[-1] == 429
    return {"submission": submission, "request_id": r.headers["X-Request-ID"]}


async def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    async with httpx.AsyncClient(timeout=5) as http:
        r = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert r.status_code == 200
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def value(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for got, v in samples if all(got.get(k) == want for k, want in labels.items()))


async def test_api_metrics_count_requests_by_route_template_status_and_verdict(
    observed: Observed, traffic: dict[str, object]
) -> None:
    m = await scrape(observed.settings.api_metrics_port)
    requests = m["co_http_requests_total"]
    assert value(requests, method="POST", route="/v1/submissions", status="200") >= 1
    # The template, not the path: one series for every submission id.
    assert value(requests, method="GET", route="/v1/submissions/{submission_id}", status="404")
    uuid_like = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
    assert not [labels for labels, _ in requests if uuid_like.search(labels["route"])]
    assert value(requests, route="/v1/tracks", status="429") >= 1
    assert value(m["co_http_request_duration_seconds_count"], route="/v1/submissions") >= 1
    assert value(m["co_rate_limit_rejections_total"], key="user") >= 1
    assert value(m["co_submissions_total"], verdict="accepted") >= 1
    # The stream took a slot lease and gave it back when it ended.
    assert value(m["co_sse_slot_acquisitions_total"], outcome="granted") >= 1
    assert value(m["co_sse_open_streams"]) == 0
    assert value(m["co_sse_slot_leases_held"]) == 0
    assert value(requests, method="POST", route="/v1/tutor/messages", status="200") >= 1


async def test_worker_serves_the_sdk_metrics_and_verdicts(
    observed: Observed, traffic: dict[str, object]
) -> None:
    m = await scrape(observed.settings.worker_metrics_port)
    queue = observed.settings.temporal_task_queue
    completed = m["temporal_workflow_completed_total"]
    assert value(completed, workflow_type=WorkflowName.SUBMISSION, task_queue=queue) >= 1
    assert value(
        m["temporal_activity_execution_latency_count"],
        activity_type=ActivityName.SUBMISSION_EVALUATE_AND_STORE,
        task_queue=queue,
    )
    assert "temporal_workflow_task_schedule_to_start_latency_count" in m
    assert "temporal_worker_task_slots_available" in m
    assert "temporal_sticky_cache_size" in m
    assert value(m["co_submission_verdicts_total"], verdict="accepted") >= 1


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert found, sorted({s.name for s in spans})
    return found[0]


def _parent_is(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert child.parent is not None, child.name
    assert child.parent.span_id == parent.context.span_id, (child.name, parent.name)
    assert child.context.trace_id == parent.context.trace_id


async def test_one_trace_from_the_post_through_the_workflow_to_the_upstream_calls(
    observed: Observed, traffic: dict[str, object]
) -> None:
    spans = observed.spans.get_finished_spans()
    post = _by_name(spans, "POST /v1/submissions")
    start = _by_name(spans, "StartWorkflow:SubmissionWorkflow")
    run = _by_name(spans, "RunWorkflow:SubmissionWorkflow")
    schedule = _by_name(spans, "StartActivity:submission.evaluate_and_store")
    evaluate = _by_name(spans, "RunActivity:submission.evaluate_and_store")
    _parent_is(start, post)
    _parent_is(run, start)
    # The SDK parents a workflow's outbound spans on the context the workflow was started
    # with (RunWorkflow's own parent), so they survive replays of the workflow task.
    _parent_is(schedule, start)
    _parent_is(evaluate, schedule)
    upstream = [s for s in spans if s.parent and s.parent.span_id == evaluate.context.span_id]
    names = sorted(s.name for s in upstream)
    # Problem Bank's bundle (GET) and Eval's evaluation (POST), both over httpx.
    assert {"GET", "POST"} <= set(names), names
    urls = {str(s.attributes.get("url.full", s.attributes.get("http.url"))) for s in upstream}
    assert any(u.startswith(str(observed.settings.eval_base).rstrip("/")) for u in urls), urls


async def test_request_log_line_names_request_user_route_status_and_latency(
    observed: Observed, token_for: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    user = f"log-{uuid.uuid4().hex[:6]}"
    with caplog.at_level(logging.INFO, logger="co.api.request"):
        r = await observed.client.get(
            f"/v1/submissions/{uuid.uuid4()}",
            headers={
                "Authorization": f"Bearer {token_for(user)}",
                "X-Request-ID": "req-0123456789",
            },
        )
    assert r.status_code == 404
    lines = [rec for rec in caplog.records if rec.name == "co.api.request"]
    assert len(lines) == 1
    line = lines[0].__dict__
    assert line["route"] == "/v1/submissions/{submission_id}"
    assert line["status"] == 404
    assert line["user_id"] == user
    assert isinstance(line["latency_ms"], float)
    assert r.headers["X-Request-ID"] == "req-0123456789"


def test_json_logs_carry_the_request_id_and_dev_logs_drop_uvicorn_color_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import structlog

    from domain.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO", json=True)
        with structlog.contextvars.bound_contextvars(request_id="r-1234567890"):
            logging.getLogger("co.api.request").info(
                "request", extra={"route": "/v1/tracks", "status": 200}
            )
        record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert record["request_id"] == "r-1234567890"
        assert record["route"] == "/v1/tracks"
        assert record["status"] == 200
        configure_logging("INFO", json=False)
        logging.getLogger("co.test.uvicorn_like").info(
            "Started server process", extra={"color_message": "Started \x1b[36mserver\x1b[0m"}
        )
        out = capsys.readouterr().out
        assert "Started server process" in out
        assert "color_message" not in out
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


async def test_spans_are_exported_over_otlp_when_configured_and_nothing_otherwise(
    make_settings: Callable[..., Settings],
) -> None:
    """A collector stand-in receives the API's spans over OTLP/HTTP at shutdown."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from api.app import create_app
    from devservices.testing import serve

    received: list[tuple[str, bytes]] = []

    async def collector(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        received.append((scope["path"], body))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/x-protobuf")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async with serve(collector) as url:
        app = create_app(make_settings(otlp_endpoint=url))
        async with AsyncExitStack() as stack:
            await started_app(app, stack)
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://co.test")
            )
            assert (await client.get("/v1/tracks")).status_code == 401
        # Leaving the lifespan flushed the batch.
    assert [path for path, _ in received] == ["/v1/traces"]
    export = ExportTraceServiceRequest.FromString(received[0][1])
    names = {
        span.name
        for resource in export.resource_spans
        for scope_spans in resource.scope_spans
        for span in scope_spans.spans
    }
    assert "GET /v1/tracks" in names
    service = {
        attr.value.string_value
        for resource in export.resource_spans
        for attr in resource.resource.attributes
        if attr.key == "service.name"
    }
    assert service == {"co-api"}

    assert getattr(app, "_is_instrumented_by_opentelemetry", False)
    untraced = create_app(make_settings())
    assert not getattr(untraced, "_is_instrumented_by_opentelemetry", False)
