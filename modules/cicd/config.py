"""Typed configuration of the CI/CD tier.

Two blocks feed the `shared-cicd` stack:

- `cicd { ... }` in `environments/shared.hcl` (`CicdConfig`): what the organisation
  shares: the image repositories' rules, the report topic, the CI role's trust,
  where the Prometheus workspaces live, the alert rules, Grafana;
- `cicd { ... }` in each `environments/<env>.hcl` (`CicdEnvironmentConfig`): how the
  pipeline reaches that environment: who may assume its deploy role and how, the
  role Terraform runs as there, and how its monitoring workspace is kept.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from modules.core.naming import NameKind, check_name
from modules.core.schema import check, check_range, whole
from modules.core.values import EMAIL, IMAGE_TAG, LOG_RETENTION_DAYS, PRINCIPAL_ARN, ROLE_ARN

OIDC_PROVIDER_ARN = whole(r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/[A-Za-z0-9.\-_/:]+$")
# IAM CreateOpenIDConnectProvider: an https:// URL, the tokens' `iss`, without query or fragment;
# AWS asks for no port (IAM User Guide, "Create an OpenID Connect (OIDC) identity provider in IAM").
ISSUER_URL = whole(r"^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$")
# A certificate thumbprint: the SHA-1 of the issuer's top intermediate CA, 40 hex digits.
THUMBPRINT = whole(r"^[0-9a-fA-F]{40}$")
# STS: 2..1224 characters of letters, digits and `+=,.@:/-`.
EXTERNAL_ID = whole(r"^[\w+=,.@:/-]{2,1224}$")
PROMETHEUS_NAME = whole(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
PROMETHEUS_LABEL = whole(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
HTTPS_URL = whole(r"^https://[^\s]+$")

# STS limits on a role's maximum session (seconds).
SESSION_SECONDS = (3600, 43200)


class PrometheusWorkspaces(enum.Enum):
    """Where the Amazon Managed Service for Prometheus workspaces live."""

    # One per environment, in that environment's account: an environment's metrics
    # and alerts stay in its own account, the tasks write without leaving it.
    PER_ENVIRONMENT = "per_environment"
    # One for the organisation, in the registry account; every environment's tasks
    # write to it through an ingest role there (series carry an `environment` label).
    SHARED = "shared"


class GrafanaAuthentication(enum.Enum):
    AWS_SSO = "AWS_SSO"  # IAM Identity Center users and groups
    SAML = "SAML"  # an external identity provider (metadata URL in `saml_metadata_url`)


def check_principals(key: str, values: tuple[str, ...]) -> None:
    for value in values:
        check(bool(PRINCIPAL_ARN.match(value)), key, value,
              "IAM role or user ARNs (arn:aws:iam::123456789012:role/name); never an account root")
    check(len(set(values)) == len(values), key, values, "distinct ARNs")


def check_external_id(key: str, value: str | None) -> None:
    if value is not None:
        check(bool(EXTERNAL_ID.match(value)) and len(value) >= 8, key, "<hidden>",
              "8..1224 letters, digits and + = , . @ : / - (STS external id)")


def check_role(key: str, value: str | None) -> None:
    if value is not None:
        check(bool(ROLE_ARN.match(value)), key, value, "an IAM role ARN (arn:aws:iam::123456789012:role/name)")


@dataclass(frozen=True, kw_only=True, slots=True)
class GrafanaConfig:
    """`grafana { ... }` inside `cicd`: one Amazon Managed Grafana workspace (billed per active user)."""

    authentication_providers: tuple[GrafanaAuthentication, ...] = (GrafanaAuthentication.AWS_SSO,)
    saml_metadata_url: str | None = None
    saml_admin_role_values: tuple[str, ...] = ()
    saml_editor_role_values: tuple[str, ...] = ()
    saml_role_assertion: str = "role"

    def __post_init__(self) -> None:
        providers = self.authentication_providers
        check(len(providers) >= 1 and len(set(providers)) == len(providers), "authentication_providers",
              [p.value for p in providers], "one or both of 'AWS_SSO', 'SAML', each once")
        saml = GrafanaAuthentication.SAML in providers
        if saml:
            check(self.saml_metadata_url is not None and bool(HTTPS_URL.match(self.saml_metadata_url)),
                  "saml_metadata_url", self.saml_metadata_url,
                  "the identity provider's https:// metadata URL when authentication_providers has 'SAML'")
            check(bool(self.saml_admin_role_values), "saml_admin_role_values", self.saml_admin_role_values,
                  "at least one role value whose users administer Grafana when 'SAML' is used")
        else:
            for key in ("saml_metadata_url", "saml_admin_role_values", "saml_editor_role_values"):
                value = getattr(self, key)
                check(not value, key, value, "unset unless authentication_providers has 'SAML'")


@dataclass(frozen=True, kw_only=True, slots=True)
class JenkinsOidcConfig:
    """`jenkins_oidc { ... }` inside `cicd`: the Jenkins "OpenID Connect Provider" plugin
    (`oidc-provider`) as the pipelines' identity.

    `shared-cicd` registers `issuer_url` as an IAM OIDC provider in every account that holds a
    pipeline role; each role's trust requires `aud` = `audience` and a `sub` (the plugin's
    default subject claim is the job's URL, `${JOB_URL}`) of the right job:

    - `deploy_subjects`: who may assume the deploy roles: the infrastructure job's `main`
      branch, spelled exactly (StringEquals; no wildcard);
    - `plan_subjects`: who may assume the plan roles: the infrastructure job's branches and
      pull requests (StringLike, `*` allowed inside a subject);
    - `push_subjects`: who may assume the CI role (ECR push, the report topic): the
      application jobs and the infrastructure job's `main` (it tags what it promotes).
    """

    issuer_url: str
    audience: str = "sts.amazonaws.com"
    # Empty: IAM finds the thumbprint of the issuer's certificate itself (aws 5.x makes
    # thumbprint_list optional; IAM validates well-known CAs with its own trust store).
    thumbprints: tuple[str, ...] = ()
    deploy_subjects: tuple[str, ...] = ()
    plan_subjects: tuple[str, ...] = ()
    push_subjects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(bool(ISSUER_URL.match(self.issuer_url)), "issuer_url", self.issuer_url,
              "the plugin's https:// issuer URL, without port, query or fragment "
              "(https://jenkins.example.com/oidc)")
        check(bool(self.audience) and len(self.audience) <= 255 and self.audience.strip() == self.audience,
              "audience", self.audience, "the `aud` the Jenkins credential puts in its tokens (1..255 characters)")
        for thumbprint in self.thumbprints:
            check(bool(THUMBPRINT.match(thumbprint)), "thumbprints", thumbprint,
                  "SHA-1 thumbprints of 40 hex digits")
        check(len(self.thumbprints) <= 5, "thumbprints", self.thumbprints, "at most 5 (IAM's limit)")
        check(bool(self.deploy_subjects), "deploy_subjects", self.deploy_subjects,
              "at least one subject: the infrastructure job's main branch")
        for subject in self.deploy_subjects:
            check(bool(subject) and not any(c in subject for c in "*?"), "deploy_subjects", subject,
                  "exact subjects without * or ? (only the infrastructure job's main branch deploys)")
        for key in ("plan_subjects", "push_subjects"):
            values = getattr(self, key)
            check(bool(values), key, values, "at least one subject")
            for subject in values:
                check(bool(subject) and subject.strip("*?:/") != "", key, subject,
                      "subjects that name a job, not a bare wildcard")
        for key in ("deploy_subjects", "plan_subjects", "push_subjects"):
            values = getattr(self, key)
            check(len(set(values)) == len(values), key, values, "distinct subjects")

    @property
    def host(self) -> str:
        """`jenkins.example.com/oidc`: the provider's ARN suffix and the prefix of its condition keys."""
        return self.issuer_url.removeprefix("https://").rstrip("/")


@dataclass(frozen=True, kw_only=True, slots=True)
class CicdConfig:
    """`cicd { ... }` in `shared.hcl`: ECR rules, the report topic, the CI role, monitoring."""

    RETIRED_KEYS: ClassVar[dict[str, str]] = {
        "health_alert_after_seconds": "a failing health probe alerts from the API tier: each service's "
                                      "UnhealthyHostsAlarm on its probe metric (api.service.unhealthy_hosts_alarm_threshold)",
    }

    # The role the `shared-cicd` stack's provider assumes in the registry account.
    terraform_role_arn: str | None = None

    # Jenkins authenticates with id tokens of its OIDC plugin (keyless).
    jenkins_oidc: JenkinsOidcConfig | None = None
    # The documented fallback, off by default: the CI role also trusts these IAM principals
    # (static keys held by Jenkins) with the external id. Deploy and plan roles never do.
    static_credentials_fallback: bool = False
    ci_principal_arns: tuple[str, ...] = ()
    ci_external_id: str | None = None
    ci_max_session_seconds: int = 3600

    # ECR: repositories come from the environments' services; these are extra ones
    # (images no service names, such as a mirrored collector image).
    extra_repositories: tuple[str, ...] = ()
    untagged_image_expiry_days: int = 7
    release_images_kept: int = 100
    # Images `promote` tagged `release-<env>-<tag>` (what an environment runs or ran) are kept
    # apart from release_images_kept: the newest this many of them.
    promoted_images_kept: int = 1000
    enhanced_scanning: bool = False

    report_topic_name: str = "pipeline-reports"
    report_email_addresses: tuple[str, ...] = ()

    prometheus_workspaces: PrometheusWorkspaces = PrometheusWorkspaces.PER_ENVIRONMENT
    monitoring_log_retention_days: int = 90
    # What the rules read: the services' request counter and its status-code label.
    metrics_requests_total: str = "http_requests_total"
    metrics_status_label: str = "code"
    server_error_alert_percent: float = 5.0
    server_error_alert_after_seconds: int = 300
    # The ADOT collector sidecar of every API service task: its image, mirrored into the
    # registry (tasks pull through the VPC endpoints, never from the internet).
    collector_image_repository: str = "aws-otel-collector"
    collector_image_tag: str = "v0.40.0"
    collector_scrape_interval_seconds: int = 15
    grafana: GrafanaConfig | None = None

    def __post_init__(self) -> None:
        check_role("terraform_role_arn", self.terraform_role_arn)
        self._check_ci()
        for index, name in enumerate(self.extra_repositories):
            check_name(NameKind.ECR_REPOSITORY, f"extra_repositories[{index}]", name)
        check(len(set(self.extra_repositories)) == len(self.extra_repositories), "extra_repositories",
              self.extra_repositories, "distinct names")
        check_range("untagged_image_expiry_days", self.untagged_image_expiry_days, 1, 365)
        check_range("release_images_kept", self.release_images_kept, 1, 10000)
        check_range("promoted_images_kept", self.promoted_images_kept, 1, 10000)
        check_name(NameKind.SNS_TOPIC, "report_topic_name", self.report_topic_name)
        for address in self.report_email_addresses:
            check(bool(EMAIL.match(address)), "report_email_addresses", address, "e-mail addresses")
        check(len(set(self.report_email_addresses)) == len(self.report_email_addresses), "report_email_addresses",
              self.report_email_addresses, "distinct addresses")
        check(self.monitoring_log_retention_days in LOG_RETENTION_DAYS, "monitoring_log_retention_days",
              self.monitoring_log_retention_days, f"one of CloudWatch's retention periods {LOG_RETENTION_DAYS}")
        check(bool(PROMETHEUS_NAME.match(self.metrics_requests_total)), "metrics_requests_total",
              self.metrics_requests_total, "a Prometheus metric name")
        check(bool(PROMETHEUS_LABEL.match(self.metrics_status_label)), "metrics_status_label",
              self.metrics_status_label, "a Prometheus label name")
        check(0 < self.server_error_alert_percent <= 100, "server_error_alert_percent",
              self.server_error_alert_percent, "above 0 and at most 100")
        check_range("server_error_alert_after_seconds", self.server_error_alert_after_seconds, 60, 3600)
        check_name(NameKind.ECR_REPOSITORY, "collector_image_repository", self.collector_image_repository)
        check(bool(IMAGE_TAG.match(self.collector_image_tag)), "collector_image_tag", self.collector_image_tag,
              "a Docker tag (letters, digits, _ . -; at most 128)")
        check_range("collector_scrape_interval_seconds", self.collector_scrape_interval_seconds, 5, 300)

    def _check_ci(self) -> None:
        check(self.jenkins_oidc is not None, "jenkins_oidc", None,
              "set: the pipelines authenticate with the Jenkins OIDC plugin's id tokens "
              "(see modules/cicd/README.md, Jenkins set-up)")
        check_principals("ci_principal_arns", self.ci_principal_arns)
        check_external_id("ci_external_id", self.ci_external_id)
        if self.static_credentials_fallback:
            check(bool(self.ci_principal_arns), "ci_principal_arns", self.ci_principal_arns,
                  "at least one principal when static_credentials_fallback = true")
            check(self.ci_external_id is not None, "ci_external_id", self.ci_external_id,
                  "set when static_credentials_fallback = true (the CI role requires it on every AssumeRole)")
        else:
            check(not self.ci_principal_arns, "ci_principal_arns", self.ci_principal_arns,
                  "unset unless static_credentials_fallback = true (static keys are the documented fallback)")
            check(self.ci_external_id is None, "ci_external_id", "<hidden>",
                  "unset unless static_credentials_fallback = true")
        check(SESSION_SECONDS[0] <= self.ci_max_session_seconds <= SESSION_SECONDS[1], "ci_max_session_seconds",
              self.ci_max_session_seconds, f"{SESSION_SECONDS[0]}..{SESSION_SECONDS[1]}")

    @property
    def shared_prometheus(self) -> bool:
        return self.prometheus_workspaces is PrometheusWorkspaces.SHARED


@dataclass(frozen=True, kw_only=True, slots=True)
class CicdEnvironmentConfig:
    """`cicd { ... }` in `<env>.hcl`: the environment's deploy role and monitoring workspace."""

    # The role Terraform runs as in this environment's account: the deploy role may
    # assume it, and the `shared-cicd` stack's provider for this environment does.
    # Default: the environment's `assume_role_arn`.
    terraform_role_arn: str | None = None
    # Break-glass principals (people, with MFA or an external id) the deploy role trusts besides
    # the infrastructure job's id tokens; none by default.
    deploy_principal_arns: tuple[str, ...] = ()
    deploy_external_id: str | None = None
    deploy_require_mfa: bool = False
    deploy_max_session_seconds: int = 3600
    prevent_destroy: bool = True

    def __post_init__(self) -> None:
        check_role("terraform_role_arn", self.terraform_role_arn)
        check_principals("deploy_principal_arns", self.deploy_principal_arns)
        check_external_id("deploy_external_id", self.deploy_external_id)
        check(SESSION_SECONDS[0] <= self.deploy_max_session_seconds <= SESSION_SECONDS[1],
              "deploy_max_session_seconds", self.deploy_max_session_seconds,
              f"{SESSION_SECONDS[0]}..{SESSION_SECONDS[1]}")
