"""``python -m tools.temporal_setup`` registers the search attributes on a namespace,
idempotently; the worker refuses to start on a namespace that lacks them and names them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from domain.contracts import (
    SEARCH_ATTRIBUTES,
)
from domain.settings import Settings
from ops.search_attributes import MissingSearchAttributes, registered, require_search_attributes
from tests.conftest import ROOT, settings_env
from tests.support import eventually


async def fresh_namespace(client: Client) -> str:
    name = f"co-setup-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )

    async def usable() -> bool:
        await registered(client, name)
        return True

    # The frontend's namespace cache catches up.
    await eventually(
        usable,
        timeout=30,
        every=0.2,
        ignoring=(RPCError,),
        failure=lambda: f"namespace {name} never became usable",
    )
    return name


async def run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_setup_registers_missing_attributes_once_and_the_worker_checks_them(
    temporal_client: Client, settings: Settings
) -> None:
    namespace = await fresh_namespace(temporal_client)
    env = settings_env(settings) | {"CO_TEMPORAL_NAMESPACE": namespace}

    with pytest.raises(MissingSearchAttributes, match=r"CoStep.*tools\.temporal_setup"):
        await require_search_attributes(temporal_client, namespace)

    refused = await run("-m", "worker", env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "CoUserId" in refused.stderr
    assert "CoStepSince" in refused.stderr

    first = await run("-m", "tools.temporal_setup", "--attempts", "5", env=env)
    assert first.returncode == 0, first.stderr
    assert "registered" in first.stdout
    assert "CoStepSince" in first.stdout
    have = await registered(temporal_client, namespace)
    for key in SEARCH_ATTRIBUTES:
        assert have[key.name] == int(key.indexed_value_type), key.name

    again = await run("-m", "tools.temporal_setup", "--attempts", "5", env=env)
    assert again.returncode == 0, again.stderr
    assert "already registered" in again.stdout
    await require_search_attributes(temporal_client, namespace)
