"""End to end on the emulator: bootstrap the backend, then apply networks through it.

The lock test holds prod-network's state lock with an apply of a changed copy of the
stack (same backend, so the same state and lock) waiting for approval, then cancels it.
"""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from tests.harness.emulator import emulator_env

STATE_BUCKET = "webapp-tfstate-111111111111"
LOCK_TABLE = "webapp-tfstate-locks"


@pytest.fixture(scope="module")
def bootstrapped(deployer):
    deployer.apply("bootstrap")
    return deployer


def test_bootstrap_creates_the_state_bucket_and_lock_table(bootstrapped, emulator, emulator_synth):
    s3 = emulator.boto3_client("s3")
    assert s3.get_bucket_versioning(Bucket=STATE_BUCKET)["Status"] == "Enabled"
    encryption = s3.get_bucket_encryption(Bucket=STATE_BUCKET)
    assert encryption["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    block = s3.get_public_access_block(Bucket=STATE_BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    table = emulator.boto3_client("dynamodb").describe_table(TableName=LOCK_TABLE)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    assert table["DeletionProtectionEnabled"] is True
    assert (emulator_synth.outdir.parent / "terraform.bootstrap.tfstate").is_file()


def test_bootstrap_creates_a_state_access_role_per_environment(bootstrapped, emulator):
    """Every environment's stacks reach the state account through their own role (real
    accounts; the emulator maps every account to one, so its backends assume none)."""
    import json

    iam = emulator.boto3_client("iam")
    for env, account in {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}.items():
        role = iam.get_role(RoleName=f"webapp-{env}-tfstate")["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}
        assert f"arn:aws:iam::{account}:role/webapp-{env}-deploy" in statement["Condition"]["ArnEquals"][
            "aws:PrincipalArn"]
        policy = iam.get_role_policy(RoleName=f"webapp-{env}-tfstate", PolicyName="terraform-state")
        document = policy["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        writes = next(s for s in document["Statement"] if s["Sid"] == "ReadWriteState")
        assert writes["Resource"] == f"arn:aws:s3:::{STATE_BUCKET}/{env}/*"
        # Its plans' read-and-lock role: trusted by the environment's plan role only.
        plan = iam.get_role(RoleName=f"webapp-{env}-tfstate-plan")["Role"]["AssumeRolePolicyDocument"]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        (statement,) = plan["Statement"]
        assert statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] == f"arn:aws:iam::{account}:role/webapp-{env}-plan"
        policy = iam.get_role_policy(RoleName=f"webapp-{env}-tfstate-plan", PolicyName="terraform-state-plan")
        document = policy["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        reads = next(s for s in document["Statement"] if s["Sid"] == "ReadState")
        assert reads["Action"] == "s3:GetObject" and reads["Resource"] == f"arn:aws:s3:::{STATE_BUCKET}/{env}/*"


def test_state_written_through_the_backend_is_under_the_state_key(bootstrapped, emulator):
    """The backend sends no `AES256` header any more, so state takes the bucket default: SSE-KMS
    under the state key (before, `encrypt = true` stored it under SSE-S3)."""
    bootstrapped.apply("dev-network")
    s3 = emulator.boto3_client("s3")
    head = s3.head_object(Bucket=STATE_BUCKET, Key="dev/network.tfstate")
    key_arn = emulator.boto3_client("kms").describe_key(KeyId="alias/webapp-tfstate")["KeyMetadata"]["Arn"]
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """Read the process's output until `marker` appears (a prompt has no newline)."""
    seen: list[str] = []
    done = threading.Event()

    def reader() -> None:
        assert process.stdout is not None
        while not done.is_set():
            char = process.stdout.read(1)
            if not char:
                break
            seen.append(char)
            if "".join(seen[-len(marker):]) == marker:
                done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    done.wait(timeout)
    output = "".join(seen)
    assert marker in output, f"no {marker!r} within {timeout} s:\n{output[-4000:]}"
    return output


def test_an_apply_waiting_for_approval_holds_the_state_lock_and_a_second_apply_is_refused(
    bootstrapped, emulator
):
    """prod-network is applied through the S3 backend (the session deployer); an apply of a changed
    copy of it (one `terraform_data` more, same backend and state key) stops at its approval prompt,
    holding the DynamoDB lock: an apply of the stack itself is refused. Cancelled, the copy changes
    nothing and leaves the lock free."""
    deployer = bootstrapped
    stack = "prod-network"
    deployer.apply(stack)
    config = json.loads((deployer.directory(stack) / "cdk.tf.json").read_text())
    config.setdefault("resource", {})["terraform_data"] = {"lock_probe": {"input": "held"}}
    copy = deployer.copy(stack, "lock-probe", json.dumps(config))
    lock_id = f"{STATE_BUCKET}/prod/network.tfstate"
    locks = emulator.boto3_client("dynamodb")
    first = subprocess.Popen(
        [deployer.terraform.binary, "apply", "-input=true", "-no-color"],
        cwd=deployer.directory(copy), text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=deployer.terraform.env({**emulator_env(), "TF_INPUT": "1"}),
    )
    try:
        _read_until(first, "Enter a value:", timeout=300)
        held = locks.scan(TableName=LOCK_TABLE)["Items"]
        assert any(item["LockID"]["S"] == lock_id and "Info" in item for item in held), held

        second = deployer.run(stack, "apply", "-auto-approve", "-input=false", "-lock-timeout=2s", check=False)
        assert second.returncode != 0
        assert "Error acquiring the state lock" in second.stderr + second.stdout

        assert first.stdin is not None
        first.stdin.write("no\n")
        first.stdin.flush()
        rest, _ = first.communicate(timeout=300)
        assert "Apply cancelled" in rest, rest[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    after = locks.scan(TableName=LOCK_TABLE)["Items"]
    assert not any(item["LockID"]["S"] == lock_id and "Info" in item for item in after), after

    state = emulator.boto3_client("s3").head_object(Bucket=STATE_BUCKET, Key="prod/network.tfstate")
    assert state["ContentLength"] > 1000
    assert state["ServerSideEncryption"] in ("aws:kms", "AES256")
    assert deployer.plan_changes(stack) is None  # the cancelled copy changed nothing


def test_second_plan_of_dev_network_is_clean(bootstrapped):
    bootstrapped.apply("dev-network")
    assert bootstrapped.plan_changes("dev-network") is None


def test_dev_network_exists_in_the_emulator(bootstrapped, emulator):
    bootstrapped.apply("dev-network")
    outputs = bootstrapped.outputs("dev-network")
    vpc_id = next(v for k, v in outputs.items() if k.startswith("Network_VpcId"))
    ec2 = emulator.boto3_client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert len(subnets) == 6
    assert {s["AvailabilityZone"] for s in subnets} == {"eu-west-1a", "eu-west-1b"}
    assert len(ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]) == 1
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    # The S3 gateway endpoint and six interface endpoints (tests/test_network.py: INTERFACE_ENDPOINTS, with sources).
    assert len(endpoints) == 7


def test_prod_network_spans_three_zones_with_a_nat_gateway_each_and_plans_clean(bootstrapped, emulator):
    bootstrapped.apply("prod-network")
    outputs = bootstrapped.outputs("prod-network")
    vpc_id = next(v for k, v in outputs.items() if k.startswith("Network_VpcId"))
    ec2 = emulator.boto3_client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert {s["AvailabilityZone"] for s in subnets} == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}
    gateways = ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]
    assert len({g["SubnetId"] for g in gateways}) == 3
    assert bootstrapped.plan_changes("prod-network") is None


# ---------------------------------------------------------------- the state bucket's policy, enforced
# The emulator evaluates bucket policies with checks/iam.py against the request S3 would see
# (tests/harness/moto_server.py): what follows fails on an emulator that drops conditional statements.

# The encryption statements bootstrap wrote before issue 25, as synthesized then: each Deny used
# StringNotEqualsIfExists, which IAM evaluates as true when the header is missing - and the S3
# backend sends none - so every state write and `.tflock` was refused on AWS.
def old_state_bucket_policy(bucket: str, key_arn: str) -> dict:
    objects = f"arn:aws:s3:::{bucket}/*"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{bucket}", objects], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyOtherEncryption", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": objects,
         "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
        {"Sid": "DenyOtherKeys", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": objects,
         "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}}},
        {"Sid": "DenyKmsWithoutTheKey", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": objects, "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                                            "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"}}},
    ]}


OLD_POLICY_BUCKET = "webapp-tfstate-old-policy"


@pytest.fixture(scope="module")
def state_key_arn(bootstrapped, emulator) -> str:
    return emulator.boto3_client("kms").describe_key(KeyId="alias/webapp-tfstate")["KeyMetadata"]["Arn"]


@pytest.fixture(scope="module")
def old_policy_bucket(emulator, state_key_arn) -> str:
    """A bucket like the state bucket (SSE-KMS default under the state key) with the old policy."""
    s3 = emulator.boto3_client("s3")
    s3.create_bucket(Bucket=OLD_POLICY_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_encryption(Bucket=OLD_POLICY_BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": state_key_arn}}]})
    s3.put_bucket_policy(Bucket=OLD_POLICY_BUCKET, Policy=json.dumps(old_state_bucket_policy(OLD_POLICY_BUCKET,
                                                                                             state_key_arn)))
    return OLD_POLICY_BUCKET


def state_write(deployer, emulator, directory, *, bucket: str, key: str, lockfile: bool):
    """`terraform init` + `apply` of a one-resource configuration whose S3 backend is `bucket`/`key`,
    configured as the project's backends are (no encryption header; modules/core/stack.py)."""
    endpoint = emulator.endpoint
    backend = {"bucket": bucket, "key": key, "region": "eu-west-1", "access_key": "test", "secret_key": "test",
               "skip_credentials_validation": True, "skip_metadata_api_check": True, "skip_region_validation": True,
               "use_path_style": True, "use_lockfile": lockfile,
               "endpoints": {"s3": endpoint, "sts": endpoint, "iam": endpoint, "dynamodb": endpoint}}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.tf.json").write_text(json.dumps({
        "terraform": {"backend": {"s3": backend}},
        "resource": {"terraform_data": {"probe": {"input": "a state write"}}},
    }))
    terraform = deployer.terraform
    init = terraform.run(directory, "init", "-input=false", "-no-color", extra_env=emulator_env(), timeout=300)
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
    return terraform.run(directory, "apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=0s",
                         extra_env=emulator_env(), timeout=300)


def put(emulator, bucket: str, key: str, **arguments) -> str:
    """"ok" or the S3 error code of a PutObject."""
    from botocore.exceptions import ClientError

    try:
        emulator.boto3_client("s3").put_object(Bucket=bucket, Key=key, Body=b"{}", **arguments)
        return "ok"
    except ClientError as error:
        return str(error.response["Error"]["Code"])


def test_the_old_state_bucket_policy_refuses_the_backends_state_write(deployer, emulator, old_policy_bucket,
                                                                      tmp_path):
    """What AWS did with the old policy: the apply creates its resources, then cannot save state."""
    assert put(emulator, old_policy_bucket, "dev/network.tfstate") in ("403", "AccessDenied")
    result = state_write(deployer, emulator, tmp_path / "save", bucket=old_policy_bucket,
                         key="dev/probe.tfstate", lockfile=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Failed to save state" in output and "403" in output, output[-3000:]
    assert (tmp_path / "save" / "errored.tfstate").is_file()


def test_the_old_state_bucket_policy_refuses_the_lockfile(deployer, emulator, old_policy_bucket, tmp_path):
    """With `use_lockfile` (stage) the `.tflock` write was refused, so no plan could take the lock."""
    result = state_write(deployer, emulator, tmp_path / "lock", bucket=old_policy_bucket,
                         key="stage/probe.tfstate", lockfile=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error acquiring the state lock" in output, output[-3000:]


def test_the_state_bucket_takes_the_backends_state_write_and_lockfile(deployer, emulator, bootstrapped,
                                                                     state_key_arn, tmp_path):
    """The bucket as bootstrap now makes it: the state and its `.tflock` go in without an
    encryption header and are stored under the state key."""
    result = state_write(deployer, emulator, tmp_path / "new", bucket=STATE_BUCKET, key="probe/state.tfstate",
                         lockfile=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    s3 = emulator.boto3_client("s3")
    head = s3.head_object(Bucket=STATE_BUCKET, Key="probe/state.tfstate")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", state_key_arn)
    listed = s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix="probe/")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["probe/state.tfstate"]  # the lock file is gone


def test_the_state_bucket_refuses_uploads_that_ask_for_another_encryption(bootstrapped, emulator, state_key_arn):
    other_key = emulator.boto3_client("kms").create_key(Description="not the state key")["KeyMetadata"]["Arn"]
    key = "probe/encryption.tfstate"
    assert put(emulator, STATE_BUCKET, key, ServerSideEncryption="AES256") in ("403", "AccessDenied")
    assert put(emulator, STATE_BUCKET, key, ServerSideEncryption="aws:kms", SSEKMSKeyId=other_key) in (
        "403", "AccessDenied")
    assert put(emulator, STATE_BUCKET, key, ServerSideEncryption="aws:kms") in ("403", "AccessDenied")
    assert put(emulator, STATE_BUCKET, key, ServerSideEncryption="aws:kms", SSEKMSKeyId=state_key_arn) == "ok"
    assert put(emulator, STATE_BUCKET, key) == "ok"


def test_the_state_bucket_refuses_plain_http(bootstrapped, emulator):
    """The emulator counts a request carrying `X-Forwarded-Proto: http` as plain HTTP
    (tests/harness/moto_server.py PLAIN_HTTP_HEADER): the TLS-only Deny refuses it, list included."""
    from botocore.exceptions import ClientError

    s3 = emulator.boto3_client("s3")

    def plain_http(params, **_):  # type: ignore[no-untyped-def]
        params["headers"]["X-Forwarded-Proto"] = "http"

    s3.meta.events.register("before-call.s3.*", plain_http)
    for call in (lambda: s3.get_object(Bucket=STATE_BUCKET, Key="dev/network.tfstate"),
                 lambda: s3.put_object(Bucket=STATE_BUCKET, Key="dev/x.tfstate", Body=b"{}"),
                 lambda: s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix="dev/")):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
