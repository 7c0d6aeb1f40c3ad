"""Observability (design section 4, stage 6): Prometheus workspaces, alert rules, alert routing, Grafana."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from cdktf import TerraformOutput, TerraformResourceLifecycle
from constructs import Construct

from modules import aws, contract
from modules.cicd.config import CicdConfig
from modules.cicd.pipeline import (
    ReportTopic,
    prometheus_encrypts,
    prometheus_publishers,
    topic_statements,
)
from modules.cicd.reach import EnvironmentReach
from modules.contract import ENVIRONMENT_LABEL, SERVICE_LABEL
from modules.core import kms, policy
from modules.core.naming import NameKind, physical_name
from modules.core.subscriptions import subscribe_emails
from modules.core.target import Target

QUERY_ACTIONS = ("aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata")
# What Grafana's CloudWatch data source needs for metric panels and its query editor: a subset of
# the AWS managed policy AmazonGrafanaCloudWatchAccess (no alarms, logs, EC2 or tag reads). CloudWatch
# has no resource types for these actions (Service Authorization Reference, Amazon CloudWatch), so "*".
CLOUDWATCH_READ_ACTIONS = ("cloudwatch:GetMetricData", "cloudwatch:ListMetrics")


def rules_yaml(config: CicdConfig, project: str) -> str:
    """The alert rules, as the Prometheus rule file AMP takes (one group, read top to bottom)."""
    by = f"{ENVIRONMENT_LABEL}, {SERVICE_LABEL}"
    requests, status = config.metrics_requests_total, config.metrics_status_label
    errors = f'sum by ({by}) (rate({requests}{{{status}=~"5.."}}[5m]))'
    total = f"sum by ({by}) (rate({requests}[5m]))"
    percent = f"{config.server_error_alert_percent:g}"
    return (
        "groups:\n"
        "  - name: service-health\n"
        "    rules:\n"
        "      - alert: ServiceServerErrorRate\n"
        f"        expr: ({errors} / {total}) * 100 > {percent}\n"
        f"        for: {config.server_error_alert_after_seconds}s\n"
        "        labels:\n"
        "          severity: critical\n"
        f"          project: {project}\n"
        "        annotations:\n"
        f'          summary: "{{{{ $labels.{SERVICE_LABEL} }}}} in {{{{ $labels.{ENVIRONMENT_LABEL} }}}}: '
        f'more than {percent}% of requests answered 5xx for {config.server_error_alert_after_seconds}s"\n'
    )


def alertmanager_yaml(topic_arn: str, region: str, project: str) -> str:
    """Every alert goes to `topic_arn` (in `region`), grouped per environment and service."""
    return (
        "alertmanager_config: |\n"
        "  route:\n"
        "    receiver: report-topic\n"
        f"    group_by: [alertname, {ENVIRONMENT_LABEL}, {SERVICE_LABEL}]\n"
        "    group_wait: 30s\n"
        "    group_interval: 5m\n"
        "    repeat_interval: 4h\n"
        "  receivers:\n"
        "    - name: report-topic\n"
        "      sns_configs:\n"
        f"        - topic_arn: {topic_arn}\n"
        "          sigv4:\n"
        f"            region: {region}\n"
        f'          subject: "[{project}] {{{{ .Status }}}}: {{{{ .CommonLabels.alertname }}}} '
        f'{{{{ .CommonLabels.{ENVIRONMENT_LABEL} }}}}/{{{{ .CommonLabels.{SERVICE_LABEL} }}}}"\n'
    )


def report_topic_alert_accounts(config: CicdConfig, registry_account_id: str,
                                environment_account_ids: Sequence[str]) -> list[str]:
    """The accounts whose workspaces alert through the report topic (registry account).

    Amazon Managed Service for Prometheus publishes only to SNS topics in the workspace's
    own account: the report topic serves the workspaces in the registry account (the shared
    one, or an environment that lives there), every other workspace gets an `AlertTopic`.
    """
    workspace_accounts = [registry_account_id] if config.shared_prometheus else environment_account_ids
    return sorted({account for account in workspace_accounts if account == registry_account_id})


@dataclass
class Workspace:
    """One Prometheus workspace, the provider (account) it lives in (None: the registry's),
    and the topic its alert manager publishes to."""

    arn: str
    id: str
    remote_write_url: str
    provider: Any
    alert_topic_arn: str


class AlertTopic(Construct):
    """Creates the topic a workspace outside the registry account alerts through.

    Amazon Managed Service for Prometheus publishes only to SNS topics in the workspace's
    account, so the report topic (registry account) cannot receive these alerts. In the
    account of `workspace` (an `aws_prometheus_workspace`, created through `provider`): a KMS key, the topic
    `<prefix>-prometheus-alerts` encrypted with it, and the same e-mail subscriptions as the
    report topic (`report_email_addresses`; each confirms on its own). Only
    aps.amazonaws.com acting for exactly this workspace (`aws:SourceAccount`,
    `aws:SourceArn`) may publish and use the key; the account manages both; nothing is
    published without TLS.

    Attributes: `arn`, `key_arn`, `region`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: CicdConfig, prefix: str, partition: str,
                 account_id: str, region: str, workspace: Any, provider: Any) -> None:
        super().__init__(scope, construct_id)
        self.region = region
        prometheus = prometheus_publishers([account_id], [workspace.arn])
        key_policy = policy.document(self, "KeyPolicy", policy.account_root_admin(account_id, partition),
                                     prometheus_encrypts(prometheus))
        key = kms.key(self, "Key", description=f"Encrypts the {prefix} Prometheus alert topic",
                      policy_json=key_policy.json, alias_prefix=prefix, alias="prometheus-alerts",
                      provider=provider)
        self.key_arn = key.arn
        topic = aws.sns_topic.SnsTopic(
            self, "Topic", name=physical_name(NameKind.SNS_TOPIC, prefix, "prometheus-alerts"),
            kms_master_key_id=key.arn, provider=provider,
        )
        self.arn = topic.arn
        topic_policy = policy.document(self, "TopicPolicyDocument", *topic_statements(
            topic.arn, account_root_arn=f"arn:{partition}:iam::{account_id}:root", prometheus=prometheus,
        ))
        aws.sns_topic_policy.SnsTopicPolicy(self, "TopicPolicy", arn=topic.arn, policy=topic_policy.json,
                                            provider=provider)
        subscribe_emails(self, topic.arn, config.report_email_addresses, provider=provider)
        TerraformOutput(self, "TopicArn", value=topic.arn, description=f"Prometheus alert topic of {prefix}")


class Monitoring(Construct):
    """Creates the Prometheus workspaces the API tasks write to, their alerting, and Grafana.

    - `prometheus_workspaces = "per_environment"`: in each environment's account a
      workspace (KMS-encrypted, logging to an encrypted log group); `"shared"`: one in
      the registry account, with an ingest role per environment that exactly that
      environment's task roles may assume;
    - in each workspace a rule group namespace: a service's 5xx share above
      `server_error_alert_percent` for `server_error_alert_after_seconds` alerts (a failing
      health probe alerts from the API tier: `modules/api/health.py`);
    - an alert manager definition that sends every alert to the report topic when the
      workspace is in the registry account, else to an `AlertTopic` in the workspace's
      account (Prometheus publishes only to topics in its own account);
    - in each environment's account, SSM parameters `/<prefix>/monitoring/...` where
      the API tier reads the workspace and remote-write URL (and ingest role);
    - with a `grafana` block: an Amazon Managed Grafana workspace in the registry
      account whose role queries the workspaces (per environment, through a
      query role in that account, assumed only by Grafana's role).

    Emulator: `aws_prometheus_alert_manager_definition` and `aws_grafana_workspace`
    (and its SAML configuration) are left out; moto has no API for them.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: CicdConfig, project: str, partition: str,
                 registry_account_id: str, registry_region: str, topic: ReportTopic,
                 environments: Sequence[EnvironmentReach], target: Target) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.project = project
        self.partition = partition
        self.topic = topic
        self.target = target
        self.workspaces: dict[str, Workspace] = {}  # environment name -> its workspace
        self.ingest_roles: dict[str, Any] = {}
        self.grafana_role = self._grafana_role() if config.grafana else None
        query_role_arns: list[str] = []
        if config.shared_prometheus:
            shared = self._workspace(Construct(self, "Shared"), provider=None, account_id=registry_account_id,
                                     region=registry_region, prefix=project, prevent_destroy=True)
            for environment in environments:
                self.workspaces[environment.name] = shared
                self.ingest_roles[environment.name] = self._ingest_role(environment, shared)
            query_arns = [shared.arn]
        else:
            for environment in environments:
                scope_ = Construct(self, environment.construct_id)
                workspace = self._workspace(
                    scope_, provider=environment.provider, account_id=environment.account_id,
                    region=environment.region, prefix=environment.prefix,
                    prevent_destroy=environment.config.cicd.prevent_destroy,
                )
                self.workspaces[environment.name] = workspace
                if self.grafana_role is not None:
                    query_role_arns.append(self._query_role(scope_, environment, workspace).arn)
            query_arns = []
        for environment in environments:
            self._parameters(environment)
        if self.grafana_role is not None:
            self._grafana(query_arns, query_role_arns)

    def _workspace(self, scope: Construct, *, provider: Any, account_id: str, region: str, prefix: str,
                   prevent_destroy: bool) -> Workspace:
        p = self.partition
        log_group_name = physical_name(NameKind.LOG_GROUP, f"/aws/vendedlogs/prometheus/{prefix}")
        log_group_arn = f"arn:{p}:logs:{region}:{account_id}:log-group:{log_group_name}"
        key_policy = policy.document(
            scope, "KeyPolicy",
            policy.account_root_admin(account_id, p),
            policy.cloudwatch_logs_encrypt(region, log_group_arn),
        )
        keep = TerraformResourceLifecycle(prevent_destroy=prevent_destroy)
        key = kms.key(scope, "Key", description=f"Encrypts the {prefix} Prometheus workspace and its logs",
                      policy_json=key_policy.json, alias_prefix=prefix, alias="prometheus", lifecycle=keep,
                      provider=provider)
        log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            scope, "LogGroup", name=log_group_name, retention_in_days=self.config.monitoring_log_retention_days,
            kms_key_id=key.arn, provider=provider, lifecycle=keep,
        )
        module = aws.prometheus_workspace
        resource = module.PrometheusWorkspace(
            scope, "Workspace", alias=prefix, kms_key_arn=key.arn,
            logging_configuration=module.PrometheusWorkspaceLoggingConfiguration(log_group_arn=f"{log_group.arn}:*"),
            provider=provider, lifecycle=keep,
        )
        aws.prometheus_rule_group_namespace.PrometheusRuleGroupNamespace(
            scope, "AlertRules", name="service-health", workspace_id=resource.id,
            data=rules_yaml(self.config, self.project), provider=provider,
        )
        # The report topic admits the workspaces of `report_topic_alert_accounts`; Prometheus
        # publishes only within its own account, so any other workspace gets a topic of its own.
        if account_id in self.topic.alert_accounts:
            topic_arn, topic_region = self.topic.arn, self.topic.region
        else:
            alert_topic = AlertTopic(scope, "AlertTopic", config=self.config, prefix=prefix, partition=p,
                                     account_id=account_id, region=region, workspace=resource,
                                     provider=provider)
            topic_arn, topic_region = alert_topic.arn, alert_topic.region
        if self.target.supports("aws_prometheus_alert_manager_definition"):
            aws.prometheus_alert_manager_definition.PrometheusAlertManagerDefinition(
                scope, "AlertManager", workspace_id=resource.id, provider=provider,
                definition=alertmanager_yaml(topic_arn, topic_region, self.project),
            )
        TerraformOutput(scope, "WorkspaceEndpoint", value=resource.prometheus_endpoint,
                        description=f"Prometheus endpoint of {prefix}")
        return Workspace(arn=resource.arn, id=resource.id,
                         remote_write_url=f"{resource.prometheus_endpoint}api/v1/remote_write", provider=provider,
                         alert_topic_arn=topic_arn)

    def _ingest_role(self, environment: EnvironmentReach, workspace: Workspace) -> aws.iam_role.IamRole:
        """Shared workspace: the role exactly this environment's task roles assume to remote-write."""
        scope = Construct(self, environment.construct_id)
        p, account = self.partition, environment.account_id
        task_roles = sorted(
            f"arn:{p}:iam::{account}:role/{contract.task_role_name(environment.prefix, service.name)}"
            for service in environment.config.api.service
        )
        trust = policy.document(scope, "IngestTrust", policy.statement(
            sid="TaskRolesAssume", actions=["sts:AssumeRole"],
            principals=[{"type": "AWS", "identifiers": [f"arn:{p}:iam::{account}:root"]}],
            conditions=[{"test": "ArnEquals", "variable": "aws:PrincipalArn", "values": task_roles}],
        ))
        role = aws.iam_role.IamRole(
            scope, "IngestRole", name=physical_name(NameKind.IAM_ROLE, environment.prefix, "prometheus-ingest"),
            description=f"Remote-writes {environment.name}'s metrics to the shared Prometheus workspace",
            assume_role_policy=trust.json,
        )
        permissions = policy.document(scope, "IngestPermissions", policy.statement(
            sid="RemoteWrite", actions=["aps:RemoteWrite"], resources=[workspace.arn],
        ))
        aws.iam_role_policy.IamRolePolicy(scope, "IngestRolePolicy", name="remote-write", role=role.id,
                                          policy=permissions.json)
        return role

    def _parameters(self, environment: EnvironmentReach) -> None:
        """Where the API tier finds its workspace (SSM parameters in the environment's account)."""
        scope = cast(Construct, self.node.try_find_child(environment.construct_id)
                     or Construct(self, environment.construct_id))
        workspace = self.workspaces[environment.name]
        values = {"WorkspaceArn": ("workspace-arn", workspace.arn),
                  "RemoteWriteUrl": ("remote-write-url", workspace.remote_write_url)}
        if environment.name in self.ingest_roles:
            values["IngestRoleArn"] = ("ingest-role-arn", self.ingest_roles[environment.name].arn)
        for construct_id, (what, value) in values.items():
            aws.ssm_parameter.SsmParameter(
                scope, f"{construct_id}Parameter", name=contract.monitoring_parameter(environment.prefix, what),
                type="String", value=value, provider=environment.provider,
                description=f"{environment.name}'s Prometheus workspace (written by shared-cicd, read by the API tier)",
            )

    def _grafana_role(self) -> aws.iam_role.IamRole:
        # Grafana sends aws:SourceArn, its workspace's ARN (Amazon Managed Grafana User Guide,
        # "Cross-service confused deputy prevention",
        # https://docs.aws.amazon.com/grafana/latest/userguide/cross-service-confused-deputy-prevention.html),
        # arn:${Partition}:grafana:${Region}:${Account}:/workspaces/${ResourceId} (Service Authorization
        # Reference, Amazon Managed Grafana, resource types): this account's workspaces only.
        account = self._registry_account_token()
        trust = policy.service_trust(self, "GrafanaTrust", sid="GrafanaAssumes", service="grafana.amazonaws.com",
                                     account_id=account, conditions=[
                                         {"test": "ArnLike", "variable": "aws:SourceArn",
                                          "values": [f"arn:{self.partition}:grafana:*:{account}:/workspaces/*"]}])
        return aws.iam_role.IamRole(
            self, "GrafanaRole", name=physical_name(NameKind.IAM_ROLE, self.project, "grafana"),
            description="Amazon Managed Grafana: queries the Prometheus workspaces", assume_role_policy=trust.json,
        )

    def _registry_account_token(self) -> str:
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Identity")
        return identity.account_id

    def _query_role(self, scope: Construct, environment: EnvironmentReach, workspace: Workspace) -> aws.iam_role.IamRole:
        """Per-environment workspace: the role in its account that only Grafana's role may assume."""
        assert self.grafana_role is not None
        trust = policy.document(scope, "QueryTrust", policy.statement(
            sid="GrafanaRoleAssumes", actions=["sts:AssumeRole"],
            principals=[{"type": "AWS", "identifiers": [self.grafana_role.arn]}],
        ))
        role = aws.iam_role.IamRole(
            scope, "GrafanaQueryRole", name=physical_name(NameKind.IAM_ROLE, environment.prefix, "grafana-query"),
            description=f"Grafana reads {environment.name}'s Prometheus workspace and CloudWatch metrics",
            assume_role_policy=trust.json, provider=environment.provider,
        )
        permissions = policy.document(
            scope, "QueryPermissions",
            policy.statement(sid="QueryWorkspace", actions=QUERY_ACTIONS, resources=[workspace.arn]),
            # The API latency panels of docs/grafana/ (modules/api/grafana.py) read API Gateway's metrics.
            policy.statement(sid="ReadCloudWatchMetrics", actions=CLOUDWATCH_READ_ACTIONS, resources=["*"]),
        )
        aws.iam_role_policy.IamRolePolicy(scope, "GrafanaQueryRolePolicy", name="query", role=role.id,
                                          policy=permissions.json, provider=environment.provider)
        TerraformOutput(scope, "GrafanaQueryRoleArn", value=role.arn,
                        description=f"Grafana's data source role for {environment.name} (assume role ARN)")
        return role

    def _grafana(self, workspace_arns: Sequence[str], query_role_arns: Sequence[str]) -> None:
        config = self.config.grafana
        assert config is not None and self.grafana_role is not None
        statements = []
        if workspace_arns:
            statements.append(policy.statement(sid="QueryWorkspaces", actions=QUERY_ACTIONS,
                                               resources=list(workspace_arns)))
        if query_role_arns:
            statements.append(policy.statement(sid="AssumeQueryRoles", actions=["sts:AssumeRole"],
                                               resources=list(query_role_arns)))
        permissions = policy.document(self, "GrafanaPermissions", *statements)
        aws.iam_role_policy.IamRolePolicy(self, "GrafanaRolePolicy", name="query-prometheus",
                                          role=self.grafana_role.id, policy=permissions.json)
        if not self.target.supports("aws_grafana_workspace"):
            return
        workspace = aws.grafana_workspace.GrafanaWorkspace(
            self, "Grafana", name=physical_name(NameKind.GENERIC, self.project),
            description=f"{self.project}: dashboards over the Prometheus workspaces and CloudWatch",
            account_access_type="CURRENT_ACCOUNT",
            authentication_providers=[p.value for p in config.authentication_providers],
            permission_type="CUSTOMER_MANAGED", role_arn=self.grafana_role.arn, data_sources=["PROMETHEUS", "CLOUDWATCH"],
        )
        if config.saml_metadata_url is not None and self.target.supports("aws_grafana_workspace_saml_configuration"):
            aws.grafana_workspace_saml_configuration.GrafanaWorkspaceSamlConfiguration(
                self, "GrafanaSaml", workspace_id=workspace.id, idp_metadata_url=config.saml_metadata_url,
                admin_role_values=list(config.saml_admin_role_values),
                editor_role_values=list(config.saml_editor_role_values) or list(config.saml_admin_role_values),
                role_assertion=config.saml_role_assertion,
            )
        TerraformOutput(self, "GrafanaEndpoint", value=workspace.endpoint, description="Grafana URL")
