"""Stateful resources of production cannot be destroyed by accident."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checks.rules.stack import Stack, address, references

# What holds data that a destroy would lose (a log group's destroy deletes its events); KMS keys
# are in it too, when they encrypt one of these.
STATEFUL = ("aws_db_instance", "aws_rds_cluster", "aws_s3_bucket", "aws_dynamodb_table", "aws_ecr_repository",
            "aws_secretsmanager_secret", "aws_prometheus_workspace", "aws_efs_file_system",
            "aws_cloudwatch_log_group")
# Arguments that, when true, let terraform destroy a resource with its contents.
FORCE = {"aws_s3_bucket": "force_destroy", "aws_ecr_repository": "force_delete"}
# Arguments that must be true for the service to refuse a delete.
DELETION_PROTECTION = {"aws_db_instance": "deletion_protection", "aws_rds_cluster": "deletion_protection",
                       "aws_dynamodb_table": "deletion_protection_enabled"}


def _is_production(stack: Stack, config: dict[str, Any], context: Any) -> bool:
    """Production unless the provider's environment tag names a non-production environment
    (bootstrap and shared-cicd hold every environment's state and images)."""
    environment = stack.provider(config).environment
    return environment not in (set(context.environments) - set(context.production))


def production_stateful_resources_are_protected(stack: Stack, context: Any) -> Iterator[tuple[str, str]]:
    stateful: list[tuple[str, str, dict[str, Any]]] = []
    for resource_type in STATEFUL:
        for name, config in stack.resources(resource_type).items():
            if resource_type in ("aws_db_instance",) and config.get("replicate_source_db"):
                continue  # a read replica is rebuilt from its primary
            stateful.append((resource_type, name, config))
    keys = {name for _, _, config in stateful for kind, name in references(config) if kind == "aws_kms_key"}
    stateful += [("aws_kms_key", name, stack.resources("aws_kms_key")[name]) for name in sorted(keys)]
    for resource_type, name, config in stateful:
        if not _is_production(stack, config, context):
            continue
        where = address(resource_type, name)
        if (config.get("lifecycle") or {}).get("prevent_destroy") is not True:
            yield where, "no lifecycle.prevent_destroy"
        if resource_type in FORCE and config.get(FORCE[resource_type]) is True:
            yield where, f"{FORCE[resource_type]} = true"
        if resource_type in DELETION_PROTECTION and config.get(DELETION_PROTECTION[resource_type]) is not True:
            yield where, f"{DELETION_PROTECTION[resource_type]} is not true"
        if resource_type in ("aws_db_instance", "aws_rds_cluster") and config.get("skip_final_snapshot") is True:
            yield where, "skip_final_snapshot = true"
