"""Settings every tier may share, whatever the tiers are: where state lives, the backend,
the image registry's place, the public DNS zone. Typed and checked like a tier's config.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from modules.core.naming import NameKind, check_name
from modules.core.schema import check, whole
from modules.core.values import PRINCIPAL_ARN, check_account, check_region, check_role, role_account


@dataclass(frozen=True, kw_only=True, slots=True)
class StateConfig:
    """Where every stack's Terraform state lives (created by the `bootstrap` stack).

    `assume_role_arn` is a role in the state account that `bootstrap`'s provider and the
    shared stacks' backend assume; environment stacks assume their own state-access role
    (`modules/state_access.py`).
    """

    account_id: str
    region: str
    lock_table: str
    # Empty: `<project>-tfstate-<account_id>` (SharedConfig fills it in, knowing the project).
    bucket: str = ""
    assume_role_arn: str | None = None
    noncurrent_version_retention_days: int = 90

    def __post_init__(self) -> None:
        check_account("account_id", self.account_id)
        check_region("region", self.region)
        check_role("assume_role_arn", self.assume_role_arn)
        if self.assume_role_arn is not None:
            check(role_account(self.assume_role_arn) == self.account_id, "assume_role_arn", self.assume_role_arn,
                  f"a role in the state account {self.account_id}")
        if self.bucket:
            check_name(NameKind.S3_BUCKET, "bucket", self.bucket)
        check_name(NameKind.DYNAMODB_TABLE, "lock_table", self.lock_table)
        check(1 <= self.noncurrent_version_retention_days <= 3650, "noncurrent_version_retention_days",
              self.noncurrent_version_retention_days, "1..3650")


@dataclass(frozen=True, kw_only=True, slots=True)
class RegistryConfig:
    """`registry { ... }`: the account and region of the ECR registry every environment pulls from."""

    account_id: str
    region: str

    def __post_init__(self) -> None:
        check_account("account_id", self.account_id)
        check_region("region", self.region)


class BackendType(enum.Enum):
    S3 = "s3"
    CLOUD = "cloud"


class StateLocking(enum.Enum):
    """How the S3 backend locks state."""

    DYNAMODB = "dynamodb"  # the lock table (what the design asks for)
    LOCKFILE = "lockfile"  # S3 native locking (`use_lockfile`, Terraform >= 1.10)
    BOTH = "both"  # both at once, the migration path from one to the other


@dataclass(frozen=True, kw_only=True, slots=True)
class BackendConfig:
    """`backend { ... }`: S3 (default) or Terraform Cloud for this environment's stacks."""

    type: BackendType = BackendType.S3
    locking: StateLocking = StateLocking.DYNAMODB
    organization: str | None = None
    workspace_prefix: str | None = None
    # Principals of this environment's account, besides its Terraform and deploy roles, that its
    # state-access role trusts (people who run `terraform plan` by hand, say).
    state_principal_arns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for arn in self.state_principal_arns:
            check(bool(PRINCIPAL_ARN.match(arn)), "state_principal_arns", arn,
                  "IAM role or user ARNs (arn:aws:iam::123456789012:role/name)")
        if self.type is BackendType.CLOUD:
            check(bool(self.organization), "organization", self.organization,
                  "the Terraform Cloud organization when type = \"cloud\"")
            check(not self.state_principal_arns, "state_principal_arns", self.state_principal_arns,
                  'unset when type = "cloud" (the state is not in the state bucket)')
        else:
            for key in ("organization", "workspace_prefix"):
                value = getattr(self, key)
                check(value is None, key, value, 'unset unless type = "cloud"')


ZONE_NAME = whole(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ZONE_ID = whole(r"^Z[A-Z0-9]{1,31}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class DnsConfig:
    """`dns { ... }`: the Route 53 public hosted zone the environment's names live in.

    The zone is looked up (by id when given, else by name), never created here: it
    usually predates the project and holds other records.
    """

    zone_name: str
    zone_id: str | None = None

    def __post_init__(self) -> None:
        check(bool(ZONE_NAME.match(self.zone_name)), "zone_name", self.zone_name,
              "a lowercase DNS name like \"example.com\" (no trailing dot)")
        if self.zone_id is not None:
            check(bool(ZONE_ID.match(self.zone_id)), "zone_id", self.zone_id, "a Route 53 zone id like \"Z0123456789ABC\"")

    @property
    def api_host_name(self) -> str:
        """The API's custom domain in the zone."""
        return f"api.{self.zone_name}"
