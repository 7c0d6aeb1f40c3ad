"""Ephemeral resources, which cdktf 0.21 has no construct for.

An ephemeral resource (Terraform 1.10+) is opened during a run and never stored in
state or plan files; its values may only flow into other ephemeral places, such as
the write-only arguments (`password_wo`, `secret_string_wo`, Terraform 1.11+) that
the provider sends to AWS and forgets. That is how a generated password reaches the
database without ever being written to state.
"""

from __future__ import annotations

from typing import Any

from cdktf import TerraformStack
from constructs import Construct

from modules.core.forget import ids_below_stack

# Write-only arguments arrived in Terraform 1.11; older versions would reject the stack
# with a less helpful message than this constraint's.
REQUIRED_TERRAFORM = ">= 1.11"


class EphemeralResource:
    """`ephemeral "<resource_type>" "<name>" { ... }` in the stack of `scope`.

    `name` is the construct path below the stack joined with `_` (like cdktf's logical
    ids, without the hash): stable, and unique for unique construct paths.
    """

    def __init__(self, scope: Construct, construct_id: str, *, resource_type: str, config: dict[str, Any]) -> None:
        stack = TerraformStack.of(scope)
        self.name = "_".join([*ids_below_stack(scope), construct_id])
        self.resource_type = resource_type
        stack.add_override(f"ephemeral.{resource_type}.{self.name}", config)
        stack.add_override("terraform.required_version", REQUIRED_TERRAFORM)

    def ref(self, attribute: str) -> str:
        """`ephemeral.<type>.<name>.<attribute>`, a Terraform expression to put inside `${...}`;
        Terraform accepts it only where an ephemeral value may go (write-only arguments)."""
        return f"ephemeral.{self.resource_type}.{self.name}.{attribute}"
