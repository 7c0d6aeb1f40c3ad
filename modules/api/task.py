"""What every Fargate task of the API tier shares: image, log group, roles, network rules.

The services and the Flyway migration task are built from the same pieces, so
they pull, log and reach the database the same way (the services as their own
IAM-authenticated logins, the migration task as the master user).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct

from modules import aws
from modules.api.collector import CollectorTarget
from modules.api.config import CpuArchitecture
from modules.core import policy
from modules.core.naming import NameKind, physical_name
from modules.core.settings import RegistryConfig
from modules.database.handle import DatabaseHandle
from modules.network.network import Network

HTTPS = 443
TMP_VOLUME = "tmp"  # read-only root filesystems get a writable /tmp on the task's ephemeral storage


@dataclass(frozen=True)
class TaskEnvironment:
    """The tier-wide values a task is built from (tokens where they come from Terraform)."""

    prefix: str
    region: str
    account_id: str
    partition: str
    registry: RegistryConfig
    network: Network
    database: DatabaseHandle
    log_key_arn: str
    log_retention_days: int
    s3_prefix_list_id: str
    secret_arns: dict[str, str]  # api.secrets name -> ARN of the secret this stack created
    secret_key_arn: str | None  # the key that encrypts those secrets
    collector: CollectorTarget | None = None  # where service tasks' collector sidecars write metrics
    # The tier's protection (`prevent_destroy`): log groups are kept like their key.
    keep: Any = None

    def image(self, repository: str, tag: str, digest: str | None) -> str:
        """The registry account's ECR image, pinned by digest when the release data gives one."""
        registry = self.registry
        host = f"{registry.account_id}.dkr.ecr.{registry.region}.amazonaws.com"
        return f"{host}/{repository}@{digest}" if digest else f"{host}/{repository}:{tag}"

    def repository_arn(self, repository: str) -> str:
        registry = self.registry
        return f"arn:{self.partition}:ecr:{registry.region}:{registry.account_id}:repository/{repository}"

    def log_group_name(self, name: str) -> str:
        return physical_name(NameKind.LOG_GROUP, f"/api/{self.prefix}/{name}")

    def database_variables(self, login: str) -> dict[str, str]:
        """Where and as whom a service connects: no password; it signs an IAM token for `login`
        (modules/database/README.md, "Connecting from a service")."""
        database = self.database
        return {
            "DB_HOST": database.writer_endpoint,
            "DB_READER_HOST": database.reader_host_name,
            "DB_PORT": str(database.port),
            "DB_NAME": database.database_name,
            "DB_USERNAME": login,
            "DB_IAM_AUTH": "true",
        }

    def database_user_arns(self, login: str) -> list[str]:
        """`rds-db:connect` resources of `login`: itself on the primary and on each replica."""
        return [f"arn:{self.partition}:rds-db:{self.region}:{self.account_id}:dbuser:{resource_id}/{login}"
                for resource_id in self.database.instance_resource_ids]

    def master_secrets(self, username: str, password: str) -> dict[str, str]:
        """`{variable: valueFrom}` for the master user secret's JSON keys (modules/database): the
        migration task's only; services never get it."""
        arn = self.database.master_user_secret_arn
        return {username: f"{arn}:username::", password: f"{arn}:password::"}


def log_group(scope: Construct, construct_id: str, environment: TaskEnvironment, name: str) -> aws.cloudwatch_log_group.CloudwatchLogGroup:
    return aws.cloudwatch_log_group.CloudwatchLogGroup(
        scope, construct_id, name=environment.log_group_name(name),
        retention_in_days=environment.log_retention_days, kms_key_id=environment.log_key_arn,
        lifecycle=environment.keep,
    )


def container_definitions(
    *,
    name: str,
    image: str,
    user: str,
    log_group_name: str,
    region: str,
    environment: dict[str, str],
    secrets: dict[str, str],
    port: int | None = None,
    health_check_command: str | None = None,
    health_check_start_seconds: int = 0,
    command: Sequence[str] = (),
    entry_point: Sequence[str] = (),
    sidecars: Sequence[dict[str, Any]] = (),
) -> str:
    """One container, hardened: non-root user, read-only root filesystem, never privileged.

    Written as JSON text with Terraform references inside, so the synthesized stack
    shows (and tests read) exactly what ECS gets. Defaults ECS would add are spelled
    out, and variables with an empty value, which ECS drops from the definition it
    stores, are left out, so a plan after apply shows no difference (an empty one would
    replace the task definition, and roll the service, on every apply:
    hashicorp/terraform-provider-aws#39533).
    """
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "essential": True,
        "user": user,
        "readonlyRootFilesystem": True,
        "privileged": False,
        "linuxParameters": {"initProcessEnabled": True},
        "mountPoints": [{"sourceVolume": TMP_VOLUME, "containerPath": "/tmp", "readOnly": False}],
        "volumesFrom": [],
        "portMappings": [],
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items()) if v != ""],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group_name,
                "awslogs-region": region,
                "awslogs-stream-prefix": name,
            },
        },
    }
    if port is not None:
        container["portMappings"] = [{"containerPort": port, "hostPort": port, "protocol": "tcp"}]
    if health_check_command is not None:
        container["healthCheck"] = {
            "command": ["CMD-SHELL", health_check_command],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": min(max(health_check_start_seconds, 0), 300),
        }
    if command:
        container["command"] = list(command)
    if entry_point:
        container["entryPoint"] = list(entry_point)
    return json.dumps([container, *sidecars], sort_keys=True)


def task_definition(
    scope: Construct,
    construct_id: str,
    *,
    family: str,
    cpu_units: int,
    memory_mib: int,
    cpu_architecture: CpuArchitecture,
    execution_role_arn: str,
    task_role_arn: str,
    containers: str,
) -> aws.ecs_task_definition.EcsTaskDefinition:
    module = aws.ecs_task_definition
    return module.EcsTaskDefinition(
        scope,
        construct_id,
        family=family,
        requires_compatibilities=["FARGATE"],
        network_mode="awsvpc",
        cpu=str(cpu_units),
        memory=str(memory_mib),
        runtime_platform=module.EcsTaskDefinitionRuntimePlatform(
            operating_system_family="LINUX", cpu_architecture=cpu_architecture.value
        ),
        execution_role_arn=execution_role_arn,
        task_role_arn=task_role_arn,
        container_definitions=containers,
        volume=[module.EcsTaskDefinitionVolume(name=TMP_VOLUME)],
    )


def _ecs_tasks_trust(scope: Construct, construct_id: str, environment: TaskEnvironment) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument:
    return policy.service_trust(
        scope, construct_id, sid="EcsTasksAssume", service="ecs-tasks.amazonaws.com",
        account_id=environment.account_id,
        conditions=[{
            "test": "ArnLike",
            "variable": "aws:SourceArn",
            "values": [f"arn:{environment.partition}:ecs:{environment.region}:{environment.account_id}:*"],
        }],
    )


def execution_role(
    scope: Construct,
    *,
    environment: TaskEnvironment,
    name: str,
    repository: str,
    log_group_arn: str,
    secret_arns: Sequence[str],
    kms_key_arns: Sequence[str],
    sidecar_repositories: Sequence[str] = (),
) -> aws.iam_role.IamRole:
    """The role ECS uses to start the task: pull its one repository, write its log group,
    read exactly the secrets its containers name (`ExecutionRole`, `ExecutionRolePolicy`)."""
    role = aws.iam_role.IamRole(
        scope,
        "ExecutionRole",
        name=physical_name(NameKind.IAM_ROLE, environment.prefix, name, "execution"),
        assume_role_policy=_ecs_tasks_trust(scope, "ExecutionTrust", environment).json,
    )
    statements = [
        # GetAuthorizationToken has no resource-level permissions: AWS requires "*".
        policy.statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        policy.statement(
            sid="PullOwnImage",
            actions=["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            resources=[environment.repository_arn(r) for r in (repository, *sidecar_repositories)],
        ),
        policy.statement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"{log_group_arn}:*"],
        ),
    ]
    if secret_arns:
        statements.append(policy.statement(
            sid="ReadNamedSecrets", actions=["secretsmanager:GetSecretValue"], resources=list(secret_arns)
        ))
        statements.append(policy.statement(
            sid="DecryptNamedSecrets",
            actions=["kms:Decrypt"],
            resources=list(kms_key_arns),
            conditions=[{
                "test": "StringEquals",
                "variable": "kms:ViaService",
                "values": [f"secretsmanager.{environment.region}.amazonaws.com"],
            }],
        ))
    permissions = policy.document(scope, "ExecutionPermissions", *statements)
    aws.iam_role_policy.IamRolePolicy(
        scope, "ExecutionRolePolicy", name="start-task", role=role.id, policy=permissions.json
    )
    return role


def task_role(scope: Construct, *, environment: TaskEnvironment, name: str) -> aws.iam_role.IamRole:
    """The role the application runs as: no permissions unless a tier adds them (`TaskRole`)."""
    return aws.iam_role.IamRole(
        scope,
        "TaskRole",
        name=physical_name(NameKind.IAM_ROLE, environment.prefix, name, "task"),
        assume_role_policy=_ecs_tasks_trust(scope, "TaskTrust", environment).json,
    )


def task_security_group(
    scope: Construct,
    *,
    environment: TaskEnvironment,
    name: str,
    description: str,
    database_access: bool,
) -> aws.security_group.SecurityGroup:
    """The task's own group (`SecurityGroup`): no ingress; egress only to AWS APIs (the VPC
    endpoints, and S3 through the gateway endpoint for ECR layers) and to the database.

    The database's ingress rule from this group lives here, in the client's stack.
    """
    network, database = environment.network, environment.database
    group = aws.security_group.SecurityGroup(
        scope,
        "SecurityGroup",
        name=physical_name(NameKind.SECURITY_GROUP, environment.prefix, name),
        description=description,
        vpc_id=network.vpc_id,
        tags={"Name": f"{environment.prefix}-{name}"},
    )
    egress = aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule
    egress(
        scope, "EgressToEndpoints", security_group_id=group.id, description="HTTPS to the VPC interface endpoints",
        ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS,
        referenced_security_group_id=network.endpoint_security_group_id,
    )
    egress(
        scope, "EgressToS3", security_group_id=group.id, description="HTTPS to S3 (ECR image layers)",
        ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS, prefix_list_id=environment.s3_prefix_list_id,
    )
    if database_access:
        egress(
            scope, "EgressToDatabase", security_group_id=group.id, description="PostgreSQL to the database",
            ip_protocol="tcp", from_port=database.port, to_port=database.port,
            referenced_security_group_id=database.security_group_id,
        )
        aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
            scope, "DatabaseIngress", security_group_id=database.security_group_id,
            description=f"PostgreSQL from {environment.prefix}-{name}", ip_protocol="tcp",
            from_port=database.port, to_port=database.port, referenced_security_group_id=group.id,
        )
    return group
