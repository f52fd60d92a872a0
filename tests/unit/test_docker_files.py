"""No Docker engine and no AWS account here: check what can be checked without them.

- the Dockerfile with hadolint, the compose file against the Compose specification's schema
  and the GitHub workflows against theirs (check-jsonschema's vendored schemas, offline);
- the ECS task definitions against AWS's own API model of RegisterTaskDefinition (botocore's
  service model, offline);
- the CloudFormation template with cfn-lint, and that it is what its generator writes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TASKS = ("api", "worker", "temporal-setup", "migrate")


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
    assert services["api"]["ports"] == ["8000:8000", "9100:9100"]
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


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_dockerfile_passes_hadolint() -> None:
    result = run(str(BIN / "hadolint"), "docker/Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_follows_the_compose_specification() -> None:
    result = run(
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        "docker/docker-compose.dev.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_registers_search_attributes_and_offers_a_cluster_backed_temporal() -> None:
    services = yaml.safe_load((ROOT / "docker" / "docker-compose.dev.yml").read_text())["services"]
    assert services["temporal-setup"]["command"][:3] == ["python", "-m", "tools.temporal_setup"]
    for name in ("worker", "api"):
        assert services[name]["depends_on"]["temporal-setup"] == {
            "condition": "service_completed_successfully"
        }
    cluster = {n for n, svc in services.items() if "cluster" in svc.get("profiles", [])}
    assert cluster == {"temporal-schema", "temporal-cluster", "temporal-cluster-ui"}
    assert services["temporal-cluster"]["environment"]["DB"] == "postgres12"
    assert "setup-schema" in services["temporal-schema"]["command"][0]


def test_github_workflows_follow_the_actions_schema() -> None:
    files = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert len(files) == 2
    result = run(
        str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _workflow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def test_ci_tests_every_push_and_pull_request_with_postgres_and_redis() -> None:
    ci = _workflow("ci.yml")
    assert {"push", "pull_request", "workflow_call"} <= set(ci["on"])
    job = ci["jobs"]["test"]
    assert {"postgres", "redis"} <= set(job["services"])
    runs = [step.get("run", "") for step in job["steps"]]
    assert any("make test" in r for r in runs)
    assert any("haproxy" in r for r in runs)


def test_deploy_runs_the_replay_gate_before_updating_ecs() -> None:
    deploy = _workflow("deploy.yml")
    assert deploy["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    jobs = deploy["jobs"]
    assert jobs["tests"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["image"]["needs"] == "tests"
    assert jobs["replay-gate"]["needs"] == "tests"
    assert set(jobs["deploy"]["needs"]) == {"image", "replay-gate"}
    gate = " ".join(step.get("run", "") for step in jobs["replay-gate"]["steps"])
    assert "tools.replay_gate" in gate
    steps = " ".join(step.get("run", "") for step in jobs["deploy"]["steps"])
    assert steps.index("register-task-definition") < steps.index("update-service")
    for job in ("image", "replay-gate", "deploy"):
        environment = jobs[job]["environment"]
        assert "production" in environment
        assert "staging" in environment
    # Every placeholder of the task definitions is set by the deploy job.
    provided = set(jobs["deploy"]["env"])
    for name in TASKS:
        text = (ROOT / "docker" / "ecs" / f"{name}.json").read_text()
        assert set(re.findall(r"\$\{(\w+)\}", text)) <= provided, name


def _rendered(name: str) -> dict[str, Any]:
    """A task definition as the pipeline's envsubst renders it (placeholders filled)."""
    text = (ROOT / "docker" / "ecs" / f"{name}.json").read_text()
    text = re.sub(r"\$\{(\w+)\}", lambda m: f"placeholder-{m.group(1).lower()}", text)
    data: dict[str, Any] = json.loads(text)
    return data


def _register_task_definition_errors(task: dict[str, Any]) -> str:
    from botocore.loaders import Loader
    from botocore.model import ServiceModel
    from botocore.validate import ParamValidator

    model = ServiceModel(Loader().load_service_model("ecs", "service-2"), "ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(task, shape)
    return str(report.generate_report()) if report.has_errors() else ""


@pytest.mark.parametrize("name", TASKS)
def test_task_definitions_match_the_register_task_definition_api(name: str) -> None:
    assert _register_task_definition_errors(_rendered(name)) == ""


def test_the_task_definition_check_catches_a_malformed_definition() -> None:
    broken = _rendered("worker")
    broken["containerDefinitions"][0]["stopTimeout"] = "60"
    del broken["containerDefinitions"][0]["name"]
    broken["containerDefinitions"][0]["cpuShares"] = 1
    errors = _register_task_definition_errors(broken)
    assert "stopTimeout" in errors
    assert "name" in errors
    assert "cpuShares" in errors


def test_task_definitions_wire_temporal_tls_and_api_key_from_secrets() -> None:
    temporal = {
        "CO_TEMPORAL_TLS_CLIENT_CERT",
        "CO_TEMPORAL_TLS_CLIENT_KEY",
        "CO_TEMPORAL_TLS_CA",
        "CO_TEMPORAL_API_KEY",
    }
    for name in ("api", "worker", "temporal-setup"):
        container = _rendered(name)["containerDefinitions"][0]
        secrets = {s["name"] for s in container["secrets"]}
        assert temporal <= secrets, name
        for secret in container["secrets"]:
            assert ":secretsmanager:" in secret["valueFrom"]
        env = {e["name"] for e in container["environment"]}
        assert "CO_TEMPORAL_TLS_SERVER_NAME" in env
        assert not env & temporal  # never in plain environment variables


def test_worker_stop_timeout_exceeds_its_graceful_shutdown() -> None:
    container = _rendered("worker")["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert container["stopTimeout"] >= float(env["CO_WORKER_GRACEFUL_SHUTDOWN_SECONDS"]) + 10
    assert container["stopTimeout"] <= 120  # Fargate's maximum
    assert "9101" in " ".join(container["healthCheck"]["command"])


def test_cloudformation_template_is_generated_and_passes_cfn_lint() -> None:
    sys.path.insert(0, str(ROOT / "deploy" / "cloudformation"))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    path = ROOT / "deploy" / "cloudformation" / "co.yaml"
    assert path.read_text() == generate.render(), "run deploy/cloudformation/generate.py"
    result = run(str(BIN / "cfn-lint"), str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudformation_has_what_the_readme_lists() -> None:
    template = yaml.safe_load((ROOT / "deploy" / "cloudformation" / "co.yaml").read_text())
    resources = template["Resources"]
    kinds = {r["Type"] for r in resources.values()}
    for kind in (
        "AWS::ECS::Cluster",
        "AWS::ECS::Service",
        "AWS::ECR::Repository",
        "AWS::RDS::DBInstance",
        "AWS::ElastiCache::ReplicationGroup",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "AWS::SecretsManager::Secret",
        "AWS::Logs::LogGroup",
    ):
        assert kind in kinds, kind
    assert resources["ApiTargetGroup"]["Properties"]["HealthCheckPath"] == "/readyz"
    worker = resources["WorkerTask"]["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in worker["Environment"]}
    assert worker["StopTimeout"] > float(env["CO_WORKER_GRACEFUL_SHUTDOWN_SECONDS"])
    assert "HealthCheck" in worker
    assert "HealthCheck" in resources["ApiTask"]["Properties"]["ContainerDefinitions"][0]
