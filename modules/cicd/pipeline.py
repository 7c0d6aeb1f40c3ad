"""The pipeline's AWS side: the report topic, the CI role Jenkins assumes, a deploy role per environment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cdktf import TerraformOutput
from constructs import Construct

from modules import aws, contract
from modules.cicd.config import CicdConfig, JenkinsOidcConfig
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


def prometheus_encrypts(conditions: Sequence[dict[str, Any]]) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocumentStatement:
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


# What a plan reads: every service the stacks use, `Describe*`/`List*`/`Get*` only (API Gateway's
# reads are the `GET` verb). STS is left out: its `Get*` mints credentials (GetSessionToken,
# GetFederationToken); GetCallerIdentity needs no permission.
PLAN_READ_SERVICES = (
    "acm", "application-autoscaling", "aps", "cloudfront", "cloudwatch", "dynamodb", "ec2", "ecr", "ecs",
    "elasticloadbalancing", "events", "grafana", "iam", "kms", "logs", "rds", "route53", "s3",
    "secretsmanager", "servicediscovery", "sns", "ssm", "wafv2", "xray",
)
# Reads a plan needs none of and that reveal secret values or data: secrets, anything KMS
# decrypts (SecureString parameters, encrypted objects), bucket objects, an instance's Windows
# password, log events. An explicit Deny, so no other grant can add them back.
PLAN_DENIED_READS = (
    "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue", "kms:Decrypt",
    "s3:GetObject", "s3:GetObjectVersion", "ec2:GetPasswordData", "logs:GetLogEvents", "logs:GetLogRecord",
    "logs:FilterLogEvents", "logs:GetQueryResults",
)


def web_identity_statement(*, sid: str, provider_arn: str, oidc: JenkinsOidcConfig, subjects: Sequence[str],
                           exact: bool) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocumentStatement:
    """Tokens of the Jenkins issuer (`provider_arn`) with `aud` = the configured audience and a `sub`
    among `subjects` (StringEquals when `exact`, else StringLike) may assume the role."""
    return policy.statement(
        sid=sid, actions=["sts:AssumeRoleWithWebIdentity"],
        principals=[{"type": "Federated", "identifiers": [provider_arn]}],
        conditions=[
            {"test": "StringEquals", "variable": f"{oidc.host}:aud", "values": [oidc.audience]},
            {"test": "StringEquals" if exact else "StringLike", "variable": f"{oidc.host}:sub",
             "values": list(subjects)},
        ],
    )


class JenkinsIssuer(Construct):
    """Registers the Jenkins OIDC issuer (`cicd.jenkins_oidc.issuer_url`) as an IAM OIDC identity
    provider in every account that holds a pipeline role (a role may only trust a provider of its
    own account), once per account.

    `accounts` pairs each account id with the provider (Terraform's) that works there and a
    construct id. Attribute: `arns` (account id -> the identity provider's ARN)."""

    def __init__(self, scope: Construct, construct_id: str, *, oidc: JenkinsOidcConfig,
                 accounts: Sequence[tuple[str, Any, str]]) -> None:
        super().__init__(scope, construct_id)
        self.arns: dict[str, str] = {}
        for account, provider, account_construct_id in accounts:
            if account in self.arns:
                continue
            identity_provider = aws.iam_openid_connect_provider.IamOpenidConnectProvider(
                self, account_construct_id, url=oidc.issuer_url, client_id_list=[oidc.audience],
                thumbprint_list=list(oidc.thumbprints) or None, provider=provider,
            )
            self.arns[account] = identity_provider.arn


class Pipeline(Construct):
    """Creates the roles the pipeline runs as; Jenkins assumes each with an id token of its OIDC
    plugin (`sts:AssumeRoleWithWebIdentity`), the role's trust deciding by the token's `sub`:

    - the CI role (registry account) `<project>-ci`: `jenkins_oidc.push_subjects` (the
      application jobs, infrastructure `main`); with `static_credentials_fallback`, also
      `ci_principal_arns` with `ci_external_id`. It may push to the project's repositories
      and publish to the report topic. It reaches no deploy or plan role;
    - per environment (in its account) a plan role `<prefix>-plan`: `jenkins_oidc.plan_subjects`
      (the infrastructure job's pull requests and `main`). It reads (`Describe*`, `List*`, `Get*`
      of the services the stacks use, never secret values: `PLAN_DENIED_READS`) and assumes its
      environment's plan-state role (bootstrap: read the state, take the lock). It writes
      nothing and cannot reach the Terraform role;
    - per environment a deploy role `<prefix>-deploy`: `jenkins_oidc.deploy_subjects` exactly
      (the infrastructure job's `main`), plus break-glass `deploy_principal_arns` (with
      `deploy_external_id` and/or MFA). It may assume the environment's Terraform role,
      run the registered migration task (the only role that may: IAM has no condition key for
      RunTask's overrides) and stop only tasks it started, roll the API's services, sync the
      site bucket and invalidate its distribution, and assume its environment's state-access
      role. Resources are named, never `*`, for writes.

    Attributes: `ci_role`, `plan_roles` and `deploy_roles` (environment name -> role), `issuer`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: CicdConfig, project: str, partition: str,
                 registry_account_id: str, repository_arns: Sequence[str], topic: ReportTopic,
                 environments: Sequence[EnvironmentReach], account_of: Callable[[str], str]) -> None:
        super().__init__(scope, construct_id)
        self.partition = partition
        self.project = project
        assert config.jenkins_oidc is not None, "CicdConfig requires jenkins_oidc"
        self.oidc = config.jenkins_oidc
        # Where each role lives, as the target sees accounts (the emulator has one account).
        accounts = [(account_of(registry_account_id), None, "Registry")]
        accounts += [(account_of(e.account_id), e.provider, e.construct_id) for e in environments]
        self.issuer = JenkinsIssuer(self, "JenkinsIssuer", oidc=self.oidc, accounts=accounts)
        self._account_of = account_of
        self.ci_role = aws.iam_role.IamRole(
            self, "CiRole", name=physical_name(NameKind.IAM_ROLE, project, "ci"),
            description="Jenkins builds: push images, publish reports",
            assume_role_policy=self._ci_trust(config, registry_account_id).json,
            max_session_duration=config.ci_max_session_seconds,
        )
        self.plan_roles = {e.name: self._plan_role(e) for e in environments}
        self.deploy_roles = {e.name: self._deploy_role(e) for e in environments}
        statements = [
            # GetAuthorizationToken has no resource-level permissions: AWS requires "*".
            policy.statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            policy.statement(sid="PushProjectImages", actions=PUSH_ACTIONS, resources=list(repository_arns)),
            policy.statement(sid="PublishReports", actions=["sns:Publish"], resources=[topic.arn]),
            policy.statement(sid="EncryptReports", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                             resources=[topic.key_arn]),
        ]
        permissions = policy.document(self, "CiPermissions", *statements)
        aws.iam_role_policy.IamRolePolicy(self, "CiRolePolicy", name="pipeline", role=self.ci_role.id,
                                          policy=permissions.json)
        TerraformOutput(self, "CiRoleArn", value=self.ci_role.arn, description="The role Jenkins pushes images as")

    def _issuer_arn(self, account_id: str) -> str:
        return self.issuer.arns[self._account_of(account_id)]

    def _ci_trust(self, config: CicdConfig, registry_account_id: str) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument:
        statements = [web_identity_statement(sid="JenkinsJobsPush", provider_arn=self._issuer_arn(registry_account_id),
                                             oidc=self.oidc, subjects=self.oidc.push_subjects, exact=False)]
        if config.static_credentials_fallback:
            statements.append(policy.statement(
                sid="StaticCredentialsFallback",
                actions=["sts:AssumeRole"],
                principals=[{"type": "AWS", "identifiers": list(config.ci_principal_arns)}],
                conditions=[{"test": "StringEquals", "variable": "sts:ExternalId", "values": [config.ci_external_id]}],
            ))
        return policy.document(self, "CiTrust", *statements)

    def _plan_role(self, environment: EnvironmentReach) -> aws.iam_role.IamRole:
        scope = Construct(self, f"{environment.construct_id}Plan")
        trust = policy.document(scope, "PlanTrust", web_identity_statement(
            sid="JenkinsPlans", provider_arn=self._issuer_arn(environment.account_id), oidc=self.oidc,
            subjects=self.oidc.plan_subjects, exact=False,
        ))
        role = aws.iam_role.IamRole(
            scope, "PlanRole", name=contract.plan_role_name(environment.prefix),
            description=f"Plans {environment.name}: reads, reads its state, takes its lock; writes nothing",
            assume_role_policy=trust.json, max_session_duration=environment.config.cicd.deploy_max_session_seconds,
            provider=environment.provider,
        )
        statements = [
            policy.statement(sid="ReadEverythingPlanned", resources=["*"], actions=[
                *(f"{service}:{verb}*" for service in PLAN_READ_SERVICES for verb in ("Describe", "List", "Get")),
                "apigateway:GET",
            ]),
            # Lambda's reads return a function's environment variables: the environment's own functions
            # only (`<prefix>-...`, which hold none), not whatever else the account runs.
            policy.statement(sid="ReadTheEnvironmentsFunctions", actions=["lambda:Get*", "lambda:List*"],
                             resources=[f"arn:{self.partition}:lambda:{environment.region}:{environment.account_id}"
                                        f":function:{environment.prefix}-*"]),
            policy.statement(sid="NoSecretValues", effect="Deny", actions=PLAN_DENIED_READS, resources=["*"]),
        ]
        if environment.plan_state_role_arn is not None:
            statements.append(policy.statement(sid="ReadStateAndLock", actions=["sts:AssumeRole"],
                                               resources=[environment.plan_state_role_arn]))
        permissions = policy.document(scope, "PlanPermissions", *statements)
        aws.iam_role_policy.IamRolePolicy(scope, "PlanRolePolicy", name="plan", role=role.id,
                                          policy=permissions.json, provider=environment.provider)
        TerraformOutput(scope, "PlanRoleArn", value=role.arn,
                        description=f"The role pull requests plan {environment.name} as")
        return role

    def _deploy_role(self, environment: EnvironmentReach) -> aws.iam_role.IamRole:
        scope = Construct(self, environment.construct_id)
        settings = environment.config.cicd
        statements = [web_identity_statement(
            sid="InfrastructureMainDeploys", provider_arn=self._issuer_arn(environment.account_id), oidc=self.oidc,
            subjects=self.oidc.deploy_subjects, exact=True,
        )]
        if settings.deploy_principal_arns:
            conditions = []
            if settings.deploy_external_id is not None:
                conditions.append({"test": "StringEquals", "variable": "sts:ExternalId",
                                   "values": [settings.deploy_external_id]})
            if settings.deploy_require_mfa:
                conditions.append({"test": "Bool", "variable": "aws:MultiFactorAuthPresent", "values": ["true"]})
            statements.append(policy.statement(
                sid="BreakGlassAssumes", actions=["sts:AssumeRole"],
                principals=[{"type": "AWS", "identifiers": list(settings.deploy_principal_arns)}],
                conditions=conditions,
            ))
        trust = policy.document(scope, "DeployTrust", *statements)
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
        started_by = contract.deploy_role_name(prefix)
        cluster_arn = f"arn:{p}:ecs:{region}:{account}:cluster/{cluster}"
        tasks = f"arn:{p}:ecs:{region}:{account}:task/{cluster}/*"
        return [
            policy.statement(sid="RunTerraform", actions=["sts:AssumeRole"], resources=[environment.terraform_role_arn]),
            # IAM has no condition key for RunTask's overrides (command, environment): the Service
            # Authorization Reference ("Actions, resources, and condition keys for Amazon Elastic
            # Container Service", RunTask) lists aws:RequestTag/${TagKey}, aws:ResourceTag/${TagKey},
            # aws:TagKeys, ecs:capacity-provider, ecs:cluster (type ARN), ecs:enable-ebs-volumes,
            # ecs:enable-execute-command (type String) and ecs:ResourceTag/${TagKey}. So this role,
            # which only the infrastructure job's main branch assumes, is the only one that may run
            # the migration task; without ECS Exec (no shell into a task holding the master
            # credentials; `delivery migrate` sends enableExecuteCommand=false, so the key has a
            # value), tagged with the role's name so it may stop it again.
            policy.statement(
                sid="RunMigrations", actions=["ecs:RunTask"],
                resources=[f"arn:{p}:ecs:{region}:{account}:task-definition/{contract.migrations_family(prefix)}:*"],
                conditions=[
                    {"test": "ArnEquals", "variable": "ecs:cluster", "values": [cluster_arn]},
                    {"test": "StringEquals", "variable": "ecs:enable-execute-command", "values": ["false"]},
                    {"test": "StringEquals", "variable": f"aws:RequestTag/{contract.STARTED_BY_TAG}",
                     "values": [started_by]},
                ],
            ),
            # Tags given to RunTask need ecs:TagResource for that call: ecs:CreateAction (type String,
            # "the name of a resource-creating API action", Service Authorization Reference) is
            # "RunTask" then (Amazon ECS Developer Guide, "Grant permission to tag resources on creation").
            policy.statement(
                sid="TagMigrationTasks", actions=["ecs:TagResource"], resources=[tasks],
                conditions=[{"test": "StringEquals", "variable": "ecs:CreateAction", "values": ["RunTask"]}],
            ),
            policy.statement(
                sid="PassMigrationRoles", actions=["iam:PassRole"], resources=migration_roles,
                conditions=[{"test": "StringEquals", "variable": "iam:PassedToService",
                             "values": ["ecs-tasks.amazonaws.com"]}],
            ),
            policy.statement(sid="FollowTasks", actions=["ecs:DescribeTasks"], resources=[tasks]),
            # Only tasks this role started (RunMigrations tags them): never a service's task.
            policy.statement(
                sid="StopOwnTasks", actions=["ecs:StopTask"], resources=[tasks],
                conditions=[{"test": "StringEquals", "variable": f"aws:ResourceTag/{contract.STARTED_BY_TAG}",
                             "values": [started_by]}],
            ),
            policy.statement(sid="RollServices", actions=["ecs:DescribeServices", "ecs:UpdateService"],
                             resources=[f"arn:{p}:ecs:{region}:{account}:service/{cluster}/*"]),
            # DescribeTaskDefinition has no resource-level permissions: AWS requires "*" (a read).
            policy.statement(sid="ReadTaskDefinitions", actions=["ecs:DescribeTaskDefinition"], resources=["*"]),
            # `apply` and `verify` (delivery/secrets.py) check that every secret the tasks read has a
            # value: DescribeSecret returns the version stages, never a value.
            policy.statement(sid="CheckSecrets", actions=["secretsmanager:DescribeSecret"],
                             resources=[f"arn:{p}:secretsmanager:{region}:{account}:secret:{prefix}/*"]),
            # `verify` reads each service's health probe metric (modules/api/health.py) and `canary judge`
            # the API's request metrics (delivery/canary.py); CloudWatch's metric reads have no
            # resource-level permissions: AWS requires "*" (a read).
            policy.statement(sid="ReadHealthMetrics",
                             actions=["cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData"], resources=["*"]),
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
