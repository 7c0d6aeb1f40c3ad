"""`delivery apply-migrations`: the release's Flyway task definition is registered before `migrate` runs it."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from delivery.terraform import Refused, Terraform, apply_migrations, migrations_target, plan_stack
from modules.core.terraform import TerraformCli
from tests.conftest import require


def test_migrations_target_is_the_task_definition_migrate_runs(synth):
    for env in ("dev", "stage", "prod"):
        stack, target = migrations_target(synth.outdir / "stacks", env)
        kind, logical_id = target.split(".")
        assert (stack, kind) == (f"{env}-api", "aws_ecs_task_definition")
        definition = synth.stack(stack).resources(kind)[logical_id]
        assert definition["family"] == f"webapp-{env}-migrations"


class RecordingTerraform(Terraform):
    """Records terraform calls; `show -json` answers with the plan given."""

    def __init__(self, plan: dict[str, object]) -> None:
        super().__init__(cli=None, out=io.StringIO())
        self.plan = plan
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def run(self, directory: Path, *args: str, echo: str | None = None) -> subprocess.CompletedProcess[str]:
        self.calls.append((directory.name, args))
        code = 2 if args[0] == "plan" else 0
        stdout = json.dumps(self.plan) if args[:2] == ("show", "-json") else ""
        return subprocess.CompletedProcess(args, code, stdout=stdout, stderr="")


def change(address: str, actions: list[str]) -> dict[str, object]:
    kind, name = address.split(".")
    return {"address": address, "mode": "managed", "type": kind, "name": name, "change": {"actions": actions}}


def api_stacks(synth, tmp_path: Path) -> Path:
    stacks = tmp_path / "stacks"
    for name in ("dev-network", "dev-api"):
        shutil.copytree(synth.outdir / "stacks" / name, stacks / name)
    return stacks


def test_apply_migrations_applies_only_the_flyway_task_definition_of_the_api_stack(synth, tmp_path):
    stacks = api_stacks(synth, tmp_path)
    _, target = migrations_target(stacks, "dev")
    terraform = RecordingTerraform({"resource_changes": [change(target, ["delete", "create"])]})
    assert apply_migrations(terraform, stacks, "dev", tmp_path / "plans") == ["dev-api"]
    assert [(d, a[0]) for d, a in terraform.calls] == [("dev-api", "init"), ("dev-api", "plan"), ("dev-api", "show"),
                                                       ("dev-api", "show"), ("dev-api", "apply")]
    plan_args = terraform.calls[1][1]
    assert [a for a in plan_args if a.startswith("-target=")] == [f"-target={target}"]
    assert f"-out={tmp_path / 'plans' / 'dev-api.tfplan'}" in plan_args
    assert "-lock-timeout=5m" in plan_args and "-lock-timeout=5m" in terraform.calls[4][1]
    assert terraform.calls[4][1][-1] == str(tmp_path / "plans" / "dev-api.tfplan")


def test_apply_migrations_refuses_a_targeted_plan_that_carries_infrastructure(synth, tmp_path):
    stacks = api_stacks(synth, tmp_path)
    _, target = migrations_target(stacks, "dev")
    terraform = RecordingTerraform({"resource_changes": [
        change(target, ["delete", "create"]), change("aws_iam_role.Api_Migrations_ExecutionRole", ["update"])]})
    with pytest.raises(Refused) as refused:
        apply_migrations(terraform, stacks, "dev", tmp_path / "plans")
    assert refused.value.reasons == ["infrastructure changes pending in dev-api: run the infrastructure pipeline "
                                     "first (aws_iam_role.Api_Migrations_ExecutionRole (update))"]
    assert "apply" not in [a[0] for _, a in terraform.calls]


def test_a_targeted_apply_updates_the_outputs_migrate_reads(tmp_path):
    """What apply-migrations relies on: the output of a targeted resource follows the apply, and
    resources outside the target (the services) keep their old values until the full apply."""
    require(TerraformCli.create(tmp_path / "cli") is not None, "terraform is not on PATH (install Terraform >= 1.11)")
    terraform = Terraform.create(tmp_path / "cli", io.StringIO())
    stack = tmp_path / "stacks" / "demo"
    stack.mkdir(parents=True)

    def write(revision: str) -> None:
        (stack / "cdk.tf.json").write_text(json.dumps({
            "terraform": {"backend": {"local": {"path": "terraform.tfstate"}}},
            "resource": {"terraform_data": {"migrations": {"input": f"migrations:{revision}"},
                                            "service": {"input": f"service:{revision}"}}},
            "output": {"migrations": {"value": "${terraform_data.migrations.output}"},
                       "service": {"value": "${terraform_data.service.output}"}},
        }))

    def outputs() -> dict[str, str]:
        state = json.loads((stack / "terraform.tfstate").read_text())
        return {name: value["value"] for name, value in state["outputs"].items()}

    write("1")
    plan_stack(terraform, stack.parent, tmp_path / "plans", "demo")
    terraform.check(stack, "apply", "-input=false", str(tmp_path / "plans" / "demo.tfplan"))
    write("2")
    plan_stack(terraform, stack.parent, tmp_path / "plans", "demo", targets=("terraform_data.migrations",))
    terraform.check(stack, "apply", "-input=false", str(tmp_path / "plans" / "demo.tfplan"))
    assert outputs() == {"migrations": "migrations:2", "service": "service:1"}


FAKE_TERRAFORM = """#!/bin/sh
# Records the command and environment each terraform child gets, then succeeds with an empty plan.
out="$DUMP_DIR/$(date +%s%N).env"
env > "$out"
echo "ARGS=$*" >> "$out"
case "$*" in
  *version*-json*) echo '{"terraform_version": "1.11.4", "provider_selections": {}}' ;;
  *show*-json*) echo '{"format_version": "1.2", "terraform_version": "1.11.4", "resource_changes": []}' ;;
esac
exit 0
"""


def test_a_delivery_commands_terraform_child_carries_no_node_preload(tmp_path):
    """The lazy provider index is for the synth's Node kernel only: `delivery plan` (which imports
    the environment model and the layout, never cdktf) hands terraform the caller's NODE_OPTIONS."""
    import os
    import sys

    bin_dir, dump = tmp_path / "bin", tmp_path / "dump"
    bin_dir.mkdir()
    dump.mkdir()
    fake = bin_dir / "terraform"
    fake.write_text(FAKE_TERRAFORM)
    fake.chmod(0o755)
    stacks = tmp_path / "stacks"
    for tier in ("network", "database", "api", "frontend"):
        (stacks / f"dev-{tier}").mkdir(parents=True)
        (stacks / f"dev-{tier}" / "cdk.tf.json").write_text("{}")
    user_options = "--max-old-space-size=2048"
    env = {**{k: v for k, v in os.environ.items() if k not in ("CDKTF_PLAIN_PROVIDER_IMPORT", "AWS_PROFILE")},
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DUMP_DIR": str(dump),
           "NODE_OPTIONS": user_options, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    project = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-m", "delivery", "plan", "dev", "--stacks-dir", str(stacks),
                             "--out", str(tmp_path / "plans")],
                            cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    children = [dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
                for path in sorted(dump.iterdir())]
    commands = [child["ARGS"].split()[0] for child in children]
    assert commands.count("init") == 4 and commands.count("plan") == 4, commands
    for child in children:
        assert child.get("NODE_OPTIONS") == user_options
        assert "lazy_provider_index" not in "".join(child.values())
