"""The emulator's own fixes (tests/harness/moto_server.py), each shown through the API it mends.

Each test states what AWS answers, with its source. A test named after a fix fails on a plain
`moto_server`; the others pin down the moto behaviour the project relies on next to it.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def stage(emulator):
    """A REST API with a GET on `/a/{proxy+}`, deployed to stage `v1`: `(client, api id)`."""
    gateway = emulator.boto3_client("apigateway")
    api = gateway.create_rest_api(name="moto-fix-method-settings")["id"]
    root = gateway.get_resources(restApiId=api)["items"][0]["id"]
    parent = gateway.create_resource(restApiId=api, parentId=root, pathPart="a")["id"]
    proxy = gateway.create_resource(restApiId=api, parentId=parent, pathPart="{proxy+}")["id"]
    gateway.put_method(restApiId=api, resourceId=proxy, httpMethod="GET", authorizationType="NONE")
    gateway.put_integration(restApiId=api, resourceId=proxy, httpMethod="GET", type="MOCK")
    gateway.create_deployment(restApiId=api, stageName="v1")
    return gateway, api


def test_method_settings_below_the_root_are_stored_and_echoed_under_the_escaped_path(stage):
    """GetStage keys a method's settings by `~1a~1{proxy+}/GET` (terraform-provider-aws #9738:
    get-stage answers `~1some~1api~1endpoint/POST`), the form the provider reads back."""
    gateway, api = stage
    gateway.update_stage(restApiId=api, stageName="v1", patchOperations=[
        {"op": "replace", "path": "/~1a~1{proxy+}/GET/caching/enabled", "value": "true"}])
    settings = gateway.get_stage(restApiId=api, stageName="v1")["methodSettings"]
    assert settings["~1a~1{proxy+}/GET"]["cachingEnabled"] is True


def test_an_unescaped_method_setting_path_is_refused_as_api_gateway_refuses_it(stage):
    """API Gateway: "BadRequestException: Invalid method setting path" (terraform-provider-aws #15855).
    Plain moto answers 200 and stores nothing, which the provider then reads as "empty result"."""
    gateway, api = stage
    for path in ("/a/{proxy+}/GET/caching/enabled", "/a/GET/caching/enabled"):
        with pytest.raises(ClientError) as refused:
            gateway.update_stage(restApiId=api, stageName="v1",
                                 patchOperations=[{"op": "replace", "path": path, "value": "true"}])
        assert refused.value.response["Error"]["Code"] == "BadRequestException", path
        assert "Invalid method setting path" in refused.value.response["Error"]["Message"], path
    # Stage-wide settings (`*/*`) still go through.
    gateway.update_stage(restApiId=api, stageName="v1", patchOperations=[
        {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"}])
    assert gateway.get_stage(restApiId=api, stageName="v1")["methodSettings"]["*/*"]["metricsEnabled"] is True


def test_a_db_instance_reports_its_performance_insights_settings(emulator):
    """RDS DescribeDBInstances reports PerformanceInsightsEnabled, its KMS key and retention (RDS API
    reference, DBInstance); plain moto drops them. Fix: report_performance_insights_as_rds_does."""
    key = emulator.boto3_client("kms").create_key()["KeyMetadata"]["Arn"]
    rds = emulator.boto3_client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="moto-fix-insights", DBInstanceClass="db.t4g.medium", Engine="postgres",
        AllocatedStorage=20, MasterUsername="admin_user", MasterUserPassword="x" * 20,
        EnablePerformanceInsights=True, PerformanceInsightsKMSKeyId=key, PerformanceInsightsRetentionPeriod=31)
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier="moto-fix-insights")["DBInstances"]
    assert instance["PerformanceInsightsEnabled"] is True
    assert instance["PerformanceInsightsKMSKeyId"] == key
    assert instance["PerformanceInsightsRetentionPeriod"] == 31


def test_an_ecs_service_reports_the_settings_it_was_created_with(emulator):
    """ECS DescribeServices reports healthCheckGracePeriodSeconds, capacityProviderStrategy,
    enableECSManagedTags and availabilityZoneRebalancing as CreateService set them (ECS API reference,
    Service); plain moto drops all four. Fix: keep_the_ecs_service_settings_moto_drops."""
    ecs = emulator.boto3_client("ecs")
    ecs.create_cluster(clusterName="moto-fix-cluster", capacityProviders=["FARGATE"])
    ecs.register_task_definition(family="moto-fix-task", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                 cpu="256", memory="512",
                                 containerDefinitions=[{"name": "app", "image": "nginx", "essential": True}])
    strategy = [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]
    ecs.create_service(cluster="moto-fix-cluster", serviceName="moto-fix-service", taskDefinition="moto-fix-task",
                       desiredCount=0, healthCheckGracePeriodSeconds=60, capacityProviderStrategy=strategy,
                       enableECSManagedTags=True, availabilityZoneRebalancing="ENABLED")
    (service,) = ecs.describe_services(cluster="moto-fix-cluster", services=["moto-fix-service"])["services"]
    assert service["healthCheckGracePeriodSeconds"] == 60
    assert service["capacityProviderStrategy"] == strategy
    assert service["enableECSManagedTags"] is True
    assert service["availabilityZoneRebalancing"] == "ENABLED"


def test_a_vpc_link_integration_reports_its_connection_and_cache_keys(stage, emulator):
    """API Gateway GetIntegration reports connectionId (the VPC link) and cacheKeyParameters (API Gateway
    REST API reference, Integration); plain moto drops both. Fix: keep_the_integration_connection_and_cache_keys."""
    gateway, api = stage
    root = gateway.get_resources(restApiId=api)["items"]
    (resource,) = [r for r in root if r["path"] == "/a/{proxy+}"]
    gateway.put_method(restApiId=api, resourceId=resource["id"], httpMethod="ANY", authorizationType="NONE",
                       requestParameters={"method.request.path.proxy": True})
    keys = ["method.request.path.proxy"]
    gateway.put_integration(restApiId=api, resourceId=resource["id"], httpMethod="ANY", type="HTTP_PROXY",
                            integrationHttpMethod="ANY", uri="http://internal.example:8080/{proxy}",
                            connectionType="VPC_LINK", connectionId="abc123", cacheKeyParameters=keys)
    integration = gateway.get_integration(restApiId=api, resourceId=resource["id"], httpMethod="ANY")
    assert integration["connectionType"] == "VPC_LINK"
    assert integration["connectionId"] == "abc123"
    assert integration["cacheKeyParameters"] == keys


def test_an_nlb_reports_its_private_link_security_group_setting(emulator):
    """ELB DescribeLoadBalancers reports EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic as
    SetSecurityGroups set it (Elastic Load Balancing API reference, LoadBalancer); plain moto drops it.
    Fix: keep_the_nlb_private_link_security_group_setting."""
    ec2 = emulator.boto3_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.98.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.98.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="moto-fix-nlb", Description="nlb", VpcId=vpc)["GroupId"]
    elb = emulator.boto3_client("elbv2")
    (balancer,) = elb.create_load_balancer(Name="moto-fix-nlb", Subnets=[subnet], SecurityGroups=[group],
                                           Scheme="internal", Type="network")["LoadBalancers"]
    answer = elb.set_security_groups(LoadBalancerArn=balancer["LoadBalancerArn"], SecurityGroups=[group],
                                     EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic="off")
    assert answer["EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic"] == "off"
    (described,) = elb.describe_load_balancers(LoadBalancerArns=[balancer["LoadBalancerArn"]])["LoadBalancers"]
    assert described["EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic"] == "off"


def test_a_prometheus_workspace_reports_its_key(emulator):
    """Amazon Managed Service for Prometheus DescribeWorkspace reports kmsKeyArn (API reference,
    WorkspaceDescription); plain moto drops it. Fix: report_a_prometheus_workspace_key."""
    key = emulator.boto3_client("kms").create_key()["KeyMetadata"]["Arn"]
    amp = emulator.boto3_client("amp")
    workspace = amp.create_workspace(alias="moto-fix", kmsKeyArn=key)["workspaceId"]
    assert amp.describe_workspace(workspaceId=workspace)["workspace"]["kmsKeyArn"] == key


def test_a_stage_keeps_its_canary_settings_through_create_update_and_removal(stage):
    """API Gateway GetStage reports canarySettings (REST API reference, Stage/CanarySettings) as CreateStage
    or the UpdateStage patches `/canarySettings/...` set them (developer guide, "Update a canary release"),
    and `remove /canarySettings` turns the canary off; plain moto drops all of it. Fix:
    keep_stage_canary_settings."""
    gateway, api = stage
    deployment = gateway.create_deployment(restApiId=api, description="canary fix")["id"]
    gateway.create_stage(restApiId=api, stageName="canary-fix", deploymentId=deployment,
                         canarySettings={"deploymentId": deployment, "percentTraffic": 10.0,
                                         "stageVariableOverrides": {"origin": "candidate:18080"},
                                         "useStageCache": False})
    settings = gateway.get_stage(restApiId=api, stageName="canary-fix")["canarySettings"]
    assert settings == {"deploymentId": deployment, "percentTraffic": 10.0,
                        "stageVariableOverrides": {"origin": "candidate:18080"}, "useStageCache": False}
    gateway.update_stage(restApiId=api, stageName="canary-fix", patchOperations=[
        {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "25.000000"},
        {"op": "replace", "path": "/canarySettings/stageVariableOverrides/other", "value": "x:1"},
        {"op": "remove", "path": "/canarySettings/stageVariableOverrides/origin"}])
    settings = gateway.get_stage(restApiId=api, stageName="canary-fix")["canarySettings"]
    assert settings["percentTraffic"] == 25.0 and settings["stageVariableOverrides"] == {"other": "x:1"}
    gateway.update_stage(restApiId=api, stageName="canary-fix",
                         patchOperations=[{"op": "remove", "path": "/canarySettings"}])
    assert "canarySettings" not in gateway.get_stage(restApiId=api, stageName="canary-fix")
    # A canary added by patches alone starts on the stage's deployment, without the stage cache unless
    # asked (the provider patches useStageCache only when it is not false).
    gateway.update_stage(restApiId=api, stageName="canary-fix", patchOperations=[
        {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "5.0"}])
    settings = gateway.get_stage(restApiId=api, stageName="canary-fix")["canarySettings"]
    assert settings == {"deploymentId": deployment, "percentTraffic": 5.0, "useStageCache": False}


def test_an_ecs_service_reports_its_desired_tasks_running(emulator):
    """Terraform's `wait_for_steady_state` waits for one deployment with runningCount equal to desiredCount
    (terraform-provider-aws, ECS waitServiceStable), which a real service reaches once its tasks are
    healthy; moto starts no task and reports 0 running forever. Fix:
    report_ecs_services_running_their_desired_count."""
    ecs = emulator.boto3_client("ecs")
    ecs.create_cluster(clusterName="moto-fix-steady", capacityProviders=["FARGATE"])
    ecs.register_task_definition(family="moto-fix-steady", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                 cpu="256", memory="512",
                                 containerDefinitions=[{"name": "app", "image": "nginx", "essential": True}])
    ecs.create_service(cluster="moto-fix-steady", serviceName="steady", taskDefinition="moto-fix-steady",
                       desiredCount=2)
    (service,) = ecs.describe_services(cluster="moto-fix-steady", services=["steady"])["services"]
    assert (service["desiredCount"], service["runningCount"]) == (2, 2)
    (deployment,) = service["deployments"]
    assert deployment["runningCount"] == 2 and deployment["rolloutState"] == "COMPLETED"


def test_a_retried_conditional_put_of_the_same_item_is_answered_as_its_first_attempt(emulator):
    """Terraform's state lock is a PutItem with `attribute_not_exists(LockID)`. When the SDK resends
    the request because the first answer came late, the retry finds the item the first attempt wrote;
    DynamoDB's first answer would have arrived. Fix: answer_a_retried_conditional_put_as_its_first_attempt.
    Another writer's item (a different lock ID) still fails the condition, as DynamoDB fails it."""
    dynamodb = emulator.boto3_client("dynamodb")
    dynamodb.create_table(TableName="moto-fix-lock", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}])
    lock = {"LockID": {"S": "bucket/dev/network.tfstate"}, "Info": {"S": '{"ID":"a"}'}}

    def put(item):  # type: ignore[no-untyped-def]
        return dynamodb.put_item(TableName="moto-fix-lock", Item=item,
                                 ConditionExpression="attribute_not_exists(LockID)")

    put(lock)
    put(lock)  # the SDK's retry of the same request
    with pytest.raises(ClientError) as refused:
        put({**lock, "Info": {"S": '{"ID":"b"}'}})
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    stored = dynamodb.get_item(TableName="moto-fix-lock", Key={"LockID": lock["LockID"]})["Item"]
    assert stored["Info"] == lock["Info"]


def python_function(emulator, name: str, source: str, **settings):  # type: ignore[no-untyped-def]
    """A Python 3.12 function `name` whose zip holds `handler.py` with `source` (handler `handler.handler`)."""
    role = emulator.boto3_client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", source)
    client = emulator.boto3_client("lambda")
    client.create_function(FunctionName=name, Runtime="python3.12", Handler="handler.handler", Role=role,
                           Code={"ZipFile": code.getvalue()}, **settings)
    return client


def test_a_python_function_runs_and_its_calls_reach_the_emulator(emulator):
    """Lambda runs the handler with the event and a context, its environment variables and the region
    (Lambda developer guide: "Define Lambda function handler in Python", "Defined runtime environment
    variables"), under a session of its execution role, and answers its return value; plain moto needs
    Docker and answers "error running docker". Here the function's boto3 calls reach the emulator
    (AWS_ENDPOINT_URL) while its Invoke is still being answered. Fix: run_python_functions_in_a_local_process."""
    secrets = emulator.boto3_client("secretsmanager")
    secrets.create_secret(Name="moto-fix-lambda-secret", SecretString="old")
    client = python_function(emulator, "moto-fix-python", """
import os

import boto3


def handler(event, context):
    print("storing", event["value"])
    boto3.client("secretsmanager").put_secret_value(SecretId=event["secret"], SecretString=event["value"].upper())
    return {"stored": event["value"].upper(), "caller": boto3.client("sts").get_caller_identity()["Arn"],
            "function": context.function_name, "remaining": context.get_remaining_time_in_millis(),
            "region": os.environ["AWS_REGION"], "greeting": os.environ["GREETING"]}
""", Timeout=30, Environment={"Variables": {"GREETING": "hello"}})
    answer = client.invoke(FunctionName="moto-fix-python", LogType="Tail",
                           Payload=json.dumps({"secret": "moto-fix-lambda-secret", "value": "new value"}))
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    result = json.loads(answer["Payload"].read())
    assert result["stored"] == "NEW VALUE"
    assert result["caller"] == "arn:aws:sts::123456789012:assumed-role/moto-fix-python-role/moto-fix-python"
    assert (result["function"], result["region"], result["greeting"]) == ("moto-fix-python", "eu-west-1", "hello")
    assert 0 < result["remaining"] <= 30_000
    assert "storing new value" in base64.b64decode(answer["LogResult"]).decode()
    assert secrets.get_secret_value(SecretId="moto-fix-lambda-secret")["SecretString"] == "NEW VALUE"


def test_an_exception_in_a_python_function_answers_unhandled_with_its_error_document(emulator):
    """A handler's exception answers 200 with `X-Amz-Function-Error: Unhandled` and the error document
    {errorMessage, errorType, stackTrace} (Lambda developer guide, "AWS Lambda function errors in Python"),
    which the provider's `aws_lambda_invocation` reports as a failure. Fix: run_python_functions_in_a_local_process."""
    client = python_function(emulator, "moto-fix-python-fails", """
def handler(event, context):
    raise ValueError(f"no such thing: {event['thing']}")
""")
    answer = client.invoke(FunctionName="moto-fix-python-fails", Payload=json.dumps({"thing": "x"}))
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no such thing: x")
    assert any("handler.py" in line for line in error["stackTrace"])


def test_a_functions_logging_config_is_kept_and_its_logs_go_to_its_group(emulator):
    """Lambda reports the function's LoggingConfig (API reference, "LoggingConfig"; default group
    `/aws/lambda/<name>`, log levels only with the JSON format) and writes the function's logs there; plain
    moto drops it, so a function with its own log group plans an update forever. Fix:
    keep_the_lambda_logging_config."""
    logs = emulator.boto3_client("logs")
    logs.create_log_group(logGroupName="/moto-fix/function-logs")
    client = python_function(emulator, "moto-fix-logging", "def handler(event, context):\n    print('hello')\n",
                             LoggingConfig={"LogFormat": "Text", "LogGroup": "/moto-fix/function-logs"})
    configuration = client.get_function(FunctionName="moto-fix-logging")["Configuration"]
    assert configuration["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/moto-fix/function-logs"}
    client.invoke(FunctionName="moto-fix-logging", Payload=b"{}")
    (stream,) = logs.describe_log_streams(logGroupName="/moto-fix/function-logs")["logStreams"]
    events = logs.get_log_events(logGroupName="/moto-fix/function-logs", logStreamName=stream["logStreamName"])
    assert "hello" in [event["message"] for event in events["events"]]
    client.update_function_configuration(FunctionName="moto-fix-logging", LoggingConfig={"LogFormat": "JSON"})
    assert client.get_function_configuration(FunctionName="moto-fix-logging")["LoggingConfig"] == {
        "LogFormat": "JSON", "LogGroup": "/moto-fix/function-logs", "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO"}
    plain = python_function(emulator, "moto-fix-default-logging", "def handler(event, context):\n    return 1\n")
    assert plain.get_function(FunctionName="moto-fix-default-logging")["Configuration"]["LoggingConfig"] == {
        "LogFormat": "Text", "LogGroup": "/aws/lambda/moto-fix-default-logging"}
