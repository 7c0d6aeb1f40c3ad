"""Stacks: one per tier per environment, each with its provider, backend and tags."""

from __future__ import annotations

from typing import Any

from cdktf import CloudBackend, NamedCloudWorkspace, S3Backend, S3BackendAssumeRoleConfig, TerraformStack
from constructs import Construct

from modules import aws
from modules.core import state_access
from modules.core.environment import (
    BackendConfig,
    BackendType,
    EnvironmentConfig,
    SharedConfig,
    StateLocking,
    prefix_of,
)
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
) -> Any:
    """An AwsProvider pinned to one account (`allowed_account_ids`) with default tags."""
    settings: dict[str, Any] = {
        "region": region,
        "allowed_account_ids": [target.account_id(account_id)],
        "default_tags": [aws.provider.AwsProviderDefaultTags(tags=tags)],
        **target.provider_settings(),
    }
    role = target.role_arn(role_arn)
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
    DynamoDB lock table and/or S3 native locking, or Terraform Cloud.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        shared: SharedConfig,
        environment: EnvironmentConfig,
        tier: str,
        target: Target,
    ) -> None:
        super().__init__(scope, f"{environment.name}-{tier}")
        self.shared = shared
        self.environment = environment
        self.tier = tier
        self.target = target
        self.prefix = prefix_of(shared, environment)
        self.tags = {
            "project": shared.project,
            "environment": environment.name,
            "tier": tier,
            "managed-by": MANAGED_BY,
        }
        self.provider = aws_provider(
            self,
            "Aws",
            region=environment.region,
            account_id=environment.account_id,
            role_arn=environment.assume_role_arn,
            tags=self.tags,
            target=target,
        )
        self._providers: dict[str, Any] = {}
        self._configure_backend()

    def provider_in(self, region: str) -> Any:
        """A provider alias for another region (CloudFront's certificate and WAF live in us-east-1)."""
        if region == self.environment.region:
            return self.provider
        if region not in self._providers:
            alias = region.replace("-", "_")
            self._providers[region] = aws_provider(
                self,
                f"Aws{alias.title().replace('_', '')}",
                region=region,
                account_id=self.environment.account_id,
                role_arn=self.environment.assume_role_arn,
                tags=self.tags,
                target=self.target,
                alias=alias,
            )
        return self._providers[region]

    def _configure_backend(self) -> None:
        environment = self.environment
        configure_backend(
            self,
            shared=self.shared,
            backend=environment.backend,
            name=f"{environment.name}-{self.tier}",
            key=f"{state_access.state_prefix(environment)}/{self.tier}.tfstate",
            # The environment's account reaches its state through its state-access role (bootstrap).
            role_arn=state_access.state_role_arn(self.shared, environment),
            target=self.target,
        )


def configure_backend(
    stack: TerraformStack,
    *,
    shared: SharedConfig,
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
    state = shared.state
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
