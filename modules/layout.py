"""The stack layout, derived from the tier registry (modules/tiers.py): which stacks exist,
named `<env>-<tier>` (plus `bootstrap` and `shared-cicd`), and in which order they apply."""

from __future__ import annotations

from modules import tiers
from modules.environment import Environments

BOOTSTRAP = tiers.BOOTSTRAP.name
# The organisation's CI/CD stack, built from every environment (left out when only some are loaded).
CICD = tiers.CICD.name


def tier_names() -> tuple[str, ...]:
    """Every environment's tiers, in dependency order: a tier may use the outputs of the tiers before it."""
    return tuple(tier.name for tier in tiers.TIERS)


def stack_name(environment: str, tier: str) -> str:
    return f"{environment}-{tier}"


def stack_names(environments: Environments) -> list[str]:
    """Every stack the app synthesizes: bootstrap, shared-cicd, then each environment's tiers in order
    (bootstrap and shared-cicd are built from every environment: left out when only some are loaded)."""
    shared = [BOOTSTRAP, CICD] if environments.complete else []
    return shared + [stack_name(e.name, tier) for e in environments.environments for tier in tier_names()]


def stack_dependencies(environments: Environments) -> dict[str, tuple[str, ...]]:
    """For each stack, the stacks that must be applied before it.

    Every stack keeps its state in bootstrap's bucket; a tier reads the outputs of
    the tiers it is built on (`Tier.depends_on`: the cross-stack references cdktf
    writes into manifest.json); a tier that `reads_cicd` (the API's collector
    sidecars) reads shared-cicd's SSM parameters. Stacks not linked here (dev-frontend
    and stage-network, say) can be applied side by side.
    """
    state = (BOOTSTRAP,) if environments.complete else ()
    shared = (CICD,) if environments.complete else ()
    graph: dict[str, tuple[str, ...]] = {}
    if environments.complete:
        graph[BOOTSTRAP] = ()
        graph[CICD] = (BOOTSTRAP,)
    for environment in environments.environments:
        for tier in tiers.TIERS:
            graph[stack_name(environment.name, tier.name)] = (
                *state, *(shared if tier.reads_cicd else ()),
                *(stack_name(environment.name, needed) for needed in tier.depends_on),
            )
    return graph
