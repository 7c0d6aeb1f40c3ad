"""Running the rule pack (checks/rules) over synthesized stacks, as `make check` does."""

from __future__ import annotations

from typing import Any

from checks.rules import Context, Finding, load_suppressions, run
from checks.rules.stack import Stack
from modules.environment import Environments


def pack_context(environments: Environments, emulator: dict[str, dict[str, Any]]) -> Context:
    return Context(
        environments=frozenset(e.name for e in environments.environments),
        production=frozenset(e.name for e in environments.environments if e.production),
        emulator={name: Stack(name, stack) for name, stack in emulator.items()},
    )


def check(stacks: dict[str, dict[str, Any]], context: Context) -> tuple[list[Finding], list[Finding]]:
    return run([Stack(name, stack) for name, stack in stacks.items()], context, load_suppressions())
