"""End to end on the emulator: the database stacks applied after their network, through the S3 backend.

dev (single-AZ, no replicas) shows the primary, its subnet group, parameter group, the
security group its own stack puts no rule on, the managed master secret, log groups, alarms and topic; stage
(Multi-AZ, one replica) shows the replica in the zone the primary and its standby never use.
The provider waits ~60 s before its first RDS status check, so these applies take minutes:
dev's and stage's run side by side (tests/harness/deployer.py).
"""

from __future__ import annotations

import json

import pytest

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


def test_master_password_lives_only_in_the_rds_managed_secret(applied, instance, emulator):
    secret_arn = _output(applied, "dev-database", "MasterUserSecretArn")
    assert instance["MasterUserSecret"]["SecretArn"] == secret_arn
    assert instance["MasterUserSecret"]["KmsKeyId"] == _output(applied, "dev-database", "KeyArn")
    described = emulator.boto3_client("secretsmanager").describe_secret(SecretId=secret_arn)
    assert described["ARN"] == secret_arn
    state = applied.run("dev-database", "state", "pull").stdout
    secret = json.loads(emulator.boto3_client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    assert secret["password"] and secret["password"] not in state


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
    # moto accepts these settings but does not echo them back (see EMULATOR_IGNORE_CHANGES).
    missing = [key for key in ("PerformanceInsightsEnabled", "EnhancedMonitoringResourceArn") if key not in instance]
    if missing:
        pytest.skip(f"moto's DescribeDBInstances does not report {', '.join(missing)}; "
                    "the synthesized settings are asserted in tests/test_database.py")
    assert instance["PerformanceInsightsEnabled"] is True
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
