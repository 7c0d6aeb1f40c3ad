"""The emulator target changes only what modules/core/target.py documents, compared with the real one.

The allowed list is written out here, not imported from modules/core/target.py: a new
`ignore_changes` for the emulator must be added in both places, so that the emulator cannot
quietly stop seeing drift (a bucket policy or a security group changed behind terraform's back)
without a reviewed change to this list. The measured reasons are in README.md, "The local emulator target".
"""

from __future__ import annotations

import copy
import json
import re
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
    # moto 5.2.5 answers CreateMonitoringSubscription with 404 (issue 22).
    "aws_cloudfront_monitoring_subscription",
})
# Attributes moto echoes back differently from what was sent (drift that is moto's, not ours).
EMULATOR_IGNORE_CHANGES: dict[str, frozenset[str]] = {
    "aws_db_parameter_group": frozenset({"parameter"}),
    "aws_cloudfront_distribution": frozenset({"origin", "default_cache_behavior", "viewer_certificate"}),
}
# API Gateway's account-level CloudWatch role (one per account and region): the emulator is one account
# for every environment, so only the first environment's API stack sets it there (modules/app.py
# account_settings_owners); the others' emulator stacks leave out these construct paths.
ACCOUNT_SINGLETON_PATHS = ("/Gateway/Account", "/Gateway/CloudWatchRole", "/Gateway/CloudWatchRolePolicy",
                           "/Gateway/CloudWatchTrust")

# Resources IAM allows once per account (the Jenkins issuer's IAM OIDC provider, one per pipeline
# account on AWS): moto has one account, so the emulator target registers one; references to any
# of them are the same provider there.
ONCE_PER_ACCOUNT_RESOURCE_TYPES = frozenset({"aws_iam_openid_connect_provider"})


def _once_per_account(stack: dict[str, Any]) -> dict[str, Any]:
    """`stack` with each once-per-account resource type reduced to one entry (provider alias
    dropped) and every reference to one of them spelled alike."""
    text = json.dumps(stack)
    for kind in ONCE_PER_ACCOUNT_RESOURCE_TYPES:
        text = re.sub(rf"\$\{{{kind}\.[A-Za-z0-9_]+\.", f"${{{kind}.ONE.", text)
    stack = json.loads(text)
    for kind in ONCE_PER_ACCOUNT_RESOURCE_TYPES:
        by_name = stack.get("resource", {}).get(kind)
        if by_name:
            first = dict(next(iter(by_name.values())))
            first.pop("provider", None)
            stack["resource"][kind] = {"ONE": first}
    return stack


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
    stack = _once_per_account(stack)
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


def _without_account_singletons(stack: dict[str, Any]) -> dict[str, Any]:
    """`stack` without the account-level CloudWatch role setting and what only it uses, and without
    the `depends_on` entries that name them."""
    stack = copy.deepcopy(stack)
    addresses = set()
    for section, prefix in (("resource", ""), ("data", "data.")):
        for kind, by_name in list(stack.get(section, {}).items()):
            for name, config in list(by_name.items()):
                path = config.get("//", {}).get("metadata", {}).get("path", "")
                if path.endswith(ACCOUNT_SINGLETON_PATHS):
                    addresses.add(f"{prefix}{kind}.{name}")
                    del by_name[name]
            if not by_name:
                del stack[section][kind]
    for by_name in stack.get("resource", {}).values():
        for config in by_name.values():
            if "depends_on" in config:
                config["depends_on"] = [d for d in config["depends_on"] if d not in addresses]
                if not config["depends_on"]:
                    del config["depends_on"]
    return stack


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
    real = stack.json
    if "aws_api_gateway_account" not in emulated.json.get("resource", {}):
        real = _without_account_singletons(real)
    for difference in _differences(_normalize(real, False), _normalize(emulated.json, True), ""):
        where, _, detail = difference.partition(": ")
        yield where, detail
