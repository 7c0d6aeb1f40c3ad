"""The remote-state backend: the S3 state bucket and the DynamoDB lock table."""

from __future__ import annotations

from cdktf import LocalBackend, TerraformOutput, TerraformResourceLifecycle, TerraformStack
from constructs import Construct

from modules import aws
from modules.core import buckets, kms, policy
from modules.core.environment import SharedConfig, StateConfig
from modules.core.stack import MANAGED_BY, aws_provider
from modules.core.target import Target

# State, and what locks it, must never go with a stray `terraform destroy`.
KEEP = TerraformResourceLifecycle(prevent_destroy=True)


class StateBackend(Construct):
    """Creates the state bucket and lock table every other stack's backend uses.

    - a KMS key (rotation on) that encrypts both;
    - the bucket: versioned, SSE-KMS with a bucket key, all public access blocked,
      ACLs disabled, a policy that refuses requests without TLS, noncurrent state
      versions expired after `noncurrent_version_retention_days`;
    - the table: `LockID` hash key, on-demand, point-in-time recovery, KMS
      encryption, deletion protection.
    Both carry `prevent_destroy`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StateConfig, project: str) -> None:
        super().__init__(scope, construct_id)
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Identity")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")

        key_policy = policy.document(
            self, "KeyPolicy", policy.account_root_admin(identity.account_id, partition.partition)
        )
        self.key = kms.key(self, "Key", description=f"Encrypts {project} Terraform state and its lock table",
                           policy_json=key_policy.json, alias_prefix=project, alias="tfstate", lifecycle=KEEP)

        self.bucket = aws.s3_bucket.S3Bucket(self, "Bucket", bucket=config.bucket, lifecycle=KEEP)
        bucket_id = self.bucket.id
        buckets.versioning(self, "Versioning", bucket_id)
        buckets.encryption(self, "Encryption", bucket_id, kms_key_arn=self.key.arn)
        buckets.public_access_block(self, "PublicAccessBlock", bucket_id)
        buckets.ownership(self, "Ownership", bucket_id)
        bucket_policy = policy.document(self, "BucketPolicyDocument", policy.deny_insecure_transport(self.bucket.arn))
        aws.s3_bucket_policy.S3BucketPolicy(self, "BucketPolicy", bucket=bucket_id, policy=bucket_policy.json)
        buckets.lifecycle(self, "Lifecycle", bucket_id, rule_id="expire-noncurrent-state",
                          noncurrent_days=config.noncurrent_version_retention_days, abort_multipart_days=7)

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


class BootstrapStack(TerraformStack):
    """`bootstrap`: the state backend itself, in local state (created once per organisation).

    Its own state is written beside `cdktf.out/` as `terraform.bootstrap.tfstate`;
    keep that file, or migrate it into the bucket once the bucket exists
    (README: "Bootstrap").
    """

    def __init__(self, scope: Construct, *, shared: SharedConfig, target: Target) -> None:
        super().__init__(scope, "bootstrap")
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
