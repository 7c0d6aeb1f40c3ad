"""The API tier (`<env>-api`): assertions on the synthesized JSON of every environment."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from modules.api.gateway import method_settings_path
from modules.environment import load_environments
from tests.harness.synth import Stack, synthesize

COLLECTOR = "otel-collector"  # the sidecar's container name (modules/api/README.md)

ENVIRONMENTS = ("dev", "stage", "prod")
REMOTE_DATABASE = "data.terraform_remote_state.cross-stack-reference-input-{env}-database"
REMOTE_NETWORK = "data.terraform_remote_state.cross-stack-reference-input-{env}-network"


def api(synth, env: str) -> Stack:
    return synth.stack(f"{env}-api")


def ref(resource_type: str, config: dict[str, Any], attribute: str = "id") -> str:
    return f"${{{resource_type}.{config['//']['metadata']['uniqueId']}.{attribute}}}"


def containers(stack: Stack, path_suffix: str) -> list[dict[str, Any]]:
    """The task's own containers; its collector sidecar is tested in tests/test_cicd_collector.py."""
    found = json.loads(stack.resource("aws_ecs_task_definition", path_suffix)["container_definitions"])
    return [c for c in found if c["name"] != COLLECTOR]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def policy(stack: Stack, path_suffix: str) -> dict[str, dict[str, Any]]:
    """`{sid: statement}` of the policy document at `path_suffix`."""
    (document,) = [d for d in stack.data("aws_iam_policy_document").values()
                   if d["//"]["metadata"]["path"].endswith(path_suffix)]
    return {s["sid"]: s for s in document["statement"]}


# Tasks: private, hardened, credentials only as secrets ------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_services_run_in_the_private_subnets_without_public_ip(synth, env):
    stack = api(synth, env)
    services = stack.resources("aws_ecs_service")
    assert len(services) == 2
    network = REMOTE_NETWORK.format(env=env)
    zones = 2 if env == "dev" else 3
    for service in services.values():
        configuration = service["network_configuration"]
        assert configuration["assign_public_ip"] is False
        assert len(configuration["subnets"]) == zones
        assert all(s.startswith(f"${{{network}.outputs.") and "PrivateSubnet" in s for s in configuration["subnets"])
        (group,) = configuration["security_groups"]
        assert group.startswith("${aws_security_group.Api_")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_containers_are_non_root_read_only_and_never_privileged(synth, env):
    stack = api(synth, env)
    definitions = stack.resources("aws_ecs_task_definition")
    assert len(definitions) == 3  # two services and the Flyway task
    for definition in definitions.values():
        assert definition["requires_compatibilities"] == ["FARGATE"]
        assert definition["network_mode"] == "awsvpc"
        assert definition["runtime_platform"]["operating_system_family"] == "LINUX"
        assert definition["execution_role_arn"] != definition["task_role_arn"]
        for container in json.loads(definition["container_definitions"]):  # sidecars too
            assert container["readonlyRootFilesystem"] is True
            assert container["privileged"] is False
            assert container["user"] not in ("", "0", "root") and not container["user"].startswith("0:")
            assert container["logConfiguration"]["logDriver"] == "awslogs"


def test_cpu_architecture_and_task_size_come_from_config(synth):
    stack = api(synth, "prod")
    service1 = stack.resource("aws_ecs_task_definition", "Api/Service1/TaskDefinition")
    service2 = stack.resource("aws_ecs_task_definition", "Api/Service2/TaskDefinition")
    assert (service1["cpu"], service1["memory"], service1["runtime_platform"]["cpu_architecture"]) == (
        "1024", "2048", "X86_64")
    assert (service2["cpu"], service2["memory"], service2["runtime_platform"]["cpu_architecture"]) == (
        "512", "1024", "ARM64")


def test_container_health_check_probes_the_health_path(synth):
    (container,) = containers(api(synth, "dev"), "Api/Service1/TaskDefinition")
    assert container["healthCheck"]["command"] == ["CMD-SHELL", "curl -fsS http://localhost:8080/health || exit 1"]
    assert container["portMappings"] == [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]


MASTER_SECRET = "aws_secretsmanager_secretDatabase_MasterSecret_"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_master_secret_reaches_only_the_migration_task(synth, env):
    """Services log in as their own IAM-authenticated logins: no task definition, role or policy of a
    service names the master secret; the Flyway task gets it as ECS secrets only."""
    stack = api(synth, env)
    (flyway,) = containers(stack, "Api/Migrations/TaskDefinition")
    secrets = {s["name"]: s["valueFrom"] for s in flyway["secrets"]}
    assert secrets["FLYWAY_PASSWORD"].endswith(":password::") and MASTER_SECRET in secrets["FLYWAY_PASSWORD"]
    assert secrets["FLYWAY_USER"].endswith(":username::") and MASTER_SECRET in secrets["FLYWAY_USER"]
    for variable in flyway["environment"]:
        assert MASTER_SECRET not in variable["value"]
    named = []
    for block in ("resource", "data"):
        for resource_type, items in stack.json.get(block, {}).items():
            for config in items.values():
                if resource_type == "terraform_remote_state":
                    continue  # reads the database stack's outputs; names no secret itself
                if any(MASTER_SECRET in s for s in strings(config)):
                    named.append((resource_type, config["//"]["metadata"]["path"].split("/", 1)[1]))
    assert sorted(named) == [
        ("aws_ecs_task_definition", "Api/Migrations/TaskDefinition"),
        ("aws_iam_policy_document", "Api/Migrations/ExecutionPermissions"),
    ]
    assert not any(key == "password" for _, _, config in stack.all_resources() for key in config)


@pytest.mark.parametrize("env, replicas", [("dev", 0), ("stage", 1), ("prod", 1)])
def test_services_connect_as_their_own_login_with_iam(synth, env, replicas):
    stack = api(synth, env)
    database = REMOTE_DATABASE.format(env=env)
    for name in ("service1", "service2"):
        (container,) = containers(stack, f"Api/{name.title()}/TaskDefinition")
        variables = {v["name"]: v["value"] for v in container["environment"]}
        assert variables["DB_HOST"].startswith(f"${{{database}.outputs.") and "Primary" in variables["DB_HOST"]
        # One name for reads, in the database's private zone, whatever the replicas.
        assert variables["DB_READER_HOST"] == f"reader.database.webapp-{env}.internal"
        assert (variables["DB_PORT"], variables["DB_NAME"]) == ("5432", "app")
        assert (variables["DB_USERNAME"], variables["DB_IAM_AUTH"]) == (f"svc_{name}", "true")
        assert "DB_PASSWORD" not in variables and "DB_READER_HOSTS" not in variables
        assert not [s for s in container["secrets"] if s["name"].startswith("DB_")]
        # rds-db:connect (AWS RDS user guide, "Creating and using an IAM policy for IAM database access"):
        # arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<database user>, on each instance.
        statements = policy(stack, f"Api/{name.title()}/DatabaseLoginPermissions")
        assert list(statements) == ["ConnectAsOwnLogin"]
        statement = statements["ConnectAsOwnLogin"]
        assert statement["effect"] == "Allow" and statement["actions"] == ["rds-db:connect"]
        assert len(statement["resources"]) == 1 + replicas
        for index, arn in enumerate(statement["resources"]):
            prefix = "arn:${data.aws_partition.Api_Partition_DEA34047.partition}:rds-db:eu-west-1:" \
                     "${data.aws_caller_identity.Api_Identity_4121AE81.account_id}:dbuser:"
            assert arn.startswith(prefix + f"${{{database}.outputs."), arn
            assert arn.endswith(f"}}/svc_{name}"), arn
            assert ("Primary" if index == 0 else f"Replica{index - 1}") in arn
        login = next(p for p in stack.resources("aws_iam_role_policy").values()
                     if p["//"]["metadata"]["path"].endswith(f"Api/{name.title()}/DatabaseLoginPolicy"))
        role = stack.resource("aws_iam_role", f"Api/{name.title()}/TaskRole")
        assert login["role"] == ref("aws_iam_role", role)
    # Nothing else in the stack may connect to the database through IAM.
    connects = [d["//"]["metadata"]["path"] for d in stack.data("aws_iam_policy_document").values()
                if "rds-db:connect" in json.dumps(d) or "rds-db:*" in json.dumps(d)]
    assert sorted(c.split("/", 1)[1] for c in connects) == [
        "Api/Service1/DatabaseLoginPermissions", "Api/Service2/DatabaseLoginPermissions"]


def test_a_service_without_database_access_gets_no_login_and_no_path(tmp_path, environments_copy):
    path = environments_copy / "dev.hcl"
    text = path.read_text()
    marker = '    database_access  = "read_write"\n'
    assert text.count(marker) == 2
    path.write_text(text.replace(marker, "", 1))  # service1: the default, "none"
    stack = synthesize(load_environments(environments_copy, ("dev",)), tmp_path / "cdktf.out").stack("dev-api")
    (container,) = containers(stack, "Api/Service1/TaskDefinition")
    assert not [v for v in container["environment"] if v["name"].startswith("DB_")]
    paths = [r["//"]["metadata"]["path"] for _, _, r in stack.all_resources()]
    assert not [p for p in paths if "Service1/DatabaseLogin" in p or "Service1/EgressToDatabase" in p
                or "Service1/DatabaseIngress" in p]
    assert [p for p in paths if p.endswith("Service2/DatabaseLoginPolicy")]
    (flyway,) = containers(stack, "Api/Migrations/TaskDefinition")
    sql = {v["name"]: v["value"] for v in flyway["environment"]}["SERVICE_LOGINS_SQL"]
    assert 'CREATE ROLE "svc_service2"' in sql and 'CREATE ROLE "svc_service1"' not in sql


def test_container_definitions_leave_out_empty_variables():
    """ECS drops them from the definition it stores: kept, every plan would replace the task definition."""
    from modules.api.task import container_definitions

    (container,) = json.loads(container_definitions(
        name="app", image="repo:1", user="10001", log_group_name="logs", region="eu-west-1",
        environment={"EMPTY": "", "SET": "x"}, secrets={},
    ))
    assert container["environment"] == [{"name": "SET", "value": "x"}]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_services_roll_instead_of_being_replaced(synth, env):
    """force_new_deployment: a changed capacity-provider strategy is a deployment, not a replacement (5.x).
    No password version in triggers: services hold no password, a rotation never rolls them."""
    stack = api(synth, env)
    for name in ("Service1", "Service2"):
        service = stack.resource("aws_ecs_service", f"Api/{name}/Service")
        assert service["force_new_deployment"] is True
        assert "triggers" not in service


def test_a_rotated_master_password_leaves_the_api_stack_as_it_is(synth, tmp_path, environments_copy):
    """Rotation (modules/database/README.md): raising master_password_version changes the database
    stack's password request only (a new request is a new invocation of the tier's master-password
    function); the API stack, services and Flyway task, is the same JSON."""
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text().replace("database {\n", "database {\n  master_password_version = 2\n", 1))
    rotated = synthesize(load_environments(environments_copy, ("dev",)), tmp_path / "cdktf.out")
    assert rotated.stack("dev-api").json == synth.stack("dev-api").json
    before, after = synth.stack("dev-database").json, rotated.stack("dev-database").json
    changed = {(t, n) for t, items in after["resource"].items() for n, c in items.items()
               if before["resource"][t][n] != c}
    assert {t for t, _ in changed} == {"terraform_data"}
    (request,) = rotated.stack("dev-database").resources("terraform_data").values()
    assert request["triggers_replace"][0] == 2
    # Terraform sets a password at creation only: a rotation never leaves the master user on one nobody knows.
    (primary,) = rotated.stack("dev-database").resources("aws_db_instance").values()
    assert primary["password_wo_version"] == 1


def test_secrets_are_recoverable_only_where_protected(synth):
    assert api(synth, "prod").resource("aws_secretsmanager_secret", "Api/SecretPaymentsApiKey")[
        "recovery_window_in_days"] == 30
    # dev may be destroyed and applied again at once: a pending deletion would hold the name for 30 days.
    assert api(synth, "dev").resource("aws_secretsmanager_secret", "Api/SecretPaymentsApiKey")[
        "recovery_window_in_days"] == 0


def test_named_secrets_are_created_encrypted_and_referenced_by_arn(synth):
    stack = api(synth, "dev")
    secret = stack.resource("aws_secretsmanager_secret", "Api/SecretPaymentsApiKey")
    assert secret["name"] == "webapp-dev/api/payments-api-key"
    assert secret["kms_key_id"].startswith("${aws_kms_key.Api_SecretKey_")
    assert "secret_string" not in json.dumps(stack.json)
    (container,) = containers(stack, "Api/Service2/TaskDefinition")
    assert {"name": "PAYMENTS_API_KEY", "valueFrom": ref("aws_secretsmanager_secret", secret, "arn")} in container[
        "secrets"]
    (service1,) = containers(stack, "Api/Service1/TaskDefinition")
    assert "PAYMENTS_API_KEY" not in {s["name"] for s in service1["secrets"]}


def test_images_come_from_the_registry_account_by_tag(synth):
    (container,) = containers(api(synth, "stage"), "Api/Service2/TaskDefinition")
    assert container["image"] == "111111111111.dkr.ecr.eu-west-1.amazonaws.com/webapp/service2:1.0.0"
    (flyway,) = containers(api(synth, "stage"), "Api/Migrations/TaskDefinition")
    assert flyway["image"] == "111111111111.dkr.ecr.eu-west-1.amazonaws.com/webapp/migrations:10.20.1"


# IAM ---------------------------------------------------------------------------------------------

def test_execution_role_pulls_its_repository_and_reads_exactly_its_secrets(synth):
    stack = api(synth, "dev")
    database = REMOTE_DATABASE.format(env="dev")
    service1 = policy(stack, "Api/Service1/ExecutionPermissions")
    service2 = policy(stack, "Api/Service2/ExecutionPermissions")
    assert service1["EcrLogin"]["resources"] == ["*"] and service1["EcrLogin"]["actions"] == [
        "ecr:GetAuthorizationToken"]
    assert service1["PullOwnImage"]["resources"] == [
        "arn:${data.aws_partition.Api_Partition_DEA34047.partition}:ecr:eu-west-1:111111111111:repository/webapp/service1",
        # its collector sidecar's image
        "arn:${data.aws_partition.Api_Partition_DEA34047.partition}:ecr:eu-west-1:111111111111:repository/aws-otel-collector",
    ]
    assert service1["WriteOwnLogs"]["resources"] == ["${aws_cloudwatch_log_group.Api_Service1_LogGroup_958BD3AE.arn}:*"]
    # service1 names no secret (its database login needs none): no secret may be read.
    assert "ReadNamedSecrets" not in service1 and "DecryptNamedSecrets" not in service1
    assert service2["ReadNamedSecrets"]["actions"] == ["secretsmanager:GetSecretValue"]
    (named,) = service2["ReadNamedSecrets"]["resources"]
    assert named.startswith("${aws_secretsmanager_secret.Api_SecretPaymentsApiKey_")
    decrypt = service2["DecryptNamedSecrets"]
    assert decrypt["actions"] == ["kms:Decrypt"] and len(decrypt["resources"]) == 1
    assert decrypt["resources"][0].startswith("${aws_kms_key.Api_SecretKey_")
    migrations = policy(stack, "Api/Migrations/ExecutionPermissions")
    (master,) = migrations["ReadNamedSecrets"]["resources"]
    assert master.startswith(f"${{{database}.outputs.") and "secretsmanager_secretDatabase_MasterSecret" in master
    assert decrypt["condition"][0]["values"] == ["secretsmanager.eu-west-1.amazonaws.com"]
    for statement in (*service1.values(), *service2.values()):
        assert statement["effect"] == "Allow"
        assert statement["resources"] != ["*"] or statement["sid"] == "EcrLogin"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_task_roles_have_no_permissions_by_default(synth, env):
    """Nothing but the collector sidecar's remote write to the environment's workspace, and each
    service's database login (test_services_connect_as_their_own_login_with_iam)."""
    stack = api(synth, env)
    task_roles = [r for r in stack.resources("aws_iam_role").values() if r["//"]["metadata"]["path"].endswith("/TaskRole")]
    assert len(task_roles) == 3
    collector = [p for p in stack.resources("aws_iam_role_policy").values() if p["name"] == "write-metrics"]
    assert len(collector) == 2  # one per service, none for the Flyway task
    for grant in collector:
        (statement,) = stack.data("aws_iam_policy_document")[grant["policy"].split(".")[2]]["statement"]
        assert statement["actions"] == ["aps:RemoteWrite"]
        assert statement["resources"] == ["${data.aws_ssm_parameter.Api_CollectorWorkspaceArn_07379A10.value}"]
    logins = [p for p in stack.resources("aws_iam_role_policy").values() if p["name"] == "database-login"]
    assert len(logins) == 2  # one per service, none for the Flyway task (it logs in with the master secret)
    granted = {p["role"] for p in stack.resources("aws_iam_role_policy").values()
               if p["name"] not in ("write-metrics", "database-login")}
    granted |= {p["role"] for p in stack.resources("aws_iam_role_policy_attachment").values()}
    documents = stack.data("aws_iam_policy_document")
    for role in task_roles:
        assert not {ref("aws_iam_role", role), ref("aws_iam_role", role, "name")} & granted
        assert "managed_policy_arns" not in role and "inline_policy" not in role
        trust = documents[role["assume_role_policy"].split(".")[2]]["statement"]
        assert [s["principals"] for s in trust] == [[{"identifiers": ["ecs-tasks.amazonaws.com"], "type": "Service"}]]


# Network rules -------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_security_group_rule_admits_the_internet(synth, env):
    stack = api(synth, env)
    for rule in stack.resources("aws_vpc_security_group_ingress_rule").values():
        assert "cidr_ipv4" not in rule and "cidr_ipv6" not in rule
        assert rule["referenced_security_group_id"]
    for group in stack.resources("aws_security_group").values():
        assert "ingress" not in group and "egress" not in group


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_the_service_that_calls_a_third_party_reaches_the_internet_and_only_on_https(synth, env):
    stack = api(synth, env)
    service2 = ref("aws_security_group", stack.resource("aws_security_group", "Api/Service2/SecurityGroup"))
    internet = [r for r in stack.resources("aws_vpc_security_group_egress_rule").values()
                if "cidr_ipv4" in r or "cidr_ipv6" in r]
    assert [(r["security_group_id"], r["cidr_ipv4"], r["ip_protocol"], r["from_port"], r["to_port"])
            for r in internet] == [(service2, "0.0.0.0/0", "tcp", 443, 443)]
    assert internet[0]["//"]["metadata"]["path"].endswith("Api/Service2/EgressHttpsToInternet")


def test_service_admits_only_the_nlb_on_its_port(synth):
    stack = api(synth, "prod")
    service = stack.resource("aws_security_group", "Api/Service1/SecurityGroup")
    nlb = stack.resource("aws_security_group", "Api/LoadBalancer/SecurityGroup")
    ingress = [r for r in stack.resources("aws_vpc_security_group_ingress_rule").values()
               if r["security_group_id"] == ref("aws_security_group", service)]
    assert [(r["from_port"], r["to_port"], r["referenced_security_group_id"]) for r in ingress] == [
        (8080, 8080, ref("aws_security_group", nlb))]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_task_reaches_the_database_through_a_rule_on_its_group(synth, env):
    stack = api(synth, env)
    database_group = f"${{{REMOTE_DATABASE.format(env=env)}.outputs.cross-stack-output-aws_security_groupDatabase_SecurityGroup"
    for task in ("Service1", "Service2", "Migrations"):
        group = ref("aws_security_group", stack.resource("aws_security_group", f"Api/{task}/SecurityGroup"))
        ingress = stack.resource("aws_vpc_security_group_ingress_rule", f"Api/{task}/DatabaseIngress")
        assert ingress["security_group_id"].startswith(database_group)
        assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (5432, 5432, "tcp")
        assert ingress["referenced_security_group_id"] == group
        egress = {r["//"]["metadata"]["path"].rsplit("/", 1)[1]: r
                  for r in stack.resources("aws_vpc_security_group_egress_rule").values()
                  if r["security_group_id"] == group}
        internet = {"EgressHttpsToInternet"} if task == "Service2" else set()  # it calls the payments provider
        assert set(egress) == {"EgressToDatabase", "EgressToEndpoints", "EgressToS3", *internet}
        assert egress["EgressToDatabase"]["referenced_security_group_id"].startswith(database_group)
        assert egress["EgressToEndpoints"]["referenced_security_group_id"].startswith(
            f"${{{REMOTE_NETWORK.format(env=env)}.outputs.")
        assert egress["EgressToEndpoints"]["from_port"] == 443
        (s3,) = stack.data("aws_prefix_list").values()
        assert s3["name"] == "com.amazonaws.eu-west-1.s3"
        assert egress["EgressToS3"]["prefix_list_id"] == ref("data.aws_prefix_list", s3)


def test_nlb_group_has_no_ingress_and_reaches_only_the_service_ports(synth):
    stack = api(synth, "dev")
    nlb = ref("aws_security_group", stack.resource("aws_security_group", "Api/LoadBalancer/SecurityGroup"))
    assert not [r for r in stack.resources("aws_vpc_security_group_ingress_rule").values()
                if r["security_group_id"] == nlb]
    egress = sorted((r["from_port"], r["referenced_security_group_id"])
                    for r in stack.resources("aws_vpc_security_group_egress_rule").values()
                    if r["security_group_id"] == nlb)
    assert [port for port, _ in egress] == [8080, 8081]
    assert all(group.startswith("${aws_security_group.Api_Service") for _, group in egress)


# Load balancer ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("env, protected", [("dev", False), ("stage", True), ("prod", True)])
def test_internal_nlb_with_deletion_protection_per_environment_and_no_access_logs(synth, env, protected):
    stack = api(synth, env)
    (nlb,) = stack.resources("aws_lb").values()
    assert nlb["internal"] is True and nlb["load_balancer_type"] == "network"
    assert nlb["enable_cross_zone_load_balancing"] is True
    assert nlb["enable_deletion_protection"] is protected
    assert nlb["enforce_security_group_inbound_rules_on_private_link_traffic"] == "off"
    assert all("PrivateSubnet" in s for s in nlb["subnets"])
    # ELB user guide, "Access logs for your Network Load Balancer": "Access logs are created only
    # if the load balancer has a TLS listener". Every listener here is TCP, so none is configured.
    assert "access_logs" not in nlb
    assert {listener["protocol"] for listener in stack.resources("aws_lb_listener").values()} == {"TCP"}
    assert not stack.resources("aws_s3_bucket")


# The access-log bucket and its settings as earlier versions addressed them (the dev/stage/prod-api
# snapshots before this change): Terraform must forget them, never destroy them.
FORMER_ACCESS_LOG_ADDRESSES = {
    "aws_s3_bucket.Api_LoadBalancer_AccessLogBucket_F5CBD5B2",
    "aws_s3_bucket_versioning.Api_LoadBalancer_AccessLogVersioning_800985AC",
    "aws_s3_bucket_server_side_encryption_configuration.Api_LoadBalancer_AccessLogEncryption_9A1280DE",
    "aws_s3_bucket_public_access_block.Api_LoadBalancer_AccessLogPublicAccessBlock_E9A0FAD1",
    "aws_s3_bucket_ownership_controls.Api_LoadBalancer_AccessLogOwnership_BA3BE628",
    "aws_s3_bucket_lifecycle_configuration.Api_LoadBalancer_AccessLogLifecycle_28D5B93B",
    "aws_s3_bucket_policy.Api_LoadBalancer_AccessLogBucketPolicy_B53AF095",
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_former_nlb_access_log_bucket_is_forgotten_not_destroyed(synth, env):
    removed = api(synth, env).json["removed"]
    assert {block["from"] for block in removed} == FORMER_ACCESS_LOG_ADDRESSES
    assert all(block["lifecycle"] == {"destroy": False} for block in removed)


def test_log_key_no_longer_lets_log_delivery_use_it(synth):
    stack = api(synth, "prod")
    key = stack.resource("aws_kms_key", "Api/LogKey")
    document = stack.data("aws_iam_policy_document")[key["policy"].split(".")[2]]
    principals = [p for statement in document["statement"] for p in statement.get("principals", [])]
    assert all("delivery.logs.amazonaws.com" not in p["identifiers"] for p in principals)


def test_readme_says_the_nlb_writes_no_access_logs_while_every_listener_is_tcp(synth):
    """AWS writes NLB access logs only for TLS listeners: the README must not promise them."""
    from pathlib import Path

    readme = " ".join((Path(__file__).parents[1] / "modules/api/README.md").read_text().split())
    for env in ENVIRONMENTS:
        assert {listener["protocol"] for listener in api(synth, env).resources("aws_lb_listener").values()} == {"TCP"}
    assert "AWS writes NLB access logs only for TLS listeners" in readme
    assert "Not logged: the NLB's own access logs" in readme


def test_one_listener_and_ip_target_group_per_service(synth):
    stack = api(synth, "stage")
    groups = {g["port"]: g for g in stack.resources("aws_lb_target_group").values()}
    assert set(groups) == {8080, 8081}
    for group in groups.values():
        assert (group["target_type"], group["protocol"]) == ("ip", "TCP")
        assert group["health_check"]["path"] == "/health" and group["health_check"]["protocol"] == "HTTP"
    listeners = {listener["port"]: listener for listener in stack.resources("aws_lb_listener").values()}
    assert set(listeners) == {8080, 8081}
    for port, listener in listeners.items():
        assert listener["default_action"][0]["target_group_arn"] == ref("aws_lb_target_group", groups[port], "arn")
        # A new container_port replaces the group; the listener is replaced with it (only then: the
        # group's id changes on replacement alone), so the old group is never deleted while in use.
        group_id = ref("aws_lb_target_group", groups[port])[2:-1]
        assert listener["lifecycle"] == {"replace_triggered_by": [group_id]}


# ECS services ------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_bad_deploys_roll_back_on_the_circuit_breaker_and_the_alarms(synth, env):
    stack = api(synth, env)
    alarms = stack.resources("aws_cloudwatch_metric_alarm")
    for name in ("Service1", "Service2"):
        service = stack.resource("aws_ecs_service", f"Api/{name}/Service")
        assert service["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
        assert service["alarms"]["enable"] is True and service["alarms"]["rollback"] is True
        expected = {ref("aws_cloudwatch_metric_alarm", a, "alarm_name") for a in alarms.values()
                    if a["//"]["metadata"]["path"].startswith(f"{env}-api/Api/{name}/")}
        assert set(service["alarms"]["alarm_names"]) == expected and len(expected) == 2
        assert service["enable_execute_command"] is False
        assert service["health_check_grace_period_seconds"] == 60
        assert service["lifecycle"]["ignore_changes"] == ["desired_count"]


def test_server_error_alarm_counts_5xx_on_every_route_of_the_service(synth):
    stack = api(synth, "prod")
    alarm = stack.resource("aws_cloudwatch_metric_alarm", "Api/Service1/ServerErrorsAlarm")
    metrics = [q["metric"] for q in alarm["metric_query"] if "metric" in q]
    assert {(m["dimensions"]["Resource"], m["dimensions"]["Method"]) for m in metrics} == {
        ("/service1", "ANY"), ("/service1", "GET"), ("/service1/{proxy+}", "ANY"), ("/service1/{proxy+}", "GET")}
    assert all(m["dimensions"]["ApiName"] == "webapp-prod-api" and m["dimensions"]["Stage"] == "v1" for m in metrics)
    (total,) = [q for q in alarm["metric_query"] if q.get("return_data")]
    assert total["expression"].count("FILL(") == 4
    assert alarm["alarm_name"] == "webapp-prod-api-service1-5xx"
    unhealthy = stack.resource("aws_cloudwatch_metric_alarm", "Api/Service1/UnhealthyHostsAlarm")
    assert unhealthy["namespace"] == "AWS/NetworkELB" and unhealthy["metric_name"] == "UnHealthyHostCount"
    topic = ref("aws_sns_topic", stack.resource("aws_sns_topic", "Api/AlarmTopic"), "arn")
    assert alarm["alarm_actions"] == [topic] and unhealthy["alarm_actions"] == [topic]


@pytest.mark.parametrize("env, strategy", [
    ("dev", [("FARGATE", 1, 0), ("FARGATE_SPOT", 3, 0)]),
    ("prod", [("FARGATE", 1, 1)]),
])
def test_capacity_providers_follow_the_environment(synth, env, strategy):
    stack = api(synth, env)
    (cluster,) = stack.resources("aws_ecs_cluster").values()
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enabled"}]
    (providers,) = stack.resources("aws_ecs_cluster_capacity_providers").values()
    assert providers["capacity_providers"] == ["FARGATE", "FARGATE_SPOT"]
    found = [(s["capacity_provider"], s["weight"], s["base"]) for s in providers["default_capacity_provider_strategy"]]
    assert found == strategy
    for service in stack.resources("aws_ecs_service").values():
        assert [(s["capacity_provider"], s["weight"], s["base"]) for s in service["capacity_provider_strategy"]] == strategy


@pytest.mark.parametrize("env, low, high", [("dev", 1, 2), ("stage", 2, 4), ("prod", 3, 12)])
def test_autoscaling_tracks_cpu_and_memory_between_min_and_max(synth, env, low, high):
    stack = api(synth, env)
    target = stack.resource("aws_appautoscaling_target", "Api/Service1/ScalingTarget")
    assert (target["min_capacity"], target["max_capacity"]) == (low, high)
    assert target["scalable_dimension"] == "ecs:service:DesiredCount"
    policies = [p for p in stack.resources("aws_appautoscaling_policy").values()
                if p["//"]["metadata"]["path"].startswith(f"{env}-api/Api/Service1/")]
    metrics = {}
    for scaling in policies:
        configuration = scaling["target_tracking_scaling_policy_configuration"]
        assert configuration["scale_in_cooldown"] > configuration["scale_out_cooldown"]
        if "customized_metric_specification" in configuration:
            continue  # requests per task: tests/test_operations.py
        metrics[configuration["predefined_metric_specification"]["predefined_metric_type"]] = configuration
    assert metrics["ECSServiceAverageCPUUtilization"]["target_value"] == 60
    assert metrics["ECSServiceAverageMemoryUtilization"]["target_value"] == 70


# API Gateway -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_route_goes_through_the_vpc_link_to_its_service(synth, env):
    stack = api(synth, env)
    (link,) = stack.resources("aws_api_gateway_vpc_link").values()
    (nlb,) = stack.resources("aws_lb").values()
    assert link["target_arns"] == [ref("aws_lb", nlb, "arn")]
    methods = stack.resources("aws_api_gateway_method")
    integrations = stack.resources("aws_api_gateway_integration")
    assert len(methods) == len(integrations) >= 4
    (stage,) = stack.resources("aws_api_gateway_stage").values()
    for integration in integrations.values():
        assert integration["type"] == "HTTP_PROXY"
        assert integration["connection_type"] == "VPC_LINK"
        assert integration["connection_id"] == ref("aws_api_gateway_vpc_link", link)
        # The host and port are the stage variable of the route's service (a canary overrides it for its
        # requests): `$${` is Terraform JSON's literal `${`, which API Gateway fills in.
        service = integration["//"]["metadata"]["path"].split("/")[3]  # <env>-api/Api/Gateway/<Service>/...
        variable = f"origin_{service.lower()}"
        assert integration["uri"].startswith(f"http://$${{stageVariables.{variable}}}/"), integration["uri"]
        listener = stack.resource("aws_lb_listener", f"Api/{service}/Listener")
        assert stage["variables"][variable] == f"{ref('aws_lb', nlb, 'dns_name')}:{listener['port']}"
    paths = {r["path_part"] for r in stack.resources("aws_api_gateway_resource").values()}
    assert paths == {"service1", "service2", "{proxy+}"}
    proxies = [i for i in integrations.values() if i["uri"].endswith("/{proxy}")]
    assert proxies and all(
        i["request_parameters"] == {"integration.request.path.proxy": "method.request.path.proxy"} for i in proxies)


def test_methods_take_authorization_from_config_and_validate_declared_parameters(synth):
    stack = api(synth, "dev")
    validator = ref("aws_api_gateway_request_validator", stack.resource(
        "aws_api_gateway_request_validator", "Api/Gateway/ParameterValidator"))
    service1 = stack.resource("aws_api_gateway_method", "Api/Gateway/Service1/AnyMethod")
    service2 = stack.resource("aws_api_gateway_method", "Api/Gateway/Service2/AnyMethod")
    proxy = stack.resource("aws_api_gateway_method", "Api/Gateway/Service1/ProxyAnyMethod")
    assert (service1["authorization"], service2["authorization"]) == ("NONE", "AWS_IAM")
    assert service1["http_method"] == "ANY"
    assert "request_validator_id" not in service1 and "request_parameters" not in service1
    assert service2["request_parameters"] == {"method.request.header.X-Request-Id": True}
    assert service2["request_validator_id"] == validator
    assert proxy["request_parameters"] == {"method.request.path.proxy": True}
    assert proxy["request_validator_id"] == validator


@pytest.mark.parametrize("env, burst, rate", [("dev", 50, 20), ("stage", 200, 100), ("prod", 1000, 500)])
def test_stage_throttling_metrics_and_logs(synth, env, burst, rate):
    stack = api(synth, env)
    settings = stack.resource("aws_api_gateway_method_settings", "Api/Gateway/MethodSettings")
    assert settings["method_path"] == "*/*"
    values = settings["settings"]
    assert (values["throttling_burst_limit"], values["throttling_rate_limit"]) == (burst, rate)
    assert values["metrics_enabled"] is True and values["data_trace_enabled"] is False
    assert values["caching_enabled"] is False
    stage = stack.resource("aws_api_gateway_stage", "Api/Gateway/Stage")
    assert stage["stage_name"] == "v1" and stage["xray_tracing_enabled"] is True
    log_group = stack.resource("aws_cloudwatch_log_group", "Api/Gateway/AccessLogGroup")
    assert stage["access_log_settings"]["destination_arn"] == ref("aws_cloudwatch_log_group", log_group, "arn")
    assert json.loads(stage["access_log_settings"]["format"])["requestId"] == "$context.requestId"
    assert log_group["kms_key_id"].startswith("${aws_kms_key.Api_LogKey_")
    execution_logs = "aws_cloudwatch_log_group." + stack.resource(
        "aws_cloudwatch_log_group", "Api/Gateway/ExecutionLogGroup")["//"]["metadata"]["uniqueId"]
    assert stage["depends_on"] == ["aws_api_gateway_account.Api_Gateway_Account_997CF694", execution_logs]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_execution_logs_go_to_a_group_of_the_stack_made_before_api_gateway_writes(synth, environments, env):
    """API Gateway writes `logging_level` logs to `API-Gateway-Execution-Logs_<id>/<stage>`, creating it
    (kept forever, unencrypted) unless it exists: the stack makes it first, with the tier's retention and key."""
    stack = api(synth, env)
    rest_api = stack.resource("aws_api_gateway_rest_api", "Api/Gateway/RestApi")
    group = stack.resource("aws_cloudwatch_log_group", "Api/Gateway/ExecutionLogGroup")
    assert group["name"] == f"API-Gateway-Execution-Logs_{ref('aws_api_gateway_rest_api', rest_api)}/v1"
    assert group["retention_in_days"] == environments.get(env).api.log_retention_days
    assert group["kms_key_id"] == ref("aws_kms_key", stack.resource("aws_kms_key", "Api/LogKey"), "arn")
    address = f"aws_cloudwatch_log_group.{group['//']['metadata']['uniqueId']}"
    assert address in stack.resource("aws_api_gateway_stage", "Api/Gateway/Stage")["depends_on"]
    # The stage-wide settings set logging_level (per-method ones follow the stage, which waits too).
    assert stack.resource("aws_api_gateway_method_settings", "Api/Gateway/MethodSettings")["depends_on"] == [address]
    # The log key lets CloudWatch Logs encrypt it (the condition on the log group's ARN).
    (condition,) = policy(stack, "Api/LogKeyPolicy")["CloudWatchLogsEncrypts"]["condition"]
    assert condition["test"] == "ArnLike" and condition["variable"] == "kms:EncryptionContext:aws:logs:arn"
    assert "arn:${data.aws_partition.Api_Partition_" in condition["values"][-1]
    assert condition["values"][-1].endswith(":log-group:API-Gateway-Execution-Logs_*/v1")


def test_prod_caches_get_responses_keyed_by_caller_and_declared_parameters(synth):
    stack = api(synth, "prod")
    stage = stack.resource("aws_api_gateway_stage", "Api/Gateway/Stage")
    assert stage["cache_cluster_enabled"] is True and stage["cache_cluster_size"] == "0.5"
    cached = {s["method_path"]: s["settings"] for s in stack.resources("aws_api_gateway_method_settings").values()
              if s["method_path"] != "*/*"}
    # Slashes in the resource path written as ~1 (MethodSetting.ResourcePath, AWS CloudFormation
    # User Guide: "/resource/subresource must be encoded as /~1resource~1subresource").
    assert set(cached) == {"~1service1/GET", "~1service1~1{proxy+}/GET"}  # service2 sets caching = false
    for values in cached.values():
        assert values["caching_enabled"] is True and values["cache_data_encrypted"] is True
        assert values["cache_ttl_in_seconds"] == 300
        assert values["require_authorization_for_cache_control"] is True
    get = stack.resource("aws_api_gateway_integration", "Api/Gateway/Service1/ProxyGetIntegration")
    assert get["cache_key_parameters"] == [
        "method.request.header.Authorization", "method.request.path.proxy", "method.request.querystring.page"]
    assert not [m for m in stack.resources("aws_api_gateway_method").values()
                if m["http_method"] == "GET" and "Service2" in m["//"]["metadata"]["path"]]


def test_no_method_settings_path_below_the_root_holds_an_unescaped_slash(synth):
    """`method_path` is `<resource path>/<HTTP method>`, the resource path's own slashes written as `~1`:
    API Gateway refuses `service1/{proxy+}/GET` ("Invalid method setting path", terraform-provider-aws
    #15855) and reads back `~1service1~1{proxy+}/GET` (#9738). Only `*/*` (every method) is unescaped."""
    paths = [settings["method_path"] for env in ENVIRONMENTS
             for settings in api(synth, env).resources("aws_api_gateway_method_settings").values()]
    below_root = [path for path in paths if path != "*/*"]
    assert below_root, "no environment sets a per-method setting: nothing checked"
    for path in below_root:
        resource, _, method = path.rpartition("/")
        assert method in {"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE", "ANY", "*"}, path
        assert resource.startswith("~1") and "/" not in resource, path


def test_method_settings_path_escapes_every_slash_of_the_resource_path():
    # The provider issue #9738's example (get-stage answers `~1some~1api~1endpoint/POST`).
    assert method_settings_path("/some/api/endpoint", "POST") == "~1some~1api~1endpoint/POST"
    assert method_settings_path("/service1/{proxy+}", "GET") == "~1service1~1{proxy+}/GET"
    with pytest.raises(ValueError, match="starts with '/'"):
        method_settings_path("service1", "GET")


@pytest.mark.parametrize("env", ("dev", "stage"))
def test_environments_without_a_cache_have_no_cache_cluster_or_get_methods(synth, env):
    stack = api(synth, env)
    stage = stack.resource("aws_api_gateway_stage", "Api/Gateway/Stage")
    assert stage["cache_cluster_enabled"] is False and "cache_cluster_size" not in stage
    assert {m["http_method"] for m in stack.resources("aws_api_gateway_method").values()} == {"ANY"}


def test_deployment_is_replaced_when_routes_change(synth):
    stack = api(synth, "dev")
    deployment = stack.resource("aws_api_gateway_deployment", "Api/Gateway/Deployment")
    assert deployment["lifecycle"] == {"create_before_destroy": True}
    assert len(deployment["triggers"]["routes"]) == 64
    assert deployment["triggers"]["integrations"].startswith("${sha1(jsonencode([")
    for integration in stack.resources("aws_api_gateway_integration").values():
        assert ref("aws_api_gateway_integration", integration).removesuffix("}").removeprefix("${") in deployment[
            "triggers"]["integrations"]
    assert len(deployment["depends_on"]) == 8
    # Different routes (prod caches GETs of service1) give a different hash.
    prod = api(synth, "prod").resource("aws_api_gateway_deployment", "Api/Gateway/Deployment")
    assert prod["triggers"]["routes"] != deployment["triggers"]["routes"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_waf_guards_the_stage_with_managed_rules_and_a_rate_limit(synth, env, environments):
    stack = api(synth, env)
    (acl,) = stack.resources("aws_wafv2_web_acl").values()
    assert acl["scope"] == "REGIONAL" and acl["default_action"] == {"allow": {}}
    rules = {r["name"]: r for r in acl["rule"]}
    assert set(rules) == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "RateLimitPerIp"}
    limit = environments.get(env).api.waf_rate_limit_per_5_minutes
    assert rules["RateLimitPerIp"]["statement"]["rate_based_statement"] == {"limit": limit, "aggregate_key_type": "IP"}
    assert rules["RateLimitPerIp"]["action"] == {"block": {}}
    (association,) = stack.resources("aws_wafv2_web_acl_association").values()
    stage = stack.resource("aws_api_gateway_stage", "Api/Gateway/Stage")
    assert association["resource_arn"] == ref("aws_api_gateway_stage", stage, "arn")
    assert association["web_acl_arn"] == ref("aws_wafv2_web_acl", acl, "arn")
    (logging,) = stack.resources("aws_wafv2_web_acl_logging_configuration").values()
    assert logging["redacted_fields"] == [{"single_header": {"name": "authorization"}}]
    # By default every rule of the managed groups acts as AWS set it (bodies over 8 KB blocked).
    assert all("rule_action_override" not in r["statement"].get("managed_rule_group_statement", {})
               for r in acl["rule"])


def test_waf_allow_large_bodies_counts_only_the_body_size_rule(variant):
    (acl,) = variant.resources("aws_wafv2_web_acl").values()
    rules = {r["name"]: r for r in acl["rule"]}
    common = rules["AWSManagedRulesCommonRuleSet"]
    assert common["statement"]["managed_rule_group_statement"]["rule_action_override"] == [
        {"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}]
    assert common["override_action"] == {"none": {}}  # the rest of the group still blocks
    assert "rule_action_override" not in rules["AWSManagedRulesKnownBadInputsRuleSet"]["statement"][
        "managed_rule_group_statement"]


def test_custom_domain_where_the_environment_has_dns(synth):
    assert not api(synth, "dev").resources("aws_api_gateway_domain_name")
    assert not api(synth, "dev").data("aws_route53_zone")
    for env, zone in (("stage", "stage.webapp.example.com"), ("prod", "webapp.example.com")):
        stack = api(synth, env)
        (certificate,) = stack.resources("aws_acm_certificate").values()
        assert certificate["domain_name"] == f"api.{zone}" and certificate["validation_method"] == "DNS"
        assert "provider" not in certificate  # regional: the environment's own region
        (domain,) = stack.resources("aws_api_gateway_domain_name").values()
        assert domain["domain_name"] == f"api.{zone}" and domain["security_policy"] == "TLS_1_2"
        assert domain["endpoint_configuration"] == {"types": ["REGIONAL"]}
        assert "aws_acm_certificate_validation" in domain["regional_certificate_arn"]
        (looked_up,) = stack.data("aws_route53_zone").values()
        assert looked_up["name"] == zone and looked_up["private_zone"] is False
        (mapping,) = stack.resources("aws_api_gateway_base_path_mapping").values()
        assert mapping["domain_name"] == ref("aws_api_gateway_domain_name", domain, "domain_name")
        alias = stack.resource("aws_route53_record", "Api/Gateway/AliasRecord")
        assert alias["type"] == "A" and alias["alias"]["name"] == ref(
            "aws_api_gateway_domain_name", domain, "regional_domain_name")


def test_api_gateway_logs_to_cloudwatch_through_the_account_role(synth):
    stack = api(synth, "dev")
    (account,) = stack.resources("aws_api_gateway_account").values()
    role = stack.resource("aws_iam_role", "Api/Gateway/CloudWatchRole")
    assert account["cloudwatch_role_arn"] == ref("aws_iam_role", role, "arn")
    (attachment,) = stack.resources("aws_iam_role_policy_attachment").values()
    assert attachment["policy_arn"].endswith(":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")


@pytest.fixture(scope="module")
def without_account_role(tmp_path_factory):
    import shutil

    from tests.harness.project import ENVIRONMENTS_DIR

    directory = tmp_path_factory.mktemp("api-account-role") / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, directory)
    path = directory / "dev.hcl"
    path.write_text(path.read_text().replace("api {\n", "api {\n  account_cloudwatch_role = false\n", 1))
    synthesized = synthesize(load_environments(directory, ("dev",)), directory.parent / "cdktf.out")
    return synthesized.stack("dev-api")


def test_an_environment_sharing_its_account_leaves_the_api_gateway_role_to_the_other(synth, without_account_role):
    assert not without_account_role.resources("aws_api_gateway_account")
    assert not without_account_role.resources("aws_iam_role_policy_attachment")
    assert "Api/Gateway/CloudWatchRole" not in {
        r["//"]["metadata"]["path"].split("/", 1)[1] for r in without_account_role.resources("aws_iam_role").values()}
    stage = without_account_role.resource("aws_api_gateway_stage", "Api/Gateway/Stage")
    assert "access_log_settings" in stage
    assert [d.split(".")[0] for d in stage["depends_on"]] == ["aws_cloudwatch_log_group"]  # the execution logs
    # Everything else keeps its address: only the role, its attachment and the setting go.
    base = api(synth, "dev")
    gone = {(t, n) for t, names in base.json["resource"].items() for n in names} - {
        (t, n) for t, names in without_account_role.json["resource"].items() for n in names}
    assert {t for t, _ in gone} == {"aws_api_gateway_account", "aws_iam_role", "aws_iam_role_policy_attachment"}
    assert len(gone) == 3


# Migrations, outputs, protection ---------------------------------------------------------------------

def test_flyway_task_migrates_the_writer_over_tls(synth):
    stack = api(synth, "prod")
    definition = stack.resource("aws_ecs_task_definition", "Api/Migrations/TaskDefinition")
    assert definition["family"] == "webapp-prod-migrations"
    (container,) = json.loads(definition["container_definitions"])
    assert container["command"] == ["migrate"]
    variables = {v["name"]: v["value"] for v in container["environment"]}
    assert variables["FLYWAY_URL"].startswith("jdbc:postgresql://${" + REMOTE_DATABASE.format(env="prod"))
    assert variables["FLYWAY_URL"].endswith(":5432/app?sslmode=require")
    # The image's scripts, then the callback the task writes before Flyway starts.
    assert variables["FLYWAY_LOCATIONS"] == "filesystem:/flyway/sql,filesystem:/tmp/flyway-callbacks"
    assert variables["FLYWAY_SCHEMAS"] == "public"
    sql = variables["SERVICE_LOGINS_SQL"]
    for line in ('CREATE ROLE "svc_service1";', 'CREATE ROLE "svc_service2";',
                 'GRANT "rds_iam", "app_service_logins", "app_read_write" TO "svc_service1";',
                 'ALTER DEFAULT PRIVILEGES FOR ROLE "app_admin" IN SCHEMA "public" '
                 'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "app_read_write";'):
        assert line in sql
    assert container["entryPoint"][:2] == ["sh", "-c"]
    assert "portMappings" not in container or container["portMappings"] == []


def test_flyway_entry_point_writes_the_callback_then_runs_flyway(synth, tmp_path):
    """The container's entry point, run by a real `sh` (the flyway image's) with a stand-in `flyway`:
    the callback file holds exactly the SQL variable, and Flyway gets the task's command."""
    (container,) = containers(api(synth, "prod"), "Api/Migrations/TaskDefinition")
    variables = {v["name"]: v["value"] for v in container["environment"]}
    shell, flag, script, name = container["entryPoint"]
    assert "/tmp/flyway-callbacks/beforeMigrate__service_logins.sql" in script  # Flyway's callback naming
    callbacks = tmp_path / "callbacks"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "flyway"
    fake.write_text('#!/bin/sh\necho "flyway $*"\n')
    fake.chmod(0o755)
    run = subprocess.run(
        [shell, flag, script.replace("/tmp/flyway-callbacks", str(callbacks)), name, *container["command"]],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SERVICE_LOGINS_SQL": variables["SERVICE_LOGINS_SQL"]},
        capture_output=True, text=True, check=True,
    )
    assert run.stdout == "flyway migrate\n"
    written = (callbacks / "beforeMigrate__service_logins.sql").read_text()
    assert written == variables["SERVICE_LOGINS_SQL"] + "\n"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_outputs_what_the_pipeline_needs(synth, env):
    outputs = api(synth, env).json["output"]
    names = {name.rsplit("_", 1)[0] for name in outputs}
    assert {
        "Api_Gateway_InvokeUrl", "Api_Gateway_CustomDomainUrl", "Api_ClusterName", "Api_ServiceNames",
        "Api_Migrations_MigrationTaskDefinitionArn", "Api_Migrations_MigrationTaskDefinitionFamily",
        "Api_Migrations_MigrationSecurityGroupId", "Api_Migrations_MigrationSubnetIds",
    } <= names
    (service_names,) = [v for k, v in outputs.items() if k.startswith("Api_ServiceNames_")]
    assert service_names["value"] == {"service1": f"webapp-{env}-service1", "service2": f"webapp-{env}-service2"}
    (definitions,) = [v for k, v in outputs.items() if k.startswith("Api_TaskDefinitionArns_")]
    task_definitions = api(synth, env).resources("aws_ecs_task_definition")
    for service, reference in definitions["value"].items():
        logical_id = reference.removeprefix("${aws_ecs_task_definition.").removesuffix(".arn}")
        assert task_definitions[logical_id]["family"] == f"webapp-{env}-{service}", service


@pytest.mark.parametrize("env, protected", [("dev", False), ("stage", True), ("prod", True)])
def test_keys_and_secrets_carry_prevent_destroy_with_deletion_protection(synth, env, protected):
    stack = api(synth, env)
    for resource_type, path in (("aws_kms_key", "Api/LogKey"), ("aws_kms_key", "Api/SecretKey"),
                                ("aws_secretsmanager_secret", "Api/SecretPaymentsApiKey")):
        resource = stack.resource(resource_type, path)
        assert resource.get("lifecycle", {}).get("prevent_destroy", False) is protected, (resource_type, path)


def test_log_groups_are_encrypted_with_the_tier_key(synth, environments):
    for env in ENVIRONMENTS:
        stack = api(synth, env)
        retention = environments.get(env).api.log_retention_days
        groups = stack.resources("aws_cloudwatch_log_group")
        # 2 services, Flyway, ECS Exec, API Gateway access and execution, WAF, and the canary's access and
        # execution logs (API Gateway writes a stage canary's to `<group>/Canary`)
        assert len(groups) == 9
        for group in groups.values():
            assert group["kms_key_id"].startswith("${aws_kms_key.Api_LogKey_")
            assert group["retention_in_days"] == retention


# A variant environment: a third service, ECS Exec on, an image pinned by digest -------------------------

DIGEST = "sha256:" + "ab" * 32
VARIANT = f"""
  service "orders" {{
    path_prefix      = "orders"
    container_port   = 8082
    image_repository = "webapp/orders"
    image_tag        = "2.1.0"
    image_digest     = "{DIGEST}"
    required_query_parameters = ["tenant"]
  }}
  enable_execute_command = true
  waf_allow_large_bodies = true
"""


@pytest.fixture(scope="module")
def variant(tmp_path_factory, environments_dir_copy):
    path = environments_dir_copy / "dev.hcl"
    text = path.read_text()
    marker = "  # Flyway"
    path.write_text(text.replace(marker, VARIANT + marker, 1))
    synthesized = synthesize(load_environments(environments_dir_copy, ("dev",)),
                             tmp_path_factory.mktemp("api-variant") / "cdktf.out")
    return synthesized.stack("dev-api")


@pytest.fixture(scope="module")
def environments_dir_copy(tmp_path_factory):
    import shutil

    from tests.harness.project import ENVIRONMENTS_DIR

    target = tmp_path_factory.mktemp("api-environments") / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, target)
    return target


def test_adding_a_service_is_a_config_change_that_keeps_every_existing_address(synth, variant):
    base = api(synth, "dev")
    for resource_type, names in base.json["resource"].items():
        assert set(names) <= set(variant.json["resource"][resource_type]), resource_type
    route = variant.resource("aws_api_gateway_resource", "Api/Gateway/Orders/Resource")
    assert route["path_part"] == "orders"
    assert variant.resource("aws_ecs_service", "Api/Orders/Service")["name"] == "webapp-dev-orders"
    method = variant.resource("aws_api_gateway_method", "Api/Gateway/Orders/AnyMethod")
    assert method["request_parameters"] == {"method.request.querystring.tenant": True}
    assert method["authorization"] == "AWS_IAM"
    before = base.resource("aws_api_gateway_deployment", "Api/Gateway/Deployment")["triggers"]["routes"]
    after = variant.resource("aws_api_gateway_deployment", "Api/Gateway/Deployment")["triggers"]["routes"]
    assert before != after


def test_an_image_digest_pins_the_image(variant):
    (container,) = containers(variant, "Api/Orders/TaskDefinition")
    assert container["image"] == f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/webapp/orders@{DIGEST}"
    (service1,) = containers(variant, "Api/Service1/TaskDefinition")
    assert service1["image"].endswith("/webapp/service1:1.0.0")


def test_execute_command_opens_only_its_channel(variant):
    for name in ("Service1", "Service2", "Orders"):
        assert variant.resource("aws_ecs_service", f"Api/{name}/Service")["enable_execute_command"] is True
        permissions = policy(variant, f"Api/{name}/ExecuteCommandPermissions")
        assert permissions["SessionManagerChannel"]["actions"] == [
            "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]
        role = variant.resource("aws_iam_role_policy", f"Api/{name}/ExecuteCommandPolicy")["role"]
        assert role.startswith(f"${{aws_iam_role.Api_{name}_TaskRole_")
        # Service2 already reaches the internet on 443 (internet_egress_https): one rule serves both,
        # since AWS rejects a second rule with the same destination and port on one group.
        rule = "EgressHttpsToInternet" if name == "Service2" else "EgressForExecuteCommand"
        group = ref("aws_security_group", variant.resource("aws_security_group", f"Api/{name}/SecurityGroup"))
        internet = [r for r in variant.resources("aws_vpc_security_group_egress_rule").values()
                    if r["security_group_id"] == group and "cidr_ipv4" in r]
        assert [(r["//"]["metadata"]["path"].rsplit("/", 1)[1], r["cidr_ipv4"], r["from_port"], r["to_port"])
                for r in internet] == [(rule, "0.0.0.0/0", 443, 443)]
    assert not variant.resources("aws_iam_role_policy").keys() & {"Api_Migrations_ExecuteCommandPolicy"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alarm_topic_refuses_publishing_without_tls(synth, env):
    stack = api(synth, env)
    (topic_policy,) = stack.resources("aws_sns_topic_policy").values()
    topic = ref("aws_sns_topic", stack.resource("aws_sns_topic", "Api/AlarmTopic"), "arn")
    assert topic_policy["arn"] == topic
    statements = {s["sid"]: s for s in stack.data("aws_iam_policy_document")[
        topic_policy["policy"].split(".")[2]]["statement"]}
    deny = statements["DenyInsecureTransport"]
    assert deny["effect"] == "Deny" and deny["actions"] == ["sns:Publish"] and deny["resources"] == [topic]
    assert deny["principals"] == [{"type": "*", "identifiers": ["*"]}]
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    source_arn = next(c for c in statements["CloudWatchAlarmsPublish"]["condition"]
                      if c["variable"] == "aws:SourceArn")
    assert source_arn["values"][0].endswith(f":alarm:webapp-{env}-api-*")


@pytest.mark.parametrize("env, protected", [("dev", False), ("stage", True), ("prod", True)])
def test_log_groups_are_kept_like_the_log_key(synth, env, protected):
    stack = api(synth, env)
    assert ("lifecycle" in stack.resource("aws_kms_key", "Api/LogKey")) is protected
    groups = stack.resources("aws_cloudwatch_log_group").values()
    assert len(groups) >= 6  # access, execution, WAF, ECS Exec, each service's and the Flyway task's
    for group in groups:
        assert group.get("lifecycle", {}).get("prevent_destroy", False) is protected, group["name"]
