"""Plan and apply an environment's stacks in dependency order, and find the pipeline's roles.

    python -m delivery stacks dev         # dev-network dev-database dev-api dev-frontend
    python -m delivery plan dev           # init + plan every stack; <stack>.tfplan and .tfplan.txt
    python -m delivery apply dev          # stack by stack: init, plan, apply that plan
    python -m delivery apply-migrations dev  # only dev-api's Flyway task definition (before migrate)
    python -m delivery role deploy dev    # the deploy role ARN (shared-cicd state)
    python -m delivery access deploy prod # how that role is assumed (environment files)

Run `make synth` first: these commands work in `cdktf.out/stacks/<stack>/`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from delivery import DeployError, UsageError
from delivery.aws import read_state_outputs, stack_output


def environment_stacks(environments: Any, environment: str) -> list[str]:
    from modules.layout import stack_name, tier_names

    environments.get(environment)
    return [stack_name(environment, tier) for tier in tier_names()]


def _cli(workdir: Path) -> Any:
    from modules.core.terraform import TerraformCli

    cli = TerraformCli.create(workdir)
    if cli is None:
        raise UsageError("terraform is not on PATH (install Terraform >= 1.11)")
    return cli


def _run(cli: Any, directory: Path, *args: str) -> str:
    result = cli.run(directory, *args, "-no-color", timeout=3600)
    if result.returncode not in (0, 2) or (result.returncode == 2 and "-detailed-exitcode" not in args):
        raise DeployError(f"terraform {' '.join(args)} failed in {directory.name}:\n"
                          f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def plan(stacks_dir: Path, stacks: list[str], out: Any, *, apply: bool = False, targets: tuple[str, ...] = (),
         name: str = "", before: Callable[[str], None] | None = None) -> list[str]:
    """Plan (and with `apply`, apply) each stack in order; the stacks whose plan has changes.

    `targets` limits the plans to those resource addresses (and what they need); `name`
    tells such a plan's files apart (`<stack>.<name>.tfplan`). `before(stack)` runs before
    each stack is planned, after the ones before it were applied (`delivery/secrets.py`).
    """
    cli = _cli(stacks_dir.parent / ".terraform-cli")
    changed = []
    for stack in stacks:
        if before is not None:
            before(stack)
        directory = stacks_dir / stack
        if not (directory / "cdk.tf.json").is_file():
            raise UsageError(f"{directory} has no cdk.tf.json: run `make synth` first")
        plan_file = f"{stack}.{name}.tfplan" if name else f"{stack}.tfplan"
        _run(cli, directory, "init", "-input=false")
        result = cli.run(directory, "plan", "-input=false", "-detailed-exitcode", f"-out={plan_file}",
                         *(f"-target={target}" for target in targets), "-no-color", timeout=3600)
        if result.returncode == 1:
            raise DeployError(f"terraform plan failed in {stack}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        shown = _run(cli, directory, "show", plan_file)
        (directory / f"{plan_file}.txt").write_text(shown)
        has_changes = result.returncode == 2
        out.write(f"{stack}{f' ({name})' if name else ''}: {'changes' if has_changes else 'no changes'}\n")
        if has_changes:
            changed.append(stack)
            if apply:
                _run(cli, directory, "apply", "-input=false", plan_file)
                out.write(f"{stack}{f' ({name})' if name else ''}: applied\n")
    return changed


MIGRATIONS_OUTPUT = "Api_Migrations_MigrationTaskDefinitionArn"


def migrations_target(stacks_dir: Path, environment: str) -> tuple[str, str]:
    """(`<env>-api`, `aws_ecs_task_definition.<id>`): the stack and the Flyway task definition that
    the stack's MigrationTaskDefinitionArn output (what `migrate` runs) names."""
    from modules.layout import stack_name

    stack = stack_name(environment, "api")
    path = stacks_dir / stack / "cdk.tf.json"
    if not path.is_file():
        raise UsageError(f"{path} does not exist: run `make synth` first")
    outputs = {name: value.get("value") for name, value in json.loads(path.read_text()).get("output", {}).items()}
    reference = str(stack_output(outputs, MIGRATIONS_OUTPUT))
    match = re.fullmatch(r"\$\{(aws_ecs_task_definition\.[\w-]+)\.arn\}", reference)
    if match is None:
        raise DeployError(f"{path}: {MIGRATIONS_OUTPUT} is {reference!r}, not a task definition's arn")
    return stack, match.group(1)


def apply_migrations(stacks_dir: Path, environment: str, out: Any) -> list[str]:
    """Register the release's Flyway task definition before the services roll: a targeted plan and
    apply of `<env>-api` (that task definition and what it needs), as the same Terraform role as
    every apply. `migrate` then runs the new revision (the stack's output follows the apply)."""
    stack, target = migrations_target(stacks_dir, environment)
    return plan(stacks_dir, [stack], out, apply=True, targets=(target,), name="migrations")


def role(environments: Any, aws: Any, kind: str, environment: str | None) -> str:
    """The CI role, or an environment's deploy role, from the shared-cicd stack's state outputs."""
    state = environments.shared.state
    outputs = read_state_outputs(aws, state.bucket, "shared/cicd.tfstate", state.region, state.assume_role_arn)
    if kind == "ci":
        path = "Pipeline_CiRoleArn"
    else:
        if environment is None:
            raise UsageError("role deploy needs the environment")
        environments.get(environment)
        path = f"Pipeline_{environment.title()}_DeployRoleArn"
    missing = f"s3://{state.bucket}/shared/cicd.tfstate has no output {path}: apply shared-cicd"
    return str(stack_output(outputs, path, missing=missing))


def access(environments: Any, kind: str, environment: str | None) -> dict[str, str]:
    """How the pipeline assumes the CI role or an environment's deploy role, from the environment files.

    `external_id`: what the role's trust requires (empty when none); for deploy roles, `via`:
    `ci-role` (assume it from a CI-role session) or `principals` (only `deploy_principal_arns`
    may, so Jenkins uses a credential of one of them), and `mfa` (`true` cannot be met by Jenkins).
    The trust policies are built from the same values (modules/cicd/pipeline.py), so the pipeline
    never keeps copies of them.
    """
    if kind == "ci":
        return {"external_id": environments.shared.cicd.ci_external_id or ""}
    if environment is None:
        raise UsageError("access deploy needs the environment")
    settings = environments.get(environment).cicd
    return {
        "via": "ci-role" if settings.deploy_trusts_ci_role else "principals",
        "external_id": settings.deploy_external_id or "",
        "mfa": "true" if settings.deploy_require_mfa else "false",
    }
