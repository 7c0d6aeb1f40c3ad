"""The API tier: API Gateway -> VPC link -> internal NLB -> ECS Fargate services."""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformResourceLifecycle
from constructs import Construct

from modules import aws
from modules.api.cluster import Cluster
from modules.api.collector import CollectorSettings, read_target
from modules.api.config import ApiConfig
from modules.api.dashboard import DashboardInputs, Neighbours, ServicePanel, dashboard_body
from modules.api.gateway import Gateway, api_name, cached, execution_log_group_name
from modules.api.load_balancer import LoadBalancer
from modules.api.migrations import Migrations
from modules.api.service import Service
from modules.api.task import TaskEnvironment, log_group
from modules.core import kms, policy
from modules.core.naming import NameKind, pascal, physical_name
from modules.core.settings import DnsConfig, RegistryConfig
from modules.core.subscriptions import subscribe_emails
from modules.database.handle import DatabaseHandle
from modules.network.network import Network


class Api(Construct):
    """Creates the `<env>-api` tier from `api { ... }`: every service, and what is in front of them.

    - a KMS key (rotation on) for the tier's logs: container, API Gateway access and
      execution, WAF and ECS Exec log groups;
    - `api.secrets`: Secrets Manager secrets (own KMS key) whose values are set out of
      band (`aws secretsmanager put-secret-value`), so no value is in Terraform state;
    - an SNS topic (KMS; email subscriptions from `alarm_email_addresses`) for the
      alarms, unless `alarm_topic_arn` is given;
    - the ECS cluster (`Cluster`), the internal NLB (`LoadBalancer`), one `Service` per
      `service` block, API Gateway with WAF and the custom domain (`Gateway`), and the
      Flyway task definition (`Migrations`).

    With `prevent_destroy`, the keys and the secrets carry `prevent_destroy` and the NLB has deletion protection.

    Every task reaches the database through the `DatabaseHandle`: the database's
    ingress rule from each task's security group is created here, in the client's stack.

    Attributes: `cluster`, `load_balancer`, `services` (by name), `gateway`, `migrations`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ApiConfig,
        registry: RegistryConfig,
        network: Network,
        database: DatabaseHandle,
        name_prefix: str,
        region: str,
        dns: DnsConfig | None = None,
        alarm_topic_arn: str | None = None,
        collector: CollectorSettings | None = None,
        neighbours: Neighbours | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.prefix = name_prefix
        self.keep = TerraformResourceLifecycle(prevent_destroy=True) if config.prevent_destroy else None
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Identity")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")
        account, part = identity.account_id, partition.partition

        log_key = self._log_key(account, part, region)
        secret_arns, secret_key_arn = self._secrets(account, part)
        topic_arn = alarm_topic_arn or self._alarm_topic(account, part, region)
        s3 = aws.data_aws_prefix_list.DataAwsPrefixList(self, "S3PrefixList", name=f"com.amazonaws.{region}.s3")
        environment = TaskEnvironment(
            prefix=name_prefix, region=region, account_id=account, partition=part, registry=registry,
            network=network, database=database, log_key_arn=log_key.arn, log_retention_days=config.log_retention_days,
            s3_prefix_list_id=s3.id, secret_arns=secret_arns, secret_key_arn=secret_key_arn,
            collector=read_target(self, collector, name_prefix) if collector else None, keep=self.keep,
        )

        exec_logs = log_group(self, "ExecuteCommandLogGroup", environment, "execute-command")
        self.cluster = Cluster(self, "Cluster", config=config, name_prefix=name_prefix, log_key_arn=log_key.arn,
                               exec_log_group_name=exec_logs.name)
        self.load_balancer = LoadBalancer(
            self, "LoadBalancer", name_prefix=name_prefix, network=network,
            prevent_destroy=config.prevent_destroy,
        )
        self.services = {
            service.name: Service(
                self, service.construct_id, config=service, environment=environment, cluster=self.cluster,
                load_balancer=self.load_balancer, enable_execute_command=config.enable_execute_command,
                alarm_topic_arn=topic_arn, api_name=api_name(name_prefix), stage_name=config.stage_name,
                cached_methods=cached(config, service),
            )
            for service in config.service
        }
        self.gateway = Gateway(
            self, "Gateway", config=config, name_prefix=name_prefix, load_balancer=self.load_balancer,
            log_key_arn=log_key.arn, log_retention_days=config.log_retention_days, account_id=account,
            partition=part, dns=dns,
            candidates={name: (s.candidate_listener, s.candidate) for name, s in self.services.items()
                        if s.candidate is not None},
        )
        self.migrations = Migrations(self, "Migrations", config=config.migrations, environment=environment,
                                     logins=config.database_logins())
        if neighbours is not None:
            self._dashboard(config, neighbours, region)

        TerraformOutput(self, "ClusterName", value=self.cluster.name, description="ECS cluster of the API")
        TerraformOutput(self, "ServiceNames", value={name: s.name for name, s in self.services.items()},
                        description="ECS service name by service (for the pipeline's deploys)")
        TerraformOutput(self, "TaskDefinitionArns",
                        value={name: s.task_definition_arn for name, s in self.services.items()},
                        description="Task definition revision each service was last applied with (`delivery "
                                    "verify` waits until ECS has rolled it out)")
        candidates = {name: s for name, s in self.services.items() if s.candidate is not None}
        TerraformOutput(self, "CanaryServiceNames", value={name: s.candidate_name for name, s in candidates.items()},
                        description="ECS service name of each running canary's candidate (empty: no canary)")
        TerraformOutput(self, "CanaryTaskDefinitionArns",
                        value={name: s.candidate_task_definition_arn for name, s in candidates.items()},
                        description="Task definition each candidate was last applied with (`delivery verify` waits "
                                    "for its rollout too)")
        TerraformOutput(self, "AlarmTopicArn", value=topic_arn, description="SNS topic the API's alarms notify")
        # Workers have no probe, so no entry.
        TerraformOutput(self, "HealthMetrics",
                        value={name: s.health_metric for name, s in self.services.items()
                               if s.health_metric is not None},
                        description="Each service's health probe metric (modules/api/health.py): its alarm, "
                                    "`delivery verify` and canary judges read it")

    def _dashboard(self, config: ApiConfig, neighbours: Neighbours, region: str) -> None:
        """The environment's dashboard (modules/api/dashboard.py), named like the environment's prefix."""
        panels = [
            ServicePanel(name=name, ecs_service=service.name, routes=service.routes,
                         load_balancer=self.load_balancer.arn_suffix, target_group=service.target_group_arn_suffix)
            for name, service in self.services.items()
        ]
        inputs = DashboardInputs(
            title=f"{self.prefix}: API, database and CloudFront", region=region, api_name=api_name(self.prefix),
            stage=config.stage_name, cluster=self.cluster.name, container_insights=config.container_insights,
            services=panels, neighbours=neighbours,
            alarm_arns=[arn for service in self.services.values() for arn in service.alarm_arns],
        )
        dashboard = aws.cloudwatch_dashboard.CloudwatchDashboard(
            self, "Dashboard", dashboard_name=physical_name(NameKind.GENERIC, self.prefix),
            dashboard_body=dashboard_body(inputs),
        )
        TerraformOutput(self, "DashboardUrl", value=(
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards/dashboard/{dashboard.dashboard_name}"), description="The environment's CloudWatch dashboard")

    def _log_key(self, account: str, partition: str, region: str) -> aws.kms_key.KmsKey:
        log_groups = f"arn:{partition}:logs:{region}:{account}:log-group"
        document = policy.document(
            self,
            "LogKeyPolicy",
            policy.account_root_admin(account, partition),
            policy.cloudwatch_logs_encrypt(
                region, f"{log_groups}:/api/{self.prefix}/*", f"{log_groups}:aws-waf-logs-{self.prefix}-api",
                # API Gateway's execution logs: the REST API's id is not known here (the key is made
                # first), so any id, this stage only (`Gateway.execution_logs`).
                f"{log_groups}:{execution_log_group_name('*', self.config.stage_name)}",
            ),
        )
        key = kms.key(self, "LogKey", description=f"Encrypts {self.prefix} API logs", policy_json=document.json,
                      alias_prefix=self.prefix, alias="api-logs", lifecycle=self.keep)
        return key

    def _secrets(self, account: str, partition: str) -> tuple[dict[str, str], str | None]:
        if not self.config.secrets:
            return {}, None
        document = policy.document(self, "SecretKeyPolicy", policy.account_root_admin(account, partition))
        key = kms.key(self, "SecretKey", description=f"Encrypts {self.prefix} API secrets", policy_json=document.json,
                      alias_prefix=self.prefix, alias="api-secrets", lifecycle=self.keep)
        arns = {}
        for name in self.config.secrets:
            secret = aws.secretsmanager_secret.SecretsmanagerSecret(
                self,
                f"Secret{pascal(name)}",
                name=f"{self.prefix}/api/{name}",
                description=f"{name}: value set out of band (aws secretsmanager put-secret-value), never in state",
                kms_key_id=key.arn,
                # Protected: recoverable for 30 days. Elsewhere the name is free again at once, so a
                # destroyed environment can be applied again (a pending deletion blocks the name).
                recovery_window_in_days=30 if self.config.prevent_destroy else 0,
                lifecycle=self.keep,
            )
            arns[name] = secret.arn
        return arns, key.arn

    def _alarm_topic(self, account: str, partition: str, region: str) -> str:
        document = policy.document(
            self,
            "AlarmKeyPolicy",
            policy.account_root_admin(account, partition),
            policy.statement(
                sid="CloudWatchAlarmsPublish",
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                principals=[{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}],
                # Only for this tier's alarms (`alarm_name`: `<prefix>-api-...`).
                conditions=[
                    {"test": "StringEquals", "variable": "aws:SourceAccount", "values": [account]},
                    {"test": "ArnLike", "variable": "aws:SourceArn",
                     "values": [f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{self.prefix}-api-*"]},
                ],
            ),
        )
        key = kms.key(self, "AlarmKey", description=f"Encrypts {self.prefix} API alarm notifications",
                      policy_json=document.json, alias_prefix=self.prefix, alias="api-alarms")
        topic = aws.sns_topic.SnsTopic(
            self, "AlarmTopic", name=physical_name(NameKind.SNS_TOPIC, self.prefix, "api-alarms"),
            kms_master_key_id=key.arn,
        )
        topic_policy = policy.document(self, "AlarmTopicPolicyDocument", *policy.alarm_topic_statements(
            topic.arn, account, partition, region, f"{self.prefix}-api-*"))
        aws.sns_topic_policy.SnsTopicPolicy(self, "AlarmTopicPolicy", arn=topic.arn, policy=topic_policy.json)
        subscribe_emails(self, topic.arn, self.config.alarm_email_addresses)
        return topic.arn
