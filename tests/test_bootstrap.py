"""The state bucket and lock table."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def bootstrap(synth):
    return synth.stack("bootstrap")


def test_bucket_and_table_cannot_be_destroyed(bootstrap):
    bucket = bootstrap.resource("aws_s3_bucket", "StateBackend/Bucket")
    table = bootstrap.resource("aws_dynamodb_table", "StateBackend/LockTable")
    key = bootstrap.resource("aws_kms_key", "StateBackend/Key")
    for resource in (bucket, table, key):
        assert resource["lifecycle"]["prevent_destroy"] is True
    assert table["deletion_protection_enabled"] is True
    assert "force_destroy" not in bucket


def test_bucket_is_versioned_encrypted_and_private(bootstrap):
    versioning = bootstrap.resource("aws_s3_bucket_versioning", "StateBackend/Versioning")
    assert versioning["versioning_configuration"]["status"] == "Enabled"
    (rule,) = bootstrap.resource(
        "aws_s3_bucket_server_side_encryption_configuration", "StateBackend/Encryption"
    )["rule"]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    assert "aws_kms_key.StateBackend_Key" in rule["apply_server_side_encryption_by_default"]["kms_master_key_id"]
    block = bootstrap.resource("aws_s3_bucket_public_access_block", "StateBackend/PublicAccessBlock")
    assert all(block[k] is True for k in (
        "block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    ownership = bootstrap.resource("aws_s3_bucket_ownership_controls", "StateBackend/Ownership")
    assert ownership["rule"]["object_ownership"] == "BucketOwnerEnforced"


def test_bucket_policy_denies_requests_without_tls(bootstrap):
    document = bootstrap.data("aws_iam_policy_document")
    (policy,) = [d for d in document.values() if d["//"]["metadata"]["path"].endswith("BucketPolicyDocument")]
    (statement,) = policy["statement"]
    assert statement["effect"] == "Deny"
    assert statement["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    assert statement["principals"] == [{"type": "*", "identifiers": ["*"]}]


def test_noncurrent_state_versions_expire_after_the_configured_days(bootstrap, environments):
    (rule,) = bootstrap.resource("aws_s3_bucket_lifecycle_configuration", "StateBackend/Lifecycle")["rule"]
    days = environments.shared.state.noncurrent_version_retention_days
    assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": days}]
    assert rule["status"] == "Enabled"


def test_lock_table_has_lockid_key_pitr_and_kms(bootstrap):
    table = bootstrap.resource("aws_dynamodb_table", "StateBackend/LockTable")
    assert table["hash_key"] == "LockID"
    assert table["attribute"] == [{"name": "LockID", "type": "S"}]
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["server_side_encryption"]["enabled"] is True
    assert "aws_kms_key" in table["server_side_encryption"]["kms_key_arn"]


def test_state_key_rotates(bootstrap):
    assert bootstrap.resource("aws_kms_key", "StateBackend/Key")["enable_key_rotation"] is True


def test_bootstrap_provider_pins_the_state_account(bootstrap):
    (provider,) = bootstrap.json["provider"]["aws"]
    assert provider["allowed_account_ids"] == ["111111111111"]
    assert json.dumps(provider).count("default_tags") == 1
