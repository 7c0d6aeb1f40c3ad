"""The remote-state backend: the S3 state bucket, the DynamoDB lock table, and a
state-access role per environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cdktf import LocalBackend, TerraformOutput, TerraformResourceLifecycle, TerraformStack
from constructs import Construct

from modules import aws, state_access
from modules.core import buckets, kms, policy
from modules.core.naming import pascal
from modules.core.settings import StateConfig
from modules.core.stack import MANAGED_BY, aws_provider
from modules.core.target import Target
from modules.environment import EnvironmentConfig, SharedConfig

# State, and what locks it, must never go with a stray `terraform destroy`.
KEEP = TerraformResourceLifecycle(prevent_destroy=True)


class StateBackend(Construct):
    """Creates the state bucket and lock table every other stack's backend uses.

    - a KMS key (rotation on) that encrypts both;
    - the bucket: versioned, SSE-KMS under that key (no bucket key, so key use can be
      scoped per environment prefix), all public access blocked, ACLs disabled, a policy
      that refuses requests without TLS and uploads that ask for any other encryption
      (an upload without an encryption header takes the bucket default, the state key),
      noncurrent state versions expired after `noncurrent_version_retention_days`;
    - the table: `LockID` hash key, on-demand, point-in-time recovery, KMS
      encryption, deletion protection.
    Both carry `prevent_destroy`.

    Attributes: `bucket`, `lock_table`, `key`, `partition`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StateConfig, project: str) -> None:
        super().__init__(scope, construct_id)
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Identity")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")
        self.partition = partition.partition

        key_policy = policy.document(
            self, "KeyPolicy", policy.account_root_admin(identity.account_id, partition.partition)
        )
        self.key = kms.key(self, "Key", description=f"Encrypts {project} Terraform state and its lock table",
                           policy_json=key_policy.json, alias_prefix=project, alias="tfstate", lifecycle=KEEP)

        self.bucket = aws.s3_bucket.S3Bucket(self, "Bucket", bucket=config.bucket, lifecycle=KEEP)
        # No bucket key: with one, S3 asks KMS with the bucket's ARN as encryption context, and a
        # state-access role could not be held to its own prefix's objects (see StateAccess).
        state = buckets.SecureBucket(self, "", self.bucket, buckets.BucketSettings(
            kms_key_arn=self.key.arn, bucket_key=False,
            expiry=buckets.Expiry(rule_id="expire-noncurrent-state",
                                  noncurrent_days=config.noncurrent_version_retention_days, abort_multipart_days=7),
        ))
        state.policy(denials=deny_other_encryption(self.bucket.arn, self.key.arn))

        self.lock_table = aws.dynamodb_table.DynamodbTable(
            self,
            "LockTable",
            name=config.lock_table,
            billing_mode="PAY_PER_REQUEST",
            hash_key="LockID",
            attribute=[aws.dynamodb_table.DynamodbTableAttribute(name="LockID", type="S")],
            point_in_time_recovery={"enabled": True},
            server_side_encryption={"enabled": True, "kms_key_arn": self.key.arn},
            deletion_protection_enabled=True,
            lifecycle=KEEP,
        )

        TerraformOutput(self, "BucketName", value=self.bucket.bucket, description="State bucket")
        TerraformOutput(self, "LockTableName", value=self.lock_table.name, description="State lock table")
        TerraformOutput(self, "KeyArn", value=self.key.arn, description="KMS key of state and locks")


def deny_other_encryption(bucket_arn: str, key_arn: str) -> list[Any]:
    """Uploads take the bucket's default encryption (SSE-KMS under the state key) or name that
    key: one asking for SSE-S3, another KMS key, `aws:kms` without a key (S3 would use `aws/s3`), or
    a customer-provided key (SSE-C) is refused.

    Each Deny holds only when its header is present (`Null: false`). The S3 backend sends no
    encryption header (modules/core/stack.py), and IAM evaluates a negated operator on a missing
    key as true, `...IfExists` included ("IAM JSON policy elements: Condition operators"): a
    `StringNotEqualsIfExists` Deny alone refused every state write and `.tflock` on AWS. An absent
    header is safe to allow, since the bucket's default encryption then applies the state key.
    The alternative, the backend naming the key (`kms_key_id`), needs the key's ARN in every
    environment's configuration and breaks when the key is replaced; this bucket-side rule does not.
    """
    objects = [f"{bucket_arn}/*"]
    everyone = [{"type": "*", "identifiers": ["*"]}]
    header, key_header = "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"
    customer_key_header = "s3:x-amz-server-side-encryption-customer-algorithm"

    def present(key: str) -> dict[str, Any]:
        return {"test": "Null", "variable": key, "values": ["false"]}

    return [
        policy.statement(sid="DenyOtherEncryption", effect="Deny", actions=["s3:PutObject"], resources=objects,
                         principals=everyone,
                         conditions=[present(header),
                                     {"test": "StringNotEquals", "variable": header, "values": ["aws:kms"]}]),
        policy.statement(sid="DenyOtherKeys", effect="Deny", actions=["s3:PutObject"], resources=objects,
                         principals=everyone,
                         conditions=[present(key_header),
                                     {"test": "StringNotEquals", "variable": key_header, "values": [key_arn]}]),
        policy.statement(sid="DenyKmsWithoutTheKey", effect="Deny", actions=["s3:PutObject"], resources=objects,
                         principals=everyone,
                         conditions=[{"test": "StringEquals", "variable": header, "values": ["aws:kms"]},
                                     {"test": "Null", "variable": key_header, "values": ["true"]}]),
        policy.statement(sid="DenyCustomerKeys", effect="Deny", actions=["s3:PutObject"], resources=objects,
                         principals=everyone, conditions=[present(customer_key_header)]),
    ]


class StateAccess(Construct):
    """Creates one environment's state-access role in the state account (`<prefix>-tfstate`).

    Its stacks' S3 backend assumes it (modules/core/stack.py), and so do the delivery
    commands that read their outputs. Trust: the account root of the environment's
    account, limited by `aws:PrincipalArn` to the principals that run its Terraform
    (`state_access.trusted_principal_arns`); a condition rather than role ARNs as
    principals, because IAM rejects a trust policy naming a role that does not exist
    yet (the deploy role is created later, by shared-cicd) and silently breaks one whose
    role is recreated. Permissions, only for the environment's `<env>/` prefix:
    list it, read/write/delete its objects (state, `.tflock` files), read/write/delete
    the lock items of its keys, and use the state key only through S3 for those objects
    and through DynamoDB for the lock table.

    Attributes: `role`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, backend: StateBackend, shared: SharedConfig,
                 environment: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        p, state = backend.partition, shared.state
        prefix = state_access.state_prefix(environment)
        self.role = environment_role(
            self, p, environment, sid="EnvironmentTerraformAssumes",
            principal_arns=list(state_access.trusted_principal_arns(shared, environment)),
            name=state_access.state_role_name(shared, environment),
            description=f"Terraform state of {environment.name}: s3://{state.bucket}/{prefix}/ and its locks",
        )
        bucket, key_arn, table_arn = backend.bucket.arn, backend.key.arn, backend.lock_table.arn
        objects = f"{bucket}/{prefix}/*"
        permissions = policy.document(
            self, "Permissions",
            # Terraform lists the prefix to find workspaces (workspace_key_prefix is the prefix too).
            policy.statement(sid="ListPrefix", actions=["s3:ListBucket"], resources=[bucket],
                             conditions=[{"test": "StringLike", "variable": "s3:prefix",
                                          "values": [f"{prefix}/*"]}]),
            policy.statement(sid="ReadWriteState", actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                             resources=[objects]),
            # The backend's lock items are `<bucket>/<key>` and `<bucket>/<key>-md5`.
            policy.statement(sid="LockState", actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                             resources=[table_arn],
                             conditions=[{"test": "ForAllValues:StringLike", "variable": "dynamodb:LeadingKeys",
                                          "values": [f"{state.bucket}/{prefix}/*"]}]),
            policy.statement(sid="StateObjectsKey", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                             resources=[key_arn],
                             conditions=[
                                 {"test": "StringEquals", "variable": "kms:ViaService",
                                  "values": [f"s3.{state.region}.amazonaws.com"]},
                                 {"test": "ArnLike", "variable": "kms:EncryptionContext:aws:s3:arn",
                                  "values": [objects]},
                             ]),
            *lock_table_key(state, key_arn),
        )
        aws.iam_role_policy.IamRolePolicy(self, "RolePolicy", name="terraform-state", role=self.role.id,
                                          policy=permissions.json)
        TerraformOutput(self, "RoleArn", value=self.role.arn,
                        description=f"The role {environment.name}'s stacks reach their state through")


def lock_table_key(state: Any, key_arn: str) -> list[Any]:
    """The lock table's key, through DynamoDB only: both state-access roles take the lock, and
    DynamoDB decrypts the table key with the caller's permissions (and caches it per caller)."""
    return [
        policy.statement(sid="LockTableKey",
                         actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                         resources=[key_arn],
                         conditions=[
                             {"test": "StringEquals", "variable": "kms:ViaService",
                              "values": [f"dynamodb.{state.region}.amazonaws.com"]},
                             {"test": "StringEquals", "variable": "kms:EncryptionContext:aws:dynamodb:tableName",
                              "values": [state.lock_table]},
                         ]),
        policy.statement(sid="LockTableKeyDescribe", actions=["kms:DescribeKey"], resources=[key_arn],
                         conditions=[{"test": "StringEquals", "variable": "kms:ViaService",
                                      "values": [f"dynamodb.{state.region}.amazonaws.com"]}]),
    ]


class PlanStateAccess(Construct):
    """Creates one environment's plan-state role in the state account (`<prefix>-tfstate-plan`).

    The role a pull request plans with: trusted only by the environment's plan role (shared-cicd,
    `<prefix>-plan`; an `aws:PrincipalArn` condition as in `StateAccess`). It reads the state
    under `<env>/` and takes and releases the lock (the lock table's item of a state key, or the
    key's `.tflock` object with S3 native locking), and nothing more: it cannot write or delete
    a state object, nor the `-md5` digest items Terraform keeps beside the locks (a changed
    digest makes every later read of that state fail).

    Attributes: `role`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, backend: StateBackend, shared: SharedConfig,
                 environment: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        p, state = backend.partition, shared.state
        prefix = state_access.state_prefix(environment)
        self.role = environment_role(
            self, p, environment, sid="EnvironmentPlanAssumes",
            principal_arns=[state_access.plan_role_arn(shared, environment)],
            name=state_access.plan_state_role_name(shared, environment),
            description=f"Plans of {environment.name}: read s3://{state.bucket}/{prefix}/ and take its locks",
        )
        bucket, key_arn, table_arn = backend.bucket.arn, backend.key.arn, backend.lock_table.arn
        objects = f"{bucket}/{prefix}/*"
        lock_files = f"{bucket}/{prefix}/*.tflock"
        lock_items = [{"test": "ForAllValues:StringLike", "variable": "dynamodb:LeadingKeys",
                       "values": [f"{state.bucket}/{prefix}/*"]}]
        permissions = policy.document(
            self, "Permissions",
            policy.statement(sid="ListPrefix", actions=["s3:ListBucket"], resources=[bucket],
                             conditions=[{"test": "StringLike", "variable": "s3:prefix", "values": [f"{prefix}/*"]}]),
            policy.statement(sid="ReadState", actions=["s3:GetObject"], resources=[objects]),
            # S3 native locking (use_lockfile): the lock is `<key>.tflock`, written and deleted.
            policy.statement(sid="LockFiles", actions=["s3:PutObject", "s3:DeleteObject"], resources=[lock_files]),
            policy.statement(sid="ReadLocks", actions=["dynamodb:GetItem"], resources=[table_arn],
                             conditions=lock_items),
            policy.statement(sid="TakeLocks", actions=["dynamodb:PutItem", "dynamodb:DeleteItem"],
                             resources=[table_arn], conditions=lock_items),
            # `<bucket>/<key>-md5` is the digest of the state Terraform last wrote: only a state
            # write changes it, and a plan writes none.
            policy.statement(sid="NoDigestWrites", effect="Deny",
                             actions=["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"],
                             resources=[table_arn],
                             conditions=[{"test": "ForAnyValue:StringLike", "variable": "dynamodb:LeadingKeys",
                                          "values": ["*-md5"]}]),
            policy.statement(sid="ReadStateKey", actions=["kms:Decrypt"], resources=[key_arn],
                             conditions=[
                                 {"test": "StringEquals", "variable": "kms:ViaService",
                                  "values": [f"s3.{state.region}.amazonaws.com"]},
                                 {"test": "ArnLike", "variable": "kms:EncryptionContext:aws:s3:arn",
                                  "values": [objects]},
                             ]),
            policy.statement(sid="LockFilesKey", actions=["kms:GenerateDataKey"], resources=[key_arn],
                             conditions=[
                                 {"test": "StringEquals", "variable": "kms:ViaService",
                                  "values": [f"s3.{state.region}.amazonaws.com"]},
                                 {"test": "ArnLike", "variable": "kms:EncryptionContext:aws:s3:arn",
                                  "values": [lock_files]},
                             ]),
            *lock_table_key(state, key_arn),
        )
        aws.iam_role_policy.IamRolePolicy(self, "RolePolicy", name="terraform-state-plan", role=self.role.id,
                                          policy=permissions.json)
        TerraformOutput(self, "RoleArn", value=self.role.arn,
                        description=f"The role {environment.name}'s plans read their state through")


def plan_access_id(environment_name: str) -> str:
    """`dev` -> `DevPlanAccess`."""
    return environment_name[:1].upper() + environment_name[1:] + "PlanAccess"


def access_id(environment_name: str) -> str:
    """`dev` -> `DevAccess` (construct ids are Terraform addresses: keep them stable)."""
    return pascal(environment_name) + "Access"


class BootstrapStack(TerraformStack):
    """`bootstrap`: the state backend itself, in local state (created once per organisation).

    Built from every environment (a state-access role each), so it is left out of a
    partial synth (`ENVIRONMENTS=dev`), which would otherwise delete the others' roles.
    Its own state is written beside `cdktf.out/` as `terraform.bootstrap.tfstate`;
    keep that file, or migrate it into the bucket once the bucket exists
    (README: "Bootstrap").
    """

    def __init__(self, scope: Construct, name: str, *, shared: SharedConfig,
                 environments: Sequence[EnvironmentConfig], target: Target) -> None:
        super().__init__(scope, name)
        state = shared.state
        aws_provider(
            self,
            "Aws",
            region=state.region,
            account_id=state.account_id,
            role_arn=state.assume_role_arn,
            tags={"project": shared.project, "tier": "bootstrap", "managed-by": MANAGED_BY},
            target=target,
        )
        # Relative to the stack's folder (cdktf.out/stacks/bootstrap): the project root,
        # where a re-synth never deletes it.
        LocalBackend(self, path="../../../terraform.bootstrap.tfstate")
        self.backend = StateBackend(self, "StateBackend", config=state, project=shared.project)
        self.access = {
            environment.name: StateAccess(self.backend, access_id(environment.name), backend=self.backend,
                                          shared=shared, environment=environment)
            for environment in environments if state_access.uses_state_bucket(environment)
        }
        self.plan_access = {
            environment.name: PlanStateAccess(self.backend, plan_access_id(environment.name), backend=self.backend,
                                              shared=shared, environment=environment)
            for environment in environments if state_access.uses_state_bucket(environment)
        }


def environment_role(scope: Construct, partition: str, environment: EnvironmentConfig, *, sid: str,
                     principal_arns: list[str], name: str, description: str) -> Any:
    """`Trust` and `Role`: a role of the state account that `principal_arns` of the environment's
    account (`aws:PrincipalArn`) may assume; the state-access and plan-state roles differ only in who."""
    trust = policy.document(scope, "Trust", policy.statement(
        sid=sid,
        actions=["sts:AssumeRole"],
        principals=[{"type": "AWS", "identifiers": [f"arn:{partition}:iam::{environment.account_id}:root"]}],
        conditions=[{"test": "ArnEquals", "variable": "aws:PrincipalArn", "values": principal_arns}],
    ))
    return aws.iam_role.IamRole(scope, "Role", name=name, description=description, assume_role_policy=trust.json)
