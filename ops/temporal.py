"""Connecting to Temporal: the dev server, a self-hosted cluster (TLS, mTLS) or Temporal
Cloud (mTLS or an API key), with the SDK's metrics and the tracing interceptor.

``tls_config`` validates the ``CO_TEMPORAL_TLS_*`` settings at start-up, so a wrong path or a
certificate without its key stops the process with a message naming the variable, not a
handshake error minutes later.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from temporalio.client import Client, Interceptor, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RetryConfig

from domain.settings import Settings, SettingsError


def _pem(variable: str, value: str) -> bytes:
    """A PEM given inline or as the path of a file (ECS secrets inject the PEM itself)."""
    text = value.replace("\\n", "\n").strip()
    if text.startswith("-----BEGIN "):
        data = text.encode()
    else:
        path = Path(value)
        if not path.is_file():
            raise SettingsError(
                f"Configuration error:\n  {variable} is neither a PEM nor a readable file: "
                f"{value!r}"
            )
        data = path.read_bytes()
    if b"-----BEGIN " not in data:
        raise SettingsError(f"Configuration error:\n  {variable} does not contain a PEM block")
    return data


def tls_config(settings: Settings) -> TLSConfig | bool:
    """The client's TLS: ``False`` for the dev server, ``True`` for system roots, or a config."""
    cert, key = settings.temporal_tls_client_cert, settings.temporal_tls_client_key
    if bool(cert) != bool(key):
        missing = "CO_TEMPORAL_TLS_CLIENT_KEY" if cert else "CO_TEMPORAL_TLS_CLIENT_CERT"
        raise SettingsError(
            f"Configuration error:\n  {missing} is required with "
            + ("CO_TEMPORAL_TLS_CLIENT_CERT" if cert else "CO_TEMPORAL_TLS_CLIENT_KEY")
            + " (mTLS needs the certificate and its key)"
        )
    wanted = (
        settings.temporal_tls
        or bool(cert)
        or bool(settings.temporal_tls_ca)
        or bool(settings.temporal_tls_server_name)
        or bool(settings.temporal_api_key)  # Temporal Cloud only takes API keys over TLS
    )
    if not wanted:
        return False
    if not (cert or settings.temporal_tls_ca or settings.temporal_tls_server_name):
        return True
    return TLSConfig(
        server_root_ca_cert=(
            _pem("CO_TEMPORAL_TLS_CA", settings.temporal_tls_ca)
            if settings.temporal_tls_ca
            else None
        ),
        client_cert=_pem("CO_TEMPORAL_TLS_CLIENT_CERT", cert) if cert else None,
        client_private_key=_pem("CO_TEMPORAL_TLS_CLIENT_KEY", key) if key else None,
        domain=settings.temporal_tls_server_name,
    )


def metrics_runtime(host: str, port: int) -> Runtime | None:
    """A runtime whose SDK metrics (task latencies, schedule-to-start, slots, sticky cache,
    and what activities record with ``activity.metric_meter()``) are served for Prometheus."""
    if port == 0:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"{host}:{port}", durations_as_seconds=True)
        )
    )


async def connect(
    settings: Settings,
    *,
    lazy: bool = False,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
    retry_config: RetryConfig | None = None,
) -> Client:
    """The one way every process connects (API, worker, tools). ``retry_config`` bounds
    how long a call retries an unreachable server (the SDK's default: up to 10 s)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=tls_config(settings),
        api_key=settings.temporal_api_key,
        interceptors=interceptors,
        runtime=runtime,
        lazy=lazy,
        retry_config=retry_config,
    )


# A learner waits on the API's calls: while Temporal is unreachable, answer 503 within about
# two seconds instead of retrying for the SDK's default ten (a restart of the frontend that
# takes longer is an outage the client retries after ``Retry-After``).
API_RETRY = RetryConfig(
    initial_interval_millis=100, max_interval_millis=800, max_elapsed_time_millis=2000
)


def exit_without_teardown(code: int) -> NoReturn:
    """End a short-lived command that used a Temporal client, skipping interpreter teardown.

    The SDK's Rust core keeps threads that may touch the GIL while CPython finalizes, which
    sporadically aborts the process after its work is done ("PyGILState_Release: thread
    state ... must be current", temporalio/sdk-python#300; seen here in the test suite).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
