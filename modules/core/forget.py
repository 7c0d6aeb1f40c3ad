"""Let Terraform forget resources the code no longer builds, without destroying them.

Deleting a resource from the code plans its destroy. For a stateful one (a bucket and the
settings that protect it) that is the wrong default: `forget` writes Terraform's `removed`
block (Terraform >= 1.7) with `lifecycle { destroy = false }` instead, so the next apply drops
the resource from state and leaves it, and what it holds, in the account.
"""

from __future__ import annotations

import hashlib
import re

from cdktf import TerraformStack
from constructs import Construct


def logical_id(construct_path: str) -> str:
    """The Terraform name CDKTF gives the resource at `construct_path` (below its stack), as
    cdktf's `makeUniqueId` makes it: the path's parts (a part the previous one ends with left out,
    and `Resource`) joined by `_`, then the first 8 hex digits of the path's MD5 in capitals."""
    parts = [part for part in construct_path.split("/") if part != "Default"]
    digest = hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()[:8].upper()
    human: list[str] = []
    for part in parts:
        if not human or not human[-1].endswith(part):
            human.append(part)
    readable = "_".join(re.sub(r"[^A-Za-z0-9_-]", "", part) for part in human if part != "Resource")
    return f"{readable[:240]}_{digest}"


def ids_below_stack(scope: Construct) -> list[str]:
    """The construct ids from the stack of `scope` (left out) down to `scope` itself: [] for the stack."""
    stack = TerraformStack.of(scope)
    return [construct.node.id for construct in scope.node.scopes[scope.node.scopes.index(stack) + 1:]]


def forget(scope: Construct, *resources: tuple[str, str]) -> None:
    """`removed { from = <type>.<logical id>, lifecycle { destroy = false } }` for each
    `(resource type, construct path below scope)`, the resources the code once built under `scope`;
    adds to what the stack forgets already."""
    stack = TerraformStack.of(scope)
    below_stack = ids_below_stack(scope)
    blocks: list[dict[str, object]] = getattr(stack, "_forgotten", [])
    for resource_type, construct_path in resources:
        path = "/".join([*below_stack, construct_path])
        blocks.append({"from": f"{resource_type}.{logical_id(path)}", "lifecycle": {"destroy": False}})
    stack._forgotten = blocks  # type: ignore[attr-defined]
    stack.add_override("removed", blocks)
