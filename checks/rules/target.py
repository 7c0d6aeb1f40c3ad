"""The emulator target changes only what modules/core/target.py documents, compared with the real one.

The allowed list is written out here, not imported from modules/core/target.py: a new
`ignore_changes` for the emulator must be added in both places, so that the emulator cannot
quietly stop seeing drift (a bucket policy or a security group changed behind terraform's back)
without a reviewed change to this list. The measured reasons are in ARCHITECTURE.md.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from checks.rules.stack import Stack, strings

EMULATOR_ACCOUNT_ID = "123456789012"  # moto's account
# Provider and S3-backend arguments that point at the emulator.
EMULATOR_SETTINGS = frozenset({
    "access_key", "secret_key", "skip_credentials_validation", "skip_metadata_api_check",
    "skip_region_validation", "s3_use_path_style", "use_path_style", "endpoints",
})
# Resource types moto has no API for (left out of the emulator's stacks).
EMULATOR_UNSUPPORTED_RESOURCE_TYPES = frozenset({
    "aws_cloudfront_response_headers_policy", "aws_prometheus_alert_manager_definition", "aws_grafana_workspace",
    "aws_grafana_role_association", "aws_grafana_workspace_api_key", "aws_grafana_workspace_saml_configuration",
    # moto 5.2.5 has no StartDBInstanceAutomatedBackupsReplication (issue 19).
    "aws_db_instance_automated_backups_replication",
})
# Attributes moto echoes back differently from what was sent (drift that is moto's, not ours).
EMULATOR_IGNORE_CHANGES: dict[str, frozenset[str]] = {
    "aws_db_parameter_group": frozenset({"parameter"}),
    "aws_db_instance": frozenset({"performance_insights_enabled", "performance_insights_kms_key_id",
                                  "performance_insights_retention_period"}),
    "aws_ecs_service": frozenset({"health_check_grace_period_seconds", "capacity_provider_strategy",
                                  "enable_ecs_managed_tags", "availability_zone_rebalancing"}),
    "aws_lb": frozenset({"enforce_security_group_inbound_rules_on_private_link_traffic"}),
    "aws_api_gateway_integration": frozenset({"connection_id", "cache_key_parameters"}),
    "aws_cloudfront_distribution": frozenset({"origin", "default_cache_behavior", "viewer_certificate"}),
    "aws_prometheus_workspace": frozenset({"kms_key_arn"}),
}


def _unsupported(value: Any) -> bool:
    return any(f"{kind}." in text for text in strings(value) for kind in EMULATOR_UNSUPPORTED_RESOURCE_TYPES)


def _without_unsupported(value: Any) -> Any:
    """`value` without the entries that refer to resource types the emulator leaves out."""
    if isinstance(value, dict):
        return {k: _without_unsupported(v) for k, v in value.items()
                if k not in EMULATOR_UNSUPPORTED_RESOURCE_TYPES and not (isinstance(v, str) and _unsupported(v))}
    if isinstance(value, list):
        return [_without_unsupported(v) for v in value if not (isinstance(v, str) and _unsupported(v))]
    return value


def _normalize(stack: dict[str, Any], emulator: bool) -> dict[str, Any]:
    stack = copy.deepcopy(stack)
    _drop_metadata(stack)
    for provider in stack.get("provider", {}).get("aws", []) or []:
        for key in EMULATOR_SETTINGS if emulator else ("assume_role",):
            provider.pop(key, None)
        if emulator:
            if provider.get("allowed_account_ids") not in (None, [EMULATOR_ACCOUNT_ID]):
                provider["allowed_account_ids"] = ["not the emulator's account"]
            else:
                provider.pop("allowed_account_ids", None)
        else:
            provider.pop("allowed_account_ids", None)
    backends = [stack.get("terraform", {}).get("backend", {}).get("s3")]
    backends += [state.get("config") for state in stack.get("data", {}).get("terraform_remote_state", {}).values()]
    for backend in filter(None, backends):
        for key in EMULATOR_SETTINGS if emulator else ("assume_role",):
            backend.pop(key, None)
    if emulator:
        for resource_type, by_name in stack.get("resource", {}).items():
            allowed = EMULATOR_IGNORE_CHANGES.get(resource_type, frozenset())
            for config in by_name.values():
                lifecycle = config.get("lifecycle")
                if not isinstance(lifecycle, dict) or "ignore_changes" not in lifecycle:
                    continue
                kept = [a for a in lifecycle["ignore_changes"] if a not in allowed]
                if kept:
                    lifecycle["ignore_changes"] = kept
                else:
                    del lifecycle["ignore_changes"]
                if not lifecycle:
                    del config["lifecycle"]
        return stack
    stack["output"] = {k: v for k, v in stack.get("output", {}).items() if not _unsupported(v)}
    if not stack["output"]:
        del stack["output"]
    return _without_unsupported(stack)


def _drop_metadata(value: Any) -> None:
    if isinstance(value, dict):
        value.pop("//", None)
        for item in value.values():
            _drop_metadata(item)
    elif isinstance(value, list):
        for item in value:
            _drop_metadata(item)


def _differences(real: Any, emulated: Any, path: str) -> Iterator[str]:
    if isinstance(real, dict) and isinstance(emulated, dict):
        for key in sorted(set(real) | set(emulated)):
            where = f"{path}.{key}" if path else key
            if key not in emulated:
                yield f"{where}: only in the real target"
            elif key not in real:
                yield f"{where}: only in the emulator target ({json.dumps(emulated[key])[:120]})"
            else:
                yield from _differences(real[key], emulated[key], where)
    elif isinstance(real, list) and isinstance(emulated, list) and len(real) == len(emulated):
        for index, (a, b) in enumerate(zip(real, emulated, strict=True)):
            yield from _differences(a, b, f"{path}[{index}]")
    elif real != emulated:
        yield f"{path}: {json.dumps(real)[:80]} in the real target, {json.dumps(emulated)[:80]} in the emulator's"


def emulator_differs_only_as_documented(stack: Stack, context: Any) -> Iterator[tuple[str, str]]:
    """Not applicable without the emulator target's synthesis of the same stack."""
    emulated = (getattr(context, "emulator", None) or {}).get(stack.name)
    if emulated is None:
        return
    for difference in _differences(_normalize(stack.json, False), _normalize(emulated.json, True), ""):
        where, _, detail = difference.partition(": ")
        yield where, detail
