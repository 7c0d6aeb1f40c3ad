"""The tier registry: every stack the app builds, in one list.

Each environment gets one stack per `Tier`, named `<env>-<tier>`, built in the order of
`TIERS` by the tier's builder from its config (`EnvironmentConfig.<config_field>`) and the
constructs of the tiers it depends on. Two stacks serve the whole organisation and are
built from every environment: `BOOTSTRAP` (the state backend) and `CICD` (`shared-cicd`).

modules/app.py builds from this list; modules/layout.py derives the stack names and the
order they are applied in; diagrams_gen draws a picture per tier; the tests synthesize
and check what it lists. Adding a tier is its config, its construct and one entry here
(README: "Adding a tier").

The builders import their construct when called, so reading the registry (the delivery
commands do) does not load cdktf or the provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modules.api.api import Api
    from modules.core.stack import TierStack
    from modules.database.database import Database
    from modules.environment import EnvironmentConfig, SharedConfig
    from modules.frontend.frontend import Frontend
    from modules.network.network import Network


@dataclass(frozen=True)
class BuildContext:
    """What a tier's builder gets: its stack, its config (`environment.<config_field>`), the
    environment, the organisation's settings, and the constructs of the tiers built before it
    (by tier name)."""

    stack: TierStack
    config: Any
    environment: EnvironmentConfig
    shared: SharedConfig
    built: Mapping[str, Any]


@dataclass(frozen=True)
class Tier:
    """One stack of every environment.

    `depends_on`: the tiers whose outputs it reads (cross-stack references), applied
    before it. `reads_cicd`: it reads what `shared-cicd` writes (SSM parameters), so
    that stack is applied first.
    """

    name: str
    config_field: str
    build: Callable[[BuildContext], Any]
    depends_on: tuple[str, ...] = ()
    reads_cicd: bool = False


@dataclass(frozen=True)
class OrganisationStack:
    """A stack built once from every environment (left out when only some are loaded)."""

    name: str  # the stack's name (its folder in cdktf.out/stacks)
    tier: str  # its `tier` tag


def _network(context: BuildContext) -> Network:
    from modules.network.network import Network

    stack, environment = context.stack, context.environment
    return Network(stack, "Network", config=context.config, name_prefix=stack.prefix,
                   region=environment.region)


def _database(context: BuildContext) -> Database:
    """In the network's isolated subnets."""
    from modules.database.database import Database

    stack, environment = context.stack, context.environment
    return Database(stack, "Database", config=context.config, network=context.built["network"],
                    name_prefix=stack.prefix, region=environment.region)


def _api(context: BuildContext) -> Api:
    """Services in the network's private subnets, clients of the database."""
    from modules.api.api import Api
    from modules.api.collector import CollectorSettings
    from modules.api.dashboard import Neighbours

    stack, environment, cicd = context.stack, context.environment, context.shared.cicd
    # Metrics go to the workspace shared-cicd creates (found in SSM: apply it first).
    collector = CollectorSettings(
        image_repository=cicd.collector_image_repository, image_tag=cicd.collector_image_tag,
        scrape_interval_seconds=cicd.collector_scrape_interval_seconds,
        shared_prometheus=cicd.shared_prometheus, environment=environment.name,
    )
    database = context.built["database"]
    # What the environment's dashboard shows of the other tiers: plain names their config chose.
    neighbours = Neighbours(
        database_primary=database.identifier, database_replicas=list(database.replica_identifiers),
        cache_hit_rate=environment.frontend.additional_metrics,
    )
    return Api(stack, "Api", config=context.config, registry=context.shared.registry,
               network=context.built["network"], database=database.handle,
               name_prefix=stack.prefix, region=environment.region, dns=environment.dns, collector=collector,
               neighbours=neighbours)


def _frontend(context: BuildContext) -> Frontend:
    """Needs no other tier (S3, CloudFront and DNS are global or regional services)."""
    from modules.frontend.frontend import Frontend

    stack, environment = context.stack, context.environment
    return Frontend(stack, "Frontend", config=context.config, dns=environment.dns, name_prefix=stack.prefix,
                    bucket_unique=environment.bucket_unique, api_origin=environment.api_origin)


# In dependency order: a tier may use the constructs (outputs) of the tiers before it.
TIERS: tuple[Tier, ...] = (
    Tier("network", config_field="network", build=_network),
    Tier("database", config_field="database", build=_database, depends_on=("network",)),
    Tier("api", config_field="api", build=_api, depends_on=("network", "database"), reads_cicd=True),
    Tier("frontend", config_field="frontend", build=_frontend),
)

BOOTSTRAP = OrganisationStack("bootstrap", tier="bootstrap")
CICD = OrganisationStack("shared-cicd", tier="cicd")


def tier(name: str) -> Tier:
    for entry in TIERS:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown tier {name!r}; known: {', '.join(t.name for t in TIERS)}")
