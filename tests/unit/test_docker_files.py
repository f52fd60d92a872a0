"""No Docker engine runs on these machines: check what can be checked without one."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_runs_as_non_root_and_has_a_healthcheck() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text
    assert "COPY pyproject.toml poetry.lock" in text


def test_compose_starts_the_whole_platform() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.dev.yml").read_text())
    services = compose["services"]
    for name in ("postgres", "redis", "adminer", "temporal", "migrate", "api", "worker"):
        assert name in services, name
    assert "devservices" in services
    assert services["api"]["ports"] == ["8000:8000"]
    assert "8233:8233" in services["temporal"]["ports"]
    # Every python module a container runs exists in the repo.
    for svc in services.values():
        command = svc.get("command") or []
        if command[:2] == ["python", "-m"]:
            module = command[2].replace(".", "/")
            assert (ROOT / module / "__main__.py").exists() or (ROOT / f"{module}.py").exists()


def test_ecs_task_definitions_are_valid_json_with_graceful_stop() -> None:
    for name in ("api", "worker"):
        task = json.loads((ROOT / "docker" / "ecs" / f"{name}.json").read_text())
        container = task["containerDefinitions"][0]
        assert container["command"] == ["python", "-m", name]
        assert container["stopTimeout"] >= 30
    worker = json.loads((ROOT / "docker" / "ecs" / "worker.json").read_text())
    env = {e["name"]: e["value"] for e in worker["containerDefinitions"][0]["environment"]}
    # ECS must wait longer than the worker's own drain before it kills it.
    assert float(env["CO_WORKER_GRACEFUL_SHUTDOWN_SECONDS"]) < 60
