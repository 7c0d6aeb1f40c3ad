"""End to end on the emulator: bootstrap the backend, then apply networks through it.

The lock test applies prod-network by hand (no other test needs it, so the session
deployer never starts it in the background); dev-network is applied like every stack.
"""

from __future__ import annotations

import subprocess
import threading

import pytest

from modules.network.network import INTERFACE_ENDPOINTS
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


def test_prod_network_applies_through_the_s3_backend_and_the_lock_refuses_a_second_apply(
    bootstrapped, emulator
):
    deployer = bootstrapped
    stack = "prod-network"
    deployer.init(stack)
    # The first apply stops at its approval prompt, holding the state lock.
    first = subprocess.Popen(
        [deployer.terraform.binary, "apply", "-input=true", "-no-color"],
        cwd=deployer.directory(stack), text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=deployer.terraform.env({**emulator_env(), "TF_INPUT": "1"}),
    )
    try:
        _read_until(first, "Enter a value:", timeout=300)
        locks = emulator.boto3_client("dynamodb").scan(TableName=LOCK_TABLE)["Items"]
        assert any(item["LockID"]["S"] == f"{STATE_BUCKET}/prod/network.tfstate" and "Info" in item
                   for item in locks), locks

        second = deployer.run(stack, "apply", "-auto-approve", "-input=false", "-lock-timeout=2s", check=False)
        assert second.returncode != 0
        assert "Error acquiring the state lock" in second.stderr + second.stdout

        assert first.stdin is not None
        first.stdin.write("yes\n")
        first.stdin.flush()
        rest, _ = first.communicate(timeout=900)
        assert first.returncode == 0, rest[-6000:]
    finally:
        if first.poll() is None:
            first.kill()
    deployer.applied.add(stack)

    state = emulator.boto3_client("s3").head_object(Bucket=STATE_BUCKET, Key="prod/network.tfstate")
    assert state["ContentLength"] > 1000
    assert state["ServerSideEncryption"] in ("aws:kms", "AES256")


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
    assert len(endpoints) == 1 + len(INTERFACE_ENDPOINTS)


def test_prod_network_spans_three_zones_with_a_nat_gateway_each_and_plans_clean(bootstrapped, emulator):
    if "prod-network" not in bootstrapped.applied:
        pytest.skip("the lock test above applies prod-network; run it with this one")
    outputs = bootstrapped.outputs("prod-network")
    vpc_id = next(v for k, v in outputs.items() if k.startswith("Network_VpcId"))
    ec2 = emulator.boto3_client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert {s["AvailabilityZone"] for s in subnets} == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}
    gateways = ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]
    assert len({g["SubnetId"] for g in gateways}) == 3
    assert bootstrapped.plan_changes("prod-network") is None
