"""Refuse to roll services onto a Secrets Manager secret that has no value yet.

ECS reads a task's secrets when the task starts. A secret with no current version
(`AWSCURRENT`) makes every task fail with `ResourceInitializationError`, the deployment
circuit breaker stops the rollout, and nothing says which secret. So `apply` and `verify`
check first, and stop with one line naming the secret and the command that sets it:

    error: secret webapp-dev/api/payments-api-key has no value; set it with
    aws secretsmanager put-secret-value --secret-id webapp-dev/api/payments-api-key --secret-string '...'

`apply` checks what the synthesized task definitions of `<env>-api` reference
(`cdktf.out/stacks/<env>-api/cdk.tf.json`, `secrets[].valueFrom`), before it plans that
stack: the api stack's own secrets (by their `name`), another stack's (the database's master
secret, through a cross-stack output: by that stack's `name`), or a literal ARN. `verify`
checks what the task definitions the stack was applied with reference (ECS
DescribeTaskDefinition), before it waits for the rollout. Only DescribeSecret is called,
which returns no value.

On a first deploy the api stack creates its secrets and the services together. `gate`
therefore applies the api stack's secrets alone first (a plan and apply targeted at them),
then checks, so a first `apply` stops before any service exists, and the next one, after
the values are set, rolls the services. A saved plan (`apply --plans`) cannot be amended that
way: `saved_plan_check` refuses one whose api stack would create its secrets and services
together, and says how to create the secrets first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delivery import UsageError

SECRET_TYPE = "aws_secretsmanager_secret"
# `${aws_secretsmanager_secret.<id>.arn}` in the same stack.
LOCAL_SECRET = re.compile(r"^\$\{aws_secretsmanager_secret\.([\w-]+)\.arn\}")
# CDKTF's cross-stack reference: `${data.terraform_remote_state.cross-stack-reference-input-<stack>.outputs.
# cross-stack-output-aws_secretsmanager_secret<id>arn}`.
REMOTE_SECRET = re.compile(
    r"^\$\{data\.terraform_remote_state\.cross-stack-reference-input-([\w-]+)\.outputs\."
    r"cross-stack-output-aws_secretsmanager_secret([\w-]+)arn\}")
SECRET_ARN = re.compile(r"^(arn:aws[\w-]*:secretsmanager:[\w-]+:\d{12}:secret:[^:]+)")
CURRENT = "AWSCURRENT"


class SecretMissing(UsageError):
    """A secret a task definition references has no current value (exit 2: nothing was rolled)."""


@dataclass(frozen=True)
class Secret:
    """A secret as DescribeSecret takes it (`secret_id`: a name or an ARN), and where it is made."""

    secret_id: str
    resource: str | None = None  # `aws_secretsmanager_secret.<id>` when the api stack itself creates it


def _stack(stacks_dir: Path, stack: str) -> dict[str, Any]:
    from delivery.terraform import synthesized

    return dict(json.loads(synthesized(stacks_dir, stack).read_text()))


def referenced_secrets(stacks_dir: Path, stack: str) -> list[Secret]:
    """Every Secrets Manager secret the task definitions of `stack` reference, once each, in order."""
    document = _stack(stacks_dir, stack)
    found: dict[str, Secret] = {}
    for definition in document.get("resource", {}).get("aws_ecs_task_definition", {}).values():
        for container in json.loads(definition["container_definitions"]):
            for reference in container.get("secrets", []):
                secret = _resolve(stacks_dir, stack, document, reference["valueFrom"])
                if secret is not None:
                    found.setdefault(secret.secret_id, secret)
    return list(found.values())


def _resolve(stacks_dir: Path, stack: str, document: dict[str, Any], value_from: str) -> Secret | None:
    if match := LOCAL_SECRET.match(value_from):
        resource_id = match.group(1)
        return Secret(_name(document, resource_id, stack), f"{SECRET_TYPE}.{resource_id}")
    if match := REMOTE_SECRET.match(value_from):
        other, resource_id = match.groups()
        return Secret(_name(_stack(stacks_dir, other), resource_id, other))
    if match := SECRET_ARN.match(value_from):
        return Secret(match.group(1))
    if value_from.startswith("arn:") and ":ssm:" in value_from:
        return None  # an SSM parameter, not a secret
    raise UsageError(f"{stack}: a task definition reads the secret {value_from!r}, which names no secret this "
                     "check can find (a secret of a stack, or a Secrets Manager ARN)")


def _name(document: dict[str, Any], resource_id: str, stack: str) -> str:
    secret = document.get("resource", {}).get(SECRET_TYPE, {}).get(resource_id)
    if secret is None or not isinstance(secret.get("name"), str) or "${" in secret["name"]:
        raise UsageError(f"{stack}: {SECRET_TYPE}.{resource_id} has no literal name to look up")
    return str(secret["name"])


def task_definition_secrets(ecs: Any, task_definition_arns: list[str]) -> list[Secret]:
    """Every Secrets Manager secret the registered task definitions reference (what `verify` checks:
    what ECS runs, with each reference resolved to an ARN)."""
    found: dict[str, Secret] = {}
    for arn in task_definition_arns:
        definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        for container in definition.get("containerDefinitions", []):
            for reference in container.get("secrets", []):
                if match := SECRET_ARN.match(reference["valueFrom"]):
                    found.setdefault(match.group(1), Secret(match.group(1)))
    return list(found.values())


def missing_value(secretsmanager: Any, secret: Secret) -> str | None:
    """Why `secret` cannot be read by a starting task (it does not exist, or has no current
    version), or None when it has a value."""
    try:
        described = secretsmanager.describe_secret(SecretId=secret.secret_id)
    except secretsmanager.exceptions.ResourceNotFoundException:
        return "does not exist"
    if described.get("DeletedDate"):
        return "is scheduled for deletion"
    if not any(CURRENT in stages for stages in described.get("VersionIdsToStages", {}).values()):
        return "has no value"
    return None


def set_command(secret_id: str) -> str:
    return f"aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string '...'"


def check(secretsmanager: Any, secrets: list[Secret]) -> None:
    """SecretMissing naming the first secret without a value and the command that sets it."""
    for secret in secrets:
        problem = missing_value(secretsmanager, secret)
        if problem is not None:
            how = (f"set it with {set_command(secret.secret_id)}" if problem == "has no value"
                   else "apply the stack that creates it first")
            raise SecretMissing(f"secret {secret.secret_id} {problem}; {how}, then run this command again "
                                "(no service was rolled)")


def gate(stacks_dir: Path, api_stack: str, secretsmanager: Any,
         apply_secrets: Callable[[list[str]], object]) -> Callable[[str], None]:
    """The check `delivery apply` runs before planning each stack: before `api_stack`, create the
    secrets it owns that do not exist yet (`apply_secrets(targets)`: a targeted plan and apply),
    then `check` every secret its task definitions reference. Other stacks pass."""
    def before(stack: str) -> None:
        if stack != api_stack:
            return
        secrets = referenced_secrets(stacks_dir, stack)
        absent = [s.resource for s in secrets if s.resource and missing_value(secretsmanager, s) == "does not exist"]
        if absent:
            apply_secrets([resource for resource in absent if resource])
        check(secretsmanager, secrets)
    return before


def saved_plan_check(stacks_dir: Path, api_stack: str, environment: str,
                     secretsmanager: Any) -> Callable[[str], None]:
    """The check `delivery apply --plans` runs just before it applies each saved plan: before
    `api_stack`'s, every secret its task definitions reference must have a value. A secret of the
    api stack that does not exist yet would be created by that very plan, together with the
    services that read it: the plan cannot be split, so the run stops and says how to create the
    secrets first. Other stacks pass."""
    def before(stack: str) -> None:
        if stack != api_stack:
            return
        secrets = referenced_secrets(stacks_dir, stack)
        for secret in secrets:
            if secret.resource and missing_value(secretsmanager, secret) == "does not exist":
                raise SecretMissing(
                    f"secret {secret.secret_id} does not exist yet: the saved plan of {api_stack} would create it "
                    "and start the services that read it together, and a saved plan cannot be amended; run "
                    f"`python -m delivery apply {environment}` (without --plans) once for the first deploy, "
                    "or apply the secrets first, set their values, then plan again (no service was rolled)")
        check(secretsmanager, secrets)
    return before
