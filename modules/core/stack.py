"""Stacks: one per tier per environment, each with its provider, backend and tags."""

from __future__ import annotations

from typing import Any

from cdktf import CloudBackend, NamedCloudWorkspace, S3Backend, S3BackendAssumeRoleConfig, TerraformStack
from constructs import Construct

from modules import aws
from modules.core.settings import BackendConfig, BackendType, StateConfig, StateLocking
from modules.core.target import Target

MANAGED_BY = "cdktf"


def aws_provider(
    scope: Construct,
    construct_id: str,
    *,
    region: str,
    account_id: str,
    role_arn: str | None,
    tags: dict[str, str],
    target: Target,
    alias: str | None = None,
) -> aws.provider.AwsProvider:
    """An AwsProvider pinned to one account (`allowed_account_ids`) with default tags."""
    settings: dict[str, Any] = {
        "region": region,
        "allowed_account_ids": [target.account_id(account_id)],
        "default_tags": [aws.provider.AwsProviderDefaultTags(tags=tags)],
        **target.provider_settings(),
    }
    role = target.provider_role_arn(role_arn)
    if role:
        settings["assume_role"] = [aws.provider.AwsProviderAssumeRole(
            role_arn=role, session_name=f"cdktf-{tags.get('environment', 'shared')}"
        )]
    if alias:
        settings["alias"] = alias
    return aws.provider.AwsProvider(scope, construct_id, **settings)


class TierStack(TerraformStack):
    """`<env>-<tier>`: one tier of one environment, in its own state.

    Sets the AWS provider (region, the only account it may touch, optional role,
    default tags project/environment/tier/managed-by) and the backend: S3 with the
    DynamoDB lock table and/or S3 native locking, or Terraform Cloud. What the values
    are (names, prefixes, the state-access role) the environment model decides
    (modules/app.py); the stack only wires them.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        project: str,
        environment: str,
        tier: str,
        prefix: str,
        region: str,
        account_id: str,
        role_arn: str | None,
        backend: BackendConfig,
        state: StateConfig,
        state_key: str,
        state_role_arn: str | None,
        target: Target,
    ) -> None:
        name = f"{environment}-{tier}"
        super().__init__(scope, name)
        self.tier = tier
        self.target = target
        self.prefix = prefix
        self.region = region
        self.account_id = account_id
        self.role_arn = role_arn
        self.tags = {
            "project": project,
            "environment": environment,
            "tier": tier,
            "managed-by": MANAGED_BY,
        }
        self.provider = aws_provider(
            self,
            "Aws",
            region=region,
            account_id=account_id,
            role_arn=role_arn,
            tags=self.tags,
            target=target,
        )
        self._providers: dict[str, aws.provider.AwsProvider] = {}
        configure_backend(self, state=state, backend=backend, name=name, key=state_key, role_arn=state_role_arn,
                          target=target)

    def provider_in(self, region: str) -> aws.provider.AwsProvider:
        """A provider alias for another region (CloudFront's certificate and WAF live in us-east-1)."""
        if region == self.region:
            return self.provider
        if region not in self._providers:
            alias = region.replace("-", "_")
            self._providers[region] = aws_provider(
                self,
                f"Aws{alias.title().replace('_', '')}",
                region=region,
                account_id=self.account_id,
                role_arn=self.role_arn,
                tags=self.tags,
                target=self.target,
                alias=alias,
            )
        return self._providers[region]


def configure_backend(
    stack: TerraformStack,
    *,
    state: StateConfig,
    backend: BackendConfig,
    name: str,
    key: str,
    role_arn: str | None,
    target: Target,
) -> None:
    """The stack's backend: S3 on the state bucket at `key` (the DynamoDB lock table and/or
    S3 native locking) reached through `role_arn`, or the Terraform Cloud workspace
    `<workspace_prefix><name>`.

    Workspaces other than `default` live beside `key` (`<folder>/<workspace>/...`), so the
    role that may use the key's folder may use them too.
    """
    if backend.type is BackendType.CLOUD:
        CloudBackend(
            stack,
            organization=backend.organization or "",
            workspaces=NamedCloudWorkspace(f"{backend.workspace_prefix or ''}{name}"),
        )
        return
    settings: dict[str, Any] = {
        "bucket": state.bucket,
        "key": key,
        "workspace_key_prefix": key.split("/", 1)[0],
        "region": state.region,
        # No `encrypt`: with `encrypt = true` and no `kms_key_id`, the backend sends
        # `x-amz-server-side-encryption: AES256` on every upload, which overrides the bucket's
        # default and stores state under SSE-S3, not the state key. Without the header every
        # object takes the bucket default (SSE-KMS, the state key), and the bucket policy refuses
        # uploads that ask for anything else. `kms_key_id` would need the key's ARN, known only
        # after bootstrap, in every environment's configuration, and would not survive a new key.
        **target.s3_backend_settings(),
    }
    if backend.locking in (StateLocking.DYNAMODB, StateLocking.BOTH):
        settings["dynamodb_table"] = state.lock_table
    role = target.role_arn(role_arn)
    if role:
        settings["assume_role"] = S3BackendAssumeRoleConfig(role_arn=role)
    S3Backend(stack, **settings)
    if backend.locking in (StateLocking.LOCKFILE, StateLocking.BOTH):
        # cdktf 0.21's S3BackendConfig predates `use_lockfile` (Terraform 1.10+).
        stack.add_override("terraform.backend.s3.use_lockfile", True)
