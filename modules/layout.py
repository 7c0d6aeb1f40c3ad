"""The stack layout: which stacks exist, named `<env>-<tier>` (plus `bootstrap`)."""

from __future__ import annotations

from modules.core.environment import Environments

BOOTSTRAP = "bootstrap"
# In dependency order: a tier may use the outputs of the tiers before it.
TIERS: tuple[str, ...] = ("network",)


def stack_name(environment: str, tier: str) -> str:
    return f"{environment}-{tier}"


def stack_names(environments: Environments) -> list[str]:
    """Every stack the app synthesizes, bootstrap first, then each environment's tiers in order."""
    return [BOOTSTRAP] + [stack_name(e.name, tier) for e in environments.environments for tier in TIERS]
