"""The stack layout: which stacks exist, named `<env>-<tier>` (plus `bootstrap`)."""

from __future__ import annotations

from modules.core.environment import Environments

BOOTSTRAP = "bootstrap"
# The organisation's CI/CD stack, built from every environment (left out when only some are loaded).
CICD = "shared-cicd"
# In dependency order: a tier may use the outputs of the tiers before it.
TIERS: tuple[str, ...] = ("network", "database", "api", "frontend")


def stack_name(environment: str, tier: str) -> str:
    return f"{environment}-{tier}"


def stack_names(environments: Environments) -> list[str]:
    """Every stack the app synthesizes: bootstrap, shared-cicd, then each environment's tiers in order
    (bootstrap and shared-cicd are built from every environment: left out when only some are loaded)."""
    shared = [BOOTSTRAP, CICD] if environments.complete else []
    return shared + [stack_name(e.name, tier) for e in environments.environments for tier in TIERS]


def stack_dependencies(environments: Environments) -> dict[str, tuple[str, ...]]:
    """For each stack, the stacks that must be applied before it.

    Every stack keeps its state in bootstrap's bucket; a tier reads the outputs of
    the tiers it is built on (cross-stack references: the `dependencies` cdktf writes
    into manifest.json); the API's collector sidecars read shared-cicd's SSM
    parameters. Stacks not linked here (dev-frontend and stage-network, say) can be
    applied side by side.
    """
    state = (BOOTSTRAP,) if environments.complete else ()
    shared = (CICD,) if environments.complete else ()
    graph: dict[str, tuple[str, ...]] = {}
    if environments.complete:
        graph[BOOTSTRAP] = ()
        graph[CICD] = (BOOTSTRAP,)
    for environment in environments.environments:
        network, database = stack_name(environment.name, "network"), stack_name(environment.name, "database")
        graph[network] = state
        graph[database] = (*state, network)
        graph[stack_name(environment.name, "api")] = (*state, *shared, network, database)
        graph[stack_name(environment.name, "frontend")] = state
    return graph
