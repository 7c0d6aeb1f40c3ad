"""Canary releases at the API edge (issue 18): the api stack with and without a canary in the release file.

Expected values come from the environment files (dev: service1 on 8080 from `webapp/service1`, service2
on 8081) and from API Gateway's documented canary shape (CanarySettings: deploymentId, percentTraffic,
stageVariableOverrides, useStageCache; API Gateway REST API reference), not from the code under test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from modules.core.errors import ConfigError
from modules.environment import load_environments
from tests.conftest import require
from tests.harness.checkov import CHECKOV, load_suppressions, run_checkov
from tests.harness.project import ENVIRONMENTS_DIR
from tests.harness.synth import Stack, Synthesized, synthesize

CANDIDATE_DIGEST = "sha256:" + "cd" * 32
STABLE_DIGEST = "sha256:" + "ab" * 32
# dev.release.hcl with service1 pinned and a canary of service1 taking 10 % of the stage's requests.
CANARY_RELEASE = f"""
service "service1" {{
  image_repository = "webapp/service1"
  image_tag        = "1111111"
  image_digest     = "{STABLE_DIGEST}"
}}

canary "service1" {{
  image_repository = "webapp/service1"
  image_tag        = "2222222"
  image_digest     = "{CANDIDATE_DIGEST}"
  percent          = 10
}}
"""


@pytest.fixture(scope="session")
def canary_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """dev with the canary release above (the session's `synth` is the same files without a canary)."""
    directory = tmp_path_factory.mktemp("canary-variant") / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, directory)
    (directory / "dev.release.hcl").write_text(CANARY_RELEASE)
    return synthesize(load_environments(directory, ("dev",)), directory.parent / "cdktf.out")


def ref(resource_type: str, config: dict, attribute: str = "id") -> str:
    return f"${{{resource_type}.{config['//']['metadata']['uniqueId']}.{attribute}}}"


def under(stack: Stack, part: str) -> list[tuple[str, str]]:
    """(type, construct path) of every resource whose path holds `part`."""
    return sorted((kind, config["//"]["metadata"]["path"]) for kind, _, config in stack.all_resources()
                  if part in config["//"]["metadata"]["path"])


# Without a canary ------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ["dev", "stage", "prod"])
def test_without_a_canary_nothing_of_one_exists(synth, env):
    stack = synth.stack(f"{env}-api")
    assert under(stack, "/Canary/") == []
    (stage,) = stack.resources("aws_api_gateway_stage").values()
    assert "canary_settings" not in stage
    assert stack.json["output"]  # outputs exist; the candidates' maps are empty
    outputs = {k: v["value"] for k, v in stack.json["output"].items()}
    assert [v for k, v in outputs.items() if k.startswith("Api_CanaryServiceNames_")] == [{}]
    assert [v for k, v in outputs.items() if k.startswith("Api_CanaryTaskDefinitionArns_")] == [{}]


# With a canary ---------------------------------------------------------------------------------------

def test_the_candidate_service_target_group_and_listener_exist_only_with_a_canary(canary_synth):
    stack = canary_synth.stack("dev-api")
    assert under(stack, "/Canary/") == sorted([
        ("aws_appautoscaling_policy", "dev-api/Api/Service1/Canary/CpuScaling"),
        ("aws_appautoscaling_policy", "dev-api/Api/Service1/Canary/MemoryScaling"),
        ("aws_appautoscaling_scheduled_action", "dev-api/Api/Service1/Canary/ScheduleNights"),
        ("aws_appautoscaling_scheduled_action", "dev-api/Api/Service1/Canary/ScheduleWorkingHours"),
        ("aws_appautoscaling_target", "dev-api/Api/Service1/Canary/ScalingTarget"),
        ("aws_ecs_service", "dev-api/Api/Service1/Canary/Service"),
        ("aws_ecs_task_definition", "dev-api/Api/Service1/Canary/TaskDefinition"),
        ("aws_lb_listener", "dev-api/Api/Service1/Canary/Listener"),
        ("aws_lb_target_group", "dev-api/Api/Service1/Canary/TargetGroup"),
    ])


def test_the_candidate_runs_the_release_files_image_beside_the_stable_one(canary_synth):
    stack = canary_synth.stack("dev-api")
    stable = stack.resource("aws_ecs_task_definition", "Api/Service1/TaskDefinition")
    candidate = stack.resource("aws_ecs_task_definition", "Api/Service1/Canary/TaskDefinition")
    (stable_app,) = [c for c in json.loads(stable["container_definitions"]) if c["name"] == "service1"]
    (candidate_app,) = [c for c in json.loads(candidate["container_definitions"]) if c["name"] == "service1"]
    assert stable_app["image"].endswith(f"/webapp/service1@{STABLE_DIGEST}")
    assert candidate_app["image"].endswith(f"/webapp/service1@{CANDIDATE_DIGEST}")
    # The same secrets, log group, environment, roles and size: only the image differs.
    assert {k: v for k, v in candidate_app.items() if k != "image"} == {k: v for k, v in stable_app.items()
                                                                        if k != "image"}
    for key in ("execution_role_arn", "task_role_arn", "cpu", "memory", "runtime_platform"):
        assert candidate[key] == stable[key], key
    assert candidate["family"] == "webapp-dev-service1-canary"


def test_the_candidate_service_shares_subnets_security_group_and_scaling_bounds(canary_synth):
    stack = canary_synth.stack("dev-api")
    stable = stack.resource("aws_ecs_service", "Api/Service1/Service")
    candidate = stack.resource("aws_ecs_service", "Api/Service1/Canary/Service")
    assert candidate["name"] == "webapp-dev-service1-canary"
    assert candidate["network_configuration"] == stable["network_configuration"]
    assert candidate["task_definition"] == ref("aws_ecs_task_definition", stack.resource(
        "aws_ecs_task_definition", "Api/Service1/Canary/TaskDefinition"), "arn")
    group = stack.resource("aws_lb_target_group", "Api/Service1/Canary/TargetGroup")
    assert candidate["load_balancer"] == [{"target_group_arn": ref("aws_lb_target_group", group, "arn"),
                                           "container_name": "service1", "container_port": 8080}]
    assert candidate["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
    scaling = stack.resource("aws_appautoscaling_target", "Api/Service1/Canary/ScalingTarget")
    stable_scaling = stack.resource("aws_appautoscaling_target", "Api/Service1/ScalingTarget")
    assert (scaling["min_capacity"], scaling["max_capacity"]) == (stable_scaling["min_capacity"],
                                                                  stable_scaling["max_capacity"])
    assert scaling["resource_id"].endswith(f"/{ref('aws_ecs_service', candidate, 'name')}")


def test_the_candidate_has_its_own_target_group_and_listener_with_the_same_probe(canary_synth):
    stack = canary_synth.stack("dev-api")
    group = stack.resource("aws_lb_target_group", "Api/Service1/Canary/TargetGroup")
    stable = stack.resource("aws_lb_target_group", "Api/Service1/TargetGroup")
    assert group["name"] == "webapp-dev-service1-canary"
    assert group["health_check"] == stable["health_check"]
    assert (group["port"], group["protocol"], group["target_type"]) == (8080, "TCP", "ip")
    listener = stack.resource("aws_lb_listener", "Api/Service1/Canary/Listener")
    # dev's service1 listens on 8080; its canary's listener defaults to 8080 + 10000.
    assert listener["port"] == 18080
    assert listener["default_action"] == [{"type": "forward", "target_group_arn": ref("aws_lb_target_group", group,
                                                                                       "arn")}]


def test_the_stage_canary_carries_the_share_and_the_override_for_that_service_only(canary_synth):
    stack = canary_synth.stack("dev-api")
    (stage,) = stack.resources("aws_api_gateway_stage").values()
    (nlb,) = stack.resources("aws_lb").values()
    dns = ref("aws_lb", nlb, "dns_name")
    settings = stage["canary_settings"]
    listener = stack.resource("aws_lb_listener", "Api/Service1/Canary/Listener")
    assert listener["port"] == 18080
    assert settings == {
        # One deployment for both: the routes do not change, only where service1's variable points.
        "deployment_id": stage["deployment_id"],
        "percent_traffic": 10,
        # The candidate's listener, by reference: the stage is updated after it exists, and on promote or
        # abort before it is destroyed.
        "stage_variable_overrides": {"origin_service1": f"{dns}:{ref('aws_lb_listener', listener, 'port')}"},
        # Not the stable version's cached answers (one cache key when stage and canary share a deployment).
        "use_stage_cache": False,
    }
    assert stage["variables"] == {"origin_service1": f"{dns}:8080", "origin_service2": f"{dns}:8081"}
    candidate = stack.resource("aws_ecs_service", "Api/Service1/Canary/Service")
    assert f"aws_ecs_service.{candidate['//']['metadata']['uniqueId']}" in stage["depends_on"]
    assert candidate["wait_for_steady_state"] is True


def test_the_other_services_routes_and_resources_are_untouched(synth, canary_synth):
    without, with_canary = synth.stack("dev-api"), canary_synth.stack("dev-api")

    def service2(stack: Stack) -> dict:
        return {name: config for kind, name, config in stack.all_resources() if "/Service2/" in
                config["//"]["metadata"]["path"]}

    assert service2(with_canary) == service2(without)
    for kind in ("aws_api_gateway_integration", "aws_api_gateway_method", "aws_api_gateway_resource"):
        assert with_canary.resources(kind) == without.resources(kind), kind


def test_the_candidate_is_in_the_outputs_verify_reads(canary_synth):
    stack = canary_synth.stack("dev-api")
    outputs = {k.rsplit("_", 1)[0]: v["value"] for k, v in stack.json["output"].items()}
    candidate = stack.resource("aws_ecs_service", "Api/Service1/Canary/Service")
    assert outputs["Api_CanaryServiceNames"] == {"service1": "webapp-dev-service1-canary"}
    assert outputs["Api_CanaryTaskDefinitionArns"] == {"service1": ref("aws_ecs_task_definition", stack.resource(
        "aws_ecs_task_definition", "Api/Service1/Canary/TaskDefinition"), "arn")}
    assert candidate["name"] == outputs["Api_CanaryServiceNames"]["service1"]


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def test_canary_variant_matches_snapshot(canary_synth, snapshot_json):
    assert canary_synth.stacks["dev-api"] == snapshot_json


def test_canary_variant_passes_terraform_validate(canary_synth, terraform, tmp_path):
    from tests.harness.jobs import validate_stacks

    result = validate_stacks(canary_synth.outdir / "stacks", ["dev-api"], terraform, tmp_path)
    ok, diagnostics = result["dev-api"]
    assert ok, diagnostics


def test_canary_variant_has_no_unexplained_checkov_failures(canary_synth, tmp_path):
    require(CHECKOV.exists(), f"checkov is not installed at {CHECKOV} (run `make checkov-venv`)")
    only = tmp_path / "stacks" / "dev-api"
    shutil.copytree(canary_synth.outdir / "stacks" / "dev-api", only)
    failures, passed = run_checkov(tmp_path / "stacks")
    assert passed["dev-api"] > 0
    suppressions = load_suppressions()
    unexplained = [f for f in failures if not any(s.matches(f) for s in suppressions)]
    assert not unexplained, "\n".join(map(str, unexplained))


# The release file's canary block --------------------------------------------------------------------

def write(directory: Path, text: str) -> None:
    (directory / "dev.release.hcl").write_text(text)


def load_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_environments(directory, ("dev",))
    return caught.value


def test_rejects_a_canary_of_a_service_the_environment_does_not_run_with_its_line(environments_copy):
    write(environments_copy, CANARY_RELEASE.replace('canary "service1"', 'canary "service9"'))
    error = load_error(environments_copy)
    assert 'dev.release.hcl:8: canary[0] "service9" is not a service of this environment' in str(error)


def test_rejects_a_second_canary_of_the_same_service(environments_copy):
    second = CANARY_RELEASE[CANARY_RELEASE.index('canary "service1"'):]
    write(environments_copy, CANARY_RELEASE + "\n" + second)
    error = load_error(environments_copy)
    assert "canary[1] must be at most one canary per service" in str(error), str(error)


@pytest.mark.parametrize("percent", ["0", "100", "-5"])
def test_rejects_a_share_outside_api_gateways_range(environments_copy, percent):
    write(environments_copy, CANARY_RELEASE.replace("percent          = 10", f"percent          = {percent}"))
    error = load_error(environments_copy)
    assert "canary[0].percent must be above 0 and below 100" in str(error), str(error)


def test_rejects_two_canaries_with_different_shares(environments_copy):
    other = CANARY_RELEASE[CANARY_RELEASE.index('canary "service1"'):].replace("service1", "service2").replace(
        "percent          = 10", "percent          = 25")
    write(environments_copy, CANARY_RELEASE + "\n" + other)
    error = load_error(environments_copy)
    assert "dev.release.hcl" in str(error) and "one share for every running canary" in str(error), str(error)


def test_rejects_a_canary_written_into_the_environment_file(environments_copy):
    path = environments_copy / "dev.hcl"
    text = path.read_text()
    marker = 'service "service1" {\n'
    assert marker in text
    path.write_text(text.replace(marker, marker + f'    canary {{\n      image_tag = "2222222"\n'
                                                  f'      image_digest = "{CANDIDATE_DIGEST}"\n'
                                                  "      percent = 10\n    }\n", 1))
    error = load_error(environments_copy)
    assert error.key == "api.service[0].canary" and "dev.release.hcl" in str(error), str(error)


def test_rejects_a_canary_listener_port_another_listener_uses(environments_copy):
    path = environments_copy / "dev.hcl"
    text = path.read_text()
    marker = 'service "service1" {\n'
    path.write_text(text.replace(marker, marker + "    canary_listener_port = 8081\n", 1))
    error = load_error(environments_copy)
    assert error.key == "api.service[0].canary_listener_port"
    assert "8081 is service 'service2''s" in str(error), str(error)


def test_a_candidates_target_group_name_is_checked_only_while_a_canary_runs():
    # Elastic Load Balancing: a target group name is at most 32 characters. "<prefix>-<service>-canary"
    # exists only with a canary, so a long prefix is refused then, and not before.
    from modules.api.config import ApiConfig, Canary, MigrationsConfig, ServiceConfig
    from modules.core.errors import ConfigError

    prefix = "abcdefghij-klmnopqr"  # 19 + "-service1" = 28 characters; + "-canary" = 35
    migrations = MigrationsConfig(image_repository="webapp/migrations", image_tag="1")
    plain = ServiceConfig(name="service1", path_prefix="service1", container_port=8080,
                          image_repository="webapp/service1", image_tag="1")
    ApiConfig(service=(plain,), migrations=migrations).check_names(prefix)
    canary = Canary(image_tag="2", image_digest="sha256:" + "ab" * 32, percent=10)
    with_canary = ServiceConfig(name="service1", path_prefix="service1", container_port=8080,
                                image_repository="webapp/service1", image_tag="1", canary=canary)
    with pytest.raises(ConfigError) as raised:
        ApiConfig(service=(with_canary,), migrations=migrations).check_names(prefix)
    assert "abcdefghij-klmnopqr-service1-canary" in str(raised.value) and "1..32" in str(raised.value)
