"""Saved plans end to end: real terraform and the aws provider against the emulator.

The stacks are the small environment of tests/harness/small_stacks.py, named as prod's
(`prod-network`, `prod-database`, `prod-api`, `prod-frontend`; environments/prod.hcl is marked
`production = true`, so the stateful guard applies), with their state in a bucket and lock
table of this module's own: it runs alone or in any order with the other modules. So its tests, steps
on that one environment in this order, run as a background job from collection on, beside the rest of
the suite (tests/harness/scenarios.py); each test reports its step.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from delivery import DeployError
from delivery.terraform import (
    DRIFT,
    ApplyOptions,
    PlanOptions,
    Refused,
    Terraform,
    _apply_in_order,
    apply_plans,
    drift,
    environment_dependencies,
    plan_and_apply,
    plan_environment,
)
from modules.environment import load_environments
from tests.conftest import BACKGROUND_OUTDIRS, terraform_cli
from tests.emulator.conftest import session
from tests.harness import small_stacks
from tests.harness.emulator import emulator_env
from tests.harness.project import ENVIRONMENTS_DIR, PROJECT
from tests.harness.scenarios import Scenarios

ENV = "prod"
DATABASE = "aws_db_instance.db"


class Environment:
    """The small prod environment on the emulator, and what the tests change in it."""

    def __init__(self, emulator, root: Path) -> None:  # type: ignore[no-untyped-def]
        self.emulator = emulator
        self.root = root
        self.stacks_dir = root / "stacks"
        suffix = uuid.uuid4().hex[:8]
        self.bucket, self.table = f"saved-plans-{suffix}", f"saved-plans-locks-{suffix}"
        emulator.boto3_client("s3").create_bucket(
            Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        emulator.boto3_client("dynamodb").create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}])
        self.settings: dict[str, object] = {}
        environments = load_environments(ENVIRONMENTS_DIR, (ENV,))
        self.production = environments.get(ENV).production
        dependencies = environment_dependencies(environments, ENV)
        self.plan_options = PlanOptions(environment=ENV, stacks=tuple(dependencies), dependencies=dependencies,
                                        production=self.production)
        self.apply_options = ApplyOptions(environment=ENV, stacks=tuple(dependencies), dependencies=dependencies,
                                          production=self.production)
        self.out = io.StringIO()
        self.terraform = Terraform.create(root / "cli", self.out, "30s", emulator_env())
        self.plans = 0

    def write(self, **settings: object) -> None:
        """The stacks as small_stacks builds them with `settings` (on top of the earlier ones)."""
        self.settings.update(settings)
        small_stacks.write(self.stacks_dir, small_stacks.stacks(
            self.emulator.endpoint, self.bucket, self.table, ENV, **self.settings))  # type: ignore[arg-type]

    def plan(self, **overrides: object):  # type: ignore[no-untyped-def]
        self.plans += 1
        directory = self.root / f"plans-{self.plans}"
        return directory, plan_environment(self.terraform, self.stacks_dir, directory,
                                           replace(self.plan_options, **overrides))

    def serial(self, tier: str) -> int:
        body = self.emulator.boto3_client("s3").get_object(Bucket=self.bucket, Key=f"{ENV}/{tier}.tfstate")["Body"]
        return int(json.loads(body.read())["serial"])


def start_environment() -> Environment:
    """Applied once the way a human does (`apply prod` without saved plans: group by group), on the
    session's emulator."""
    terraform_cli(SETUP_ROOT / "terraform-cli")  # skips (fails in CI) without terraform
    env = Environment(session().emulator, SETUP_ROOT / "environment")
    assert env.production, "environments/prod.hcl is the environment marked production"
    env.write()
    plan_and_apply(env.terraform, env.stacks_dir, env.root / "first", env.plan_options, env.apply_options)
    return env


SETUP_ROOT = BACKGROUND_OUTDIRS / "saved-plans"
SCENARIOS = Scenarios("saved-plans", start_environment)


@SCENARIOS.test
def test_saved_plans_apply_in_order_and_the_second_plan_is_clean(environment):
    environment.write(revision="2", log_retention_days=14)
    directory, summary = environment.plan()
    counts = {s.stack: s.counts for s in summary.stacks}
    assert counts["prod-network"] == {"create": 0, "update": 1, "replace": 1, "delete": 0}
    assert counts["prod-frontend"]["update"] == 1
    assert counts["prod-database"] == counts["prod-api"] == {"create": 0, "update": 0, "replace": 0, "delete": 0}
    saved = json.loads((directory / "summary.json").read_text())
    assert saved["commit"] and saved["synth_hash"].startswith("sha256:") and saved["terraform_version"]
    assert saved["provider_versions"]["registry.terraform.io/hashicorp/aws"] == "5.100.0"
    assert (directory / "prod-network.tfplan").is_file() and (directory / "prod-network.tfplan.json").is_file()
    applied = apply_plans(environment.terraform, environment.stacks_dir, directory, environment.apply_options)
    assert applied == ["prod-network", "prod-frontend"]
    # The second plan is `drift`: it plans every stack and finds nothing to do.
    assert drift(environment.terraform, environment.stacks_dir, environment.root / "drift-clean",
                 environment.plan_options) == 0


@SCENARIOS.test
def test_a_stack_changed_after_its_plan_is_refused_as_stale_and_nothing_is_applied(environment):
    environment.write(revision="3", log_retention_days=30)
    directory, _ = environment.plan()
    network, frontend = environment.serial("network"), environment.serial("frontend")
    # Someone applies prod-frontend after the plan was approved.
    environment.terraform.check(environment.stacks_dir / "prod-frontend", "apply", "-auto-approve", "-input=false")
    changed = environment.serial("frontend")
    with pytest.raises(Refused) as refused:
        apply_plans(environment.terraform, environment.stacks_dir, directory, environment.apply_options)
    assert refused.value.reasons == [
        "prod-frontend: Saved plan is stale: its state changed after the plan was made: plan again"]
    assert (environment.serial("network"), environment.serial("frontend")) == (network, changed)
    assert changed == frontend + 1
    # Terraform refuses too, and its refusal becomes one line (the race after our check).
    frontend_only = replace(environment.apply_options, stacks=("prod-frontend",))
    shown = json.loads((directory / "prod-frontend.tfplan.json").read_text())
    from delivery.summary import StackChanges

    with pytest.raises(DeployError) as failed:
        _apply_in_order(environment.terraform, environment.stacks_dir, directory, frontend_only,
                        [StackChanges.from_plan_json("prod-frontend", shown)])
    assert str(failed.value).splitlines()[0].startswith("prod-frontend: Saved plan is stale: ")
    assert environment.serial("frontend") == changed
    environment.terraform.check(environment.stacks_dir / "prod-network", "apply", "-auto-approve", "-input=false")


@SCENARIOS.test
def test_a_release_refuses_an_api_plan_that_also_changes_an_alarm(environment):
    environment.write(image="nginx:2", alarm_threshold=90)
    directory, summary = environment.plan(stacks=("prod-api",), release=True)
    before = environment.serial("api")
    release = replace(environment.apply_options, release=True)
    with pytest.raises(Refused) as refused:
        apply_plans(environment.terraform, environment.stacks_dir, directory, release)
    (reason,) = refused.value.reasons
    assert reason.startswith("infrastructure changes pending in prod-api: run the infrastructure pipeline first")
    assert "aws_cloudwatch_metric_alarm.cpu (update)" in reason
    assert environment.serial("api") == before
    # The image alone is a release: task definition and service only.
    environment.write(alarm_threshold=80)
    directory, summary = environment.plan(stacks=("prod-api",), release=True)
    assert {c.type for c in summary.stacks[0].changes} <= {"aws_ecs_task_definition", "aws_ecs_service"}
    assert apply_plans(environment.terraform, environment.stacks_dir, directory, release) == ["prod-api"]


@SCENARIOS.test
def test_drift_reports_a_change_made_behind_terraforms_back(environment):
    logs = environment.emulator.boto3_client("logs")
    current = environment.settings.get("log_retention_days", 7)
    logs.put_retention_policy(logGroupName=f"/{ENV}/edge", retentionInDays=1)
    try:
        code = drift(environment.terraform, environment.stacks_dir, environment.root / "drift", environment.plan_options)
        assert code == DRIFT
        assert "DRIFT in prod-frontend" in environment.out.getvalue()
        assert "aws_cloudwatch_log_group.edge" in environment.out.getvalue()
    finally:
        logs.put_retention_policy(logGroupName=f"/{ENV}/edge", retentionInDays=current)


@SCENARIOS.test
def test_production_refuses_to_replace_the_database_unless_allowed(environment):
    environment.write(db_name="app2")
    directory, summary = environment.plan()
    (database,) = [s for s in summary.stacks if s.stack == "prod-database"]
    assert [(c.address, c.action) for c in database.stateful()] == [(DATABASE, "replace")]
    assert "**STATEFUL: database**" in (directory / "summary.md").read_text()
    before = environment.serial("database")
    with pytest.raises(Refused) as refused:
        apply_plans(environment.terraform, environment.stacks_dir, directory, environment.apply_options)
    assert refused.value.reasons == [
        f"prod-database: {DATABASE} is a database and would be replaced in production prod: "
        f"refused unless --allow-replace {DATABASE}"]
    assert environment.serial("database") == before
    allowed = replace(environment.apply_options, allow_replace=(DATABASE,))
    assert apply_plans(environment.terraform, environment.stacks_dir, directory, allowed) == ["prod-database"]


@SCENARIOS.test
def test_ctrl_c_during_an_apply_stops_terraform_cleanly_and_leaves_no_lock(environment):
    environment.write(revision="4", slow_seconds=120)
    directory, _ = environment.plan(stacks=("prod-network",))
    command = [sys.executable, "-m", "delivery", "apply", ENV, "--plans", str(directory),
               "--stacks-dir", str(environment.stacks_dir), "--lock-timeout", "30s", "--yes"]
    # emulator_env blanks AWS_PROFILE for terraform; boto3 (the delivery process) wants it unset.
    env = {key: value for key, value in {**os.environ, **emulator_env()}.items() if key != "AWS_PROFILE"}
    process = subprocess.Popen(command, cwd=PROJECT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 600
    for line in process.stdout:
        output.append(line)
        if "Provisioning with 'local-exec'" in line or "terraform_data.slow: Creating..." in line:
            break
        assert time.monotonic() < deadline, "".join(output)
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=600)
    output.append(rest)
    assert process.returncode == 130, "".join(output) + errors
    assert errors.count("\n") == 1 and errors.startswith("error: interrupted: terraform apply in prod-network"), errors
    assert "Traceback" not in errors
    assert "SIGINT: asking terraform to stop" in "".join(output)
    locks = environment.emulator.boto3_client("dynamodb").scan(TableName=environment.table)["Items"]
    held = [item["LockID"]["S"] for item in locks if not item["LockID"]["S"].endswith("-md5")]
    assert held == [], f"stale lock left: {held}"
    # And the next run takes the lock at once.
    environment.write(slow_seconds=1)
    environment.plan(stacks=("prod-network",))
