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
    """Every stack the app synthesizes: bootstrap, shared-cicd, then each environment's tiers in order."""
    shared = [CICD] if environments.complete else []
    return [BOOTSTRAP, *shared] + [stack_name(e.name, tier) for e in environments.environments for tier in TIERS]
