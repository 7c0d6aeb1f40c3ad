"""The remote-state backend: the S3 state bucket and the DynamoDB lock table."""

from __future__ import annotations

from cdktf import LocalBackend, TerraformOutput, TerraformResourceLifecycle, TerraformStack
from constructs import Construct

from modules import aws
from modules.core import policy
from modules.core.environment import SharedConfig, StateConfig
from modules.core.naming import NameKind, physical_name
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
        self.key = aws.kms_key.KmsKey(
            self,
            "Key",
            description=f"Encrypts {project} Terraform state and its lock table",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=key_policy.json,
            lifecycle=KEEP,
        )
        aws.kms_alias.KmsAlias(
            self, "KeyAlias", name=physical_name(NameKind.KMS_ALIAS, project, "tfstate"), target_key_id=self.key.key_id
        )

        self.bucket = aws.s3_bucket.S3Bucket(self, "Bucket", bucket=config.bucket, lifecycle=KEEP)
        bucket_id = self.bucket.id
        aws.s3_bucket_versioning.S3BucketVersioningA(
            self, "Versioning", bucket=bucket_id, versioning_configuration={"status": "Enabled"}
        )
        sse = aws.s3_bucket_server_side_encryption_configuration
        sse.S3BucketServerSideEncryptionConfigurationA(
            self,
            "Encryption",
            bucket=bucket_id,
            rule=[sse.S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=sse.S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                    sse_algorithm="aws:kms", kms_master_key_id=self.key.arn
                ),
                bucket_key_enabled=True,
            )],
        )
        aws.s3_bucket_public_access_block.S3BucketPublicAccessBlock(
            self,
            "PublicAccessBlock",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        aws.s3_bucket_ownership_controls.S3BucketOwnershipControls(
            self, "Ownership", bucket=bucket_id, rule={"object_ownership": "BucketOwnerEnforced"}
        )
        bucket_policy = policy.document(self, "BucketPolicyDocument", policy.deny_insecure_transport(self.bucket.arn))
        aws.s3_bucket_policy.S3BucketPolicy(self, "BucketPolicy", bucket=bucket_id, policy=bucket_policy.json)
        lifecycle = aws.s3_bucket_lifecycle_configuration
        lifecycle.S3BucketLifecycleConfiguration(
            self,
            "Lifecycle",
            bucket=bucket_id,
            rule=[lifecycle.S3BucketLifecycleConfigurationRule(
                id="expire-noncurrent-state",
                status="Enabled",
                # `prefix = ""` is the whole bucket, like an empty filter {}.
                filter=[lifecycle.S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                noncurrent_version_expiration=[lifecycle.S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=config.noncurrent_version_retention_days
                )],
                abort_incomplete_multipart_upload=[
                    lifecycle.S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
                ],
            )],
        )

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
