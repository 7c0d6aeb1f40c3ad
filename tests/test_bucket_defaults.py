"""Every bucket in every synthesized stack carries the secure defaults (modules/core/buckets.py).

Read from the JSON, not from the helper: a bucket added without `SecureBucket`, or a default
dropped from it, fails here. What each default must be comes from the design (section on S3:
private, versioned, encrypted, TLS only) and the S3 user guide ("Blocking public access to your
Amazon S3 storage": the four settings; "Controlling ownership of objects": `BucketOwnerEnforced`
disables ACLs; "Enforce encryption in transit": Deny with `aws:SecureTransport = false`).
"""

from __future__ import annotations

import re

import pytest

from tests.harness.project import STACKS

PUBLIC_ACCESS_SWITCHES = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
# The buckets a log delivery writes through an ACL grant (CloudFront standard logs need ACLs on:
# CloudFront developer guide, "Permissions required to configure standard logging").
ACL_BUCKETS = {"Frontend/LogBucket"}


def _referencing(stack_json: dict, resource_type: str, bucket_name: str) -> list[dict]:
    reference = f"${{aws_s3_bucket.{bucket_name}.id}}"
    return [c for c in stack_json.get("resource", {}).get(resource_type, {}).values() if c.get("bucket") == reference]


def _buckets(synth, stack: str) -> dict[str, dict]:
    return synth.stacks[stack].get("resource", {}).get("aws_s3_bucket", {})


@pytest.mark.parametrize("stack", STACKS)
def test_every_bucket_carries_the_secure_defaults(synth, stack):
    stack_json = synth.stacks[stack]
    for name, bucket in _buckets(synth, stack).items():
        path = bucket["//"]["metadata"]["path"]
        (block,) = _referencing(stack_json, "aws_s3_bucket_public_access_block", name)
        assert all(block[k] is True for k in PUBLIC_ACCESS_SWITCHES), (stack, path)
        (ownership,) = _referencing(stack_json, "aws_s3_bucket_ownership_controls", name)
        wanted = "BucketOwnerPreferred" if any(path.endswith(b) for b in ACL_BUCKETS) else "BucketOwnerEnforced"
        assert ownership["rule"]["object_ownership"] == wanted, (stack, path)
        (versioning,) = _referencing(stack_json, "aws_s3_bucket_versioning", name)
        assert versioning["versioning_configuration"] == {"status": "Enabled"}, (stack, path)
        (encryption,) = _referencing(stack_json, "aws_s3_bucket_server_side_encryption_configuration", name)
        (rule,) = encryption["rule"]
        assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] in ("aws:kms", "AES256"), (stack, path)
        (lifecycle,) = _referencing(stack_json, "aws_s3_bucket_lifecycle_configuration", name)
        (expiry,) = lifecycle["rule"]
        assert expiry["status"] == "Enabled" and expiry["filter"] == [{"prefix": ""}], (stack, path)
        assert expiry["noncurrent_version_expiration"][0]["noncurrent_days"] >= 1, (stack, path)
        assert expiry["abort_incomplete_multipart_upload"][0]["days_after_initiation"] >= 1, (stack, path)
        (bucket_policy,) = _referencing(stack_json, "aws_s3_bucket_policy", name)
        match = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", bucket_policy["policy"])
        assert match, (stack, path, bucket_policy["policy"])
        document = stack_json["data"]["aws_iam_policy_document"][match.group(1)]
        (tls,) = [s for s in document["statement"] if s.get("sid") == "DenyInsecureTransport"]
        assert tls["effect"] == "Deny" and tls["actions"] == ["s3:*"], (stack, path)
        assert tls["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
        assert tls["resources"] == [f"${{aws_s3_bucket.{name}.arn}}", f"${{aws_s3_bucket.{name}.arn}}/*"]


def test_the_stacks_hold_the_buckets_the_design_names(synth):
    """The check above ran over buckets: the state bucket and each environment's site and log buckets."""
    paths = sorted(c["//"]["metadata"]["path"] for stack in STACKS for c in _buckets(synth, stack).values())
    assert paths == sorted(["bootstrap/StateBackend/Bucket"]
                           + [f"{env}-frontend/Frontend/{b}" for env in ("dev", "prod", "stage")
                              for b in ("LogBucket", "SiteBucket")]), paths
