"""End to end on the emulator: dev-api applied after dev-network and dev-database.

The stack reads both through `terraform_remote_state` (the S3 backend on moto), adds
its rules to the database's security group, and creates the whole API: cluster,
services, NLB, REST API with the VPC link, WAF, alarms, autoscaling, the Flyway task.
moto runs no containers, so what is checked is what the AWS APIs report back.
"""

from __future__ import annotations

import json

import pytest

CLUSTER = "webapp-dev-api"
API_NAME = "webapp-dev-api"


@pytest.fixture(scope="module")
def applied(deployer):
    deployer.apply("bootstrap")
    deployer.apply("dev-network")
    deployer.apply("dev-database")
    deployer.apply("shared-cicd")  # the collector sidecars read their workspace from its SSM parameters
    deployer.apply("dev-api")
    return deployer


def _output(deployer, stack: str, prefix: str):
    (value,) = (v for k, v in deployer.outputs(stack).items() if k.startswith(prefix + "_"))
    return value


def test_second_plan_of_dev_api_is_clean(applied):
    assert applied.plan_changes("dev-api") is None


def test_services_run_in_private_subnets_without_public_ip(applied, emulator):
    ecs = emulator.boto3_client("ecs")
    names = _output(applied, "dev-api", "Api_ServiceNames")
    assert names == {"service1": "webapp-dev-service1", "service2": "webapp-dev-service2"}
    assert _output(applied, "dev-api", "Api_ClusterName") == CLUSTER
    private = set(_output(applied, "dev-network", "Network_PrivateSubnetIds"))
    services = ecs.describe_services(cluster=CLUSTER, services=list(names.values()))["services"]
    assert len(services) == 2
    for service in services:
        network = service["networkConfiguration"]["awsvpcConfiguration"]
        assert set(network["subnets"]) == private
        assert network["assignPublicIp"] == "DISABLED"
        assert service["loadBalancers"][0]["targetGroupArn"].startswith("arn:aws:elasticloadbalancing:")


def test_only_the_migration_task_takes_the_master_secret(applied, emulator):
    ecs = emulator.boto3_client("ecs")
    secret = _output(applied, "dev-database", "Database_MasterUserSecretArn")
    for family in ("webapp-dev-service1", "webapp-dev-service2", "webapp-dev-migrations"):
        definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
        (container,) = [c for c in definition["containerDefinitions"] if c["name"] != "otel-collector"]
        secrets = {s["name"]: s["valueFrom"] for s in container.get("secrets", [])}
        assert (f"{secret}:password::" in secrets.values()) is (family == "webapp-dev-migrations"), family
        assert not any(secret in v["value"] for v in container.get("environment", []))
        assert container["readonlyRootFilesystem"] is True
        assert definition["networkMode"] == "awsvpc"
        if family != "webapp-dev-migrations":
            variables = {v["name"]: v["value"] for v in container["environment"]}
            assert variables["DB_USERNAME"] == "svc_" + family.removeprefix("webapp-dev-")
            assert variables["DB_IAM_AUTH"] == "true"
            assert variables["DB_READER_HOST"] == "reader.database.webapp-dev.internal"


def test_task_roles_connect_as_their_own_login_on_the_applied_instance(applied, emulator):
    """The resource id crosses from the database stack's state: the policy names the real instance."""
    (instance,) = emulator.boto3_client("rds").describe_db_instances(
        DBInstanceIdentifier="webapp-dev-postgres")["DBInstances"]
    iam = emulator.boto3_client("iam")
    for service in ("service1", "service2"):
        document = iam.get_role_policy(RoleName=f"webapp-dev-{service}-task",
                                       PolicyName="database-login")["PolicyDocument"]
        (statement,) = (document if isinstance(document, dict) else json.loads(document))["Statement"]
        assert statement["Action"] == "rds-db:connect"
        assert statement["Resource"] == (
            f"arn:aws:rds-db:eu-west-1:123456789012:dbuser:{instance['DbiResourceId']}/svc_{service}")


def test_service_tasks_run_the_collector_writing_to_the_dev_workspace(applied, emulator):
    """The sidecar's remote-write URL is the one shared-cicd wrote to SSM for dev."""
    url = emulator.boto3_client("ssm").get_parameter(Name="/webapp-dev/monitoring/remote-write-url")["Parameter"]
    ecs = emulator.boto3_client("ecs")
    for family in ("webapp-dev-service1", "webapp-dev-service2"):
        definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
        containers = {c["name"]: c for c in definition["containerDefinitions"]}
        (variable,) = containers["otel-collector"]["environment"]
        config = json.loads(variable["value"])
        assert config["exporters"]["prometheusremotewrite"]["endpoint"] == url["Value"]
        assert containers["otel-collector"]["essential"] is False


def test_database_admits_each_task_group_and_nothing_else(applied, emulator):
    ec2 = emulator.boto3_client("ec2")
    database_group = _output(applied, "dev-database", "Database_SecurityGroupId")
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [database_group]}])[
        "SecurityGroupRules"]
    ingress = [r for r in rules if not r["IsEgress"]]
    assert len(ingress) == 3  # service1, service2, the Flyway task
    assert all(r["FromPort"] == 5432 and "ReferencedGroupInfo" in r and "CidrIpv4" not in r for r in ingress)
    migration_group = _output(applied, "dev-api", "Api_Migrations_MigrationSecurityGroupId")
    assert migration_group in {r["ReferencedGroupInfo"]["GroupId"] for r in ingress}


def test_internal_nlb_has_a_listener_per_service(applied, emulator):
    elb = emulator.boto3_client("elbv2")
    (nlb,) = elb.describe_load_balancers(Names=["webapp-dev-api"])["LoadBalancers"]
    assert nlb["Scheme"] == "internal" and nlb["Type"] == "network"
    listeners = elb.describe_listeners(LoadBalancerArn=nlb["LoadBalancerArn"])["Listeners"]
    assert sorted(listener["Port"] for listener in listeners) == [8080, 8081]


def test_rest_api_routes_every_path_through_the_vpc_link(applied, emulator):
    gateway = emulator.boto3_client("apigateway")
    (api,) = [a for a in gateway.get_rest_apis()["items"] if a["name"] == API_NAME]
    # Every environment's API is applied on the one emulator: dev's link is the one named after it.
    (link,) = [v for v in gateway.get_vpc_links()["items"] if v["name"] == API_NAME]
    (nlb,) = emulator.boto3_client("elbv2").describe_load_balancers(Names=["webapp-dev-api"])["LoadBalancers"]
    assert link["targetArns"] == [nlb["LoadBalancerArn"]]
    resources = {r["path"]: r for r in gateway.get_resources(restApiId=api["id"])["items"]}
    assert {"/service1", "/service1/{proxy+}", "/service2", "/service2/{proxy+}"} <= set(resources)
    stage = gateway.get_stage(restApiId=api["id"], stageName="v1")
    # Each route calls its service's origin through a stage variable (a canary overrides it for one service).
    for path, service, port in (("/service1", "service1", 8080), ("/service1/{proxy+}", "service1", 8080),
                                ("/service2/{proxy+}", "service2", 8081)):
        integration = gateway.get_integration(restApiId=api["id"], resourceId=resources[path]["id"], httpMethod="ANY")
        assert integration["type"] == "HTTP_PROXY" and integration["connectionType"] == "VPC_LINK"
        assert integration["connectionId"] == link["id"]
        assert integration["uri"].startswith(f"http://${{stageVariables.origin_{service}}}/")
        assert stage["variables"][f"origin_{service}"] == f"{nlb['DNSName']}:{port}"
    assert stage["tracingEnabled"] is True
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 50
    assert stage["accessLogSettings"]["destinationArn"].endswith(":log-group:/api/webapp-dev/access-logs")
    assert _output(applied, "dev-api", "Api_Gateway_InvokeUrl").endswith("/v1")


def test_waf_is_associated_with_the_stage(applied, emulator):
    waf = emulator.boto3_client("wafv2")
    (summary,) = [a for a in waf.list_web_acls(Scope="REGIONAL")["WebACLs"] if a["Name"].startswith("webapp-dev-")]
    (api,) = [a for a in emulator.boto3_client("apigateway").get_rest_apis()["items"] if a["name"] == API_NAME]
    # ListResourcesForWebACL answers HTTP 500 on moto; the lookup by resource works.
    stage = f"arn:aws:apigateway:eu-west-1::/restapis/{api['id']}/stages/v1"
    acl = waf.get_web_acl_for_resource(ResourceArn=stage)["WebACL"]
    assert acl["ARN"] == summary["ARN"]
    assert {rule["Name"] for rule in acl["Rules"]} == {
        "AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "RateLimitPerIp"}


def test_services_scale_on_cpu_and_memory(applied, emulator):
    scaling = emulator.boto3_client("application-autoscaling")
    targets = [t for t in scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
               if t["ResourceId"].startswith(f"service/{CLUSTER}/")]
    assert {(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets} == {
        (f"service/{CLUSTER}/webapp-dev-service1", 1, 2), (f"service/{CLUSTER}/webapp-dev-service2", 1, 2)}
    policies = {p["PolicyName"]: p for p in scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
                if p["ResourceId"].startswith(f"service/{CLUSTER}/")}
    # CPU and memory for both, requests per task for service1 (dev.hcl's requests_per_task_target).
    assert set(policies) == {f"webapp-dev-{s}-{kind}" for s in ("service1", "service2") for kind in ("cpu", "memory")} | {
        "webapp-dev-service1-requests"}
    requests = policies["webapp-dev-service1-requests"]["TargetTrackingScalingPolicyConfiguration"]
    assert requests["TargetValue"] == 300
    metrics = requests["CustomizedMetricSpecification"]["Metrics"]
    resources = {d["Value"] for m in metrics if "MetricStat" in m for d in m["MetricStat"]["Metric"]["Dimensions"]
                 if d["Name"] == "Resource"}
    assert resources == {"/service1", "/service1/{proxy+}"}
    (result,) = [m for m in metrics if m.get("ReturnData")]
    assert result["Expression"].endswith("/ tasks")


def test_service1_scales_by_schedule(applied, emulator):
    scaling = emulator.boto3_client("application-autoscaling")
    actions = {a["ScheduledActionName"]: a for a in scaling.describe_scheduled_actions(ServiceNamespace="ecs")[
        "ScheduledActions"] if a["ResourceId"].startswith(f"service/{CLUSTER}/")}
    assert set(actions) == {"webapp-dev-service1-working-hours", "webapp-dev-service1-nights"}
    nights = actions["webapp-dev-service1-nights"]
    assert nights["Schedule"] == "cron(0 19 ? * MON-FRI *)" and nights["Timezone"] == "Europe/Berlin"
    assert nights["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 1}


def test_the_dashboard_shows_every_service_with_its_applied_target_group(applied, emulator):
    """The frontend is not applied here: the API stack needs nothing of it (CloudFront panels search)."""
    body = json.loads(emulator.boto3_client("cloudwatch").get_dashboard(DashboardName="webapp-dev")["DashboardBody"])
    elbv2 = emulator.boto3_client("elbv2")
    groups = {g["TargetGroupName"]: g["TargetGroupArn"] for g in elbv2.describe_target_groups()["TargetGroups"]}
    rows = [row for w in body["widgets"] if w["type"] == "metric" for row in w["properties"]["metrics"]]
    for service in ("service1", "service2"):
        (arn,) = [a for name, a in groups.items() if name.startswith("webapp-dev-") and service in name]
        suffix = "targetgroup/" + arn.split(":targetgroup/")[1]
        assert any("TargetGroup" in row and suffix in row for row in rows), service
    assert any(isinstance(row[0], dict) and "AWS/CloudFront" in row[0]["expression"] for row in rows)
    metrics = _output(applied, "dev-api", "Api_HealthMetrics")
    assert {m["dimensions"]["TargetGroup"] for m in metrics.values()} <= {
        "targetgroup/" + a.split(":targetgroup/")[1] for a in groups.values()}


def test_execution_role_reads_only_the_secrets_its_container_names(applied, emulator):
    iam = emulator.boto3_client("iam")
    document = iam.get_role_policy(RoleName="webapp-dev-service1-execution", PolicyName="start-task")["PolicyDocument"]
    statements = {s["Sid"]: s for s in (document if isinstance(document, dict) else json.loads(document))["Statement"]}
    assert "ReadNamedSecrets" not in statements  # service1 names no secret; its database login needs none
    document = iam.get_role_policy(RoleName="webapp-dev-migrations-execution", PolicyName="start-task")["PolicyDocument"]
    statements = {s["Sid"]: s for s in (document if isinstance(document, dict) else json.loads(document))["Statement"]}
    secret = _output(applied, "dev-database", "Database_MasterUserSecretArn")
    assert statements["ReadNamedSecrets"]["Resource"] == secret


def test_only_service2_reaches_the_internet_and_only_on_https(applied, emulator):
    """service2 calls the payments provider (`internet_egress_https`); service1 reaches AWS and the database only."""
    ec2 = emulator.boto3_client("ec2")
    internet = {}
    for service in ("service1", "service2"):
        (group,) = ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [f"webapp-dev-{service}-tasks"]}])["SecurityGroups"]
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group["GroupId"]]}])[
            "SecurityGroupRules"]
        internet[service] = [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules
                             if r["IsEgress"] and r.get("CidrIpv4") == "0.0.0.0/0"]
    assert internet == {"service1": [], "service2": [("tcp", 443, 443)]}


def test_execution_logs_have_a_group_with_the_tier_retention_and_key(applied, emulator):
    """Made by the stack before API Gateway could make it (unencrypted, kept forever)."""
    (api,) = [a for a in emulator.boto3_client("apigateway").get_rest_apis()["items"] if a["name"] == API_NAME]
    name = f"API-Gateway-Execution-Logs_{api['id']}/v1"
    (group,) = [g for g in emulator.boto3_client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
                if g["logGroupName"] == name]
    assert group["retentionInDays"] == 30
    assert ":key/" in group["kmsKeyId"]


def test_a_new_container_port_replaces_the_listener_with_its_target_group(applied, emulator, tmp_path_factory):
    """AWS refuses to delete a target group a listener forwards to (ResourceInUse); moto does
    not, so the apply would pass here either way. What is checked is the plan of dev-api with
    service1 moved to another port, against the applied state: the group is replaced, the
    listener is replaced with it (destroyed first, as it depends on the group), and the ECS
    service is updated in place, not replaced."""
    import shutil

    from modules.core.target import Target
    from modules.environment import load_environments
    from tests.harness.project import ENVIRONMENTS_DIR
    from tests.harness.synth import synthesize

    root = tmp_path_factory.mktemp("api-port")
    shutil.copytree(ENVIRONMENTS_DIR, root / "environments")
    dev = root / "environments" / "dev.hcl"
    assert "container_port   = 8080" in dev.read_text()
    dev.write_text(dev.read_text().replace("container_port   = 8080", "container_port   = 8090"))
    moved = synthesize(load_environments(root / "environments", ("dev",)), root / "cdktf.out",
                       Target(emulator_endpoint=emulator.endpoint))
    result = applied.plan_copy("dev-api", "port-8090", (moved.outdir / "stacks" / "dev-api" / "cdk.tf.json").read_text())
    assert result.returncode == 0, result.stderr[-3000:]
    plan = result.stdout
    actions = [line.strip() for line in plan.splitlines() if line.strip().startswith("# aws_")]
    group = next(line for line in actions if "aws_lb_target_group.Api_Service1_TargetGroup" in line)
    listener = next(line for line in actions if "aws_lb_listener.Api_Service1_Listener" in line)
    service = next(line for line in actions if "aws_ecs_service.Api_Service1_Service" in line)
    assert group.endswith("must be replaced"), group
    assert listener.endswith("will be replaced due to changes in replace_triggered_by"), listener
    assert service.endswith("will be updated in-place"), service


def test_a_service_without_metrics_path_applies_with_its_probe(applied, emulator, tmp_path_factory):
    """dev-api with `metrics_path = null` on service2, applied over the session's dev-api: the task
    definition has no collector, the NLB still probes /health and the unhealthy-hosts alarm stays;
    a second plan is clean. Then the session's dev-api is applied again for the tests after this."""
    import shutil

    from modules.core.target import Target
    from modules.environment import load_environments
    from tests.harness.edits import edit
    from tests.harness.project import ENVIRONMENTS_DIR
    from tests.harness.synth import synthesize

    root = tmp_path_factory.mktemp("api-no-metrics-path")
    shutil.copytree(ENVIRONMENTS_DIR, root / "environments")
    edit(root / "environments", "dev.hcl", 'image_repository = "webapp/service2"',
         'image_repository = "webapp/service2"\n    metrics_path     = null')
    variant = synthesize(load_environments(root / "environments", ("dev",)), root / "cdktf.out",
                         Target(emulator_endpoint=emulator.endpoint))
    copy = applied.copy("dev-api", "no-metrics-path",
                        (variant.outdir / "stacks" / "dev-api" / "cdk.tf.json").read_text())
    try:
        applied.run(copy, "apply", "-auto-approve", "-input=false")
        second = applied.run(copy, "plan", "-detailed-exitcode", "-input=false", check=False)
        assert second.returncode == 0, second.stdout[-4000:]
        ecs = emulator.boto3_client("ecs")
        definition = ecs.describe_task_definition(taskDefinition="webapp-dev-service2")["taskDefinition"]
        assert [c["name"] for c in definition["containerDefinitions"]] == ["service2"]
        service1 = ecs.describe_task_definition(taskDefinition="webapp-dev-service1")["taskDefinition"]
        assert {c["name"] for c in service1["containerDefinitions"]} == {"service1", "otel-collector"}
        (group,) = emulator.boto3_client("elbv2").describe_target_groups(Names=["webapp-dev-service2"])["TargetGroups"]
        assert group["HealthCheckEnabled"] is True and group["HealthCheckPath"] == "/health"
        assert group["Matcher"] == {"HttpCode": "200"}
        alarms = emulator.boto3_client("cloudwatch").describe_alarms(
            AlarmNames=["webapp-dev-api-service2-unhealthy-hosts"])["MetricAlarms"]
        assert [a["MetricName"] for a in alarms] == ["UnHealthyHostCount"]
        iam = emulator.boto3_client("iam")
        assert "write-metrics" not in iam.list_role_policies(RoleName="webapp-dev-service2-task")["PolicyNames"]
        assert "write-metrics" in iam.list_role_policies(RoleName="webapp-dev-service1-task")["PolicyNames"]
    finally:
        applied.run("dev-api", "apply", "-auto-approve", "-input=false")
    assert applied.plan_changes("dev-api") is None


def test_a_worker_applies_without_route_listener_or_probe(applied, emulator, tmp_path_factory):
    """dev-api with a worker (tests/test_api_worker.py) applied over the session's dev-api: its ECS
    service runs without a load balancer, its task definition has one container and no port, it
    scales on CPU and memory only, and no target group exists for it; a second plan is clean. Then
    the session's dev-api is applied again (the worker destroyed) for the tests after this."""
    import shutil

    from botocore.exceptions import ClientError

    from modules.core.target import Target
    from modules.environment import load_environments
    from tests.harness.edits import edit
    from tests.harness.project import ENVIRONMENTS_DIR
    from tests.harness.synth import synthesize

    root = tmp_path_factory.mktemp("api-worker")
    shutil.copytree(ENVIRONMENTS_DIR, root / "environments")
    edit(root / "environments", "dev.hcl", "\n  # Flyway:",
         '\n  service "worker" {\n    image_repository = "webapp/worker"\n    image_tag        = "1.0.0"\n'
         '    metrics_path     = null\n    desired_count    = 1\n    min_count        = 1\n    max_count        = 3\n'
         '    secrets          = { PAYMENTS_API_KEY = "payments-api-key" }\n  }\n\n  # Flyway:')
    variant = synthesize(load_environments(root / "environments", ("dev",)), root / "cdktf.out",
                         Target(emulator_endpoint=emulator.endpoint))
    copy = applied.copy("dev-api", "worker", (variant.outdir / "stacks" / "dev-api" / "cdk.tf.json").read_text())
    try:
        applied.run(copy, "apply", "-auto-approve", "-input=false")
        second = applied.run(copy, "plan", "-detailed-exitcode", "-input=false", check=False)
        assert second.returncode == 0, second.stdout[-4000:]
        ecs = emulator.boto3_client("ecs")
        (service,) = ecs.describe_services(cluster=CLUSTER, services=["webapp-dev-worker"])["services"]
        assert service["status"] == "ACTIVE" and service["loadBalancers"] == []
        assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
        definition = ecs.describe_task_definition(taskDefinition="webapp-dev-worker")["taskDefinition"]
        (container,) = definition["containerDefinitions"]
        assert container["name"] == "worker" and not container.get("portMappings")
        assert [s["name"] for s in container["secrets"]] == ["PAYMENTS_API_KEY"]
        policies = emulator.boto3_client("application-autoscaling").describe_scaling_policies(
            ServiceNamespace="ecs", ResourceId=f"service/{CLUSTER}/webapp-dev-worker")["ScalingPolicies"]
        assert {p["PolicyName"] for p in policies} == {"webapp-dev-worker-cpu", "webapp-dev-worker-memory"}
        with pytest.raises(ClientError):
            emulator.boto3_client("elbv2").describe_target_groups(Names=["webapp-dev-worker"])
    finally:
        applied.run("dev-api", "apply", "-auto-approve", "-input=false")
    assert applied.plan_changes("dev-api") is None
