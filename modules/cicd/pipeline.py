"""The pipeline's AWS side: the report topic, the CI role Jenkins assumes, a deploy role per environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cdktf import TerraformOutput
from constructs import Construct

from modules import aws, contract
from modules.cicd.config import CicdConfig
from modules.cicd.reach import EnvironmentReach
from modules.core import kms, policy
from modules.core.naming import NameKind, physical_name
from modules.core.subscriptions import subscribe_emails

# What pushing an image takes, and what `release`/`promote` read (digests, scan findings).
PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
    "ecr:DescribeImageScanFindings", "ecr:DescribeImages", "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload", "ecr:ListImages", "ecr:PutImage",
    "ecr:UploadLayerPart",
)


def prometheus_publishers(account_ids: Sequence[str], workspace_arns: Sequence[str]) -> list[dict[str, Any]]:
    """The conditions that admit Amazon Managed Service for Prometheus only on behalf of these
    workspaces (a `*` in an ARN matches several) in these accounts: the confused-deputy guard."""
    return [
        {"test": "StringEquals", "variable": "aws:SourceAccount", "values": list(account_ids)},
        {"test": "ArnLike" if any("*" in arn for arn in workspace_arns) else "ArnEquals",
         "variable": "aws:SourceArn", "values": list(workspace_arns)},
    ]


def prometheus_encrypts(conditions: Sequence[dict[str, Any]]) -> Any:
    """The key-policy statement that lets the alert managers `conditions` admit publish to a topic
    encrypted with the key (SNS asks for a data key on their behalf)."""
    return policy.statement(
        sid="PrometheusAlertsEncrypt", actions=["kms:GenerateDataKey*", "kms:Decrypt"], resources=["*"],
        principals=[{"type": "Service", "identifiers": ["aps.amazonaws.com"]}], conditions=conditions,
    )


def topic_statements(topic_arn: str, *, account_root_arn: str,
                     prometheus: Sequence[dict[str, Any]] | None) -> list[Any]:
    """A topic policy: the account manages the topic, the alert managers `prometheus` admits
    (None: none) publish, and nothing is published without TLS."""
    statements = [policy.topic_account_manages(topic_arn, account_root_arn)]
    if prometheus:
        statements.append(policy.statement(
            sid="PrometheusAlertsPublish",
            actions=["sns:Publish", "sns:GetTopicAttributes"],
            resources=[topic_arn],
            principals=[{"type": "Service", "identifiers": ["aps.amazonaws.com"]}],
            conditions=prometheus,
        ))
    statements.append(policy.deny_insecure_publish(topic_arn))
    return statements


class ReportTopic(Construct):
    """Creates the pipeline's report topic (SNS, KMS-encrypted) and its e-mail subscriptions.

    The destination of the "REPORT" e-mail (a Trivy scan found a critical
    vulnerability; the CI role publishes it) and of the monitoring alerts of the
    Prometheus workspaces in its own account, `alert_accounts` (the registry's, or
    none): Amazon Managed Service for Prometheus publishes only to topics in the
    workspace's account, so a workspace elsewhere alerts through a topic of its own
    (`monitoring.AlertTopic`). The topic and its key admit only those publishers,
    over TLS.

    Attributes: `arn`, `key_arn`, `region`, `alert_accounts`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: CicdConfig, project: str, region: str,
                 partition: str, alert_accounts: Sequence[str]) -> None:
        super().__init__(scope, construct_id)
        self.region = region
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Identity")
        accounts = sorted(set(alert_accounts))
        self.alert_accounts = tuple(accounts)
        workspaces = [f"arn:{partition}:aps:*:{account}:workspace/*" for account in accounts]
        prometheus = prometheus_publishers(accounts, workspaces) if accounts else None
        key_statements = [policy.account_root_admin(identity.account_id, partition)]
        if prometheus:
            key_statements.append(prometheus_encrypts(prometheus))
        key_policy = policy.document(self, "KeyPolicy", *key_statements)
        key = kms.key(self, "Key", description=f"Encrypts the {project} pipeline report topic",
                      policy_json=key_policy.json, alias_prefix=project, alias="pipeline-reports")
        self.key_arn = key.arn
        self.topic = aws.sns_topic.SnsTopic(
            self, "Topic", name=physical_name(NameKind.SNS_TOPIC, project, config.report_topic_name),
            kms_master_key_id=key.arn,
        )
        self.arn = self.topic.arn
        topic_policy = policy.document(self, "TopicPolicyDocument", *topic_statements(
            self.topic.arn, account_root_arn=f"arn:{partition}:iam::{identity.account_id}:root",
            prometheus=prometheus,
        ))
        aws.sns_topic_policy.SnsTopicPolicy(self, "TopicPolicy", arn=self.topic.arn, policy=topic_policy.json)
        subscribe_emails(self, self.topic.arn, config.report_email_addresses)
        TerraformOutput(self, "TopicArn", value=self.topic.arn, description="Pipeline report topic")


class Pipeline(Construct):
    """Creates the roles the pipeline runs as.

    - the CI role (registry account) Jenkins assumes: trusted by the principals in
      `ci_principal_arns` with `ci_external_id`, or by tokens of `ci_oidc_provider_arn`
      whose subject is in `ci_oidc_subjects`. It may push to the project's
      repositories only, publish to the report topic, and assume the deploy roles
      that trust it;
    - per environment (in its account) a deploy role `<prefix>-deploy`: trusted by the
      CI role (unless `deploy_trusts_ci_role = false`) and `deploy_principal_arns`,
      with `deploy_external_id` and/or MFA when the environment asks. It may assume
      the environment's Terraform role (to apply its stacks), run the Flyway task and
      follow its logs, roll the API's services, sync the site bucket and invalidate
      the site's CloudFront distribution, and assume its environment's state-access role
      in the state account (its Terraform state; the delivery commands read stack
      outputs there). Resources are named, never
      `*`, for writes.

    Attributes: `ci_role`, `deploy_roles` (environment name -> role).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: CicdConfig, project: str, partition: str,
                 repository_arns: Sequence[str], topic: ReportTopic,
                 environments: Sequence[EnvironmentReach]) -> None:
        super().__init__(scope, construct_id)
        self.partition = partition
        self.project = project
        self.ci_role = aws.iam_role.IamRole(
            self, "CiRole", name=physical_name(NameKind.IAM_ROLE, project, "ci"),
            description="Jenkins: pushes images, publishes reports, assumes the deploy roles",
            assume_role_policy=self._ci_trust(config).json, max_session_duration=config.ci_max_session_seconds,
        )
        self.deploy_roles = {e.name: self._deploy_role(e) for e in environments}
        assumable = [self.deploy_roles[e.name].arn for e in environments if e.config.cicd.deploy_trusts_ci_role]
        statements = [
            # GetAuthorizationToken has no resource-level permissions: AWS requires "*".
            policy.statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            policy.statement(sid="PushProjectImages", actions=PUSH_ACTIONS, resources=list(repository_arns)),
            policy.statement(sid="PublishReports", actions=["sns:Publish"], resources=[topic.arn]),
            policy.statement(sid="EncryptReports", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                             resources=[topic.key_arn]),
        ]
        if assumable:
            statements.append(policy.statement(sid="AssumeDeployRoles", actions=["sts:AssumeRole"],
                                               resources=assumable))
        permissions = policy.document(self, "CiPermissions", *statements)
        aws.iam_role_policy.IamRolePolicy(self, "CiRolePolicy", name="pipeline", role=self.ci_role.id,
                                          policy=permissions.json)
        TerraformOutput(self, "CiRoleArn", value=self.ci_role.arn, description="The role Jenkins assumes")

    def _ci_trust(self, config: CicdConfig) -> Any:
        if config.ci_principal_arns:
            return policy.document(self, "CiTrust", policy.statement(
                sid="JenkinsAssumes",
                actions=["sts:AssumeRole"],
                principals=[{"type": "AWS", "identifiers": list(config.ci_principal_arns)}],
                conditions=[{"test": "StringEquals", "variable": "sts:ExternalId", "values": [config.ci_external_id]}],
            ))
        provider = config.ci_oidc_provider_arn or ""
        host = provider.split(":oidc-provider/", 1)[1]
        return policy.document(self, "CiTrust", policy.statement(
            sid="JenkinsTokensAssume",
            actions=["sts:AssumeRoleWithWebIdentity"],
            principals=[{"type": "Federated", "identifiers": [provider]}],
            conditions=[
                {"test": "StringEquals", "variable": f"{host}:aud", "values": [config.ci_oidc_audience]},
                {"test": "StringLike", "variable": f"{host}:sub", "values": list(config.ci_oidc_subjects)},
            ],
        ))

    def _deploy_role(self, environment: EnvironmentReach) -> aws.iam_role.IamRole:
        scope = Construct(self, environment.construct_id)
        settings = environment.config.cicd
        principals = [self.ci_role.arn] if settings.deploy_trusts_ci_role else []
        principals += list(settings.deploy_principal_arns)
        conditions = []
        if settings.deploy_external_id is not None:
            conditions.append({"test": "StringEquals", "variable": "sts:ExternalId",
                               "values": [settings.deploy_external_id]})
        if settings.deploy_require_mfa:
            conditions.append({"test": "Bool", "variable": "aws:MultiFactorAuthPresent", "values": ["true"]})
        trust = policy.document(scope, "DeployTrust", policy.statement(
            sid="PipelineAssumes", actions=["sts:AssumeRole"],
            principals=[{"type": "AWS", "identifiers": principals}], conditions=conditions,
        ))
        prefix = environment.prefix
        role = aws.iam_role.IamRole(
            scope, "DeployRole", name=contract.deploy_role_name(prefix),
            description=f"Deploys {environment.name}: Terraform, migrations, ECS, the site bucket and CDN",
            assume_role_policy=trust.json, max_session_duration=settings.deploy_max_session_seconds,
            provider=environment.provider,
        )
        permissions = policy.document(scope, "DeployPermissions", *self._deploy_statements(environment))
        aws.iam_role_policy.IamRolePolicy(scope, "DeployRolePolicy", name="deploy", role=role.id,
                                          policy=permissions.json, provider=environment.provider)
        TerraformOutput(scope, "DeployRoleArn", value=role.arn,
                        description=f"The role the pipeline deploys {environment.name} as")
        return role

    def _deploy_statements(self, environment: EnvironmentReach) -> list[Any]:
        p, account, region, prefix = self.partition, environment.account_id, environment.region, environment.prefix
        cluster = contract.cluster_name(prefix)
        migration_roles = [f"arn:{p}:iam::{account}:role/{name(prefix, contract.MIGRATIONS)}"
                           for name in (contract.execution_role_name, contract.task_role_name)]
        bucket = f"arn:{p}:s3:::{contract.site_bucket_name(prefix, environment.config)}"
        log_groups = f"arn:{p}:logs:{region}:{account}:log-group:{contract.api_log_group_prefix(prefix)}*"
        owned = [
            {"test": "StringEquals", "variable": "aws:ResourceTag/project", "values": [self.project]},
            {"test": "StringEquals", "variable": "aws:ResourceTag/environment", "values": [environment.name]},
        ]
        return [
            policy.statement(sid="RunTerraform", actions=["sts:AssumeRole"], resources=[environment.terraform_role_arn]),
            policy.statement(
                sid="RunMigrations", actions=["ecs:RunTask"],
                resources=[f"arn:{p}:ecs:{region}:{account}:task-definition/{contract.migrations_family(prefix)}:*"],
                conditions=[{"test": "ArnEquals", "variable": "ecs:cluster",
                             "values": [f"arn:{p}:ecs:{region}:{account}:cluster/{cluster}"]}],
            ),
            policy.statement(
                sid="PassMigrationRoles", actions=["iam:PassRole"], resources=migration_roles,
                conditions=[{"test": "StringEquals", "variable": "iam:PassedToService",
                             "values": ["ecs-tasks.amazonaws.com"]}],
            ),
            policy.statement(sid="FollowTasks", actions=["ecs:DescribeTasks", "ecs:StopTask"],
                             resources=[f"arn:{p}:ecs:{region}:{account}:task/{cluster}/*"]),
            policy.statement(sid="RollServices", actions=["ecs:DescribeServices", "ecs:UpdateService"],
                             resources=[f"arn:{p}:ecs:{region}:{account}:service/{cluster}/*"]),
            # DescribeTaskDefinition has no resource-level permissions: AWS requires "*" (a read).
            policy.statement(sid="ReadTaskDefinitions", actions=["ecs:DescribeTaskDefinition"], resources=["*"]),
            # `apply` and `verify` (delivery/secrets.py) check that every secret the tasks read has a
            # value: DescribeSecret returns the version stages, never a value.
            policy.statement(sid="CheckSecrets", actions=["secretsmanager:DescribeSecret"],
                             resources=[f"arn:{p}:secretsmanager:{region}:{account}:secret:{prefix}/*"]),
            # `verify` reads each service's health probe metric (modules/api/health.py); CloudWatch's
            # metric reads have no resource-level permissions: AWS requires "*" (a read).
            policy.statement(sid="ReadHealthMetrics", actions=["cloudwatch:GetMetricStatistics"], resources=["*"]),
            policy.statement(sid="ReadTaskLogs", actions=["logs:GetLogEvents", "logs:FilterLogEvents"],
                             resources=[log_groups, f"{log_groups}:*"]),
            policy.statement(sid="ListSite", actions=["s3:ListBucket"], resources=[bucket]),
            # `deploy-frontend` (delivery/frontend.py) tags stale objects before it deletes them.
            policy.statement(sid="SyncSite", actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                                      "s3:GetObjectTagging", "s3:PutObjectTagging"],
                             resources=[f"{bucket}/*"]),
            policy.statement(
                sid="SiteKey", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[f"arn:{p}:kms:{region}:{account}:key/*"],
                conditions=[
                    {"test": "StringEquals", "variable": "kms:ViaService", "values": [f"s3.{region}.amazonaws.com"]},
                    {"test": "ArnLike", "variable": "kms:EncryptionContext:aws:s3:arn",
                     "values": [bucket, f"{bucket}/*"]},
                ],
            ),
            policy.statement(
                sid="InvalidateSite", actions=["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"],
                resources=[f"arn:{p}:cloudfront::{account}:distribution/*"], conditions=owned,
            ),
            *self._state_statements(environment),
        ]

    def _state_statements(self, environment: EnvironmentReach) -> list[Any]:
        """Assume the environment's state-access role (bootstrap creates it in the state account,
        trusting this role): `terraform init/plan/apply` run as this role reach their state
        through it, and so do the delivery commands that read stack outputs. None when the
        environment's state is in Terraform Cloud."""
        if environment.state_role_arn is None:
            return []
        return [policy.statement(sid="AssumeStateRole", actions=["sts:AssumeRole"],
                                 resources=[environment.state_role_arn])]
