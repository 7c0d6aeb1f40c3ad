"""Builds the whole app: `bootstrap`, then every tier of every environment."""

from __future__ import annotations

from pathlib import Path

from cdktf import App, TerraformResource

from modules.api.api import Api
from modules.bootstrap.state_backend import BootstrapStack
from modules.cicd.collector import CollectorSettings
from modules.cicd.stack import CicdStack
from modules.core.environment import EnvironmentConfig, Environments
from modules.core.stack import TierStack
from modules.core.target import Target
from modules.database.database import Database
from modules.frontend.frontend import Frontend
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
        self.database = self.build_database(self.network)
        self.api = self.build_api()
        self.frontend = self.build_frontend()

    def build_network(self) -> Network:
        stack = self.stack("network")
        environment = self.environment
        return Network(stack, "Network", config=environment.network, name_prefix=stack.prefix,
                       region=environment.region)

    def build_database(self, network: Network) -> Database:
        """`<env>-database`: in the network's isolated subnets."""
        stack = self.stack("database")
        environment = self.environment
        return Database(stack, "Database", config=environment.database, network=network, name_prefix=stack.prefix,
                        region=environment.region)

    def build_api(self) -> Api:
        """`<env>-api`: services in the network's private subnets, clients of the database."""
        stack = self.stack("api")
        environment = self.environment
        return Api(stack, "Api", config=environment.api, registry=self.shared.registry, network=self.network,
                   database=self.database.handle, name_prefix=stack.prefix, region=environment.region,
                   dns=environment.dns,
                   # Metrics go to the workspace shared-cicd creates (found in SSM: apply it first).
                   collector=CollectorSettings(cicd=self.shared.cicd, environment=environment.name))

    def build_frontend(self) -> Frontend:
        """`<env>-frontend`: needs no other tier (S3, CloudFront and DNS are global or regional services)."""
        stack = self.stack("frontend")
        environment = self.environment
        return Frontend(stack, "Frontend", config=environment.frontend, dns=environment.dns, name_prefix=stack.prefix,
                        bucket_unique=environment.bucket_unique, api_origin=environment.api_origin)


def build_app(environments: Environments, *, target: Target, outdir: Path | str) -> App:
    """Every stack (`modules/layout.py`); nothing is written until `app.synth()`."""
    app = App(outdir=str(outdir))
    if environments.complete:
        # Built from every environment (a state-access role each): a partial one would delete the others'.
        BootstrapStack(app, shared=environments.shared, environments=environments.environments, target=target)
    for environment in environments.environments:
        EnvironmentBuilder(app, environments, environment, target).build()
    if environments.complete:
        # Built from every environment; it references none of their stacks (they may read it).
        CicdStack(app, shared=environments.shared, environments=environments.environments, target=target)
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
