"""`delivery apply-migrations`: the release's Flyway task definition is registered before `migrate` runs it."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import delivery.terraform as terraform
from delivery.terraform import apply_migrations, migrations_target, plan
from modules.core.terraform import TerraformCli
from tests.conftest import require


def test_migrations_target_is_the_task_definition_migrate_runs(synth):
    for env in ("dev", "stage", "prod"):
        stack, target = migrations_target(synth.outdir / "stacks", env)
        kind, logical_id = target.split(".")
        assert (stack, kind) == (f"{env}-api", "aws_ecs_task_definition")
        definition = synth.stack(stack).resources(kind)[logical_id]
        assert definition["family"] == f"webapp-{env}-migrations"


class RecordingCli:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def run(self, directory: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        self.calls.append((directory.name, args))
        code = 2 if args[0] == "plan" else 0
        return subprocess.CompletedProcess(args, code, stdout="", stderr="")


def test_apply_migrations_applies_only_the_flyway_task_definition_of_the_api_stack(synth, tmp_path, monkeypatch):
    stacks = tmp_path / "stacks"
    for name in ("dev-network", "dev-api"):
        shutil.copytree(synth.outdir / "stacks" / name, stacks / name)
    cli = RecordingCli()
    monkeypatch.setattr(terraform, "_cli", lambda workdir: cli)
    out = io.StringIO()
    assert apply_migrations(stacks, "dev", out) == ["dev-api"]
    _, target = migrations_target(stacks, "dev")
    assert [(d, a[0]) for d, a in cli.calls] == [("dev-api", "init"), ("dev-api", "plan"), ("dev-api", "show"),
                                                 ("dev-api", "apply")]
    plan_args = cli.calls[1][1]
    assert f"-target={target}" in plan_args and "-out=dev-api.migrations.tfplan" in plan_args
    assert [a for a in plan_args if a.startswith("-target=")] == [f"-target={target}"]
    assert "dev-api.migrations.tfplan" in cli.calls[3][1]
    assert out.getvalue() == "dev-api (migrations): changes\ndev-api (migrations): applied\n"


def test_a_targeted_apply_updates_the_outputs_migrate_reads(tmp_path):
    """What apply-migrations relies on: the output of a targeted resource follows the apply, and
    resources outside the target (the services) keep their old values until the full apply."""
    require(TerraformCli.create(tmp_path / "cli") is not None, "terraform is not on PATH (install Terraform >= 1.11)")
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
    plan(stack.parent, ["demo"], io.StringIO(), apply=True)
    write("2")
    plan(stack.parent, ["demo"], io.StringIO(), apply=True, targets=("terraform_data.migrations",), name="migrations")
    assert outputs() == {"migrations": "migrations:2", "service": "service:1"}


FAKE_TERRAFORM = """#!/bin/sh
# Records the environment each terraform child gets, then succeeds (plan: no changes).
env > "$DUMP_DIR/$(date +%s%N).env"
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
    env = {**{k: v for k, v in os.environ.items() if k != "CDKTF_PLAIN_PROVIDER_IMPORT"},
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DUMP_DIR": str(dump),
           "NODE_OPTIONS": user_options}
    project = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-m", "delivery", "plan", "dev", "--stacks-dir", str(stacks)],
                            cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    children = [dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
                for path in sorted(dump.iterdir())]
    assert len(children) == 12, "init, plan and show for each of dev's four stacks"
    for child in children:
        assert child.get("NODE_OPTIONS") == user_options
        assert "lazy_provider_index" not in "".join(child.values())
