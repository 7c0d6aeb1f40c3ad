"""Typed configuration of the API tier (the `api { ... }` block).

Services are data: each `service "<name>" { ... }` block is one ECS service behind
its own `/<path_prefix>` routes, so adding `/service3` is a config change.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, fields

from modules.api.health import PROBE_INTERVAL_SECONDS
from modules.core.errors import ConfigError, Described, report, shown
from modules.core.naming import NameKind, check_name, pascal
from modules.core.schema import check, check_range, whole
from modules.core.values import EMAIL, IMAGE_DIGEST, IMAGE_TAG, LOG_RETENTION_DAYS
from modules.database.access import DatabaseAccess, login_name

# Fargate's allowed task sizes: memory (MiB) per CPU units (AWS ECS developer guide,
# "Task CPU and memory"); 8 and 16 vCPU need Linux platform 1.4.0, which is the default.
FARGATE_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# API Gateway's cache cluster sizes (GiB).
CACHE_CLUSTER_SIZES_GIB = (0.5, 1.6, 6.1, 13.5, 28.4, 58.2, 118, 237)

# Set by the API tier from the database handle; a service may not set them itself (and
# DB_PASSWORD stays reserved: services log in with IAM tokens, never a password).
DATABASE_VARIABLES = ("DB_HOST", "DB_READER_HOST", "DB_PORT", "DB_NAME", "DB_USERNAME", "DB_IAM_AUTH", "DB_PASSWORD")

RESERVED_SERVICE_NAMES = ("migrations",)
SERVICE_NAME = whole(r"^[a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*$")
PATH_PREFIX = whole(r"^[a-z0-9][a-z0-9_-]*$")
HEALTH_PATH = whole(r"^/[A-Za-z0-9/_.-]*$")
HEALTH_CODES = whole(r"^(?:\d{3}(?:-\d{3})?)(?:,\d{3}(?:-\d{3})?)*$")
SCHEDULE_CRON = whole(r"^cron\((?:\S+ ){5}\S+\)$")
TIMEZONE = whole(r"^(?:UTC|[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z0-9_+-]+)+)$")
VARIABLE_NAME = whole(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_NAME = whole(r"^[A-Za-z0-9-]+$")
QUERY_NAME = whole(r"^[A-Za-z0-9_.-]+$")
# What only a service with a route (path_prefix and container_port) has: its API Gateway methods,
# its NLB listener and probe, their alarms and the request-count policy. A worker sets none of them.
ROUTE_SETTINGS = (
    "health_check_path", "health_check_codes", "health_check_timeout_seconds", "health_check_grace_period_seconds",
    "authorization", "required_headers", "required_query_parameters", "caching", "cache_key_query_parameters",
    "requests_per_task_target", "unhealthy_hosts_alarm_threshold", "server_errors_alarm_threshold",
    "canary_listener_port",
)
# Parts start with a letter, so `pascal` (construct ids) never maps two names to one id.
SECRET_NAME = SERVICE_NAME
USER = whole(r"^[0-9]{1,10}(?::[0-9]{1,10})?$")
STAGE_NAME = whole(r"^[A-Za-z0-9_-]{1,128}$")
SCHEMA_NAME = whole(r"^[a-z][a-z0-9_]{0,62}$")


class CpuArchitecture(enum.Enum):
    X86_64 = "X86_64"
    ARM64 = "ARM64"


class Authorization(enum.Enum):
    """Who may call a service's routes through API Gateway."""

    AWS_IAM = "AWS_IAM"  # SigV4-signed callers with execute-api:Invoke
    NONE = "NONE"  # anyone who gets past WAF and throttling; the service authenticates


class LoggingLevel(enum.Enum):
    """API Gateway execution logging (access logs are always on)."""

    OFF = "OFF"
    ERROR = "ERROR"
    INFO = "INFO"


# Construct ids the API tier gives its own parts in the two scopes that also hold one construct per
# service (named `pascal(service name)`): the Api construct and its Gateway. A service named
# `gateway` would take `Gateway`, and the build would stop with a jsii error; the loader refuses it
# by name instead. tests/test_api_config.py builds the tier and checks this list is complete.
API_PART_IDS = frozenset({
    "AlarmKey", "AlarmKeyAlias", "AlarmKeyPolicy", "AlarmTopic", "AlarmTopicArn", "AlarmTopicPolicy",
    "AlarmTopicPolicyDocument", "Cluster", "ClusterName",
    "CollectorRemoteWriteUrl", "CollectorWorkspaceArn", "ExecuteCommandLogGroup", "Gateway", "Identity",
    "LoadBalancer", "LogKey", "LogKeyAlias", "LogKeyPolicy", "Migrations", "Partition", "S3PrefixList", "SecretKey",
    "SecretKeyAlias", "SecretKeyPolicy", "ServiceNames", "TaskDefinitionArns", "Dashboard", "DashboardUrl",
    "HealthMetrics", "CanaryAccessLogGroup", "CanaryExecutionLogGroup", "CanaryServiceNames",
    "CanaryTaskDefinitionArns",
    "AccessLogGroup", "Account", "AliasRecord", "BasePathMapping", "Certificate", "CertificateValidation",
    "CertificateValidationRecord", "CloudWatchRole", "CloudWatchRolePolicy", "CloudWatchTrust", "CustomDomainUrl",
    "Deployment", "DomainName", "ExecutionLogGroup", "InvokeUrl", "MethodSettings", "ParameterValidator", "RestApi",
    "RestApiId", "Stage", "VpcLink", "WafLogGroup", "WafLogging", "WebAcl", "WebAclAssociation", "Zone",
})
# Parts named after other config: `Secret<secret name>`, and `Email<address>` (core/subscriptions.py),
# whose `<` no service's construct id has.
API_PART_ID_PREFIX = re.compile(r"Secret[A-Z]|Email<")


# ECS service quotas: a task definition is at most 64 KiB; half of it for one service's variables.
ENVIRONMENT_MAX_BYTES = 32 * 1024
# Elastic Load Balancing quotas: 50 listeners per Network Load Balancer (one per service here, and
# one more per running canary).
MAX_SERVICES = 50
# A candidate's NLB listener port, unless `canary_listener_port` names one: the service's port plus this.
CANARY_PORT_OFFSET = 10000
# The candidate's physical names: `<prefix>-<service>-canary`.
CANDIDATE_SUFFIX = "canary"


def _check_task_size(cpu_units: int, memory_mib: int) -> None:
    check(cpu_units in FARGATE_MEMORY_MIB, "cpu_units", cpu_units,
          f"one of Fargate's CPU sizes {tuple(FARGATE_MEMORY_MIB)}")
    allowed = FARGATE_MEMORY_MIB[cpu_units]
    if memory_mib not in allowed:
        report(ConfigError(
            "memory_mib",
            f"must be a size Fargate allows with cpu_units = {cpu_units} "
            f"({allowed[0]}..{allowed[-1]} in steps of {allowed[1] - allowed[0]}), got {memory_mib}",
        ))


def _check_image(repository: str, tag: str, digest: str | None) -> None:
    check_name(NameKind.ECR_REPOSITORY, "image_repository", repository)
    check(bool(IMAGE_TAG.match(tag)), "image_tag", tag, "a Docker tag (letters, digits, _ . -; at most 128)")
    if digest is not None:
        check(bool(IMAGE_DIGEST.match(digest)), "image_digest", digest, "'sha256:' and 64 lowercase hex digits")


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleConfig:
    """`schedule "<name>" { cron = "...", min_count = N, max_count = M }` in a service: from `cron`
    (Application Auto Scaling's `cron(minutes hours day-of-month month day-of-week year)`, in
    `timezone`) on, the service scales between these counts until another schedule runs."""

    name: str
    cron: str
    min_count: int
    max_count: int
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        check(bool(SERVICE_NAME.match(self.name)) and len(self.name) <= 40, "name", self.name,
              "1..40 lowercase letters, digits and single hyphens")
        check(bool(SCHEDULE_CRON.match(self.cron)), "cron", self.cron,
              "cron(minutes hours day-of-month month day-of-week year), six fields")
        check_range("min_count", self.min_count, 0, 1000)
        check_range("max_count", self.max_count, 1, 1000)
        check(self.min_count <= self.max_count, "min_count", self.min_count, f"at most max_count ({self.max_count})")
        check(bool(TIMEZONE.match(self.timezone)), "timezone", self.timezone, 'an IANA time zone like "Europe/Berlin"')


@dataclass(frozen=True, kw_only=True, slots=True)
class Canary:
    """A candidate version of a service running beside its stable one (modules/api/README.md, "Canary").

    Written only by `python -m delivery canary start|step` into `environments/<env>.release.hcl`:
    the candidate's image (same repository as the service) and the share of the stage's requests
    API Gateway sends to the stage's canary, where the service's stage variable points at the
    candidate's listener.
    """

    image_tag: str
    image_digest: str
    # API Gateway's canary percentTraffic: 0.0..100.0 (CanarySettings, API Gateway REST API reference).
    percent: float

    def __post_init__(self) -> None:
        check(bool(IMAGE_TAG.match(self.image_tag)), "image_tag", self.image_tag,
              "a Docker tag (letters, digits, _ . -; at most 128)")
        check(bool(IMAGE_DIGEST.match(self.image_digest)), "image_digest", self.image_digest,
              "'sha256:' and 64 lowercase hex digits")
        check(0 < self.percent < 100, "percent", self.percent,
              "above 0 and below 100 (the share of requests the candidate takes; `canary promote` makes it the "
              "whole)")


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceConfig:
    """One `service "<name>" { ... }`: a container image run as an ECS service behind `/<path_prefix>`,
    or, without `path_prefix` and `container_port`, a worker: no route, no listener, no probe."""

    name: str
    # Both or neither: API Gateway's `/<path_prefix>` reaches the NLB listener on `container_port`.
    path_prefix: str | None = None
    container_port: int | None = None
    image_repository: str
    image_tag: str
    image_digest: str | None = None
    cpu_units: int = 256
    memory_mib: int = 512
    cpu_architecture: CpuArchitecture = CpuArchitecture.X86_64
    user: str = "10001"
    desired_count: int = 2
    min_count: int = 2
    max_count: int = 4
    cpu_target_percent: int = 60
    memory_target_percent: int = 70
    scale_out_cooldown_seconds: int = 60
    scale_in_cooldown_seconds: int = 300
    health_check_path: str = "/health"
    # The probe (modules/api/health.py): healthy on these codes (NLB matcher syntax: "200",
    # "200,204", "200-299"; 200..599) within the timeout, whatever the body.
    health_check_codes: str = "200"
    health_check_timeout_seconds: int = 6
    # Scraped by the task's collector sidecar (modules/api/collector.py); null: no collector.
    metrics_path: str | None = "/metrics"
    health_check_grace_period_seconds: int = 60
    # Requests per running task per minute (API Gateway `Count` on the service's routes / ECS
    # `RunningTaskCount`) that target tracking holds; null: no request-count policy.
    requests_per_task_target: int | None = None
    schedule: tuple[ScheduleConfig, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    # Its own PostgreSQL login (IAM authentication) with these privileges; "none": no login and
    # no network path to the database. Least privilege unless the environment file says otherwise.
    database_access: DatabaseAccess = DatabaseAccess.NONE
    # Off: the tasks reach only AWS (through the VPC endpoints) and the database. On: TCP 443 to
    # any address, through the NAT gateways, for third-party APIs (needs network.nat_gateways).
    internet_egress_https: bool = False
    authorization: Authorization = Authorization.AWS_IAM
    required_headers: tuple[str, ...] = ()
    required_query_parameters: tuple[str, ...] = ()
    caching: bool = True
    cache_key_query_parameters: tuple[str, ...] = ()
    unhealthy_hosts_alarm_threshold: int = 1
    server_errors_alarm_threshold: int = 5
    # The NLB listener a candidate is reached on while a canary runs; null: container_port + 10000.
    canary_listener_port: int | None = None
    # Set from the release file only (modules/release.py); never in `<env>.hcl`.
    canary: Canary | None = None

    def __post_init__(self) -> None:
        check(bool(SERVICE_NAME.match(self.name)) and len(self.name) <= 20, "name", self.name,
              "1..20 lowercase letters, digits and single hyphens, each part starting with a letter")
        check(self.name not in RESERVED_SERVICE_NAMES, "name", self.name,
              f"a name other than {', '.join(RESERVED_SERVICE_NAMES)} (the tier's own tasks use it)")
        self._check_route()
        _check_image(self.image_repository, self.image_tag, self.image_digest)
        _check_task_size(self.cpu_units, self.memory_mib)
        check(bool(USER.match(self.user)) and not re.match(r"^0+(:|$)", self.user), "user", self.user,
              "a numeric non-root uid or uid:gid (not 0), so the container never runs as root")
        check_range("min_count", self.min_count, 0, 1000)
        check_range("max_count", self.max_count, 1, 1000)
        if self.min_count > self.max_count:
            report(ConfigError("min_count", f"must be at most max_count ({self.max_count}), got {self.min_count}"))
        check(self.min_count <= self.desired_count <= self.max_count, "desired_count", self.desired_count,
              f"min_count..max_count ({self.min_count}..{self.max_count})")
        check_range("cpu_target_percent", self.cpu_target_percent, 10, 95)
        check_range("memory_target_percent", self.memory_target_percent, 10, 95)
        check_range("scale_out_cooldown_seconds", self.scale_out_cooldown_seconds, 0, 3600)
        check(self.scale_out_cooldown_seconds < self.scale_in_cooldown_seconds <= 3600, "scale_in_cooldown_seconds",
              self.scale_in_cooldown_seconds,
              f"longer than scale_out_cooldown_seconds ({self.scale_out_cooldown_seconds}) and at most 3600, "
              "so capacity is added fast and removed slowly")
        check(bool(HEALTH_PATH.match(self.health_check_path)) and len(self.health_check_path) <= 1024,
              "health_check_path", self.health_check_path, "an absolute URL path like \"/health\"")
        check(self.metrics_path is None or (bool(HEALTH_PATH.match(self.metrics_path))
                                            and len(self.metrics_path) <= 1024),
              "metrics_path", self.metrics_path, "an absolute URL path like \"/metrics\", or null (no collector)")
        check(bool(HEALTH_CODES.match(self.health_check_codes)) and all(
            200 <= int(code) <= 599 for code in re.findall(r"\d+", self.health_check_codes)),
            "health_check_codes", self.health_check_codes,
            'HTTP codes 200..599 as the NLB matcher takes them: "200", "200,204" or "200-299"')
        check(2 <= self.health_check_timeout_seconds < PROBE_INTERVAL_SECONDS, "health_check_timeout_seconds",
              self.health_check_timeout_seconds,
              f"2..{PROBE_INTERVAL_SECONDS - 1} seconds (below the probe interval, {PROBE_INTERVAL_SECONDS} s)")
        if self.requests_per_task_target is not None:
            check_range("requests_per_task_target", self.requests_per_task_target, 1, 1_000_000)
        names = [s.name for s in self.schedule]
        check(len(names) == len(set(names)), "schedule", names, "schedules with distinct names")
        for item in self.schedule:
            check(item.max_count <= self.max_count, f"schedule.{item.name}.max_count", item.max_count,
                  f"at most the service's max_count ({self.max_count}), its ceiling")
        check_range("health_check_grace_period_seconds", self.health_check_grace_period_seconds, 0, 3600)
        size = sum(len(name.encode()) + len(value.encode()) for name, value in self.environment.items())
        check(size <= ENVIRONMENT_MAX_BYTES, "environment", Described(f"{len(self.environment)} variables of {size} bytes"),
              f"at most {ENVIRONMENT_MAX_BYTES} bytes of names and values (an ECS task definition is at most "
              "64 KiB, and the collector sidecar, secrets and settings share it): put large values in a secret")
        for name in (*self.environment, *self.secrets):
            where = "environment" if name in self.environment else "secrets"
            check(bool(VARIABLE_NAME.match(name)), where, name, "environment variable names (letters, digits, _)")
            check(name not in DATABASE_VARIABLES, where, name,
                  f"names other than {', '.join(DATABASE_VARIABLES)} (set from the database tier)")
        both = sorted(set(self.environment) & set(self.secrets))
        check(not both, "secrets", both, "names not also set in environment")
        for name in self.required_headers:
            check(bool(HEADER_NAME.match(name)), "required_headers", name, "HTTP header names (letters, digits, -)")
        for key in ("required_query_parameters", "cache_key_query_parameters"):
            for name in getattr(self, key):
                check(bool(QUERY_NAME.match(name)), key, name, "query parameter names (letters, digits, _ . -)")
        check_range("unhealthy_hosts_alarm_threshold", self.unhealthy_hosts_alarm_threshold, 1, 1000)
        check_range("server_errors_alarm_threshold", self.server_errors_alarm_threshold, 1, 100000)
        if self.canary_listener_port is not None:
            check_range("canary_listener_port", self.canary_listener_port, 1024, 65535)
        if self.candidate_port is not None:
            check(self.candidate_port != self.container_port and self.candidate_port <= 65535,
                  "canary_listener_port", self.canary_listener_port if self.canary_listener_port is not None
                  else f"null (container_port + {CANARY_PORT_OFFSET} = {self.candidate_port})",
                  "a port 1024..65535 other than container_port: the NLB listener of a canary of this service")

    def _check_route(self) -> None:
        if (self.path_prefix is None) != (self.container_port is None):
            unset, given = ("container_port", "path_prefix") if self.container_port is None else (
                "path_prefix", "container_port")
            raise ConfigError(unset, f"is unset while {given} = {getattr(self, given)!r}: a service with a route "
                              "sets both (API Gateway /<path_prefix> to the NLB listener on container_port); a "
                              "worker sets neither")
        if self.path_prefix is not None and self.container_port is not None:
            check(bool(PATH_PREFIX.match(self.path_prefix)), "path_prefix", self.path_prefix,
                  "one URL path segment without slashes (lowercase letters, digits, _ -)")
            check_range("container_port", self.container_port, 1024, 65535)
            return
        for item in fields(self):
            if item.name not in ROUTE_SETTINGS:
                continue
            value = getattr(self, item.name)  # every route setting has a plain default (no factory)
            if value != item.default:
                raise ConfigError(item.name, f"is set ({value!r}) on a worker (no path_prefix and container_port): "
                                  "it belongs to a service's route; remove it, or give the service a route")
        check(self.metrics_path is None, "metrics_path", self.metrics_path,
              "null on a worker (no container_port: no port for the collector to scrape)")
        check(self.canary is None, "canary", self.name,
              "a service with a route: a canary takes a share of the API's requests, and a worker has none")

    @property
    def worker(self) -> bool:
        """No route: no API Gateway methods, NLB listener or probe (README "Workers")."""
        return self.path_prefix is None

    @property
    def construct_id(self) -> str:
        return pascal(self.name)

    @property
    def candidate_port(self) -> int | None:
        """The NLB listener port of this service's canary (its tasks listen on container_port); a worker has none."""
        if self.container_port is None:
            return None
        return self.canary_listener_port if self.canary_listener_port is not None \
            else self.container_port + CANARY_PORT_OFFSET

    @property
    def stage_variable(self) -> str:
        """The stage variable holding `<NLB DNS name>:<listener port>` that this service's routes call."""
        return "origin_" + self.name.replace("-", "_")

    def secret_references(self) -> dict[str, tuple[str, str | None]]:
        """`{variable: (secret name, JSON key or None)}` from `secrets = { VAR = "name" | "name:key" }`."""
        references = {}
        for variable, reference in self.secrets.items():
            secret, _, key = reference.partition(":")
            references[variable] = (secret, key or None)
        return references


@dataclass(frozen=True, kw_only=True, slots=True)
class MigrationsConfig:
    """`migrations { ... }`: the Flyway task the pipeline runs before deploying a new API version.

    The image is an ECR repository of the registry account (an image built `FROM
    flyway/flyway:<version>` with the SQL scripts in `/flyway/sql`), so the task
    pulls it through the VPC endpoints like the services, without internet access.
    """

    image_repository: str
    image_tag: str
    image_digest: str | None = None
    cpu_units: int = 256
    memory_mib: int = 1024
    cpu_architecture: CpuArchitecture = CpuArchitecture.X86_64
    user: str = "10001"
    locations: str = "filesystem:/flyway/sql"
    # The application's schema: Flyway migrates it, the services get their grants in it.
    schema: str = "public"

    def __post_init__(self) -> None:
        _check_image(self.image_repository, self.image_tag, self.image_digest)
        _check_task_size(self.cpu_units, self.memory_mib)
        check(bool(USER.match(self.user)) and not re.match(r"^0+(:|$)", self.user), "user", self.user,
              "a numeric non-root uid or uid:gid (not 0)")
        check(bool(whole(r"^(filesystem|classpath|s3):\S+$").match(self.locations)), "locations", self.locations,
              "a Flyway location like \"filesystem:/flyway/sql\"")
        check(bool(SCHEMA_NAME.match(self.schema)) and not self.schema.startswith("pg_"), "schema", self.schema,
              "1..63 lowercase letters, digits and underscores, starting with a letter, not 'pg_...'")


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiConfig:
    """The `api { ... }` block: cluster, load balancer, API Gateway and the services."""

    service: tuple[ServiceConfig, ...]
    migrations: MigrationsConfig
    secrets: tuple[str, ...] = ()
    fargate_weight: int = 1
    fargate_base: int = 1
    fargate_spot_weight: int = 0
    container_insights: bool = True
    enable_execute_command: bool = False
    log_retention_days: int = 90
    prevent_destroy: bool = True
    # API Gateway's CloudWatch role is one setting per account and region: when environments
    # share an account, exactly one of them sets it (load_environments checks).
    account_cloudwatch_role: bool = True
    # No longer used (the NLB writes no access logs): a clear error rather than "unknown key".
    nlb_access_log_retention_days: int | None = None
    stage_name: str = "v1"
    throttling_burst_limit: int = 100
    throttling_rate_limit: float = 50.0
    logging_level: LoggingLevel = LoggingLevel.ERROR
    cache_cluster_size_gib: float | None = None
    cache_ttl_seconds: int = 300
    waf_rate_limit_per_5_minutes: int = 2000
    # AWSManagedRulesCommonRuleSet blocks request bodies over 8 KB (its rule SizeRestrictions_BODY);
    # true counts them instead (the rest of the rule set still applies).
    waf_allow_large_bodies: bool = False
    alarm_email_addresses: tuple[str, ...] = ()
    # How `python -m delivery canary judge` decides (README, "Releasing with a canary"): at least
    # canary_min_requests on the candidate's routes over the bake, a 5XX rate at most
    # canary_max_5xx_increase_percent points above the stable version's, and an average latency at
    # most canary_max_latency_ratio times the stable version's plus canary_latency_slack_ms.
    canary_min_requests: int = 100
    canary_max_5xx_increase_percent: float = 1.0
    canary_max_latency_ratio: float = 1.5
    canary_latency_slack_ms: int = 50

    def __post_init__(self) -> None:
        check(1 <= len(self.service) <= MAX_SERVICES, "service", Described(f"{len(self.service)} services"),
              f'1..{MAX_SERVICES} service "<name>" {{ ... }} blocks (each has a listener on the one NLB, '
              f"which takes at most {MAX_SERVICES})")
        for index, service in enumerate(self.service):
            self._check_service(index, service)
        # A REST API without methods cannot be deployed (API Gateway: "The REST API doesn't contain any methods").
        check(any(not s.worker for s in self.service), "service", f"{len(self.service)} workers",
              "at least one service with a route (path_prefix and container_port)")
        for index, service in enumerate(self.service):
            if service.worker:
                continue
            # After every container_port is known distinct: a canary's listener needs a port of its own.
            ports = {p: s.name for s in self.service if s is not service and not s.worker
                     for p in (s.container_port, s.candidate_port)}
            check(service.candidate_port not in ports, f"service[{index}].canary_listener_port",
                  service.candidate_port, f"a port no other listener uses ({service.candidate_port} is service "
                  f"{ports.get(service.candidate_port)!r}'s): set canary_listener_port")
        for secret in self.secrets:
            check(bool(SECRET_NAME.match(secret)) and len(secret) <= 64, "secrets", secret,
                  "secret names of lowercase letters, digits and single hyphens, parts starting with a letter")
        check(len(set(self.secrets)) == len(self.secrets), "secrets", self.secrets, "distinct names")
        check_range("fargate_weight", self.fargate_weight, 0, 1000)
        check_range("fargate_spot_weight", self.fargate_spot_weight, 0, 1000)
        check_range("fargate_base", self.fargate_base, 0, 100000)
        check(self.fargate_weight + self.fargate_spot_weight > 0, "fargate_weight", self.fargate_weight,
              "above 0 when fargate_spot_weight is 0 (tasks need a capacity provider)")
        check(self.log_retention_days in LOG_RETENTION_DAYS, "log_retention_days", self.log_retention_days,
              f"one of CloudWatch's retention periods {LOG_RETENTION_DAYS}")
        check(self.nlb_access_log_retention_days is None, "nlb_access_log_retention_days",
              self.nlb_access_log_retention_days,
              "unset: the NLB no longer has access logging (AWS writes it only for TLS listeners, and every "
              "listener is TCP); remove the key (README, Upgrade notes)")
        check(bool(STAGE_NAME.match(self.stage_name)), "stage_name", self.stage_name,
              "1..128 letters, digits, _ -")
        check_range("throttling_burst_limit", self.throttling_burst_limit, 1, 100000)
        check(0 < self.throttling_rate_limit <= self.throttling_burst_limit, "throttling_rate_limit",
              self.throttling_rate_limit,
              f"above 0 and at most throttling_burst_limit ({self.throttling_burst_limit} requests)")
        if self.cache_cluster_size_gib is not None:
            check(self.cache_cluster_size_gib in CACHE_CLUSTER_SIZES_GIB, "cache_cluster_size_gib",
                  self.cache_cluster_size_gib, f"one of API Gateway's cache sizes {CACHE_CLUSTER_SIZES_GIB}")
        check_range("cache_ttl_seconds", self.cache_ttl_seconds, 0, 3600)
        check_range("waf_rate_limit_per_5_minutes", self.waf_rate_limit_per_5_minutes, 100, 2_000_000_000)
        for address in self.alarm_email_addresses:
            check(bool(EMAIL.match(address)), "alarm_email_addresses", address, "email addresses")
        check_range("canary_min_requests", self.canary_min_requests, 1, 100_000_000)
        check(0 <= self.canary_max_5xx_increase_percent <= 100, "canary_max_5xx_increase_percent",
              self.canary_max_5xx_increase_percent, "0..100 percentage points")
        check(1 <= self.canary_max_latency_ratio <= 10, "canary_max_latency_ratio", self.canary_max_latency_ratio,
              "1..10 (times the stable version's average latency)")
        check_range("canary_latency_slack_ms", self.canary_latency_slack_ms, 0, 29000)
        canaries = {s.name: s.canary.percent for s in self.service if s.canary is not None}
        check(len(set(canaries.values())) <= 1, "canary", canaries,
              "one share for every running canary: a stage has one canary, whose percentTraffic they share")
        check(not canaries or len(self.service) + len(canaries) <= MAX_SERVICES, "canary", sorted(canaries),
              f"at most {MAX_SERVICES} listeners on the NLB with the canaries' own")

    @property
    def canaries(self) -> tuple[ServiceConfig, ...]:
        """The services running a canary."""
        return tuple(s for s in self.service if s.canary is not None)

    def _check_service(self, index: int, service: ServiceConfig) -> None:
        key = f"service[{index}]"
        part = service.construct_id
        check(part not in API_PART_IDS and not API_PART_ID_PREFIX.match(part), f"{key}.name", service.name,
              f"a name whose construct id ({shown(part)}) the API tier does not use for one of its own parts "
              "(taken: \"gateway\", \"cluster\", \"load-balancer\", \"migrations\", \"stage\", ... and names "
              "starting \"secret-\")")
        # Requests per task divides by Container Insights' RunningTaskCount (ECS/ContainerInsights).
        check(service.requests_per_task_target is None or self.container_insights,
              f"{key}.requests_per_task_target", service.requests_per_task_target,
              "null while container_insights = false (the policy divides by its RunningTaskCount)")
        for earlier in self.service[:index]:
            check(earlier.name != service.name, f"{key}.name", service.name, "a name no other service has")
            if service.worker:
                continue
            if earlier.path_prefix == service.path_prefix:
                report(ConfigError(f"{key}.path_prefix", f"{shown(service.path_prefix)} is already the path "
                                   f"prefix of service {shown(earlier.name)}; each service needs its own"))
            if earlier.container_port == service.container_port:
                report(ConfigError(f"{key}.container_port", f"{service.container_port} is already the port of "
                                   f"service {shown(earlier.name)} (each service has its own load balancer "
                                   "listener)"))
        for variable, (secret, _) in service.secret_references().items():
            if secret not in self.secrets:
                known = ", ".join(shown(s) for s in self.secrets) or "none"
                report(ConfigError(f"{key}.secrets.{variable}", f"names the secret {shown(secret)}, which is not "
                                   f"in api.secrets (known: {known})"))

    @property
    def routed_services(self) -> tuple[ServiceConfig, ...]:
        """The services with a route (API Gateway methods, an NLB listener): every one but the workers."""
        return tuple(s for s in self.service if not s.worker)

    def database_logins(self) -> dict[str, DatabaseAccess]:
        """Each service's PostgreSQL login and its access (modules/database/access.py)."""
        return {login_name(service.name): service.database_access for service in self.service}

    @property
    def caching(self) -> bool:
        return self.cache_cluster_size_gib is not None

    def check_names(self, prefix: str) -> None:
        """The physical names built from `prefix` and each service's name, against AWS limits."""
        for index, service in enumerate(self.service):
            key = f"api.service[{index}].name"
            check_name(NameKind.TARGET_GROUP, key, prefix, service.name)
            if service.canary is not None:
                # Only a running canary has a candidate target group: a long name need not fit one before.
                check_name(NameKind.TARGET_GROUP, key, prefix, service.name, CANDIDATE_SUFFIX)
            check_name(NameKind.IAM_ROLE, key, prefix, service.name, "execution")
        check_name(NameKind.IAM_ROLE, "name_prefix", prefix, "migrations", "execution")
