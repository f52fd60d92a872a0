"""``python -m tools.temporal_setup``: register CO's custom search attributes on the
namespace of ``CO_TEMPORAL_ADDRESS``/``CO_TEMPORAL_NAMESPACE`` (TLS and API key from the
``CO_TEMPORAL_*`` settings), idempotently, through the operator API.

Run by ``make dev``, by the compose file's ``temporal-setup`` service and as a one-off ECS
task (``deploy/ecs/temporal-setup.json``) before the worker of a new namespace starts.
Only the Temporal settings are read, so it runs without a database or Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.settings import Settings, SettingsError
from ops.search_attributes import MissingSearchAttributes, ensure
from ops.temporal import connect, exit_without_teardown


class TemporalOnly(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CO_", extra="ignore")
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_client_cert: str | None = None
    temporal_tls_client_key: str | None = None
    temporal_tls_ca: str | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: str | None = None


def temporal_settings(**overrides: object) -> Settings:
    """A full ``Settings`` for ``ops.temporal.connect`` whose other fields are placeholders."""
    values = TemporalOnly().model_dump() | overrides
    return Settings.model_construct(**values)


async def setup(settings: Settings, *, attempts: int = 30) -> list[str]:
    last: Exception | None = None
    for _ in range(attempts):  # a compose/ECS one-off may start before the frontend is up
        try:
            client = await connect(settings)
            break
        except RuntimeError as exc:
            last = exc
            await asyncio.sleep(1)
    else:
        raise SettingsError(f"Temporal at {settings.temporal_address} is unreachable: {last}")
    return await ensure(client, settings.temporal_namespace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="overrides CO_TEMPORAL_ADDRESS")
    parser.add_argument("--namespace", help="overrides CO_TEMPORAL_NAMESPACE")
    parser.add_argument("--attempts", type=int, default=30, help="connection attempts, 1 s apart")
    args = parser.parse_args(argv)
    overrides = {
        k: v
        for k, v in (("temporal_address", args.address), ("temporal_namespace", args.namespace))
        if v
    }
    try:
        settings = temporal_settings(**overrides)
        added = asyncio.run(setup(settings, attempts=args.attempts))
    except ValidationError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except (SettingsError, MissingSearchAttributes) as exc:
        print(exc, file=sys.stderr)
        return 1
    namespace = settings.temporal_namespace
    if added:
        print(f"namespace {namespace}: registered {', '.join(added)}")
    else:
        print(f"namespace {namespace}: every search attribute already registered")
    return 0


if __name__ == "__main__":
    exit_without_teardown(main())
