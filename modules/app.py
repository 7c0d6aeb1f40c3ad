"""Builds the whole app: `bootstrap`, then every tier of every environment."""

from __future__ import annotations

from pathlib import Path

from cdktf import App, TerraformResource

from modules.bootstrap.state_backend import BootstrapStack
from modules.core.environment import EnvironmentConfig, Environments
from modules.core.stack import TierStack
from modules.core.target import Target
from modules.network.network import Network


class EnvironmentBuilder:
    """Builds one environment's tier stacks, each tier handed the constructs of the tiers before it."""

    def __init__(self, app: App, environments: Environments, environment: EnvironmentConfig, target: Target):
        self.app = app
        self.shared = environments.shared
        self.environment = environment
        self.target = target

    def stack(self, tier: str) -> TierStack:
        return TierStack(self.app, shared=self.shared, environment=self.environment, tier=tier, target=self.target)

    def build(self) -> None:
        self.network = self.build_network()

    def build_network(self) -> Network:
        stack = self.stack("network")
        environment = self.environment
        return Network(stack, "Network", config=environment.network, name_prefix=stack.prefix,
                       region=environment.region)


def build_app(environments: Environments, *, target: Target, outdir: Path | str) -> App:
    """Every stack (`modules/layout.py`); nothing is written until `app.synth()`."""
    app = App(outdir=str(outdir))
    BootstrapStack(app, shared=environments.shared, target=target)
    for environment in environments.environments:
        EnvironmentBuilder(app, environments, environment, target).build()
    if target.is_emulator:
        apply_emulator_lifecycle(app, target)
    return app


def apply_emulator_lifecycle(app: App, target: Target) -> None:
    """Add the emulator's `ignore_changes` (see `modules/core/target.py`) to its resources."""
    for node in app.node.find_all():
        if isinstance(node, TerraformResource):
            ignored = target.ignore_changes(node.terraform_resource_type)
            if ignored:
                node.add_override("lifecycle.ignore_changes", list(ignored))
