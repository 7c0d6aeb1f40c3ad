"""What a saved plan changes, read from `terraform show -json <plan>`: the summary an approver sees.

    changes = StackChanges.from_plan_json("prod-database", json.loads(shown))
    changes.counts            # {"create": 0, "update": 1, "replace": 1, "delete": 0}
    changes.stateful()        # the replaced or deleted databases, buckets, keys, ... (flagged)

A plan's JSON (https://developer.hashicorp.com/terraform/internals/json-format) lists
`resource_changes`, each with `change.actions`: `["no-op"]`, `["read"]` (a data source),
`["create"]`, `["update"]`, `["delete"]`, and a replacement as `["delete", "create"]` or
`["create", "delete"]` (create_before_destroy). `resource_drift` lists what changed outside
Terraform since the last apply. Pure functions: no terraform, no AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The resource types whose deletion loses data or breaks what depends on them: one list, read by
# the summary (flags), by `apply` in production environments (refused unless --allow-replace names
# the address) and by the tests. The state backend is the bootstrap stack's bucket and lock table.
STATEFUL_TYPES: Mapping[str, str] = {
    "aws_db_instance": "database",
    "aws_rds_cluster": "database",
    "aws_s3_bucket": "bucket",
    "aws_kms_key": "KMS key",
    "aws_kms_replica_key": "KMS key",
    "aws_dynamodb_table": "lock table",
    "aws_cloudwatch_log_group": "log group",
    "aws_ecr_repository": "ECR repository",
    "aws_secretsmanager_secret": "secret",
    "aws_secretsmanager_secret_version": "secret",
}
STATE_BACKEND_STACK = "bootstrap"

# An application release (environments/<env>.release.hcl) changes only these in `<env>-api`: the
# services' task definitions and the migration task definition (new images), and the ECS services
# that run them. Anything else pending there is infrastructure, for the infrastructure pipeline.
RELEASE_TYPES = frozenset({"aws_ecs_task_definition", "aws_ecs_service"})
# A canary step (`delivery canary start|step|promote|abort`) also creates or destroys a candidate (every
# resource under `Api/<Service>/Canary`, modules/api/service.py) and updates the stage's canary settings
# and nothing else of the stage.
CANARY_ADDRESS = re.compile(r"^[a-z0-9_]+\.Api_(?P<service>[A-Za-z0-9]+)_Canary_(?:TaskDefinition|Service|TargetGroup|"
                            r"Listener|ScalingTarget|CpuScaling|MemoryScaling|Schedule[A-Za-z0-9]+)_[0-9A-F]{8}$")
CANARY_STAGE_TYPE = "aws_api_gateway_stage"
CANARY_STAGE_ATTRIBUTES = frozenset({"canary_settings"})

ACTIONS = ("create", "update", "replace", "delete")


def action_of(actions: Sequence[str]) -> str | None:
    """`create`, `update`, `replace`, `delete`, or None for no-op, read and forget."""
    kinds = tuple(actions)
    if kinds in (("delete", "create"), ("create", "delete")):
        return "replace"
    if kinds in (("create",), ("update",), ("delete",)):
        return kinds[0]
    return None


@dataclass(frozen=True, slots=True)
class Change:
    address: str
    type: str
    action: str
    # For an update: the top-level attributes whose planned value differs (known or not yet known).
    attributes: tuple[str, ...] = ()

    @property
    def in_release(self) -> bool:
        """Whether an application release (a new image, or a canary step) makes this change."""
        if self.type in RELEASE_TYPES:
            return True
        candidate = CANARY_ADDRESS.match(self.address)
        if candidate:
            from modules.api.config import API_PART_IDS

            # A service's construct id is never one of the tier's own parts (ApiConfig refuses such names).
            return candidate.group("service") not in API_PART_IDS
        return (self.type == CANARY_STAGE_TYPE and self.action == "update"
                and bool(self.attributes) and set(self.attributes) <= CANARY_STAGE_ATTRIBUTES)

    @property
    def stateful(self) -> str | None:
        """What kind of stateful resource this is (`database`, `bucket`, ...), or None."""
        return STATEFUL_TYPES.get(self.type)

    @property
    def destructive(self) -> bool:
        return self.action in ("replace", "delete")


@dataclass(frozen=True, slots=True)
class StackChanges:
    """One stack's planned changes."""

    stack: str
    changes: tuple[Change, ...] = ()
    drift: tuple[str, ...] = ()            # addresses changed outside Terraform
    outputs_change: bool = False           # a dependent stack planned now reads old outputs
    forgotten: tuple[str, ...] = field(default=())  # `removed { destroy = false }`: leave state only

    @classmethod
    def from_plan_json(cls, stack: str, plan: Mapping[str, Any]) -> StackChanges:
        changes, forgotten = [], []
        for entry in plan.get("resource_changes") or ():
            actions = tuple(entry.get("change", {}).get("actions") or ())
            if entry.get("mode") == "data":
                continue
            action = action_of(actions)
            if action is not None:
                changes.append(Change(entry["address"], entry["type"], action,
                                      _changed_attributes(entry.get("change", {})) if action == "update" else ()))
            elif actions == ("forget",):
                forgotten.append(entry["address"])
        # Refreshing reports differences terraform then ignores (a provider normalising `tags` from
        # null to {}); like terraform's own "changed outside of Terraform" note, keep only the drift of
        # resources that matter to this plan: ones it changes, or whose attributes it reads.
        relevant = {entry.get("resource") for entry in plan.get("relevant_attributes") or ()}
        relevant |= {c.address for c in changes}
        drift = tuple(entry["address"] for entry in plan.get("resource_drift") or ()
                      if tuple(entry.get("change", {}).get("actions") or ()) != ("no-op",)
                      and entry["address"] in relevant)
        outputs_change = any(tuple(value.get("actions") or ()) != ("no-op",)
                             for value in (plan.get("output_changes") or {}).values())
        return cls(stack, tuple(changes), drift, outputs_change, tuple(forgotten))

    @property
    def counts(self) -> dict[str, int]:
        return {action: sum(1 for c in self.changes if c.action == action) for action in ACTIONS}

    @property
    def plan_line(self) -> str:
        """Terraform's own count line (`Plan: 1 to add, 0 to change, 1 to destroy.`): a replacement is
        one add and one destroy, as terraform counts it."""
        counts = self.counts
        return (f"Plan: {counts['create'] + counts['replace']} to add, {counts['update']} to change, "
                f"{counts['delete'] + counts['replace']} to destroy.")

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.forgotten or self.outputs_change)

    def destroyed(self) -> list[Change]:
        """Every replaced or deleted resource."""
        return [c for c in self.changes if c.destructive]

    def stateful(self) -> list[Change]:
        """The replaced or deleted resources that hold state (STATEFUL_TYPES)."""
        return [c for c in self.destroyed() if c.stateful]

    def outside_release(self) -> list[Change]:
        """Changes an application release does not make (`Change.in_release`): pending infrastructure."""
        return [c for c in self.changes if not c.in_release]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            **self.counts,
            "replaced": [c.address for c in self.changes if c.action == "replace"],
            "deleted": [c.address for c in self.changes if c.action == "delete"],
            "stateful": [{"address": c.address, "type": c.type, "action": c.action,
                          "kind": _kind(self.stack, c)} for c in self.stateful()],
            "changed_outside_terraform": list(self.drift),
            "forgotten": list(self.forgotten),
            "outputs_change": self.outputs_change,
        }


def _changed_attributes(change: Mapping[str, Any]) -> tuple[str, ...]:
    """The top-level attributes an update changes: before differs from after, or after is not yet known."""
    before = change.get("before") or {}
    after = change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ()
    names = set(before) | set(after)
    return tuple(sorted(n for n in names if before.get(n) != after.get(n) or unknown.get(n) is True))


def _kind(stack: str, change: Change) -> str:
    kind = change.stateful or ""
    return f"state backend {kind}" if stack == STATE_BACKEND_STACK else kind


def unapproved_stateful(stacks: Iterable[StackChanges], allowed: Iterable[str]) -> list[tuple[str, Change]]:
    """(stack, change) of every stateful replace or delete whose address `allowed` does not name."""
    names = set(allowed)
    return [(s.stack, c) for s in stacks for c in s.stateful() if c.address not in names
            and f"{s.stack}:{c.address}" not in names]


@dataclass(frozen=True, slots=True)
class Summary:
    """The environment's plan: per stack what changes, and where the plan came from."""

    environment: str
    stacks: tuple[StackChanges, ...]
    commit: str
    synth_hash: str
    stack_hashes: Mapping[str, str]
    terraform_version: str
    provider_versions: Mapping[str, str]
    created_at: str
    production: bool = False
    release: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "production": self.production,
            "release": self.release,
            "commit": self.commit,
            "synth_hash": self.synth_hash,
            "stack_hashes": dict(self.stack_hashes),
            "terraform_version": self.terraform_version,
            "provider_versions": dict(self.provider_versions),
            "created_at": self.created_at,
            "stacks": [s.to_json() for s in self.stacks],
        }

    def headline(self) -> str:
        """One line: the totals and how many stateful resources are replaced or deleted."""
        totals = {action: sum(s.counts[action] for s in self.stacks) for action in ACTIONS}
        flagged = sum(len(s.stateful()) for s in self.stacks)
        counts = ", ".join(f"{totals[a]} to {a}" for a in ACTIONS)
        warn = f"; {flagged} STATEFUL replaced or deleted" if flagged else ""
        return f"{self.environment}: {counts}{warn}"

    def to_markdown(self) -> str:
        providers = ", ".join(f"{name.removeprefix('registry.terraform.io/')} {version}"
                              for name, version in sorted(self.provider_versions.items()))
        lines = [
            f"# Plan of {self.environment}{' (production)' if self.production else ''}"
            f"{' (release: api only)' if self.release else ''}",
            "",
            f"{self.headline()}",
            "",
            f"commit {self.commit}, synth {self.synth_hash[:19]}, terraform {self.terraform_version}"
            f"{', ' + providers if providers else ''}, planned {self.created_at}",
            "",
            "| stack | create | update | replace | delete |",
            "|---|---:|---:|---:|---:|",
        ]
        for stack in self.stacks:
            counts = stack.counts
            lines.append(f"| {stack.stack} | " + " | ".join(str(counts[a]) for a in ACTIONS) + " |")
        destroyed = [(s.stack, c) for s in self.stacks for c in s.destroyed()]
        lines += ["", "## Replaced or deleted", ""]
        if not destroyed:
            lines.append("nothing")
        for name, change in destroyed:
            flag = f" **STATEFUL: {_kind(name, change)}**" if change.stateful else ""
            lines.append(f"- {name}: `{change.address}` ({change.action}){flag}")
        drift = [(s.stack, address) for s in self.stacks for address in s.drift]
        if drift:
            lines += ["", "## Changed outside Terraform", ""]
            lines += [f"- {name}: `{address}`" for name, address in drift]
        forgotten = [(s.stack, address) for s in self.stacks for address in s.forgotten]
        if forgotten:
            lines += ["", "## Removed from state only (the object stays)", ""]
            lines += [f"- {name}: `{address}`" for name, address in forgotten]
        return "\n".join(lines) + "\n"
