"""The secure defaults every bucket of this project carries, declared once (`SecureBucket`).

Every bucket is versioned, encrypted (a KMS key, or SSE-S3 where a log delivery service cannot
use KMS), closed to the public (all four public-access switches, ACLs off), reachable over TLS
only (its bucket policy denies `aws:SecureTransport = false`), and expires what it no longer needs
(one lifecycle rule). A bucket states only how it differs (`BucketSettings`): its key, whether S3
uses a bucket key, whether a log delivery needs ACLs, how long old versions are kept, and the
statements its policy adds. This follows aws-solutions-constructs' `DefaultS3Props`
(core/lib/s3-bucket-defaults.ts): the defaults live once, each use overrides a few.

Each part is added under the caller's construct id with the bucket's id prefix (`Site` ->
`SiteVersioning`, `SitePublicAccessBlock`, ...; no prefix for the state bucket), so the ids, and
the addresses in Terraform state, are the tier's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct

from modules import aws
from modules.core import policy


@dataclass(frozen=True, kw_only=True, slots=True)
class Expiry:
    """The bucket's one lifecycle rule, over the whole bucket: noncurrent versions after
    `noncurrent_days`, unfinished multipart uploads after `abort_multipart_days`, current objects
    after `expiration_days` (default: kept), and, with `expire_delete_markers`, delete markers
    left without versions (only without `expiration_days`: S3 allows one of the two)."""

    rule_id: str
    noncurrent_days: int
    abort_multipart_days: int
    expiration_days: int | None = None
    expire_delete_markers: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class BucketSettings:
    """How one bucket differs from the defaults.

    `kms_key_arn`: SSE-KMS under this key; None means SSE-S3 (for buckets a log delivery writes
    that cannot use KMS). `bucket_key` (default on): without one, each object's KMS encryption
    context is its own ARN, so a key grant can be scoped to a prefix (one KMS request per object
    read or write). `acls` (default off, `BucketOwnerEnforced`): on (`BucketOwnerPreferred`) for a
    bucket a log delivery writes through an ACL grant. `expiry`: the lifecycle rule (required: no
    retention suits every bucket).
    """

    kms_key_arn: str | None
    expiry: Expiry
    bucket_key: bool = True
    acls: bool = False


class SecureBucket:
    """The defaults on `bucket`: public-access block, ownership, versioning, encryption, lifecycle;
    `policy()` adds the TLS-only bucket policy with the bucket's own statements.

    Not a construct of its own: its parts take the caller's scope and `id_prefix`, so adopting it
    moved no resource. Attributes: `public_access_block`, `ownership`, `versioning`, `encryption`,
    `lifecycle` (for `depends_on`).
    """

    def __init__(self, scope: Construct, id_prefix: str, bucket: Any, settings: BucketSettings) -> None:
        self.scope, self.id_prefix, self.bucket = scope, id_prefix, bucket
        bucket_id = bucket.id
        self.public_access_block = _public_access_block(scope, f"{id_prefix}PublicAccessBlock", bucket_id)
        self.ownership = _ownership(scope, f"{id_prefix}Ownership", bucket_id, acls=settings.acls)
        self.versioning = _versioning(scope, f"{id_prefix}Versioning", bucket_id)
        self.encryption = _encryption(scope, f"{id_prefix}Encryption", bucket_id, kms_key_arn=settings.kms_key_arn,
                                     bucket_key=settings.bucket_key)
        expiry = settings.expiry
        self.lifecycle = _lifecycle(scope, f"{id_prefix}Lifecycle", bucket_id, rule_id=expiry.rule_id,
                                   noncurrent_days=expiry.noncurrent_days,
                                   abort_multipart_days=expiry.abort_multipart_days,
                                   expiration_days=expiry.expiration_days,
                                   expire_delete_markers=expiry.expire_delete_markers)

    def policy(self, *, grants: Sequence[Any] = (), denials: Sequence[Any] = (),
               depends_on: Sequence[Any] = ()) -> aws.s3_bucket_policy.S3BucketPolicy:
        """The bucket policy `<prefix>BucketPolicy` (document `<prefix>BucketPolicyDocument`): the
        bucket's `grants`, then the TLS-only Deny, then its further `denials`."""
        document = policy.document(self.scope, f"{self.id_prefix}BucketPolicyDocument", *grants,
                                   policy.deny_insecure_transport(self.bucket.arn), *denials)
        return aws.s3_bucket_policy.S3BucketPolicy(
            self.scope, f"{self.id_prefix}BucketPolicy", bucket=self.bucket.id, policy=document.json,
            depends_on=list(depends_on) or None,
        )


def _versioning(scope: Construct, construct_id: str, bucket_id: str) -> aws.s3_bucket_versioning.S3BucketVersioningA:
    return aws.s3_bucket_versioning.S3BucketVersioningA(
        scope, construct_id, bucket=bucket_id, versioning_configuration={"status": "Enabled"}
    )


def _encryption(scope: Construct, construct_id: str, bucket_id: str, *, kms_key_arn: str | None,
               bucket_key: bool = True) -> aws.s3_bucket_server_side_encryption_configuration.S3BucketServerSideEncryptionConfigurationA:
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


def _public_access_block(scope: Construct, construct_id: str, bucket_id: str) -> aws.s3_bucket_public_access_block.S3BucketPublicAccessBlock:
    """All four public-access switches on."""
    return aws.s3_bucket_public_access_block.S3BucketPublicAccessBlock(
        scope, construct_id, bucket=bucket_id, block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True,
    )


def _ownership(scope: Construct, construct_id: str, bucket_id: str, *, acls: bool = False) -> aws.s3_bucket_ownership_controls.S3BucketOwnershipControls:
    """ACLs off (BucketOwnerEnforced), or on for a bucket a log delivery writes through an ACL grant."""
    return aws.s3_bucket_ownership_controls.S3BucketOwnershipControls(
        scope, construct_id, bucket=bucket_id,
        rule={"object_ownership": "BucketOwnerPreferred" if acls else "BucketOwnerEnforced"},
    )


def _lifecycle(
    scope: Construct,
    construct_id: str,
    bucket_id: str,
    *,
    rule_id: str,
    noncurrent_days: int,
    abort_multipart_days: int,
    expiration_days: int | None = None,
    expire_delete_markers: bool = False,
) -> aws.s3_bucket_lifecycle_configuration.S3BucketLifecycleConfiguration:
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
