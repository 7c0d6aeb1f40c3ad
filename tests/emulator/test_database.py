"""End to end on the emulator: the database stacks applied after their network, through the S3 backend.

dev (single-AZ, no replicas) shows the primary, its subnet group, parameter group, the
security group its own stack puts no rule on, the master secret, log groups, alarms and topic; stage
(Multi-AZ, one replica) shows the replica in the zone the primary and its standby never use.
The provider waits ~60 s before its first RDS status check, so these applies take minutes:
dev's and stage's run side by side (tests/harness/deployer.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.harness.emulator import emulator_env

IDENTIFIER = "webapp-dev-postgres"
STAGE = "webapp-stage-postgres"


@pytest.fixture(scope="module")
def applied(deployer):
    # Side by side (the session usually started both already), each after its network.
    deployer.prefetch(["dev-database", "stage-database"])
    deployer.apply("dev-database")
    deployer.apply("stage-database")
    return deployer


@pytest.fixture(scope="module")
def instance(applied, emulator):
    (db,) = emulator.boto3_client("rds").describe_db_instances(DBInstanceIdentifier=IDENTIFIER)["DBInstances"]
    return db


def _output(deployer, stack: str, name: str):
    outputs = deployer.outputs(stack)
    (value,) = (v for k, v in outputs.items() if k.startswith(f"Database_{name}_") or k.startswith(f"Network_{name}_"))
    return value


def test_primary_is_private_encrypted_and_in_the_isolated_subnets_of_its_zone(applied, instance, emulator):
    assert instance["Engine"] == "postgres"
    assert instance["DBInstanceClass"] == "db.t4g.medium"
    assert instance["StorageEncrypted"] is True
    assert instance["KmsKeyId"] == _output(applied, "dev-database", "KeyArn")
    assert instance["PubliclyAccessible"] is False
    assert instance["IAMDatabaseAuthenticationEnabled"] is True
    assert instance["MultiAZ"] is False and instance["AvailabilityZone"] == "eu-west-1a"
    assert instance["BackupRetentionPeriod"] == 7
    assert instance["DeletionProtection"] is False
    isolated = _output(applied, "dev-network", "IsolatedSubnetIds")
    subnets = {s["SubnetIdentifier"] for s in instance["DBSubnetGroup"]["Subnets"]}
    assert subnets == set(isolated[:2])


def test_master_password_is_in_its_secret_and_never_in_state(applied, instance, emulator):
    """The apply invoked the master-password function (run by the emulator as a local process): the
    secret's one version is AWSCURRENT, nothing is left pending, and neither the state nor the invocation's
    recorded result holds the password. (The emulator cannot show the instance's password; the
    function's own tests, on moto in process, show the instance gets the secret's.)"""
    secret_arn = _output(applied, "dev-database", "MasterUserSecretArn")
    secrets = emulator.boto3_client("secretsmanager")
    described = secrets.describe_secret(SecretId=secret_arn)
    assert described["Name"] == "webapp-dev/database/master"
    assert described["KmsKeyId"] == _output(applied, "dev-database", "KeyArn")
    assert list(described["VersionIdsToStages"].values()) == [["AWSCURRENT"]]
    secret = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
    assert set(secret) == {"username", "password"}
    assert secret["username"] == instance["MasterUsername"] == "app_admin"
    assert len(secret["password"]) == 40 and secret["password"].isalnum()
    state = applied.run("dev-database", "state", "pull").stdout
    assert secret["password"] not in state
    (version_id,) = described["VersionIdsToStages"]
    assert version_id in state  # the request's id, which the invocation's result names
    assert "MasterUserSecret" not in instance  # not RDS-managed: replicas can be created


def test_database_stack_puts_no_rule_on_its_security_group(applied, instance, emulator):
    """Clients add their own ingress rules in their stacks (dev-api may already have, running in parallel)."""
    (group_ref,) = instance["VpcSecurityGroups"]
    assert group_ref["VpcSecurityGroupId"] == _output(applied, "dev-database", "SecurityGroupId")
    (group,) = emulator.boto3_client("ec2").describe_security_groups(
        GroupIds=[group_ref["VpcSecurityGroupId"]])["SecurityGroups"]
    assert group["IpPermissionsEgress"] == []
    state = json.loads(applied.run("dev-database", "show", "-json").stdout)["values"]["root_module"]["resources"]
    types = {resource["type"] for resource in state}
    assert not types & {"aws_security_group_rule", "aws_vpc_security_group_ingress_rule",
                        "aws_vpc_security_group_egress_rule"}, types
    # Its inline ingress is computed (it reads back the clients' rules), so only egress is checked there.
    (declared,) = [r["values"] for r in state if r["type"] == "aws_security_group"]
    assert declared["egress"] == []


def test_parameter_group_forces_tls(applied, instance, emulator):
    (group,) = instance["DBParameterGroups"]
    parameters = emulator.boto3_client("rds").describe_db_parameters(
        DBParameterGroupName=group["DBParameterGroupName"], Source="user")["Parameters"]
    values = {p["ParameterName"]: p["ParameterValue"] for p in parameters}
    assert values["rds.force_ssl"] == "1"
    assert values["log_min_duration_statement"] == "1000"


def test_alarms_notify_the_encrypted_topic(applied, emulator):
    topic_arn = _output(applied, "dev-database", "AlarmTopicArn")
    attributes = emulator.boto3_client("sns").get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    assert attributes["KmsMasterKeyId"].startswith("arn:aws:kms:")
    alarms = emulator.boto3_client("cloudwatch").describe_alarms(AlarmNamePrefix=IDENTIFIER)["MetricAlarms"]
    assert {a["MetricName"] for a in alarms} == {
        "CPUUtilization", "FreeStorageSpace", "FreeableMemory", "DatabaseConnections"}
    assert all(a["AlarmActions"] == [topic_arn] for a in alarms)


def test_log_groups_exist_before_rds_exports_to_them(applied, emulator):
    groups = emulator.boto3_client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/rds/instance/{IDENTIFIER}/")["logGroups"]
    assert {g["logGroupName"].rsplit("/", 1)[1] for g in groups} == {"postgresql", "upgrade"}
    assert all(g["retentionInDays"] == 30 and g.get("kmsKeyId") for g in groups)


def test_second_plan_of_dev_database_is_clean(applied):
    assert applied.plan_changes("dev-database") is None


def test_performance_insights_and_enhanced_monitoring(applied, instance):
    """Performance Insights as configured, under the tier's key (moto reports it with the server-start
    fix report_performance_insights_as_rds_does); enhanced monitoring every 60 s (moto keeps the
    interval but has no EnhancedMonitoringResourceArn, which the synthesized role attachment stands for:
    tests/test_database.py)."""
    assert instance["PerformanceInsightsEnabled"] is True
    assert instance["PerformanceInsightsKMSKeyId"] == _output(applied, "dev-database", "KeyArn")
    assert instance["PerformanceInsightsRetentionPeriod"] == 7
    assert instance["MonitoringInterval"] == 60


def test_stage_replica_sits_in_the_third_zone_and_reads_from_the_multi_az_primary(applied, emulator):
    rds = emulator.boto3_client("rds")
    instances = {d["DBInstanceIdentifier"]: d for d in rds.describe_db_instances()["DBInstances"]}
    primary, replica = instances[STAGE], instances[f"{STAGE}-replica-0"]
    zones = {s["SubnetAvailabilityZone"]["Name"] for s in primary["DBSubnetGroup"]["Subnets"]}
    assert primary["MultiAZ"] is True and zones == {"eu-west-1a", "eu-west-1b"}
    assert primary["DeletionProtection"] is True
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]
    assert primary["ReadReplicaDBInstanceIdentifiers"] == [f"{STAGE}-replica-0"]
    assert replica["AvailabilityZone"] == "eu-west-1c" and replica["MultiAZ"] is False
    assert replica["DBSubnetGroup"]["DBSubnetGroupName"] == f"{STAGE}-replicas"
    assert replica["DbiResourceId"] != primary["DbiResourceId"]
    assert _output(applied, "stage-database", "ReaderEndpoints") == [replica["Endpoint"]["Address"]]


def test_second_plan_of_stage_database_is_clean(applied):
    assert applied.plan_changes("stage-database") is None


@pytest.mark.parametrize("stack, identifiers", [
    ("dev-database", {"writer": (IDENTIFIER, 1)}),
    ("stage-database", {"writer": (STAGE, 0), "replica-0": (f"{STAGE}-replica-0", 1)}),
])
def test_reader_name_is_a_private_weighted_name_over_the_replicas(applied, emulator, stack, identifiers):
    """Route 53 weighted CNAMEs in a zone attached to the environment's VPC: dev's answers with the
    writer (no replica), stage's with its replica (the writer's weight is 0)."""
    env = stack.split("-")[0]
    route53 = emulator.boto3_client("route53")
    (zone,) = [z for z in route53.list_hosted_zones()["HostedZones"] if z["Name"] == f"database.webapp-{env}.internal."]
    assert zone["Config"]["PrivateZone"] is True
    vpcs = route53.get_hosted_zone(Id=zone["Id"])["VPCs"]
    assert [v["VPCId"] for v in vpcs] == [_output(applied, f"{env}-network", "VpcId")]
    records = [r for r in route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
               if r["Type"] == "CNAME"]
    addresses = {d["DBInstanceIdentifier"]: d["Endpoint"]["Address"]
                 for d in emulator.boto3_client("rds").describe_db_instances()["DBInstances"]}
    assert {r["SetIdentifier"]: (r["ResourceRecords"][0]["Value"], r["Weight"]) for r in records} == {
        name: (addresses[identifier], weight) for name, (identifier, weight) in identifiers.items()}
    assert {r["Name"] for r in records} == {f"reader.database.webapp-{env}.internal."}
    assert _output(applied, stack, "ReaderHostName") == f"reader.database.webapp-{env}.internal"


def test_alarm_topic_refuses_publishing_without_tls(applied, emulator):
    arn = _output(applied, "dev-database", "AlarmTopicArn")
    attributes = emulator.boto3_client("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
    statements = {s["Sid"]: s for s in json.loads(attributes["Policy"])["Statement"]}
    deny = statements["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# ------------------------------------------------------------------ what a plan of the stack asks of AWS

# The aws provider logs each AWS request it sends (TF_LOG_PROVIDER=DEBUG, "HTTP Request Sent") with the
# service's SDK id (rpc.service), the operation (rpc.method) and what asked for it (tf_rpc: ReadResource is a
# refresh, OpenEphemeralResource an ephemeral resource opened; tf_resource_type / tf_ephemeral_resource_type).
# The IAM action of each of these operations has the operation's name, under the service's prefix (Service
# Authorization Reference): the SDK id -> IAM prefix of the services this stack uses.
IAM_PREFIXES = {"EC2": "ec2", "RDS": "rds", "KMS": "kms", "IAM": "iam", "Secrets Manager": "secretsmanager",
                "CloudWatch Logs": "logs", "SNS": "sns", "CloudWatch": "cloudwatch", "Route 53": "route53",
                "STS": "sts", "Lambda": "lambda"}
# "No permissions are required to perform this operation" (AWS STS API Reference, GetCallerIdentity):
# allowed whatever the caller's policies say.
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}
# One log entry per request, over several lines when it carries a body: entries start with their timestamp.
ENTRY_START = re.compile(r"\n(?=\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})")


def _field(line: str, name: str) -> str | None:
    found = re.search(rf'(?:^|\s){re.escape(name)}=("(?:[^"\\]|\\.)*"|\S+)', line)
    return found.group(1).strip('"') if found else None


def plan_calls(deployer, stack: str, log: Path) -> set[tuple[str, str, str]]:
    """(IAM action, terraform operation, resource type) of every AWS request a plan of `stack` sends."""
    result = deployer.terraform.run(deployer.directory(stack), "plan", "-input=false", "-lock=false", "-no-color",
                                    extra_env={**emulator_env(), "TF_LOG_PROVIDER": "DEBUG",
                                               "TF_LOG_PATH": str(log)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    calls = set()
    for line in (entry for entry in ENTRY_START.split(log.read_text()) if "HTTP Request Sent:" in entry):
        service, method = _field(line, "rpc.service"), _field(line, "rpc.method")
        assert service in IAM_PREFIXES, f"a service this test does not know: {service!r} ({method})"
        asker = _field(line, "tf_resource_type") or _field(line, "tf_ephemeral_resource_type") or "provider"
        calls.add((f"{IAM_PREFIXES[service]}:{method}", _field(line, "tf_rpc") or "", asker))
    return calls


def test_a_plan_reads_no_secret_value_and_the_plan_role_may_make_every_call(deployer, synth, tmp_path):
    """A plan of dev-database, with the provider's own log of every request. Each call is evaluated against
    dev's plan role (shared-cicd, checks/iam.py): all are allowed, and none reads a secret value: the master
    secret has no Terraform-managed version (whose refresh, GetSecretValue, was refused until the
    master-password function took over), and the only ephemeral resource opened generates the throwaway
    password the database is created with. (The invocation's refresh calls nothing: hashicorp/aws
    5.100.0's aws_lambda_invocation Read is empty.)"""
    from tests.harness.pipeline_roles import World

    deployer.apply("dev-database")
    calls = plan_calls(deployer, "dev-database", tmp_path / "plan.log")
    assert ("rds:DescribeDBInstances", "ReadResource", "aws_db_instance") in calls  # the log was read
    assert ("lambda:GetFunction", "ReadResource", "aws_lambda_function") in calls
    opened = {(action, asker) for action, rpc, asker in calls if rpc == "OpenEphemeralResource"}
    assert opened == {("secretsmanager:GetRandomPassword", "aws_secretsmanager_random_password")}
    assert not {call for call in calls if call[0] in ("secretsmanager:GetSecretValue", "kms:Decrypt")}
    world = World(synth.stacks)
    # The plan role reads the environment's own functions only; every Lambda call of this plan is about the one.
    function = "arn:aws:lambda:eu-west-1:222222222222:function:webapp-dev-database-master-password"
    refused = {(action, rpc, asker) for action, rpc, asker in calls
               if action not in NEEDS_NO_PERMISSION and not world.as_role(
                   "plan", "dev", action, function if action.startswith("lambda:") else "*").allowed}
    assert refused == set()
