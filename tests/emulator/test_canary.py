"""End to end on the emulator: dev-api with a canary, then promoted, then a second canary aborted.

Each step is what the reconciler applies after a `delivery canary ...` commit: the same stack with
another release file. Each is applied to dev-api's own state (a copy of the stack folder with its
backend, `Deployer.copy`), followed at once by a clean second plan; at the end the session's dev-api
is applied back, so the other modules find it as they left it. moto keeps a stage's canary settings
and reports services at their desired count only with the server's fixes (tests/harness/moto_server.py
`keep_stage_canary_settings`, `report_ecs_services_running_their_desired_count`; tests in
test_moto_fixes.py).
"""

from __future__ import annotations

import shutil

import pytest

from modules.core.target import Target
from modules.environment import load_environments
from tests.harness.project import ENVIRONMENTS_DIR
from tests.harness.synth import synthesize

CLUSTER = "webapp-dev-api"
FIRST = "sha256:" + "c1" * 32
SECOND = "sha256:" + "c2" * 32


def canary(digest: str, tag: str, percent: int) -> str:
    return (f'canary "service1" {{\n  image_repository = "webapp/service1"\n  image_tag = "{tag}"\n'
            f'  image_digest = "{digest}"\n  percent = {percent}\n}}\n')


def stable(digest: str, tag: str) -> str:
    return (f'service "service1" {{\n  image_repository = "webapp/service1"\n  image_tag = "{tag}"\n'
            f'  image_digest = "{digest}"\n}}\n')


# The release file after each command, in order (delivery/canary.py writes these shapes).
STEPS = {
    "started": canary(FIRST, "c1c1c1c", 10),                                  # canary start
    "stepped": canary(FIRST, "c1c1c1c", 25),                                  # canary step --percent 25
    "promoted": stable(FIRST, "c1c1c1c"),                                     # canary promote
    "second": stable(FIRST, "c1c1c1c") + canary(SECOND, "c2c2c2c", 10),       # canary start (the next one)
    "aborted": stable(FIRST, "c1c1c1c"),                                      # canary abort
}


@pytest.fixture(scope="module")
def configs(emulator, tmp_path_factory) -> dict[str, str]:
    """dev-api's cdk.tf.json for the emulator target with each step's release file."""
    configs = {}
    for step, release in STEPS.items():
        root = tmp_path_factory.mktemp(f"canary-{step}")
        shutil.copytree(ENVIRONMENTS_DIR, root / "environments")
        (root / "environments" / "dev.release.hcl").write_text(release)
        synthesized = synthesize(load_environments(root / "environments"), root / "cdktf.out",
                                 Target(emulator_endpoint=emulator.endpoint))
        configs[step] = (synthesized.outdir / "stacks" / "dev-api" / "cdk.tf.json").read_text()
    return configs


@pytest.fixture(scope="module")
def applied(deployer, configs):
    """`{step: (second plan or None, what the emulator reports after it)}`; dev-api restored at the end."""
    deployer.apply("dev-api")
    original = (deployer.directory("dev-api") / "cdk.tf.json").read_text()
    results = {}
    try:
        for step, config in configs.items():
            copy = deployer.copy("dev-api", f"canary-{step}", config)
            deployer.run(copy, "apply", "-auto-approve", "-input=false")
            results[step] = deployer.plan_changes(copy)
    finally:
        restore = deployer.copy("dev-api", "canary-restored", original)
        deployer.run(restore, "apply", "-auto-approve", "-input=false")
    assert deployer.plan_changes("dev-api") is None, "dev-api was not restored"
    return results


def stage(emulator):
    gateway = emulator.boto3_client("apigateway")
    (api,) = [a for a in gateway.get_rest_apis()["items"] if a["name"] == "webapp-dev-api"]
    return gateway.get_stage(restApiId=api["id"], stageName="v1")


def services(emulator) -> set[str]:
    ecs = emulator.boto3_client("ecs")
    return {arn.rsplit("/", 1)[-1] for arn in ecs.list_services(cluster=CLUSTER)["serviceArns"]}


@pytest.mark.parametrize("step", list(STEPS))
def test_each_canary_step_applies_and_plans_clean_a_second_time(applied, step):
    assert applied[step] is None, f"{step}: the second plan is not clean:\n{applied[step]}"


def test_a_running_canary_is_reported_by_api_gateway_and_ecs(deployer, configs, emulator):
    """Apply the started canary again (the module's steps left dev-api restored) and read it back."""
    deployer.apply("dev-api")  # the copy takes its backend and lock file (when run alone, too)
    copy = deployer.copy("dev-api", "canary-check", configs["started"])
    try:
        deployer.run(copy, "apply", "-auto-approve", "-input=false")
        settings = stage(emulator)["canarySettings"]
        assert settings["percentTraffic"] == 10 and settings["useStageCache"] is False
        (override,) = settings["stageVariableOverrides"].items()
        assert override[0] == "origin_service1" and override[1].endswith(":18080")
        assert "webapp-dev-service1-canary" in services(emulator)
        ecs = emulator.boto3_client("ecs")
        (candidate,) = ecs.describe_services(cluster=CLUSTER, services=["webapp-dev-service1-canary"])["services"]
        definition = ecs.describe_task_definition(taskDefinition=candidate["taskDefinition"])["taskDefinition"]
        (app,) = [c for c in definition["containerDefinitions"] if c["name"] == "service1"]
        assert app["image"].endswith(f"/webapp/service1@{FIRST}")
    finally:
        restore = deployer.copy("dev-api", "canary-check-restored",
                                (deployer.directory("dev-api") / "cdk.tf.json").read_text())
        deployer.run(restore, "apply", "-auto-approve", "-input=false")
    assert "canarySettings" not in stage(emulator)
    # A deleted ECS service is DRAINING, then INACTIVE (ECS API reference, DeleteService); moto lists it on.
    found = emulator.boto3_client("ecs").describe_services(cluster=CLUSTER, services=["webapp-dev-service1-canary"])
    assert all(service["status"] != "ACTIVE" for service in found["services"]), found["services"]
