"""The ADOT collector sidecar of every API service task: what it scrapes, where it writes, with what rights.

The sidecar is the API tier's; its contract (jobs, labels, parameters) is the CI/CD
tier's, so these tests read both sides: the API stacks and `shared-cicd`.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.harness.edits import VARIANT, load_error, shared_with
from tests.harness.policies import document_of, resource_named, role_policy, statements

# The collector sidecar's container name (modules/api/README.md).
CONTAINER = "otel-collector"

ENVS = ("dev", "stage", "prod")
SERVICES = {"Service1": ("service1", 8080), "Service2": ("service2", 8081)}
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/aws-otel-collector:v0.40.0"


def task_containers(stack, path_suffix: str) -> dict[str, dict]:
    definition = stack.resource("aws_ecs_task_definition", path_suffix)
    return {c["name"]: c for c in json.loads(definition["container_definitions"])}


def collector_config(container: dict) -> dict:
    (variable,) = container["environment"]
    assert variable["name"] == "AOT_CONFIG_CONTENT"
    return yaml.safe_load(variable["value"])


@pytest.mark.parametrize("env", ENVS)
def test_every_service_task_runs_one_hardened_collector(synth, env):
    stack = synth.stack(f"{env}-api")
    for construct, (service, _) in SERVICES.items():
        found = task_containers(stack, f"Api/{construct}/TaskDefinition")
        assert set(found) == {service, CONTAINER}
        sidecar, app = found[CONTAINER], found[service]
        assert sidecar["image"] == IMAGE
        assert sidecar["essential"] is False and app["essential"] is True
        assert sidecar["readonlyRootFilesystem"] is True and sidecar["privileged"] is False
        assert sidecar["user"] == "10001" and sidecar["portMappings"] == []
        assert sidecar["logConfiguration"]["options"]["awslogs-group"] == app["logConfiguration"]["options"][
            "awslogs-group"]
        assert sidecar["logConfiguration"]["options"]["awslogs-stream-prefix"] == CONTAINER
    migrations = task_containers(stack, "Api/Migrations/TaskDefinition")
    assert CONTAINER not in migrations


@pytest.mark.parametrize("env", ENVS)
def test_collector_scrapes_the_metrics_path_and_writes_to_the_workspace(synth, env):
    stack = synth.stack(f"{env}-api")
    for construct, (service, port) in SERVICES.items():
        config = collector_config(task_containers(stack, f"Api/{construct}/TaskDefinition")[CONTAINER])
        jobs = {j["job_name"]: j for j in config["receivers"]["prometheus"]["config"]["scrape_configs"]}
        assert {name: job["metrics_path"] for name, job in jobs.items()} == {"metrics": "/metrics"}
        for job in jobs.values():
            (target,) = job["static_configs"]
            assert target == {"targets": [f"localhost:{port}"], "labels": {"environment": env, "service": service}}
            assert job["scrape_interval"] == "15s"
        exporter = config["exporters"]["prometheusremotewrite"]
        assert exporter["endpoint"] == "${data.aws_ssm_parameter.Api_CollectorRemoteWriteUrl_0B6716BD.value}"
        assert exporter["auth"] == {"authenticator": "sigv4auth"}
        assert config["extensions"]["sigv4auth"] == {"region": "eu-west-1", "service": "aps"}
        pipeline = config["service"]["pipelines"]["metrics"]
        assert pipeline["receivers"] == ["prometheus"] and pipeline["exporters"] == ["prometheusremotewrite"]
        assert config["service"]["extensions"] == ["sigv4auth"]


@pytest.mark.parametrize("env", ENVS)
def test_api_reads_the_parameters_shared_cicd_writes(synth, env):
    read = {d["name"] for d in synth.stack(f"{env}-api").data("aws_ssm_parameter").values()}
    written = {p["name"] for p in synth.stack("shared-cicd").resources("aws_ssm_parameter").values()
               if p["provider"] == f"aws.{env}"}
    assert read == written == {f"/webapp-{env}/monitoring/workspace-arn", f"/webapp-{env}/monitoring/remote-write-url"}


def test_rules_read_the_jobs_and_labels_the_collector_writes(synth):
    config = collector_config(task_containers(synth.stack("dev-api"), "Api/Service1/TaskDefinition")[CONTAINER])
    jobs = {j["job_name"] for j in config["receivers"]["prometheus"]["config"]["scrape_configs"]}
    (labels,) = {tuple(sorted(j["static_configs"][0]["labels"])) for j in
                 config["receivers"]["prometheus"]["config"]["scrape_configs"]}
    namespace = next(iter(synth.stack("shared-cicd").resources("aws_prometheus_rule_group_namespace").values()))
    (group,) = yaml.safe_load(namespace["data"])["groups"]
    expressions = {r["alert"]: r["expr"] for r in group["rules"]}
    assert jobs == {"metrics"}
    assert f"by ({', '.join(labels)})" in expressions["ServiceServerErrorRate"]


def test_collector_image_is_pulled_by_every_service_execution_role_only(synth):
    stack = synth.stack("shared-cicd")
    (policy,) = [p for p in stack.resources("aws_ecr_repository_policy").values()
                 if p["repository"].startswith("${aws_ecr_repository.Registry_AwsOtelCollector_")]
    (statement,) = document_of(stack, policy["policy"])["statement"]
    roles = sorted(v.rsplit("/", 1)[1] for v in statement["condition"][0]["values"])
    assert roles == sorted(f"webapp-{env}-{s}-execution" for env in ENVS for s in ("service1", "service2"))


@pytest.fixture(scope="module")
def shared_mode(cicd_variant):
    # cicd_variant (tests/conftest.py) sets prometheus_workspaces = "shared", among other shapes.
    assert re.search(r'prometheus_workspaces += "shared"', VARIANT)
    return cicd_variant


def test_shared_workspace_collectors_assume_their_environments_ingest_role(shared_mode):
    api = shared_mode.stack("dev-api")
    config = collector_config(task_containers(api, "Api/Service1/TaskDefinition")[CONTAINER])
    ingest = "${data.aws_ssm_parameter.Api_CollectorIngestRoleArn_"
    assert config["extensions"]["sigv4auth"]["assume_role"]["arn"].startswith(ingest)
    grants = [p for p in api.resources("aws_iam_role_policy").values() if p["name"] == "write-metrics"]
    for grant in grants:
        (statement,) = api.data("aws_iam_policy_document")[grant["policy"].split(".")[2]]["statement"]
        assert statement["actions"] == ["sts:AssumeRole"] and statement["resources"][0].startswith(ingest)
    # The ingest role trusts exactly the task roles the API stack creates for its services.
    task_roles = {r["name"] for r in api.resources("aws_iam_role").values()
                  if r["name"].endswith("-task") and "migrations" not in r["name"]}
    cicd = shared_mode.stack("shared-cicd")
    logical_id, role = resource_named(cicd, "aws_iam_role", "name", "webapp-dev-prometheus-ingest")
    (trust,) = document_of(cicd, role["assume_role_policy"])["statement"]
    assert {v.rsplit("/", 1)[1] for v in trust["condition"][0]["values"]} == task_roles
    assert statements(cicd, role_policy(cicd, logical_id)["policy"])["RemoteWrite"]["actions"] == ["aps:RemoteWrite"]


def test_the_retired_health_alert_key_names_what_replaced_it(environments_copy):
    shared_with(environments_copy, "  health_alert_after_seconds = 120")
    error = load_error(environments_copy)
    assert error.key == "cicd.health_alert_after_seconds" and "UnhealthyHostsAlarm" in str(error)


def test_rejects_a_bad_collector_image_tag(environments_copy):
    shared_with(environments_copy, '  collector_image_tag = "v1 latest"')
    error = load_error(environments_copy)
    assert error.key == "cicd.collector_image_tag" and "Docker tag" in str(error)


def test_rejects_a_bad_metrics_path(environments_copy):
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text().replace('    path_prefix      = "service1"\n',
                                             '    path_prefix      = "service1"\n    metrics_path     = "metrics"\n', 1))
    error = load_error(environments_copy)
    assert error.key == "api.service[0].metrics_path" and "absolute URL path" in str(error)


