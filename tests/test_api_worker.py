"""A worker: a service without a route (no `path_prefix`, no `container_port`).

It runs like any service (its log group, secrets, database login, CPU and memory scaling, the
deployment circuit breaker) but has no API Gateway methods, no NLB listener or target group, no
probe, no alarms that read them and no request-count policy. What AWS requires, with its source:
an ECS service's `loadBalancers` and `healthCheckGracePeriodSeconds` only apply to a service
behind a load balancer (Amazon ECS API Reference, CreateService); deployment alarms need alarm
names (DeploymentAlarms: `alarmNames`, required); a REST API cannot be deployed without methods
(API Gateway: "The REST API doesn't contain any methods").
"""

from __future__ import annotations

import json
import shutil

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from modules.core.errors import ConfigError
from modules.environment import load_environments
from tests.conftest import require
from tests.harness.edits import edit, load_error
from tests.harness.project import ENVIRONMENTS_DIR
from tests.harness.synth import Stack, synthesize

WORKER = '''
  service "worker" {
    image_repository = "webapp/worker"
    image_tag        = "1.0.0"
    metrics_path     = null
    database_access  = "read_write"
    desired_count    = 1
    min_count        = 1
    max_count        = 3
    environment      = { QUEUE = "jobs" }
    secrets          = { PAYMENTS_API_KEY = "payments-api-key" }
  }

  # Flyway:'''


def with_worker(directory, block: str = WORKER) -> None:
    edit(directory, "dev.hcl", "\n  # Flyway:", block)


@pytest.fixture(scope="module")
def worker_synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("worker")
    shutil.copytree(ENVIRONMENTS_DIR, root / "environments")
    with_worker(root / "environments")
    return synthesize(load_environments(root / "environments", ("dev",)), root / "cdktf.out")


@pytest.fixture(scope="module")
def stack(worker_synth) -> Stack:
    return worker_synth.stack("dev-api")


def paths(stack: Stack, resource_type: str) -> set[str]:
    return {r["//"]["metadata"]["path"] for r in stack.resources(resource_type).values()}


# --- config ------------------------------------------------------------------------------------


def test_a_worker_loads_without_path_prefix_and_container_port(environments_copy):
    with_worker(environments_copy)
    (dev,) = load_environments(environments_copy, ("dev",)).environments
    worker = next(s for s in dev.api.service if s.name == "worker")
    assert worker.worker and worker.path_prefix is None and worker.container_port is None
    assert [s.name for s in dev.api.routed_services] == ["service1", "service2"]


@pytest.mark.parametrize("given, unset", [
    ('path_prefix      = "worker"', "container_port"),
    ("container_port   = 8082", "path_prefix"),
])
def test_rejects_a_half_declared_route(environments_copy, given, unset):
    with_worker(environments_copy, WORKER.replace('metrics_path     = null', f"metrics_path     = null\n    {given}"))
    error = load_error(environments_copy)
    assert error.key == f"api.service[2].{unset}"
    assert "dev.hcl" in str(error) and "sets both" in str(error) and "a worker sets neither" in str(error)


@pytest.mark.parametrize("line, key", [
    ('health_check_path = "/ready"', "health_check_path"),
    ('authorization = "NONE"', "authorization"),
    ('required_headers = ["X-Tenant"]', "required_headers"),
    ("requests_per_task_target = 100", "requests_per_task_target"),
    ("caching = false", "caching"),
    ("server_errors_alarm_threshold = 10", "server_errors_alarm_threshold"),
])
def test_rejects_route_settings_on_a_worker(environments_copy, line, key):
    with_worker(environments_copy, WORKER.replace('image_tag        = "1.0.0"', f'image_tag        = "1.0.0"\n    {line}'))
    error = load_error(environments_copy)
    assert error.key == f"api.service[2].{key}"
    assert "on a worker" in str(error) and "give the service a route" in str(error)


def test_rejects_a_metrics_path_on_a_worker(environments_copy):
    with_worker(environments_copy, WORKER.replace("    metrics_path     = null\n", ""))
    error = load_error(environments_copy)
    assert error.key == "api.service[2].metrics_path" and "null on a worker" in str(error)


def test_rejects_an_api_of_workers_only():
    from modules.api.config import ApiConfig, MigrationsConfig, ServiceConfig

    worker = ServiceConfig(name="worker", image_repository="webapp/worker", image_tag="1", metrics_path=None)
    migrations = MigrationsConfig(image_repository="webapp/migrations", image_tag="1")
    with pytest.raises(ConfigError) as raised:
        ApiConfig(service=(worker,), migrations=migrations)
    assert raised.value.key == "service" and "at least one service with a route" in str(raised.value)


def test_rejects_a_canary_of_a_worker():
    # A canary takes a share of the stage's requests (README, "Releasing with a canary"): a worker gets none.
    from modules.api.config import Canary, ServiceConfig

    canary = Canary(image_tag="2", image_digest="sha256:" + "ab" * 32, percent=10)
    with pytest.raises(ConfigError) as raised:
        ServiceConfig(name="worker", image_repository="webapp/worker", image_tag="1", metrics_path=None, canary=canary)
    assert raised.value.key == "canary" and "a worker has none" in str(raised.value)


# --- the synthesized stack ---------------------------------------------------------------------


def test_the_worker_has_no_route_listener_or_probe(stack):
    assert "dev-api/Api/Worker/Service" in paths(stack, "aws_ecs_service")
    for resource_type in ("aws_lb_target_group", "aws_lb_listener", "aws_api_gateway_resource",
                          "aws_api_gateway_method", "aws_api_gateway_integration", "aws_api_gateway_method_settings",
                          "aws_cloudwatch_metric_alarm"):
        assert not {p for p in paths(stack, resource_type) if "/Worker/" in p}, resource_type
    service = stack.resource("aws_ecs_service", "Api/Worker/Service")
    for key in ("load_balancer", "health_check_grace_period_seconds", "alarms", "depends_on"):
        assert key not in service, key
    assert service["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
    assert service["network_configuration"]["assign_public_ip"] is False
    # The routed services keep theirs.
    assert stack.resource("aws_ecs_service", "Api/Service1/Service")["load_balancer"]


def test_the_worker_logs_reads_its_secret_and_runs_one_container(stack):
    (task,) = [t for t in stack.resources("aws_ecs_task_definition").values() if t["family"] == "webapp-dev-worker"]
    (container,) = json.loads(task["container_definitions"])
    assert container["name"] == "worker" and container["essential"] is True
    assert container["portMappings"] == [] and "healthCheck" not in container
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    group = stack.resource("aws_cloudwatch_log_group", "Api/Worker/LogGroup")
    assert group["name"] == "/api/webapp-dev/service/worker"
    assert container["logConfiguration"]["options"]["awslogs-group"] == \
        "${aws_cloudwatch_log_group.Api_Worker_LogGroup_99577593.name}"
    assert [s["name"] for s in container["secrets"]] == ["PAYMENTS_API_KEY"]
    assert {"name": "QUEUE", "value": "jobs"} in container["environment"]


def test_the_worker_scales_on_cpu_and_memory_only(stack):
    names = {p["name"]: p for p in stack.resources("aws_appautoscaling_policy").values()}
    mine = {name for name in names if name.startswith("webapp-dev-worker-")}
    assert mine == {"webapp-dev-worker-cpu", "webapp-dev-worker-memory"}
    target = stack.resource("aws_appautoscaling_target", "Api/Worker/ScalingTarget")
    assert target["resource_id"].endswith("/${aws_ecs_service.Api_Worker_Service_06001D5F.name}")
    assert (target["min_capacity"], target["max_capacity"]) == (1, 3)


def test_adding_a_worker_keeps_every_address_and_does_not_redeploy_the_stage(synth, stack):
    base = synth.stack("dev-api")
    for resource_type, names in base.json["resource"].items():
        assert set(names) <= set(stack.json["resource"][resource_type]), resource_type
    before = base.resource("aws_api_gateway_deployment", "Api/Gateway/Deployment")["triggers"]["routes"]
    after = stack.resource("aws_api_gateway_deployment", "Api/Gateway/Deployment")["triggers"]["routes"]
    assert before == after
    # No stage variable names a worker's origin (it has no listener; `canary` routes through them).
    stage = stack.resource("aws_api_gateway_stage", "Api/Gateway/Stage")
    assert stage["variables"] == base.resource("aws_api_gateway_stage", "Api/Gateway/Stage")["variables"]
    assert not [name for name in stage["variables"] if "worker" in name]


def test_outputs_and_dashboard_show_the_worker_without_a_probe(stack):
    (metrics,) = [o["value"] for k, o in stack.json["output"].items() if k.startswith("Api_HealthMetrics_")]
    assert set(metrics) == {"service1", "service2"}
    (names,) = [o["value"] for k, o in stack.json["output"].items() if k.startswith("Api_ServiceNames_")]
    assert "worker" in names
    (dashboard,) = stack.resources("aws_cloudwatch_dashboard").values()
    widgets = json.loads(dashboard["dashboard_body"])["widgets"]
    titles = [w["properties"].get("title", w["properties"].get("markdown", "")) for w in widgets]
    mine = [t for t in titles if t.startswith("worker") or t == "## worker"]
    assert mine == ["## worker", "worker: running tasks", "worker: CPU / memory (%)"]
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    assert len(alarms["properties"]["alarms"]) == 4  # service1's and service2's two each


def test_the_worker_variant_matches_its_snapshot(stack, snapshot):
    assert stack.json == snapshot.use_extension(JSONSnapshotExtension)


def test_the_worker_variant_validates(worker_synth, terraform, tmp_path):
    from tests.harness.jobs import validate_stacks

    result = validate_stacks(worker_synth.outdir / "stacks", ["dev-api"], terraform, tmp_path)
    ok, diagnostics = result["dev-api"]
    assert ok, diagnostics


def test_the_worker_variant_has_no_unexplained_checkov_failure(worker_synth):
    from tests.harness.checkov import CHECKOV, load_suppressions, run_checkov

    require(CHECKOV.exists(), f"checkov is not installed at {CHECKOV} (run `make checkov-venv`)")
    failures, passed = run_checkov(worker_synth.outdir / "stacks")
    assert passed["dev-api"] > 0
    suppressions = load_suppressions()
    unexplained = [f for f in failures if not any(s.matches(f) for s in suppressions)]
    assert not unexplained, "\n".join(map(str, unexplained))
