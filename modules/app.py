"""Builds the whole app: `bootstrap`, then every tier of every environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cdktf import App, TerraformResource

from modules import state_access, tiers
from modules.bootstrap.state_backend import BootstrapStack
from modules.cicd.stack import CicdStack
from modules.core.stack import TierStack
from modules.core.target import Target
from modules.environment import EnvironmentConfig, Environments, prefix_of
from modules.tiers import BuildContext


class EnvironmentBuilder:
    """Builds one environment's tier stacks (modules/tiers.py), each tier handed the constructs
    of the tiers before it."""

    def __init__(self, app: App, environments: Environments, environment: EnvironmentConfig, target: Target):
        self.app = app
        self.shared = environments.shared
        if environment.api.account_cloudwatch_role and environment.name not in account_settings_owners(
                environments, target):
            environment = dataclasses.replace(
                environment, api=dataclasses.replace(environment.api, account_cloudwatch_role=False))
        self.environment = environment
        self.target = target
        self.built: dict[str, Any] = {}

    def stack(self, tier: str) -> TierStack:
        environment = self.environment
        return TierStack(
            self.app, project=self.shared.project, environment=environment.name, tier=tier,
            prefix=prefix_of(self.shared, environment), region=environment.region,
            account_id=environment.account_id, role_arn=environment.assume_role_arn,
            backend=environment.backend, state=self.shared.state,
            state_key=f"{state_access.state_prefix(environment)}/{tier}.tfstate",
            # The environment's account reaches its state through its state-access role (bootstrap);
            # a plan-only synth through its plan-state role (read, lock; never write).
            state_role_arn=(state_access.plan_state_role_arn(self.shared, environment) if self.target.plan_only
                            else state_access.state_role_arn(self.shared, environment)),
            target=self.target,
        )

    def build(self) -> dict[str, Any]:
        """Every tier's construct, by tier name."""
        for tier in tiers.TIERS:
            context = BuildContext(stack=self.stack(tier.name), config=getattr(self.environment, tier.config_field),
                                   environment=self.environment, shared=self.shared, built=dict(self.built))
            self.built[tier.name] = tier.build(context)
        return self.built


def account_settings_owners(environments: Environments, target: Target) -> set[str]:
    """The environments that set their account-and-region singletons (API Gateway's CloudWatch role).

    The environment files name one owner per account and region (the loader refuses two). Where the
    target puts several accounts into one (the emulator: every account is moto's), the first of them
    in that account and region keeps it, as the files would have to say if they were one account:
    otherwise each API stack overwrites the others' setting and none of them plans clean.
    """
    owners: dict[tuple[str, str], str] = {}
    for environment in environments.environments:
        if environment.api.account_cloudwatch_role:
            owners.setdefault((target.account_id(environment.account_id), environment.region), environment.name)
    return set(owners.values())


def build_app(environments: Environments, *, target: Target, outdir: Path | str) -> App:
    """Every stack (`modules/layout.py`); nothing is written until `app.synth()`."""
    app = App(outdir=str(outdir))
    if environments.complete:
        # Built from every environment (a state-access role each): a partial one would delete the others'.
        BootstrapStack(app, tiers.BOOTSTRAP.name, shared=environments.shared, environments=environments.environments, target=target)
    for environment in environments.environments:
        EnvironmentBuilder(app, environments, environment, target).build()
    if environments.complete:
        # Built from every environment; it references none of their stacks (they may read it).
        CicdStack(app, tiers.CICD.name, shared=environments.shared, environments=environments.environments, target=target)
    if target.is_emulator:
        apply_emulator_lifecycle(app, target)
    return app


def apply_emulator_lifecycle(app: App, target: Target) -> None:
    """Add the emulator's `ignore_changes` (see `modules/core/target.py`) to its resources, after the
    ones the resource has of its own (an override replaces the whole list: ECS services lost their
    `desired_count`, RDS instances their `availability_zone`)."""
    for node in app.node.find_all():
        if isinstance(node, TerraformResource):
            ignored = target.ignore_changes(node.terraform_resource_type)
            if not ignored:
                continue
            own = node.lifecycle.ignore_changes if node.lifecycle is not None else None
            if own == "all":
                continue
            kept = list(own or [])
            node.add_override("lifecycle.ignore_changes", kept + [name for name in ignored if name not in kept])
