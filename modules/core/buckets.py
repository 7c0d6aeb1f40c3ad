"""The settings every bucket of this project carries, one resource each.

The state bucket and the frontend's site and log buckets are all versioned,
encrypted (a KMS key, or SSE-S3 where a log delivery service cannot use KMS),
closed to the public and expire what they no longer need. Each function adds one
of those resources under the caller's construct id, so the ids (and the addresses in state) are the tier's own.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules import aws


def versioning(scope: Construct, construct_id: str, bucket_id: str) -> aws.s3_bucket_versioning.S3BucketVersioningA:
    return aws.s3_bucket_versioning.S3BucketVersioningA(
        scope, construct_id, bucket=bucket_id, versioning_configuration={"status": "Enabled"}
    )


def encryption(scope: Construct, construct_id: str, bucket_id: str, *, kms_key_arn: str | None,
               bucket_key: bool = True) -> Any:
    """SSE-KMS under `kms_key_arn`, with an S3 bucket key unless `bucket_key` is False; SSE-S3 when
    `kms_key_arn` is None. Without a bucket key, each object's KMS encryption context is its own
    ARN, so a key grant can be scoped to a prefix (one KMS request per object read or write)."""
    sse = aws.s3_bucket_server_side_encryption_configuration
    if kms_key_arn is None:
        default = sse.S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
            sse_algorithm="AES256"
        )
        rule = sse.S3BucketServerSideEncryptionConfigurationRuleA(apply_server_side_encryption_by_default=default)
    else:
        default = sse.S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
            sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
        )
        rule = sse.S3BucketServerSideEncryptionConfigurationRuleA(
            apply_server_side_encryption_by_default=default, bucket_key_enabled=bucket_key
        )
    return sse.S3BucketServerSideEncryptionConfigurationA(scope, construct_id, bucket=bucket_id, rule=[rule])


def public_access_block(scope: Construct, construct_id: str, bucket_id: str) -> aws.s3_bucket_public_access_block.S3BucketPublicAccessBlock:
    """All four public-access switches on."""
    return aws.s3_bucket_public_access_block.S3BucketPublicAccessBlock(
        scope, construct_id, bucket=bucket_id, block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True,
    )


def ownership(scope: Construct, construct_id: str, bucket_id: str, *, acls: bool = False) -> aws.s3_bucket_ownership_controls.S3BucketOwnershipControls:
    """ACLs off (BucketOwnerEnforced), or on for a bucket a log delivery writes through an ACL grant."""
    return aws.s3_bucket_ownership_controls.S3BucketOwnershipControls(
        scope, construct_id, bucket=bucket_id,
        rule={"object_ownership": "BucketOwnerPreferred" if acls else "BucketOwnerEnforced"},
    )


def lifecycle(
    scope: Construct,
    construct_id: str,
    bucket_id: str,
    *,
    rule_id: str,
    noncurrent_days: int,
    abort_multipart_days: int,
    expiration_days: int | None = None,
    expire_delete_markers: bool = False,
) -> Any:
    """One rule over the whole bucket: old versions, unfinished uploads, and optionally current objects.

    `filter { prefix = "" }` is the whole bucket, like an empty `filter {}`.
    """
    module = aws.s3_bucket_lifecycle_configuration
    expiration = None
    if expiration_days is not None:
        expiration = [module.S3BucketLifecycleConfigurationRuleExpiration(days=expiration_days)]
    elif expire_delete_markers:
        expiration = [module.S3BucketLifecycleConfigurationRuleExpiration(expired_object_delete_marker=True)]
    return module.S3BucketLifecycleConfiguration(
        scope, construct_id, bucket=bucket_id,
        rule=[module.S3BucketLifecycleConfigurationRule(
            id=rule_id,
            status="Enabled",
            filter=[module.S3BucketLifecycleConfigurationRuleFilter(prefix="")],
            expiration=expiration,
            noncurrent_version_expiration=[module.S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                noncurrent_days=noncurrent_days
            )],
            abort_incomplete_multipart_upload=[
                module.S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=abort_multipart_days
                )
            ],
        )],
    )
