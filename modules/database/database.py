"""The database tier: RDS for PostgreSQL with its standby, read replicas, backups and alarms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdktf import Fn, TerraformOutput, TerraformResource, TerraformResourceLifecycle, TerraformStack
from constructs import Construct

from modules import aws
from modules.core import kms, policy
from modules.core.ephemeral import EphemeralResource
from modules.core.forget import forget
from modules.core.function_code import function_code
from modules.core.naming import NameKind, physical_name
from modules.core.stack import TierStack
from modules.core.subscriptions import subscribe_emails
from modules.database.config import DatabaseConfig
from modules.database.handle import DatabaseHandle
from modules.network.network import Network

ENGINE = "postgres"
LOG_EXPORTS = ("postgresql", "upgrade")
# A major upgrade creates the next family's group before the old one goes.
REPLACE_FIRST = TerraformResourceLifecycle(create_before_destroy=True)
# Letters and digits only: the password goes into connection strings and shell variables.
MASTER_PASSWORD_LENGTH = 40
# The master-password function's code (stdlib and boto3 only: what the runtime ships).
MASTER_PASSWORD_CODE = Path(__file__).resolve().parent / "master_password"
FUNCTION_RUNTIME = "python3.12"
# The version of the generated password a writer is created with (`password_wo_version`): fixed.
CREATION_PASSWORD_VERSION = 1
# Lambda's maximum: the function waits for RDS to apply the password before it promotes the secret.
FUNCTION_TIMEOUT_SECONDS = 900
ALARM_PERIOD_SECONDS = 300
# Short, like RDS's own endpoint records: a replica added or removed is in or out of the
# reader name within seconds.
READER_TTL_SECONDS = 10
ALARM_EVALUATION_PERIODS = 3


def restored_identifier(primary_identifier: str) -> str:
    """The instance a point-in-time restore creates, next to the primary."""
    return physical_name(NameKind.RDS_IDENTIFIER, primary_identifier, "restored")


class Database(Construct):
    """Creates an environment's PostgreSQL database in the network's isolated subnets.

    - a customer-managed KMS key (rotation on) for storage, backups, the master
      secret, Performance Insights and the exported logs;
    - the database security group, with no rules at all: each client's stack adds its
      own TCP `port` ingress from its own group (see `DatabaseHandle`);
    - a DB subnet group over the first two zones (the primary and its Multi-AZ standby
      live there), and one over every isolated subnet for the read replicas;
    - parameter groups (primary, replicas) that force TLS and log slow statements;
    - the master user's secret `<prefix>/database/master` (JSON keys username, password;
      the tier's key), which Terraform creates empty and never reads: the master-password
      function (`master_password/handler.py`), invoked by the apply when a writer is created
      and on every `master_password_version`, sets a generated password on the writers and
      stores it, so it is never in state or plans and no plan needs to read it. (Not
      RDS-managed: AWS cannot create a read replica of an instance whose password RDS
      manages, nor a Blue/Green deployment.)
    - the primary: gp3 with storage autoscaling, encrypted, private, IAM authentication,
      automated backups (point-in-time recovery), log exports, Performance Insights and
      Enhanced Monitoring; `prevent_destroy` also sets RDS deletion protection;
    - `replica_count` read replicas, each pinned to a zone the primary and its standby
      never use;
    - with `point_in_time_restore`, a new instance restored from the automated backups;
    - the reader name `reader.database.<prefix>.internal` in a private zone of the VPC:
      weighted CNAMEs over the replicas, the writer's answering only without replicas;
    - with `backup_replication_region`, the automated backups copied to that region under
      a key of the tier there (a provider alias of the stack);
    - CloudWatch alarms (CPU, free storage, freeable memory, connections, replica lag)
      to an SNS topic encrypted with a key CloudWatch may use, which refuses publishing
      without TLS; the exported log groups are kept like the key (`prevent_destroy`).

    The services' logins and grants are SQL the migration task runs (`access.py`).

    Attributes: `handle` (a `DatabaseHandle` for the tiers built on it), `security_group_id`,
    `writer_endpoint`, `reader_endpoints`, `reader_host_name`, `port`, `database_name`,
    `master_user_secret_arn`, `key_arn`, `alarm_topic_arn`, `restored_endpoint` (None without
    a restore), `backup_replication` (None without one).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: DatabaseConfig, network: Network,
                 name_prefix: str, region: str) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.prefix = name_prefix
        self.region = region
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Identity")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")
        self.account, self.partition = identity.account_id, partition.partition
        # prevent_destroy cannot be an expression in Terraform, so it is decided here, from data.
        self.keep = TerraformResourceLifecycle(prevent_destroy=True) if config.prevent_destroy else None
        self.identifier = physical_name(NameKind.RDS_IDENTIFIER, name_prefix, ENGINE)

        self._key()
        self.security_group = aws.security_group.SecurityGroup(
            self,
            "SecurityGroup",
            name=physical_name(NameKind.SECURITY_GROUP, name_prefix, "database"),
            description="PostgreSQL; each client's stack adds its own ingress rule",
            vpc_id=network.vpc_id,
            # No egress; ingress is left unmanaged here so clients' rules are not removed.
            egress=[],
            tags={"Name": f"{name_prefix}-database"},
        )
        self.security_group_id = self.security_group.id
        zones = network.availability_zones
        self.subnet_group = aws.db_subnet_group.DbSubnetGroup(
            self,
            "SubnetGroup",
            name=self.identifier,
            description="The zones of the primary and its Multi-AZ standby",
            subnet_ids=network.isolated_subnet_ids[:2],
            tags={"Name": self.identifier},
        )
        self.parameter_group = self._parameter_group("ParameterGroup", "")
        self.monitoring_role = self._monitoring_role()
        self.master_password = self._master_secret()

        self.primary = aws.db_instance.DbInstance(
            self,
            "Primary",
            identifier=self.identifier,
            engine=ENGINE,
            engine_version=config.engine_version,
            db_name=config.database_name,
            username=config.master_username,
            port=config.port,
            allocated_storage=config.allocated_storage_gib,
            # RDS chooses (and fails over between) the zones of a Multi-AZ instance itself.
            availability_zone=None if config.multi_az else zones[0],
            **self._writer_settings(self.identifier),
            **{
                **self._instance_settings("Primary", self.identifier, self.parameter_group, config.instance_class),
                # The zone is ForceNew: after a failover a Multi-AZ primary lives in its standby's zone,
                # and turning multi_az off would otherwise plan to replace the database to move it back.
                "lifecycle": TerraformResourceLifecycle(prevent_destroy=True if config.prevent_destroy else None,
                                                        ignore_changes=["availability_zone"]),
            },
        )

        self.replicas = self._replicas(network, zones)
        self.restored = self._restored() if config.point_in_time_restore else None
        writers = {self.identifier: self.primary}
        if self.restored is not None:
            writers[restored_identifier(self.identifier)] = self.restored
        self._master_password_function(writers)
        self._alarms()
        self.writer_endpoint = self.primary.address
        self.reader_endpoints = tuple(replica.address for replica in self.replicas)
        self.reader_host_name = self._reader_name(network)
        self.backup_replication = self._backup_replication() if config.backup_replication_region else None
        self.port = config.port
        self.database_name = config.database_name
        self.master_user_secret_arn = self.master_secret.arn
        self.key_arn = self.key.arn
        self.restored_endpoint = self.restored.address if self.restored else None
        self.handle = DatabaseHandle(
            security_group_id=self.security_group_id,
            port=self.port,
            writer_endpoint=self.writer_endpoint,
            reader_host_name=self.reader_host_name,
            database_name=self.database_name,
            master_username=config.master_username,
            instance_resource_ids=(self.primary.resource_id, *(r.resource_id for r in self.replicas)),
            master_user_secret_arn=self.master_user_secret_arn,
            secret_kms_key_arn=self.key_arn,
        )
        self._outputs()

    def _key(self) -> None:
        account, part = self.account, self.partition
        log_groups = f"arn:{part}:logs:{self.region}:{account}:log-group:/aws/rds/instance/{self.prefix}-*"
        function_log = f"arn:{part}:logs:{self.region}:{account}:log-group:/aws/lambda/{self.prefix}-database-*"
        key_policy = policy.document(
            self,
            "KeyPolicy",
            policy.account_root_admin(account, part),
            policy.cloudwatch_logs_encrypt(self.region, log_groups, function_log),
        )
        # Destroying the key would make every backup and final snapshot unreadable.
        self.key = kms.key(
            self, "Key", description=f"Encrypts the {self.prefix} PostgreSQL database, its backups, secret and logs",
            policy_json=key_policy.json, alias_prefix=self.prefix, alias="database", lifecycle=self.keep,
        )

    def _master_secret(self) -> str:
        """The master user's secret, empty until the master-password function fills it; returns
        the password the database is created with, which nobody learns and the function replaces.

        Terraform holds no version of the secret: a managed version's refresh reads its value
        (GetSecretValue, kms:Decrypt), which the plan roles may not (modules/cicd/README.md).
        """
        config = self.config
        self.master_secret = aws.secretsmanager_secret.SecretsmanagerSecret(
            self, "MasterSecret", name=f"{self.prefix}/database/master",
            description=f"Master user of {self.identifier} (JSON keys username, password); "
                        "database.master_password_version rotates it",
            kms_key_id=self.key.arn,
            # A protected database keeps its secret recoverable; elsewhere the name is free again at once.
            recovery_window_in_days=30 if config.prevent_destroy else 0,
            lifecycle=self.keep,
        )
        # Earlier versions wrote the value through Terraform: forgotten, so the value stays AWSCURRENT
        # until the function's first run replaces it.
        forget(self, ("aws_secretsmanager_secret_version", "MasterSecretValue"))
        generated = EphemeralResource(self, "GeneratedMasterPassword",
                                      resource_type="aws_secretsmanager_random_password", config={
                                          "password_length": MASTER_PASSWORD_LENGTH,
                                          "exclude_punctuation": True,
                                          "require_each_included_type": True,
                                      })
        return f'${{{generated.ref("random_password")}}}'

    def _master_password_function(self, writers: dict[str, aws.db_instance.DbInstance]) -> None:
        """A Lambda function that gives the writable instances a new master password and stores it
        in the secret (`master_password/handler.py`), invoked by Terraform (`aws_lambda_invocation`,
        whose refresh calls nothing) when they are created and whenever `master_password_version`
        changes: a `terraform_data` replaced on either change names the request."""
        config = self.config
        name = physical_name(NameKind.LAMBDA_FUNCTION, f"{self.prefix}-database-master-password")
        log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "MasterPasswordLogGroup", name=physical_name(NameKind.LOG_GROUP, f"/aws/lambda/{name}"),
            retention_in_days=config.log_retention_days, kms_key_id=self.key.arn, lifecycle=self.keep,
        )
        # No aws:SourceAccount/SourceArn: Lambda documents neither for assuming an execution role (a
        # condition on a key the request lacks would make the role unusable); only a principal of this
        # account with iam:PassRole can give the role to a function, never another account.
        trust = policy.document(self, "MasterPasswordTrust", policy.statement(
            sid="LambdaAssumes", actions=["sts:AssumeRole"],
            principals=[{"type": "Service", "identifiers": ["lambda.amazonaws.com"]}]))
        role = aws.iam_role.IamRole(
            self, "MasterPasswordRole", name=physical_name(NameKind.IAM_ROLE, name),
            description=f"Sets the master password of {self.identifier} and stores it in its secret",
            assume_role_policy=trust.json,
        )
        instances = [f"arn:{self.partition}:rds:{self.region}:{self.account}:db:{writer}" for writer in writers]
        permissions = policy.document(
            self, "MasterPasswordPermissions",
            policy.statement(sid="WriteTheMasterSecret", resources=[self.master_secret.arn], actions=[
                "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage"]),
            # GetRandomPassword has no resource (Service Authorization Reference).
            policy.statement(sid="GeneratePasswords", resources=["*"], actions=["secretsmanager:GetRandomPassword"]),
            # Secrets Manager's calls for this secret only: it names the secret in the encryption context
            # (Secrets Manager User Guide, "Secret encryption and decryption").
            policy.statement(sid="UseTheKeyThroughSecretsManager", resources=[self.key.arn],
                             actions=["kms:Decrypt", "kms:GenerateDataKey"], conditions=[
                                 {"test": "StringEquals", "variable": "kms:ViaService",
                                  "values": [f"secretsmanager.{self.region}.amazonaws.com"]},
                                 {"test": "StringEquals", "variable": "kms:EncryptionContext:SecretARN",
                                  "values": [self.master_secret.arn]}]),
            policy.statement(sid="SetTheWritersPassword", resources=instances,
                             actions=["rds:ModifyDBInstance", "rds:DescribeDBInstances"]),
            policy.statement(sid="WriteItsLog", resources=[f"{log_group.arn}:*"],
                             actions=["logs:CreateLogStream", "logs:PutLogEvents"]),
        )
        role_policy = aws.iam_role_policy.IamRolePolicy(self, "MasterPasswordPolicy", name="master-password",
                                                        role=role.id, policy=permissions.json)
        code = function_code(self, "MasterPasswordCode", MASTER_PASSWORD_CODE)
        function = aws.lambda_function.LambdaFunction(
            self, "MasterPasswordFunction", function_name=name,
            description=f"Sets the master password of {self.identifier}; Terraform invokes it",
            role=role.arn, runtime=FUNCTION_RUNTIME, handler="handler.handler",
            filename=code.filename, source_code_hash=code.source_code_hash,
            # Resetting a Multi-AZ instance's password takes minutes; the function waits for it.
            timeout=FUNCTION_TIMEOUT_SECONDS, memory_size=128,
            logging_config=aws.lambda_function.LambdaFunctionLoggingConfig(log_format="Text",
                                                                            log_group=log_group.name),
            tracing_config=aws.lambda_function.LambdaFunctionTracingConfig(mode="PassThrough"),
            depends_on=[role_policy, log_group],
        )
        request = TerraformResource(self, "MasterPasswordRequest", terraform_resource_type="terraform_data")
        request.add_override("triggers_replace",
                             [config.master_password_version, *(w.resource_id for w in writers.values())])
        aws.lambda_invocation.LambdaInvocation(
            self, "SetMasterPassword", function_name=function.function_name,
            input=Fn.jsonencode({
                "SecretId": self.master_secret.arn,
                # A new id for each request: the function's version of the secret, so a retried
                # invocation finishes the same password instead of making a second one.
                "ClientRequestToken": request.get_string_attribute("id"),
                "Username": config.master_username,
                "DBInstanceIdentifiers": list(writers),
            }),
            depends_on=list(writers.values()),
        )

    def _parameter_group(self, construct_id: str, suffix: str) -> aws.db_parameter_group.DbParameterGroup:
        config = self.config
        family = f"{ENGINE}{config.engine_major_version}"
        parameter = aws.db_parameter_group.DbParameterGroupParameter
        return aws.db_parameter_group.DbParameterGroup(
            self,
            construct_id,
            name=physical_name(NameKind.RDS_IDENTIFIER, self.prefix, family, suffix),
            family=family,
            description=f"TLS only, slow statements logged ({family})",
            parameter=[
                parameter(name="rds.force_ssl", value="1"),
                parameter(name="log_min_duration_statement", value=str(config.log_min_duration_statement_ms)),
            ],
            lifecycle=REPLACE_FIRST,
        )

    def _monitoring_role(self) -> aws.iam_role.IamRole:
        # Enhanced Monitoring sends aws:SourceArn, the DB instance's ARN (Amazon RDS User Guide,
        # "Setting up and enabling Enhanced Monitoring", confused deputy): this stack's instances only.
        instances = f"arn:{self.partition}:rds:{self.region}:{self.account}:db:{self.identifier}*"
        trust = policy.service_trust(self, "MonitoringTrust", sid="EnhancedMonitoringAssumes",
                                     service="monitoring.rds.amazonaws.com", account_id=self.account, conditions=[
                                         {"test": "ArnLike", "variable": "aws:SourceArn", "values": [instances]}])
        role = aws.iam_role.IamRole(
            self, "MonitoringRole", name=physical_name(NameKind.IAM_ROLE, self.prefix, "rds-monitoring"),
            assume_role_policy=trust.json,
        )
        self.monitoring_policy = aws.iam_role_policy_attachment.IamRolePolicyAttachment(
            self, "MonitoringRolePolicy", role=role.name,
            policy_arn=f"arn:{self.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
        )
        return role

    def _log_groups(self, instance_id: str, identifier: str) -> list[Any]:
        """RDS would create these on first export, unencrypted and kept forever."""
        return [
            aws.cloudwatch_log_group.CloudwatchLogGroup(
                self, f"{instance_id}{export.title()}LogGroup",
                name=physical_name(NameKind.LOG_GROUP, f"/aws/rds/instance/{identifier}/{export}"),
                retention_in_days=self.config.log_retention_days, kms_key_id=self.key.arn,
                # Kept like the key that encrypts them.
                lifecycle=self.keep,
            )
            for export in LOG_EXPORTS
        ]

    def _instance_settings(self, instance_id: str, identifier: str, parameter_group: Any,
                           instance_class: str) -> dict[str, Any]:
        """What every instance of the tier shares: sizing, network, encryption, monitoring, protection."""
        config = self.config
        return {
            "instance_class": instance_class,
            "storage_type": "gp3",
            "max_allocated_storage": config.max_allocated_storage_gib,
            "storage_encrypted": True,
            "kms_key_id": self.key.arn,
            "vpc_security_group_ids": [self.security_group_id],
            "parameter_group_name": parameter_group.name,
            "publicly_accessible": False,
            "iam_database_authentication_enabled": True,
            "enabled_cloudwatch_logs_exports": list(LOG_EXPORTS),
            "performance_insights_enabled": True,
            "performance_insights_kms_key_id": self.key.arn,
            "performance_insights_retention_period": config.performance_insights_retention_days,
            "monitoring_interval": config.monitoring_interval_seconds,
            "monitoring_role_arn": self.monitoring_role.arn,
            "auto_minor_version_upgrade": True,
            "copy_tags_to_snapshot": True,
            "maintenance_window": config.maintenance_window,
            # Outside dev a class change waits for the maintenance window (a Multi-AZ failover).
            "apply_immediately": config.apply_immediately,
            "deletion_protection": config.prevent_destroy,
            "tags": {"Name": identifier},
            "depends_on": [*self._log_groups(instance_id, identifier), self.monitoring_policy],
            "lifecycle": self.keep,
        }

    def _writer_settings(self, identifier: str) -> dict[str, Any]:
        """What a writable instance (the primary, a restored one) adds: its password, zones, backups."""
        config = self.config
        return {
            "password_wo": self.master_password,
            # Terraform sets a password once, at creation; every later one is the function's, so a
            # rotation never leaves the master user on a password nobody knows.
            "password_wo_version": CREATION_PASSWORD_VERSION,
            "db_subnet_group_name": self.subnet_group.name,
            "multi_az": config.multi_az,
            # Only takes effect when engine_version's major changes, which is a reviewed config change;
            # without it RDS refuses that change (AllowMajorVersionUpgrade must be present).
            "allow_major_version_upgrade": True,
            "backup_retention_period": config.backup_retention_days,
            "backup_window": config.backup_window,
            "skip_final_snapshot": config.skip_final_snapshot,
            "final_snapshot_identifier": None if config.skip_final_snapshot else f"{identifier}-final",
            # A protected database keeps its automated backups (and so PITR) after deletion.
            "delete_automated_backups": not config.prevent_destroy,
        }

    def _replicas(self, network: Network, zones: list[str]) -> list[Any]:
        zones_of_replicas = self.config.replica_zones(zones)
        self.replica_identifiers: list[str] = []
        if not zones_of_replicas:
            return []
        # Every isolated subnet, so each replica can be pinned to its own zone; a replica
        # given a subnet group of its own must name its source by ARN.
        subnet_group = aws.db_subnet_group.DbSubnetGroup(
            self,
            "ReplicaSubnetGroup",
            name=physical_name(NameKind.RDS_IDENTIFIER, self.identifier, "replicas"),
            description="Every isolated zone; each read replica is pinned to one",
            subnet_ids=network.isolated_subnet_ids,
            tags={"Name": physical_name(NameKind.RDS_IDENTIFIER, self.identifier, "replicas")},
        )
        parameter_group = self._parameter_group("ReplicaParameterGroup", "replica")
        replicas = []
        for index, zone in enumerate(zones_of_replicas):
            identifier = physical_name(NameKind.RDS_IDENTIFIER, self.identifier, f"replica-{index}")
            self.replica_identifiers.append(identifier)
            settings = self._instance_settings(
                f"Replica{index}", identifier, parameter_group, self.config.replica_instance_class or self.config.instance_class
            )
            # Replicas hold no data of their own: removing one (a smaller replica_count) is
            # a config change, not something deletion protection should stand in the way of.
            settings.update(deletion_protection=False, lifecycle=None)
            replicas.append(aws.db_instance.DbInstance(
                self,
                f"Replica{index}",
                identifier=identifier,
                replicate_source_db=self.primary.arn,
                db_subnet_group_name=subnet_group.name,
                availability_zone=zone,
                multi_az=False,
                # RDS takes no final snapshot of a replica; the primary's backups cover its data.
                skip_final_snapshot=True,
                **settings,
            ))
        return replicas

    def _restored(self) -> aws.db_instance.DbInstance:
        config = self.config
        restore = config.point_in_time_restore
        assert restore is not None
        identifier = restored_identifier(self.identifier)
        return aws.db_instance.DbInstance(
            self,
            "Restored",
            identifier=identifier,
            restore_to_point_in_time=aws.db_instance.DbInstanceRestoreToPointInTime(
                source_db_instance_identifier=None if restore.source_dbi_resource_id else (
                    restore.source_identifier or self.primary.identifier),
                source_dbi_resource_id=restore.source_dbi_resource_id,
                restore_time=restore.restore_time,
                use_latest_restorable_time=True if restore.restore_time is None else None,
            ),
            **self._writer_settings(identifier),
            **self._instance_settings("Restored", identifier, self.parameter_group, config.instance_class),
        )

    def _alarms(self) -> None:
        config = self.config
        account, part = self.account, self.partition
        key_policy = policy.document(
            self,
            "AlarmKeyPolicy",
            policy.account_root_admin(account, part),
            # Only this tier's alarms: their names start with the primary's identifier.
            policy.cloudwatch_alarms_publish(account, part, self.region, f"{self.identifier}-*"),
        )
        key = kms.key(self, "AlarmKey", description=f"Encrypts the {self.prefix} database alarm topic",
                      policy_json=key_policy.json, alias_prefix=self.prefix, alias="database-alarms")
        self.alarm_topic = aws.sns_topic.SnsTopic(
            self, "AlarmTopic", name=physical_name(NameKind.SNS_TOPIC, self.prefix, config.alarm_topic_name),
            kms_master_key_id=key.arn,
        )
        self.alarm_topic_arn = self.alarm_topic.arn
        topic_policy = policy.document(self, "AlarmTopicPolicyDocument", *policy.alarm_topic_statements(
            self.alarm_topic.arn, account, part, self.region, f"{self.identifier}-*"))
        aws.sns_topic_policy.SnsTopicPolicy(self, "AlarmTopicPolicy", arn=self.alarm_topic.arn,
                                            policy=topic_policy.json)
        subscribe_emails(self, self.alarm_topic_arn, config.alarm_email_addresses)

        gib, mib = 1024**3, 1024**2
        primary = self.identifier
        self._alarm("CpuAlarm", primary, "CPUUtilization", "GreaterThanThreshold", config.cpu_alarm_percent,
                    f"CPU above {config.cpu_alarm_percent}% for 15 minutes: scale the instance class up")
        self._alarm("FreeStorageAlarm", primary, "FreeStorageSpace", "LessThanThreshold",
                    config.free_storage_alarm_gib * gib,
                    f"Less than {config.free_storage_alarm_gib} GiB free (autoscaling stops at "
                    f"{config.max_allocated_storage_gib} GiB)")
        self._alarm("FreeableMemoryAlarm", primary, "FreeableMemory", "LessThanThreshold",
                    config.freeable_memory_alarm_mib * mib,
                    f"Less than {config.freeable_memory_alarm_mib} MiB freeable memory for 15 minutes")
        self._alarm("ConnectionsAlarm", primary, "DatabaseConnections", "GreaterThanThreshold",
                    config.connections_alarm_count,
                    f"More than {config.connections_alarm_count} connections for 15 minutes")
        for index, replica in enumerate(self.replica_identifiers):
            self._alarm(f"Replica{index}LagAlarm", replica, "ReplicaLag", "GreaterThanThreshold", config.replica_lag_alarm_seconds,
                        f"Replica {index} more than {config.replica_lag_alarm_seconds} s behind the primary")

    def _reader_name(self, network: Network) -> str:
        """`reader.database.<prefix>.internal` in a private zone of the VPC: one weighted CNAME per
        replica, and the writer's, which answers only when there is no replica (weight 0 loses to
        any other). Services resolve it per connection, so replicas join and leave without a redeploy."""
        zone_name = f"database.{self.prefix}.internal"
        zone = aws.route53_zone.Route53Zone(
            self, "PrivateZone", name=zone_name,
            comment=f"Names of the {self.prefix} database, resolvable inside its VPC only",
            vpc=[aws.route53_zone.Route53ZoneVpc(vpc_id=network.vpc_id)],
        )
        name = f"reader.{zone_name}"
        record = aws.route53_record
        targets = [("Writer", "writer", self.writer_endpoint, 0 if self.replicas else 1)]
        targets += [(f"Replica{index}", f"replica-{index}", address, 1)
                    for index, address in enumerate(self.reader_endpoints)]
        for construct_id, set_identifier, address, weight in targets:
            record.Route53Record(
                self, f"Reader{construct_id}Record", zone_id=zone.zone_id, name=name, type="CNAME",
                ttl=READER_TTL_SECONDS, records=[address], set_identifier=set_identifier,
                weighted_routing_policy=record.Route53RecordWeightedRoutingPolicy(weight=weight),
            )
        return name

    def _backup_replication(self) -> aws.db_instance_automated_backups_replication.DbInstanceAutomatedBackupsReplication | None:
        """The primary's automated backups, copied to `backup_replication_region` under a key there."""
        config = self.config
        region = config.backup_replication_region
        assert region is not None
        stack = TerraformStack.of(self)
        if not isinstance(stack, TierStack):
            raise TypeError("Database must be built inside a TierStack to replicate backups to another region")
        provider = stack.provider_in(region)
        key_policy = policy.document(self, "BackupKeyPolicy", policy.account_root_admin(self.account, self.partition))
        # Destroying it would make every replicated backup unreadable.
        key = kms.key(self, "BackupKey", description=f"Encrypts the {self.prefix} database backups copied to {region}",
                      policy_json=key_policy.json, alias_prefix=self.prefix, alias="database-backups",
                      lifecycle=self.keep, provider=provider)
        if not stack.target.supports("aws_db_instance_automated_backups_replication"):
            return None
        replication = aws.db_instance_automated_backups_replication.DbInstanceAutomatedBackupsReplication(
            self, "BackupReplication", provider=provider, source_db_instance_arn=self.primary.arn,
            kms_key_id=key.arn, retention_period=config.backup_retention_days,
        )
        TerraformOutput(self, "BackupReplicationArn", value=replication.id,
                        description=f"The replicated automated backups in {region} (restore from them there)")
        return replication

    def _alarm(self, construct_id: str, identifier: str, metric: str, comparison: str, threshold: int,
               description: str) -> None:
        aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            construct_id,
            alarm_name=f"{identifier}-{metric}",
            alarm_description=description,
            namespace="AWS/RDS",
            metric_name=metric,
            dimensions={"DBInstanceIdentifier": identifier},
            statistic="Average",
            period=ALARM_PERIOD_SECONDS,
            evaluation_periods=ALARM_EVALUATION_PERIODS,
            comparison_operator=comparison,
            threshold=threshold,
            alarm_actions=[self.alarm_topic_arn],
            ok_actions=[self.alarm_topic_arn],
        )

    def _outputs(self) -> None:
        TerraformOutput(self, "WriterEndpoint", value=self.writer_endpoint, description="Hostname of the primary")
        TerraformOutput(self, "ReaderEndpoints", value=list(self.reader_endpoints),
                        description="Hostnames of the read replicas")
        TerraformOutput(self, "ReaderHostName", value=self.reader_host_name,
                        description="Reads: spreads over the replicas (the writer without replicas), in the VPC")
        TerraformOutput(self, "Port", value=self.port, description="PostgreSQL port")
        TerraformOutput(self, "DatabaseName", value=self.database_name, description="Database created on the primary")
        TerraformOutput(self, "MasterUserSecretArn", value=self.master_user_secret_arn,
                        description="Secrets Manager secret of the master user (keys username, password)")
        TerraformOutput(self, "PrimaryResourceId", value=self.primary.resource_id,
                        description="The primary's DbiResourceId: restores from its retained backups after deletion")
        TerraformOutput(self, "SecurityGroupId", value=self.security_group_id,
                        description="Security group clients add their ingress rule to")
        TerraformOutput(self, "KeyArn", value=self.key_arn, description="KMS key of the database and its secret")
        TerraformOutput(self, "AlarmTopicArn", value=self.alarm_topic_arn, description="SNS topic of the alarms")
        if self.restored_endpoint is not None:
            TerraformOutput(self, "RestoredEndpoint", value=self.restored_endpoint,
                            description="Hostname of the instance restored to a point in time")

