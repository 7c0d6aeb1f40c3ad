"""The database tier: the synthesized `<env>-database` stacks, and variants of dev's config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cdktf import App, TerraformOutput

from modules.app import EnvironmentBuilder
from modules.core.target import Target
from modules.environment import load_environments
from tests.harness.jobs import validate_stacks
from tests.harness.synth import Stack, synthesize

ENVIRONMENTS = ("dev", "stage", "prod")


def database(synth, env: str) -> Stack:
    return synth.stack(f"{env}-database")


def ref(stack: Stack, resource_type: str, path_suffix: str, attribute: str) -> str:
    """`${type.logical_id.attribute}` of the one resource at `*/path_suffix`."""
    (name,) = [
        name for name, config in stack.resources(resource_type).items()
        if config["//"]["metadata"]["path"].endswith(path_suffix)
    ]
    return f"${{{resource_type}.{name}.{attribute}}}"


def keys(value: Any) -> set[str]:
    """Every key anywhere in a JSON document."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


def test_prod_primary_is_multi_az_backed_up_protected_and_encrypted(synth):
    stack = database(synth, "prod")
    primary = stack.resource("aws_db_instance", "Database/Primary")
    assert primary["multi_az"] is True and "availability_zone" not in primary
    assert primary["backup_retention_period"] == 7
    assert primary["deletion_protection"] is True
    assert primary["lifecycle"]["prevent_destroy"] is True
    assert primary["storage_encrypted"] is True
    key = ref(stack, "aws_kms_key", "Database/Key", "arn")
    assert primary["kms_key_id"] == key and primary["performance_insights_kms_key_id"] == key
    assert primary["publicly_accessible"] is False
    assert primary["iam_database_authentication_enabled"] is True
    assert primary["engine"] == "postgres" and primary["engine_version"] == "17"
    assert primary["instance_class"] == "db.r6g.large"
    assert primary["storage_type"] == "gp3"
    assert (primary["allocated_storage"], primary["max_allocated_storage"]) == (100, 500)
    assert primary["enabled_cloudwatch_logs_exports"] == ["postgresql", "upgrade"]
    # Only here: moto's DescribeDBInstances reports neither Performance Insights nor enhanced
    # monitoring, so the emulator cannot show them (README.md, "The local emulator target").
    assert primary["performance_insights_enabled"] is True
    assert primary["monitoring_interval"] == 60
    assert primary["monitoring_role_arn"] == ref(stack, "aws_iam_role", "Database/MonitoringRole", "arn")
    assert primary["copy_tags_to_snapshot"] is True and primary["auto_minor_version_upgrade"] is True
    assert primary["apply_immediately"] is False


GENERATED = "ephemeral.aws_secretsmanager_random_password.Database_GeneratedMasterPassword"
# The password a writer is created with: generated, sent write-only, known to nobody; the function replaces it.
THROWAWAY = f"${{{GENERATED}.random_password}}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_master_password_is_set_by_the_function_and_never_by_terraform(synth, env):
    """Terraform holds no version of the master secret (a managed version's refresh reads its value, which
    plan roles may not) and opens none: the database is created with a generated password sent write-only,
    then Terraform invokes the tier's function, which sets a new one and makes it the secret's current
    version (modules/database/master_password/handler.py)."""
    stack = database(synth, env)
    assert stack.json["terraform"]["required_version"] == ">= 1.11"  # write-only arguments
    secret = stack.resource("aws_secretsmanager_secret", "Database/MasterSecret")
    assert secret["name"] == f"webapp-{env}/database/master"
    assert secret["kms_key_id"] == ref(stack, "aws_kms_key", "Database/Key", "arn")
    generated = stack.json["ephemeral"]["aws_secretsmanager_random_password"]["Database_GeneratedMasterPassword"]
    assert generated == {"password_length": 40, "exclude_punctuation": True, "require_each_included_type": True}
    assert not stack.resources("aws_secretsmanager_secret_version")
    assert set(stack.json["ephemeral"]) == {"aws_secretsmanager_random_password"}
    # The version earlier releases wrote is forgotten, not destroyed: it stays the current value until
    # the function's first run.
    assert stack.json["removed"] == [{"from": "aws_secretsmanager_secret_version.Database_MasterSecretValue_1C88EE15",
                                      "lifecycle": {"destroy": False}}]
    primary = stack.resource("aws_db_instance", "Database/Primary")
    # Not even `false`: the provider rejects it beside password_wo at plan time (validate does not).
    assert "manage_master_user_password" not in primary
    assert primary["password_wo"] == THROWAWAY and primary["password_wo_version"] == 1
    request = stack.resource("terraform_data", "Database/MasterPasswordRequest")
    assert request["triggers_replace"] == [1, ref(stack, "aws_db_instance", "Database/Primary", "resource_id")]
    invocation = stack.resource("aws_lambda_invocation", "Database/SetMasterPassword")
    assert invocation["function_name"] == ref(stack, "aws_lambda_function", "Database/MasterPasswordFunction",
                                              "function_name")
    secret_arn = ref(stack, "aws_secretsmanager_secret", "Database/MasterSecret", "arn")[2:-1]
    token = ref(stack, "terraform_data", "Database/MasterPasswordRequest", "id")[2:-1]
    assert invocation["input"] == (
        f'${{jsonencode({{"SecretId" = {secret_arn}, "ClientRequestToken" = {token}, '
        f'"Username" = "app_admin", "DBInstanceIdentifiers" = ["webapp-{env}-postgres"]}})}}')
    assert invocation["depends_on"] == [ref(stack, "aws_db_instance", "Database/Primary", "id")[2:-4]]
    assert "lifecycle_scope" not in invocation  # CREATE_ONLY: a new input is a new invocation
    # Nothing that Terraform would store: no `password`, no `secret_string`, no random_password resource.
    assert not {"password", "secret_string", "master_user_secret_kms_key_id"} & keys(stack.json)
    assert not stack.resources("random_password")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_function_is_the_repositorys_handler_zipped_the_same_on_every_machine(synth, env):
    """The stack's zip holds exactly master_password/handler.py, and source_code_hash is its SHA-256, so
    the plan shows any change of the code and no change when the code is the same (fixed times and modes)."""
    import base64
    import hashlib
    import io
    import zipfile

    from modules.core.function_code import FIXED_TIME, deterministic_zip
    from modules.database.database import MASTER_PASSWORD_CODE

    stack = database(synth, env)
    function = stack.resource("aws_lambda_function", "Database/MasterPasswordFunction")
    assert function["runtime"] == "python3.12" and function["handler"] == "handler.handler"
    assert function["function_name"] == f"webapp-{env}-database-master-password"
    assert function["timeout"] == 900 and "vpc_config" not in function and "environment" not in function
    assert function["logging_config"]["log_group"] == ref(stack, "aws_cloudwatch_log_group",
                                                          "Database/MasterPasswordLogGroup", "name")
    content = (stack.directory / function["filename"]).read_bytes()
    assert function["source_code_hash"] == base64.b64encode(hashlib.sha256(content).digest()).decode()
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.namelist() == ["handler.py"]
        assert archive.read("handler.py") == (MASTER_PASSWORD_CODE / "handler.py").read_bytes()
        assert {entry.date_time for entry in archive.infolist()} == {FIXED_TIME}
    assert deterministic_zip(MASTER_PASSWORD_CODE) == content
    log_group = stack.resource("aws_cloudwatch_log_group", "Database/MasterPasswordLogGroup")
    assert log_group["name"] == f"/aws/lambda/webapp-{env}-database-master-password"
    assert log_group["kms_key_id"] == ref(stack, "aws_kms_key", "Database/Key", "arn")


def test_a_zip_of_the_same_files_is_the_same_bytes_whatever_their_times(tmp_path):
    import os

    from modules.core.function_code import deterministic_zip

    for name, when in (("a", 1_000_000_000), ("b", 1_700_000_000)):
        folder = tmp_path / name
        (folder / "pkg").mkdir(parents=True)
        (folder / "handler.py").write_text("x = 1\n")
        (folder / "pkg" / "util.py").write_text("y = 2\n")
        for path in folder.rglob("*"):
            os.utime(path, (when, when))
    assert deterministic_zip(tmp_path / "a") == deterministic_zip(tmp_path / "b")
    (tmp_path / "b" / "handler.py").write_text("x = 2\n")
    assert deterministic_zip(tmp_path / "a") != deterministic_zip(tmp_path / "b")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_replicas_take_no_password_of_their_own(synth, env):
    """AWS cannot create a replica of an instance whose password RDS manages; a replica has its source's."""
    instances = database(synth, env).resources("aws_db_instance")
    replicas = [config for config in instances.values() if "replicate_source_db" in config]
    assert len(replicas) == (0 if env == "dev" else 1)
    for replica in replicas:
        assert not {k for k in replica if "password" in k}, replica


def test_master_secret_is_protected_with_the_database(synth):
    prod = database(synth, "prod").resource("aws_secretsmanager_secret", "Database/MasterSecret")
    assert prod["lifecycle"] == {"prevent_destroy": True} and prod["recovery_window_in_days"] == 30
    dev = database(synth, "dev").resource("aws_secretsmanager_secret", "Database/MasterSecret")
    assert "lifecycle" not in dev and dev["recovery_window_in_days"] == 0


def test_primary_zone_change_never_replaces_the_database(synth):
    """availability_zone is ForceNew; after a Multi-AZ failover the primary is in its standby's zone."""
    for env in ENVIRONMENTS:
        primary = database(synth, env).resource("aws_db_instance", "Database/Primary")
        assert primary["lifecycle"]["ignore_changes"] == ["availability_zone"], env
    assert database(synth, "prod").resource("aws_db_instance", "Database/Primary")["lifecycle"]["prevent_destroy"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_security_group_has_no_rules_at_all(synth, env):
    """Clients add their TCP 5432 ingress in their own stacks (DatabaseHandle): none here, no CIDR, no egress."""
    stack = database(synth, env)
    (group,) = stack.resources("aws_security_group").values()
    assert group["egress"] == [] and "ingress" not in group
    for rule_type in ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule",
                      "aws_vpc_security_group_egress_rule"):
        assert not stack.resources(rule_type), rule_type
    assert not any("cidr" in k for k in keys(stack.json))
    assert group["vpc_id"].startswith("${data.terraform_remote_state.cross-stack-reference-input-")


@pytest.mark.parametrize("env, zones", [("dev", 2), ("stage", 3), ("prod", 3)])
def test_primary_subnet_group_spans_the_first_two_isolated_subnets(synth, env, zones):
    stack = database(synth, env)
    group = stack.resource("aws_db_subnet_group", "Database/SubnetGroup")
    assert [s.split("IsolatedSubnet")[1][0] for s in group["subnet_ids"]] == ["0", "1"]
    replica_groups = [g for g in stack.resources("aws_db_subnet_group").values() if g is not group]
    if env == "dev":
        assert replica_groups == []
    else:
        (replica_group,) = replica_groups
        assert [s.split("IsolatedSubnet")[1][0] for s in replica_group["subnet_ids"]] == ["0", "1", "2"][:zones]


def test_single_zone_primary_is_pinned_to_the_first_zone(synth):
    primary = database(synth, "dev").resource("aws_db_instance", "Database/Primary")
    assert primary["multi_az"] is False and primary["availability_zone"] == "eu-west-1a"


@pytest.mark.parametrize("env", ["stage", "prod"])
def test_replica_sits_in_the_zone_the_primary_and_standby_never_use(synth, env):
    stack = database(synth, env)
    replica = stack.resource("aws_db_instance", "Database/Replica0")
    primary_arn = ref(stack, "aws_db_instance", "Database/Primary", "arn")
    # With its own subnet group, a same-region replica names its source by ARN.
    assert replica["replicate_source_db"] == primary_arn
    assert replica["db_subnet_group_name"] == ref(stack, "aws_db_subnet_group", "Database/ReplicaSubnetGroup", "name")
    assert replica["availability_zone"] == "eu-west-1c" and replica["multi_az"] is False
    assert replica["storage_encrypted"] is True
    assert replica["kms_key_id"] == ref(stack, "aws_kms_key", "Database/Key", "arn")
    assert replica["parameter_group_name"] == ref(
        stack, "aws_db_parameter_group", "Database/ReplicaParameterGroup", "name")
    assert replica["performance_insights_enabled"] is True and replica["publicly_accessible"] is False
    assert replica["skip_final_snapshot"] is True and "lifecycle" not in replica
    assert not {"engine", "db_name", "username", "allocated_storage"} & set(replica)


def test_dev_has_no_replicas(synth):
    stack = database(synth, "dev")
    assert list(stack.resources("aws_db_instance")) == [
        n for n, c in stack.resources("aws_db_instance").items() if c["//"]["metadata"]["path"].endswith("Primary")]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_parameter_groups_force_tls_and_log_slow_statements(synth, env):
    groups = database(synth, env).resources("aws_db_parameter_group").values()
    assert len(groups) == (1 if env == "dev" else 2)
    for group in groups:
        assert group["family"] == "postgres17"
        parameters = {p["name"]: p["value"] for p in group["parameter"]}
        assert parameters == {"rds.force_ssl": "1", "log_min_duration_statement": "1000"}
        assert group["lifecycle"] == {"create_before_destroy": True}


@pytest.mark.parametrize("env", ["stage", "prod"])
def test_protected_database_snapshots_on_delete_and_keeps_its_backups(synth, env):
    stack = database(synth, env)
    primary = stack.resource("aws_db_instance", "Database/Primary")
    assert primary["skip_final_snapshot"] is False
    assert primary["final_snapshot_identifier"] == f"webapp-{env}-postgres-final"
    assert primary["delete_automated_backups"] is False
    assert stack.resource("aws_kms_key", "Database/Key")["lifecycle"] == {"prevent_destroy": True}


def test_dev_database_may_be_destroyed(synth):
    stack = database(synth, "dev")
    primary = stack.resource("aws_db_instance", "Database/Primary")
    assert primary["deletion_protection"] is False and primary["skip_final_snapshot"] is True
    assert "final_snapshot_identifier" not in primary and primary["delete_automated_backups"] is True
    # Its lifecycle only ignores the zone (see test_primary_zone_change_never_replaces_the_database).
    assert primary["lifecycle"] == {"ignore_changes": ["availability_zone"]}
    assert "lifecycle" not in stack.resource("aws_kms_key", "Database/Key")
    assert primary["apply_immediately"] is True


def test_windows_are_passed_through(synth):
    primary = database(synth, "prod").resource("aws_db_instance", "Database/Primary")
    assert (primary["backup_window"], primary["maintenance_window"]) == ("02:00-03:00", "sun:04:00-sun:05:00")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_key_rotates_and_lets_only_the_tiers_log_groups_use_it_via_cloudwatch_logs(synth, env):
    stack = database(synth, env)
    key = stack.resource("aws_kms_key", "Database/Key")
    assert key["enable_key_rotation"] is True and key["deletion_window_in_days"] == 30
    (document,) = [d for d in stack.data("aws_iam_policy_document").values()
                   if d["//"]["metadata"]["path"].endswith("Database/KeyPolicy")]
    logs = next(s for s in document["statement"] if s["sid"] == "CloudWatchLogsEncrypts")
    assert logs["condition"][0]["values"] == [
        f"arn:${{data.aws_partition.{_only(stack, 'aws_partition')}.partition}}:logs:eu-west-1:"
        f"${{data.aws_caller_identity.{_only(stack, 'aws_caller_identity')}.account_id}}:"
        f"log-group:/aws/rds/instance/webapp-{env}-*",
        f"arn:${{data.aws_partition.{_only(stack, 'aws_partition')}.partition}}:logs:eu-west-1:"
        f"${{data.aws_caller_identity.{_only(stack, 'aws_caller_identity')}.account_id}}:"
        f"log-group:/aws/lambda/webapp-{env}-database-*"]


def _only(stack: Stack, data_type: str) -> str:
    (name,) = stack.data(data_type)
    return name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_exported_logs_go_to_encrypted_log_groups_created_first(synth, env, environments):
    stack = database(synth, env)
    retention = environments.get(env).database.log_retention_days
    groups = {g["name"]: g for g in stack.resources("aws_cloudwatch_log_group").values()}
    instances = {c["identifier"]: c for c in stack.resources("aws_db_instance").values()}
    # Beside the exported logs, the master-password function's own.
    assert set(groups) == {f"/aws/rds/instance/{i}/{e}" for i in instances for e in ("postgresql", "upgrade")} | {
        f"/aws/lambda/webapp-{env}-database-master-password"}
    key = ref(stack, "aws_kms_key", "Database/Key", "arn")
    assert all(g["retention_in_days"] == retention and g["kms_key_id"] == key for g in groups.values())
    for identifier, instance in instances.items():
        prefix = "Replica0" if identifier.endswith("replica-0") else "Primary"
        assert {d for d in instance["depends_on"] if "log_group" in d} == {
            ref(stack, "aws_cloudwatch_log_group", f"Database/{prefix}{e}LogGroup", "")[2:-2]
            for e in ("Postgresql", "Upgrade")}


def test_enhanced_monitoring_role_is_assumable_only_by_rds_monitoring_in_this_account(synth):
    stack = database(synth, "prod")
    role = stack.resource("aws_iam_role", "Database/MonitoringRole")
    assert role["name"] == "webapp-prod-rds-monitoring"
    (attachment,) = stack.resources("aws_iam_role_policy_attachment").values()
    assert attachment["policy_arn"].endswith(":iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")
    (trust,) = [d for d in stack.data("aws_iam_policy_document").values()
                if d["//"]["metadata"]["path"].endswith("Database/MonitoringTrust")]
    (statement,) = trust["statement"]
    assert statement["principals"] == [{"type": "Service", "identifiers": ["monitoring.rds.amazonaws.com"]}]
    assert statement["condition"][0]["variable"] == "aws:SourceAccount"


@pytest.mark.parametrize("env, replicas", [("dev", 0), ("stage", 1), ("prod", 1)])
def test_alarms_cover_cpu_storage_memory_connections_and_each_replicas_lag(synth, env, replicas, environments):
    stack = database(synth, env)
    config = environments.get(env).database
    topic = stack.resource("aws_sns_topic", "Database/AlarmTopic")
    assert topic["name"] == f"webapp-{env}-database-alarms"
    assert topic["kms_master_key_id"] == ref(stack, "aws_kms_key", "Database/AlarmKey", "arn")
    topic_arn = ref(stack, "aws_sns_topic", "Database/AlarmTopic", "arn")
    alarms = {a["alarm_name"]: a for a in stack.resources("aws_cloudwatch_metric_alarm").values()}
    primary = f"webapp-{env}-postgres"
    expected = {
        f"{primary}-CPUUtilization": ("GreaterThanThreshold", config.cpu_alarm_percent),
        f"{primary}-FreeStorageSpace": ("LessThanThreshold", config.free_storage_alarm_gib * 1024**3),
        f"{primary}-FreeableMemory": ("LessThanThreshold", config.freeable_memory_alarm_mib * 1024**2),
        f"{primary}-DatabaseConnections": ("GreaterThanThreshold", config.connections_alarm_count),
        **{f"{primary}-replica-{i}-ReplicaLag": ("GreaterThanThreshold", config.replica_lag_alarm_seconds)
           for i in range(replicas)},
    }
    assert {name: (a["comparison_operator"], a["threshold"]) for name, a in alarms.items()} == expected
    for name, alarm in alarms.items():
        assert alarm["namespace"] == "AWS/RDS"
        assert alarm["dimensions"] == {"DBInstanceIdentifier": name.rsplit("-", 1)[0]}
        assert alarm["alarm_actions"] == [topic_arn] and alarm["ok_actions"] == [topic_arn]


def test_alarm_key_lets_cloudwatch_publish_for_this_tiers_alarms_only(synth):
    stack = database(synth, "prod")
    (document,) = [d for d in stack.data("aws_iam_policy_document").values()
                   if d["//"]["metadata"]["path"].endswith("Database/AlarmKeyPolicy")]
    statement = next(s for s in document["statement"] if s["sid"] == "CloudWatchAlarmsPublish")
    assert statement["principals"] == [{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}]
    assert statement["actions"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    source_arn = next(c for c in statement["condition"] if c["variable"] == "aws:SourceArn")
    assert source_arn["values"][0].endswith(":alarm:webapp-prod-postgres-*")
    assert stack.resource("aws_kms_key", "Database/AlarmKey")["enable_key_rotation"] is True


def test_alarm_emails_subscribe_to_the_topic(synth):
    (subscription,) = database(synth, "prod").resources("aws_sns_topic_subscription").values()
    assert subscription["protocol"] == "email" and subscription["endpoint"] == "database-oncall@webapp.example.com"
    assert not database(synth, "dev").resources("aws_sns_topic_subscription")


def test_outputs_give_the_api_what_it_needs(synth):
    stack = database(synth, "prod")
    outputs = {name.split("_")[1]: o["value"] for name, o in stack.json["output"].items()}
    assert outputs["WriterEndpoint"] == ref(stack, "aws_db_instance", "Database/Primary", "address")
    assert outputs["ReaderEndpoints"] == [ref(stack, "aws_db_instance", "Database/Replica0", "address")]
    assert outputs["Port"] == 5432 and outputs["DatabaseName"] == "app"
    assert outputs["MasterUserSecretArn"] == ref(stack, "aws_secretsmanager_secret", "Database/MasterSecret", "arn")
    assert outputs["SecurityGroupId"] == ref(stack, "aws_security_group", "Database/SecurityGroup", "id")
    assert outputs["AlarmTopicArn"] == ref(stack, "aws_sns_topic", "Database/AlarmTopic", "arn")
    assert outputs["KeyArn"] == ref(stack, "aws_kms_key", "Database/Key", "arn")


def test_database_stack_reads_the_network_from_its_remote_state(synth):
    stack = database(synth, "prod")
    (remote,) = stack.data("terraform_remote_state").values()
    assert remote["config"]["key"] == "prod/network.tfstate"


def test_handle_carries_the_database_to_a_client_stack(environments, tmp_path):
    """What the API tier does: read the `DatabaseHandle` from another stack (outputs + remote state)."""
    app = App(outdir=str(tmp_path))
    builder = EnvironmentBuilder(app, environments, environments.get("prod"), Target())
    builder.build()
    handle = builder.built["database"].handle
    client = builder.stack("client")
    fields = ("security_group_id", "writer_endpoint", "instance_resource_ids", "master_user_secret_arn",
              "secret_kms_key_arn")
    for name in fields:
        value = getattr(handle, name)
        TerraformOutput(client, name, value=list(value) if isinstance(value, tuple) else value)
    app.synth()
    stacks = tmp_path / "stacks"
    client_json = json.loads((stacks / "prod-client" / "cdk.tf.json").read_text())
    database_json = json.loads((stacks / "prod-database" / "cdk.tf.json").read_text())
    (remote,) = client_json["data"]["terraform_remote_state"].values()
    assert remote["config"]["key"] == "prod/database.tfstate"
    exported = {}
    for name in fields:
        value = client_json["output"][name]["value"]
        values = value if isinstance(value, list) else [value]
        for item in values:
            output = item.split(".outputs.")[1].rstrip("}")
            exported.setdefault(name, []).append(database_json["output"][output]["value"])
    stack = Stack("prod-database", database_json, stacks / "prod-database")
    assert exported == {
        "security_group_id": [ref(stack, "aws_security_group", "Database/SecurityGroup", "id")],
        "writer_endpoint": [ref(stack, "aws_db_instance", "Database/Primary", "address")],
        "instance_resource_ids": [ref(stack, "aws_db_instance", "Database/Primary", "resource_id"),
                                  ref(stack, "aws_db_instance", "Database/Replica0", "resource_id")],
        "master_user_secret_arn": [ref(stack, "aws_secretsmanager_secret", "Database/MasterSecret", "arn")],
        "secret_kms_key_arn": [ref(stack, "aws_kms_key", "Database/Key", "arn")],
    }
    assert (handle.port, handle.database_name, handle.master_username) == (5432, "app", "app_admin")
    # Plain data, no output: the name is chosen here, the records behind it may change.
    assert handle.reader_host_name == "reader.database.webapp-prod.internal"


# --- variants of dev's database block, synthesized on their own ------------------------------------


def synth_dev(tmp_path: Path, environments_copy: Path, *lines: str):
    """dev with `lines` added to its `database { ... }` block."""
    path = environments_copy / "dev.hcl"
    text = path.read_text()
    path.write_text(text.replace("database {\n", "database {\n" + "".join(f"  {line}\n" for line in lines), 1))
    environments = load_environments(environments_copy, ("dev",))
    return synthesize(environments, tmp_path / "cdktf.out").stack("dev-database")


@pytest.fixture(scope="module")
def restored(tmp_path_factory):
    from tests.harness.project import ENVIRONMENTS_DIR

    copy = tmp_path_factory.mktemp("restore") / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, copy)
    return synth_dev(copy.parent, copy, 'point_in_time_restore {\n    restore_time = "2026-11-27T03:15:00Z"\n  }')


def test_point_in_time_restore_builds_a_new_instance_from_the_primarys_backups(restored):
    stack = restored
    instance = stack.resource("aws_db_instance", "Database/Restored")
    assert instance["identifier"] == "webapp-dev-postgres-restored"
    assert instance["restore_to_point_in_time"] == {
        "source_db_instance_identifier": ref(stack, "aws_db_instance", "Database/Primary", "identifier"),
        "restore_time": "2026-11-27T03:15:00Z",
    }
    primary = stack.resource("aws_db_instance", "Database/Primary")
    for same in ("db_subnet_group_name", "vpc_security_group_ids", "parameter_group_name", "kms_key_id",
                 "password_wo", "password_wo_version",
                 "storage_encrypted", "publicly_accessible", "multi_az",
                 "iam_database_authentication_enabled", "performance_insights_kms_key_id", "monitoring_role_arn",
                 "backup_retention_period", "deletion_protection"):
        assert instance[same] == primary[same], same
    # The function sets the master secret's password on the restored instance too: clients switch endpoints only.
    assert instance["password_wo"] == THROWAWAY
    invocation = stack.resource("aws_lambda_invocation", "Database/SetMasterPassword")
    assert '"DBInstanceIdentifiers" = ["webapp-dev-postgres", "webapp-dev-postgres-restored"]' in invocation["input"]
    request = stack.resource("terraform_data", "Database/MasterPasswordRequest")
    assert request["triggers_replace"][1:] == [ref(stack, "aws_db_instance", f"Database/{name}", "resource_id")
                                               for name in ("Primary", "Restored")]
    assert not {"engine", "db_name", "username", "allocated_storage", "replicate_source_db"} & set(instance)
    assert not {"password", "secret_string"} & keys(stack.json)
    (output,) = [o for name, o in stack.json["output"].items() if name.startswith("Database_RestoredEndpoint")]
    assert output["value"] == ref(stack, "aws_db_instance", "Database/Restored", "address")


def test_restored_stack_is_valid_terraform(restored, terraform, tmp_path):
    ((ok, diagnostics),) = validate_stacks(restored.directory.parent, [restored.name], terraform, tmp_path).values()
    assert ok, diagnostics


def test_point_in_time_restore_defaults_to_the_latest_restorable_time(tmp_path, environments_copy):
    stack = synth_dev(tmp_path, environments_copy, 'point_in_time_restore {\n    source_identifier = "old-db"\n  }')
    restore = stack.resource("aws_db_instance", "Database/Restored")["restore_to_point_in_time"]
    assert restore == {"source_db_instance_identifier": "old-db", "use_latest_restorable_time": True}


def test_a_deleted_primary_is_restored_from_its_retained_backups_by_resource_id(tmp_path, environments_copy):
    """RestoreDBInstanceToPointInTime finds a deleted instance's backups by DbiResourceId only."""
    stack = synth_dev(tmp_path, environments_copy,
                      'point_in_time_restore {\n    source_dbi_resource_id = "db-ABCDEFGHIJKLMNOPQRSTUVWXY0"\n  }')
    restore = stack.resource("aws_db_instance", "Database/Restored")["restore_to_point_in_time"]
    assert restore == {"source_dbi_resource_id": "db-ABCDEFGHIJKLMNOPQRSTUVWXY0", "use_latest_restorable_time": True}
    (output,) = [o for name, o in stack.json["output"].items() if name.startswith("Database_PrimaryResourceId")]
    assert output["value"] == ref(stack, "aws_db_instance", "Database/Primary", "resource_id")


def test_writer_may_take_a_major_upgrade(synth):
    for env in ENVIRONMENTS:
        stack = database(synth, env)
        assert stack.resource("aws_db_instance", "Database/Primary")["allow_major_version_upgrade"] is True


def test_deletion_protection_also_sets_prevent_destroy(tmp_path, environments_copy):
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text().replace("prevent_destroy           = false", "prevent_destroy           = true")
                    .replace("skip_final_snapshot       = true", "skip_final_snapshot       = false"))
    stack = synth_dev(tmp_path, environments_copy)
    primary = stack.resource("aws_db_instance", "Database/Primary")
    assert primary["deletion_protection"] is True and primary["lifecycle"]["prevent_destroy"] is True
    assert primary["final_snapshot_identifier"] == "webapp-dev-postgres-final"


def test_single_zone_primary_leaves_the_second_zone_to_a_replica(tmp_path, environments_copy):
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text().replace("replica_count             = 0", "replica_count             = 1"))
    stack = synth_dev(tmp_path, environments_copy, 'replica_instance_class = "db.t4g.small"')
    replica = stack.resource("aws_db_instance", "Database/Replica0")
    assert replica["availability_zone"] == "eu-west-1b" and replica["instance_class"] == "db.t4g.small"
    assert stack.resource("aws_db_instance", "Database/Primary")["availability_zone"] == "eu-west-1a"


# --- one reader name, backups in a second region, protection (issue 19) ----------------------------


@pytest.mark.parametrize("env, replicas", [("dev", 0), ("stage", 1), ("prod", 1)])
def test_reader_name_spreads_over_the_replicas_or_falls_back_to_the_writer(synth, env, replicas):
    stack = database(synth, env)
    (zone,) = stack.resources("aws_route53_zone").values()
    assert zone["name"] == f"database.webapp-{env}.internal"
    # Private: attached to the environment's VPC (from the network stack), resolvable only there.
    (vpc,) = zone["vpc"]
    assert vpc["vpc_id"].startswith(f"${{data.terraform_remote_state.cross-stack-reference-input-{env}-network")
    records = {r["set_identifier"]: r for r in stack.resources("aws_route53_record").values()}
    assert set(records) == {"writer", *(f"replica-{i}" for i in range(replicas))}
    for identifier, record in records.items():
        assert record["name"] == f"reader.database.webapp-{env}.internal"
        assert record["type"] == "CNAME" and record["ttl"] == 10
        assert record["zone_id"] == ref(stack, "aws_route53_zone", "Database/PrivateZone", "zone_id")
        target = "Primary" if identifier == "writer" else f"Replica{identifier.split('-')[1]}"
        assert record["records"] == [ref(stack, "aws_db_instance", f"Database/{target}", "address")]
    # Route 53 weighted routing: a record of weight 0 is returned only when every other one is 0 too.
    assert records["writer"]["weighted_routing_policy"] == {"weight": 0 if replicas else 1}
    assert all(records[f"replica-{i}"]["weighted_routing_policy"] == {"weight": 1} for i in range(replicas))
    outputs = {name.split("_")[1]: o["value"] for name, o in stack.json["output"].items()}
    assert outputs["ReaderHostName"] == f"reader.database.webapp-{env}.internal"


def test_production_backups_are_replicated_to_the_second_region_under_a_key_there(synth):
    stack = database(synth, "prod")
    (replication,) = stack.resources("aws_db_instance_automated_backups_replication").values()
    primary_arn = ref(stack, "aws_db_instance", "Database/Primary", "arn")
    assert replication["source_db_instance_arn"] == primary_arn
    assert replication["retention_period"] == 7
    assert replication["kms_key_id"] == ref(stack, "aws_kms_key", "Database/BackupKey", "arn")
    providers = {p.get("alias"): p for p in stack.json["provider"]["aws"]}
    assert providers["eu_central_1"]["region"] == "eu-central-1"
    assert replication["provider"] == "aws.eu_central_1"
    key = stack.resource("aws_kms_key", "Database/BackupKey")
    assert key["provider"] == "aws.eu_central_1" and key["enable_key_rotation"] is True
    assert key["lifecycle"] == {"prevent_destroy": True}
    alias = stack.resource("aws_kms_alias", "Database/BackupKeyAlias")
    assert alias["name"] == "alias/webapp-prod-database-backups" and alias["provider"] == "aws.eu_central_1"
    for env in ("dev", "stage"):
        assert not database(synth, env).resources("aws_db_instance_automated_backups_replication")


@pytest.mark.parametrize("env, protected", [("dev", False), ("stage", True), ("prod", True)])
def test_log_groups_are_kept_like_their_key(synth, env, protected):
    stack = database(synth, env)
    assert ("lifecycle" in stack.resource("aws_kms_key", "Database/Key")) is protected
    for group in stack.resources("aws_cloudwatch_log_group").values():
        assert group.get("lifecycle", {}).get("prevent_destroy", False) is protected, group["name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alarm_topic_refuses_publishing_without_tls(synth, env):
    stack = database(synth, env)
    (topic_policy,) = stack.resources("aws_sns_topic_policy").values()
    topic = ref(stack, "aws_sns_topic", "Database/AlarmTopic", "arn")
    assert topic_policy["arn"] == topic
    statements = {s["sid"]: s for s in stack.data("aws_iam_policy_document")[
        topic_policy["policy"].split(".")[2]]["statement"]}
    deny = statements["DenyInsecureTransport"]
    assert deny["effect"] == "Deny" and deny["actions"] == ["sns:Publish"] and deny["resources"] == [topic]
    assert deny["principals"] == [{"type": "*", "identifiers": ["*"]}]
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    publish = statements["CloudWatchAlarmsPublish"]
    assert publish["principals"] == [{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}]
    source_arn = next(c for c in publish["condition"] if c["variable"] == "aws:SourceArn")
    assert source_arn["values"][0].endswith(f":alarm:webapp-{env}-postgres-*")
