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
from modules.database.access import DatabaseAccess, access_sql

NAME = "migrations"
# Flyway runs `beforeMigrate*.sql` from its locations once per `migrate`, before any migration
# (Flyway documentation, "Callback events"). The task writes the library's SQL there first: the
# root filesystem is read-only, /tmp is the task's writable volume.
CALLBACK_DIRECTORY = "/tmp/flyway-callbacks"
CALLBACK_FILE = f"{CALLBACK_DIRECTORY}/beforeMigrate__service_logins.sql"
CALLBACK_VARIABLE = "SERVICE_LOGINS_SQL"
# `sh -c SCRIPT NAME ARGS...`: the task's command (`migrate`) arrives as "$@".
ENTRY_POINT = (
    "sh", "-c",
    f'mkdir -p {CALLBACK_DIRECTORY} && printf "%s\n" "${CALLBACK_VARIABLE}" > {CALLBACK_FILE} && exec flyway "$@"',
    "flyway",
)


class Migrations(Construct):
    """Creates the Flyway task definition (not a service: the pipeline runs it once per release).

    - a Fargate task definition running `flyway migrate` against the writer, with the
      JDBC URL (TLS required) as an environment variable and the user and password as
      ECS `secrets` from the database's master secret (the only task that reads it);
    - the service logins' SQL (`modules/database/access.py`, from `logins`) in the
      environment variable `SERVICE_LOGINS_SQL`, which the container writes to a
      `beforeMigrate` callback in a Flyway location of its own before `flyway migrate`
      starts: every migration run first brings the roles and grants in line with the
      environment file (new logins, changed access, removed services `NOLOGIN`);
    - its log group, an execution role (its one ECR repository, its log group, the
      database secret) and a task role with no permissions;
    - its own security group (egress to the database, the VPC endpoints and S3 only)
      and the database's ingress rule from it.

    Run it in the API's cluster, in `subnet_ids`, with `security_group_id` and no
    public IP (outputs `MigrationTaskDefinition*`, `MigrationSecurityGroupId`,
    `MigrationSubnetIds`).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: MigrationsConfig,
                 environment: TaskEnvironment, logins: dict[str, DatabaseAccess]) -> None:
        super().__init__(scope, construct_id)
        database = environment.database
        logs = log_group(self, "LogGroup", environment, NAME)
        execution = execution_role(
            self, environment=environment, name=NAME, repository=config.image_repository, log_group_arn=logs.arn,
            secret_arns=[database.master_user_secret_arn], kms_key_arns=[database.secret_kms_key_arn],
        )
        role = task_role(self, environment=environment, name=NAME)
        variables = {
            "FLYWAY_URL": f"jdbc:postgresql://{database.writer_endpoint}:{database.port}"
                          f"/{database.database_name}?sslmode=require",
            "FLYWAY_LOCATIONS": f"{config.locations},filesystem:{CALLBACK_DIRECTORY}",
            "FLYWAY_SCHEMAS": config.schema,
            CALLBACK_VARIABLE: access_sql(schema=config.schema, migration_user=database.master_username,
                                          logins=logins),
            "FLYWAY_CONNECT_RETRIES": "10",
        }
        containers = container_definitions(
            name="flyway",
            image=environment.image(config.image_repository, config.image_tag, config.image_digest),
            user=config.user,
            log_group_name=logs.name,
            region=environment.region,
            environment=variables,
            secrets=environment.master_secrets("FLYWAY_USER", "FLYWAY_PASSWORD"),
            command=["migrate"],
            entry_point=ENTRY_POINT,
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
