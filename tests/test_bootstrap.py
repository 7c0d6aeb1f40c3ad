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


def document(bootstrap, path_suffix: str) -> dict:
    (found,) = [d for d in bootstrap.data("aws_iam_policy_document").values()
                if d["//"]["metadata"]["path"].endswith(path_suffix)]
    return found


def by_sid(document: dict) -> dict[str, dict]:
    return {s["sid"]: s for s in document["statement"]}


def conditions(statement: dict) -> dict[str, tuple[str, list[str]]]:
    return {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]}


def test_bucket_policy_denies_requests_without_tls(bootstrap):
    statement = by_sid(document(bootstrap, "StateBackend/BucketPolicyDocument"))["DenyInsecureTransport"]
    assert statement["effect"] == "Deny"
    assert statement["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    assert statement["principals"] == [{"type": "*", "identifiers": ["*"]}]


def test_bucket_policy_refuses_uploads_that_ask_for_another_encryption(bootstrap):
    """State takes the bucket default (SSE-KMS, the state key): an upload asking for SSE-S3
    (what `encrypt = true` without `kms_key_id` sends), another key, `aws/s3` or SSE-C is refused.
    Each Deny needs its header present (`Null: false`): the backend sends none, and a negated
    operator, `...IfExists` or not, is true on a missing key (tests/test_policies_evaluated.py
    evaluates the policy against the backend's real requests)."""
    found = by_sid(document(bootstrap, "StateBackend/BucketPolicyDocument"))
    header, key_header = "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"
    customer_header = "s3:x-amz-server-side-encryption-customer-algorithm"
    for sid in ("DenyOtherEncryption", "DenyOtherKeys", "DenyKmsWithoutTheKey", "DenyCustomerKeys"):
        assert found[sid]["effect"] == "Deny" and found[sid]["actions"] == ["s3:PutObject"]
        assert found[sid]["principals"] == [{"type": "*", "identifiers": ["*"]}]
    other_encryption = [(c["test"], c["variable"], c["values"]) for c in found["DenyOtherEncryption"]["condition"]]
    assert sorted(other_encryption) == [("Null", header, ["false"]), ("StringNotEquals", header, ["aws:kms"])]
    other_keys = {c["test"]: c for c in found["DenyOtherKeys"]["condition"]}
    assert set(other_keys) == {"Null", "StringNotEquals"}
    assert other_keys["Null"]["variable"] == key_header and other_keys["Null"]["values"] == ["false"]
    assert other_keys["StringNotEquals"]["variable"] == key_header
    assert other_keys["StringNotEquals"]["values"][0].startswith("${aws_kms_key.StateBackend_Key")
    assert conditions(found["DenyKmsWithoutTheKey"]) == {header: ("StringEquals", ["aws:kms"]),
                                                         key_header: ("Null", ["true"])}
    assert conditions(found["DenyCustomerKeys"]) == {customer_header: ("Null", ["false"])}
    no_if_exists = [c["test"] for s in found.values() for c in s.get("condition", []) if c["test"].endswith("IfExists")]
    assert no_if_exists == []


def test_state_bucket_has_no_bucket_key_so_key_use_is_scoped_per_object(bootstrap):
    (rule,) = bootstrap.resource(
        "aws_s3_bucket_server_side_encryption_configuration", "StateBackend/Encryption")["rule"]
    assert rule["bucket_key_enabled"] is False


ACCOUNTS = {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}
BUCKET = "webapp-tfstate-111111111111"


def role_of(bootstrap, env: str, kind: str = "Access") -> tuple[dict, dict, dict]:
    """The state-access role of `env` (kind `PlanAccess`: its plan-state role), its trust document
    and its permissions by sid."""
    suffix = f"StateBackend/{env.title()}{kind}"
    role = bootstrap.resource("aws_iam_role", f"{suffix}/Role")
    policy = bootstrap.resource("aws_iam_role_policy", f"{suffix}/RolePolicy")
    assert policy["role"] == "${aws_iam_role." + role["//"]["metadata"]["uniqueId"] + ".id}"
    return role, document(bootstrap, f"{suffix}/Trust"), by_sid(document(bootstrap, f"{suffix}/Permissions"))


def test_one_state_access_role_and_one_plan_state_role_per_environment(bootstrap):
    roles = {r["name"] for r in bootstrap.resources("aws_iam_role").values()}
    assert roles == {f"webapp-{env}-{kind}" for env in ACCOUNTS for kind in ("tfstate", "tfstate-plan")}


@pytest.mark.parametrize("env", sorted(ACCOUNTS))
def test_plan_state_role_trusts_only_the_environments_plan_role(bootstrap, env):
    _, trust, _ = role_of(bootstrap, env, "PlanAccess")
    (statement,) = trust["statement"]
    assert statement["actions"] == ["sts:AssumeRole"]
    account = ACCOUNTS[env]
    assert conditions(statement) == {
        "aws:PrincipalArn": ("ArnEquals", [f"arn:aws:iam::{account}:role/webapp-{env}-plan"])}


@pytest.mark.parametrize("env", sorted(ACCOUNTS))
def test_plan_state_role_reads_and_locks_but_never_writes_state(bootstrap, env):
    """Read + lock only: the S3 writes it has are `.tflock` objects (S3 native locking), the
    DynamoDB writes are lock items of its own keys, never the `-md5` digests (explicit Deny)."""
    _, _, found = role_of(bootstrap, env, "PlanAccess")
    allowed = {a for s in found.values() if s.get("effect", "Allow") == "Allow" for a in s["actions"]}
    assert "s3:PutObject" in allowed and found["LockFiles"]["resources"][0].endswith(f"/{env}/*.tflock")
    for sid, statement in found.items():
        if statement.get("effect", "Allow") != "Allow":
            continue
        for action in statement["actions"]:
            if action in ("s3:PutObject", "s3:DeleteObject"):
                assert all(r.endswith(".tflock") for r in statement["resources"]), (sid, statement["resources"])
            if action in ("dynamodb:PutItem", "dynamodb:DeleteItem"):
                assert conditions(statement) == {
                    "dynamodb:LeadingKeys": ("ForAllValues:StringLike", [f"webapp-tfstate-111111111111/{env}/*"])}
            assert action != "dynamodb:UpdateItem" and not action.endswith("*") or action.startswith("kms:")
    deny = found["NoDigestWrites"]
    assert deny["effect"] == "Deny" and conditions(deny) == {
        "dynamodb:LeadingKeys": ("ForAnyValue:StringLike", ["*-md5"])}
    assert found["ReadState"]["actions"] == ["s3:GetObject"]


@pytest.mark.parametrize("env", sorted(ACCOUNTS))
def test_state_access_role_trusts_only_the_environments_terraform_principals(bootstrap, env):
    _, trust, _ = role_of(bootstrap, env)
    (statement,) = trust["statement"]
    assert statement["actions"] == ["sts:AssumeRole"]
    account = ACCOUNTS[env]
    ((principal,),) = [p["identifiers"] for p in statement["principals"] if p["type"] == "AWS"]
    assert len(statement["principals"]) == 1 and principal.endswith(f".partition}}:iam::{account}:root")
    expected = {f"arn:aws:iam::{account}:role/webapp-terraform-{env}", f"arn:aws:iam::{account}:role/webapp-{env}-deploy"}
    assert conditions(statement) == {"aws:PrincipalArn": ("ArnEquals", sorted(expected))}


@pytest.mark.parametrize("env", sorted(ACCOUNTS))
def test_state_access_role_may_use_only_its_environments_prefix(bootstrap, env):
    _, _, found = role_of(bootstrap, env)
    assert conditions(found["ListPrefix"]) == {"s3:prefix": ("StringLike", [f"{env}/*"])}
    assert found["ReadWriteState"]["actions"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    (objects,) = found["ReadWriteState"]["resources"]
    assert objects.endswith(f".arn}}/{env}/*")
    assert conditions(found["LockState"]) == {
        "dynamodb:LeadingKeys": ("ForAllValues:StringLike", [f"{BUCKET}/{env}/*"])}
    assert sorted(found["LockState"]["actions"]) == ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"]
    s3_key = conditions(found["StateObjectsKey"])
    assert s3_key["kms:ViaService"] == ("StringEquals", ["s3.eu-west-1.amazonaws.com"])
    assert s3_key["kms:EncryptionContext:aws:s3:arn"] == ("ArnLike", [objects])
    table_key = conditions(found["LockTableKey"])
    assert table_key["kms:ViaService"] == ("StringEquals", ["dynamodb.eu-west-1.amazonaws.com"])
    assert table_key["kms:EncryptionContext:aws:dynamodb:tableName"] == ("StringEquals", ["webapp-tfstate-locks"])
    for statement in found.values():
        assert statement["effect"] == "Allow"
        assert "*" not in statement["resources"] and not any(a.endswith(":*") for a in statement["actions"])
        # Object writes are scoped by their resource (the prefix); everything else by a condition.
        assert statement["sid"] == "ReadWriteState" or statement.get("condition"), statement["sid"]


def test_state_access_roles_cover_every_key_the_environment_stacks_use(bootstrap, synth):
    """The backend of every `<env>-<tier>` stack assumes `<env>`'s role, whose prefix holds its key."""
    roles = {r["name"] for r in bootstrap.resources("aws_iam_role").values()}
    for name, stack in synth.stacks.items():
        backend = stack["terraform"]["backend"].get("s3")
        if backend is None or name == "shared-cicd":
            continue
        role = backend["assume_role"]["role_arn"]
        assert role.startswith("arn:aws:iam::111111111111:role/") and role.rsplit("/", 1)[1] in roles, name
        env = role.rsplit("/", 1)[1].removeprefix("webapp-").removesuffix("-tfstate")
        assert backend["key"].startswith(f"{env}/"), name


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


def test_state_access_role_also_trusts_the_environments_extra_state_principals(tmp_path, environments_copy):
    from modules.environment import load_environments
    from tests.harness.synth import synthesize

    admin = "arn:aws:iam::222222222222:role/platform-admin"
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text() + f'\nbackend {{\n  state_principal_arns = ["{admin}"]\n}}\n')
    variant = synthesize(load_environments(environments_copy), tmp_path / "cdktf.out").stack("bootstrap")
    (statement,) = role_of(variant, "dev")[1]["statement"]
    assert admin in conditions(statement)["aws:PrincipalArn"][1]
    (statement,) = role_of(variant, "stage")[1]["statement"]
    assert admin not in conditions(statement)["aws:PrincipalArn"][1]


def test_a_partial_synth_leaves_bootstrap_out_rather_than_drop_other_environments_roles(tmp_path, environments_copy):
    from modules.environment import load_environments
    from tests.harness.synth import synthesize

    synthesized = synthesize(load_environments(environments_copy, ("dev",)), tmp_path / "cdktf.out")
    assert "bootstrap" not in synthesized.stacks and "dev-network" in synthesized.stacks


def test_the_emulator_target_keeps_the_roles_but_its_backends_assume_none(local_target_synth):
    """moto maps every account to one: the backend reaches state directly there, while
    bootstrap still creates the roles (the emulator apply shows they are valid)."""
    emulated = local_target_synth
    assert {r["name"] for r in emulated.stack("bootstrap").resources("aws_iam_role").values()} == {
        f"webapp-{env}-{kind}" for env in ACCOUNTS for kind in ("tfstate", "tfstate-plan")}
    assert "assume_role" not in emulated.stack("dev-network").json["terraform"]["backend"]["s3"]
