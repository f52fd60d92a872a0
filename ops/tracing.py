"""OpenTelemetry traces: one trace from an HTTP request through its workflow and
activities to the upstream HTTP calls.

Off unless ``CO_OTLP_ENDPOINT`` is set (then spans go to ``{endpoint}/v1/traces`` over
OTLP/HTTP in batches). The provider is passed explicitly to every instrumentation rather
than installed globally, so a process (or a test) can hold more than one.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from domain.settings import Settings


def provider_from_settings(settings: Settings, service: str) -> TracerProvider | None:
    if settings.otlp_endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    endpoint = str(settings.otlp_endpoint).rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def temporal_interceptors(provider: TracerProvider | None) -> list[Interceptor]:
    """Client interceptors; a worker built on the client inherits them (workflow and
    activity spans, context carried in Temporal headers)."""
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer("co.temporal"))]
