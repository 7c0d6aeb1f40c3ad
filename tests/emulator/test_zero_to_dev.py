"""README "Zero to dev", followed to the letter: its commands, read from the README, run in order in a
copy of the project against a moto server of its own (tests/harness/walkthrough.py), from an empty
account to a dev environment whose site and API are there. So the README cannot drift from what works.

The walkthrough starts as a background job when the tests are collected (tests/emulator/conftest.py);
these tests wait for it.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import require
from tests.emulator.conftest import WALKTHROUGH_JOB, WALKTHROUGH_ROOT
from tests.harness import walkthrough as zero_to_dev
from tests.harness.background import JOBS
from tests.harness.walkthrough import README, Walkthrough, commands, environment

# The steps the README promises, in this order (README: "Zero to dev").
STEPS_IN_ORDER = ["make synth", "make bootstrap", "make apply-shared", "make apply-env ENV=dev",
                  "aws secretsmanager put-secret-value", "make apply-env ENV=dev", "make apply-migrations ENV=dev",
                  "make deploy-frontend ENV=dev"]
# What the emulator cannot do, and so the walkthrough leaves to a real account: copying the collector
# from the public registry (no network here), a migration task that ends (moto never stops a Fargate
# task: Fargate does when Flyway exits), and services that answer (moto runs no containers).
REAL_ACCOUNT_ONLY = {"make mirror-collector", "make migrate ENV=dev", "make verify ENV=dev"}
# environments/dev.hcl: the api block's secrets, and its services with their desired counts.
DEV_SECRET = "webapp-dev/api/payments-api-key"
DEV_SERVICES = {"service1": 1, "service2": 1}


def _command(line: str) -> str:
    return line.split(" #", 1)[0].strip()


@pytest.fixture(scope="module")
def walkthrough(terraform) -> Walkthrough:  # noqa: ARG001 - terraform: skips (fails in CI) without it
    require(shutil.which("aws") is not None, "the AWS CLI (aws) is not on PATH: the README's secret step uses it")
    require(shutil.which("make") is not None, "make is not on PATH")
    WALKTHROUGH_ROOT.mkdir(parents=True, exist_ok=True)
    return JOBS.result(WALKTHROUGH_JOB, zero_to_dev.run, WALKTHROUGH_ROOT)


def _outputs(walkthrough: Walkthrough, terraform, stack: str) -> dict:  # type: ignore[no-untyped-def]
    directory = walkthrough.project / "cdktf.out" / "stacks" / stack
    result = terraform.run(directory, "output", "-json", extra_env=environment(walkthrough.emulator.endpoint))
    assert result.returncode == 0, result.stdout + result.stderr
    return {name: value["value"] for name, value in json.loads(result.stdout).items()}


def _one(outputs: dict, prefix: str) -> object:
    (value,) = [v for name, v in outputs.items() if name == prefix or name.startswith(prefix + "_")]
    return value


def test_the_readme_gives_the_steps_in_order_and_names_what_needs_a_real_account():
    listed = commands(README.read_text())
    runnable = [_command(c.line) for c in listed if not c.real_account_only]
    position = 0
    for step in STEPS_IN_ORDER:
        found = [i for i, line in enumerate(runnable) if i >= position and line.startswith(step)]
        assert found, f"README Zero to dev: {step!r} missing or out of order in {runnable}"
        position = found[0] + 1
    assert {_command(c.line) for c in listed if c.real_account_only} == REAL_ACCOUNT_ONLY


def test_every_command_runs_on_the_emulator_and_ends_as_the_readme_says(walkthrough):
    runnable = [c for c in commands(README.read_text()) if not c.real_account_only]
    for step in walkthrough.steps:
        assert step.returncode == step.command.expected_exit, (
            f"`{step.command.line}` exited {step.returncode} after {step.seconds:.0f} s, the README says "
            f"{step.command.expected_exit}:\n{step.output[-6000:]}")
    assert [s.command for s in walkthrough.steps] == runnable


def test_the_first_apply_stops_for_the_secret_the_next_step_sets(walkthrough):
    (stopped,) = [s for s in walkthrough.steps if s.command.expected_exit == 2]
    assert f"secret {DEV_SECRET} has no value" in stopped.output, stopped.output[-3000:]
    (setting,) = [s for s in walkthrough.steps if s.command.line.startswith("aws secretsmanager put-secret-value")]
    assert f"--secret-id {DEV_SECRET}" in setting.command.line


def test_the_site_is_published_behind_its_distribution(walkthrough, terraform):
    outputs = _outputs(walkthrough, terraform, "dev-frontend")
    s3 = walkthrough.emulator.boto3_client("s3")
    page = s3.get_object(Bucket=outputs["bucket_name"], Key="index.html")
    assert page["Body"].read() == (walkthrough.project / "examples" / "site" / "index.html").read_bytes()
    cloudfront = walkthrough.emulator.boto3_client("cloudfront", "us-east-1")
    config = cloudfront.get_distribution(Id=outputs["distribution_id"])["Distribution"]["DistributionConfig"]
    origins = [o["DomainName"] for o in config["Origins"]["Items"]]
    assert any(domain.startswith(f"{outputs['bucket_name']}.s3.") for domain in origins), origins


def test_the_api_runs_every_service_behind_its_stage(walkthrough, terraform):
    outputs = _outputs(walkthrough, terraform, "dev-api")
    ecs = walkthrough.emulator.boto3_client("ecs")
    names = _one(outputs, "Api_ServiceNames")
    assert set(names) == set(DEV_SERVICES)  # type: ignore[arg-type]
    described = ecs.describe_services(cluster=_one(outputs, "Api_ClusterName"),
                                      services=list(names.values()))["services"]  # type: ignore[union-attr]
    assert {s["serviceName"]: (s["status"], s["desiredCount"]) for s in described} == {
        names[name]: ("ACTIVE", count) for name, count in DEV_SERVICES.items()}  # type: ignore[index]
    gateway = walkthrough.emulator.boto3_client("apigateway")
    stage = gateway.get_stage(restApiId=_one(outputs, "Api_Gateway_RestApiId"), stageName="v1")
    assert stage["deploymentId"]
