"""Customer-managed KMS keys: every one rotates yearly, waits 30 days before deletion, and has an alias."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules import aws
from modules.core.naming import NameKind, physical_name


def key(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    policy_json: str,
    alias_prefix: str,
    alias: str,
    lifecycle: Any = None,
    provider: Any = None,
) -> aws.kms_key.KmsKey:
    """The key `construct_id` and its alias `<construct_id>Alias` named `alias/<alias_prefix>-<alias>`.

    `lifecycle` keeps keys that protect data (prevent_destroy); `provider` picks another region.
    """
    created = aws.kms_key.KmsKey(
        scope, construct_id, description=description, enable_key_rotation=True, deletion_window_in_days=30,
        policy=policy_json, lifecycle=lifecycle, provider=provider,
    )
    aws.kms_alias.KmsAlias(
        scope, f"{construct_id}Alias", name=physical_name(NameKind.KMS_ALIAS, alias_prefix, alias),
        target_key_id=created.key_id, provider=provider,
    )
    return created
