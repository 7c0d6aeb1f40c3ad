"""The Flyway schema-migration task the pipeline runs before deploying a new API version."""

from __future__ import annotations

from cdktf import TerraformOutput
from constructs import Construct

from modules.api.config import MigrationsConfig
from modules.api.task import (
    TaskEnvironment,
    container_definitions,
    execution_role,
    log_group,
    task_definition,
    task_role,
    task_security_group,
)
from modules.core.naming import NameKind, physical_name

NAME = "migrations"


class Migrations(Construct):
    """Creates the Flyway task definition (not a service: the pipeline runs it once per release).

    - a Fargate task definition running `flyway migrate` against the writer, with the
      JDBC URL (TLS required) as an environment variable and the user and password as
      ECS `secrets` from the database's master secret;
    - its log group, an execution role (its one ECR repository, its log group, the
      database secret) and a task role with no permissions;
    - its own security group (egress to the database, the VPC endpoints and S3 only)
      and the database's ingress rule from it.

    Run it in the API's cluster, in `subnet_ids`, with `security_group_id` and no
    public IP (outputs `MigrationTaskDefinition*`, `MigrationSecurityGroupId`,
    `MigrationSubnetIds`).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: MigrationsConfig,
                 environment: TaskEnvironment) -> None:
        super().__init__(scope, construct_id)
        database = environment.database
        logs = log_group(self, "LogGroup", environment, NAME)
        execution = execution_role(
            self, environment=environment, name=NAME, repository=config.image_repository, log_group_arn=logs.arn,
            secret_arns=[database.master_user_secret_arn], kms_key_arns=[database.secret_kms_key_arn],
        )
        role = task_role(self, environment=environment, name=NAME)
        variables = {
            "FLYWAY_URL": f"jdbc:postgresql://{database.writer_endpoint}:{environment.database_variables()['DB_PORT']}"
                          f"/{database.database_name}?sslmode=require",
            "FLYWAY_LOCATIONS": config.locations,
            "FLYWAY_CONNECT_RETRIES": "10",
        }
        containers = container_definitions(
            name="flyway",
            image=environment.image(config.image_repository, config.image_tag, config.image_digest),
            user=config.user,
            log_group_name=logs.name,
            region=environment.region,
            environment=variables,
            secrets=environment.database_secrets("FLYWAY_USER", "FLYWAY_PASSWORD"),
            command=["migrate"],
        )
        self.family = physical_name(NameKind.ECS, environment.prefix, NAME)
        definition = task_definition(
            self, "TaskDefinition", family=self.family, cpu_units=config.cpu_units, memory_mib=config.memory_mib,
            cpu_architecture=config.cpu_architecture, execution_role_arn=execution.arn, task_role_arn=role.arn,
            containers=containers,
        )
        self.task_definition_arn = definition.arn
        group = task_security_group(
            self, environment=environment, name=f"{NAME}-tasks",
            description="Flyway schema-migration tasks of the API", database_access=True,
        )
        self.security_group_id = group.id
        self.subnet_ids = environment.network.private_subnet_ids

        TerraformOutput(self, "MigrationTaskDefinitionArn", value=definition.arn,
                        description="Flyway task definition (revision ARN) the pipeline runs before a deploy")
        TerraformOutput(self, "MigrationTaskDefinitionFamily", value=definition.family,
                        description="Flyway task definition family")
        TerraformOutput(self, "MigrationSecurityGroupId", value=group.id,
                        description="Security group to run the Flyway task with")
        TerraformOutput(self, "MigrationSubnetIds", value=self.subnet_ids,
                        description="Subnets to run the Flyway task in (no public IP)")
