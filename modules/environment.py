"""Environments are data: `environments/*.hcl` loaded into frozen, typed config.

`shared.hcl` holds what the whole organisation shares (project name, the state
bucket and lock table); `<env>.hcl` holds everything that differs between
environments. `load_environments` reads them all and checks them before any
construct is built, so bad files stop the run with every error found (up to
errors.REPORTED_MAX_ERRORS), one line each naming the file, the key, the value and
what is allowed.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from modules.api.config import ApiConfig
from modules.cicd.config import CicdConfig, CicdEnvironmentConfig
from modules.core.errors import ConfigError, collecting, report, shown
from modules.core.hcl import display, parse_hcl
from modules.core.naming import NameKind, bucket_name, check_bucket_name, check_name
from modules.core.regions import AZ_COUNT_BY_REGION, CLOUDFRONT_LOGS_UNSUPPORTED_REGIONS
from modules.core.schema import check, from_data, whole
from modules.core.settings import BackendConfig, DnsConfig, RegistryConfig, StateConfig
from modules.core.values import check_account, check_region, check_role, principal_account, role_account
from modules.database.config import DatabaseConfig
from modules.frontend.config import ACM_DOMAIN_MAX_LENGTH, LOG_BUCKET_PURPOSE, SITE_BUCKET_PURPOSE, FrontendConfig
from modules.network.config import NatGateways, NetworkConfig
from modules.release import RELEASE_SUFFIX, apply_release, load_release, release_path

SHARED_FILE = "shared.hcl"
ENVIRONMENT_NAME = whole(r"^[a-z][a-z0-9]{1,9}$")
NAME_PREFIX = whole(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
PROJECT_NAME = whole(r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")
BUCKET_SUFFIX = whole(r"^[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?$")
STATE_BUCKET_PURPOSE = "tfstate"


@dataclass(frozen=True, kw_only=True, slots=True)
class SharedConfig:
    """`environments/shared.hcl`: settings of the whole organisation."""

    project: str
    state: StateConfig
    registry: RegistryConfig
    cicd: CicdConfig
    # The path one image takes through the environments (`python -m delivery promote`).
    promotion_order: tuple[str, ...] = ("dev", "stage", "prod")
    # Production is declared here, once: an environment in one of these accounts must be
    # `production = true` (and meet the production rules), so no environment file can declare
    # production away. `[]` when there is none yet; required, so it is never forgotten.
    production_accounts: tuple[str, ...] | None = None
    # Accounts meant to hold more than one environment. Any other account, and the Terraform
    # role in it, belongs to one environment only.
    shared_accounts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(self.production_accounts is not None, "production_accounts", None,
              "the list of production accounts (production_accounts = [\"444444444444\"], or [] when there is "
              "none): an environment in one of them must be production = true")
        for key in ("production_accounts", "shared_accounts"):
            for account in getattr(self, key) or ():
                check_account(key, account)
        check(bool(PROJECT_NAME.match(self.project)), "project", self.project,
              "3..20 lowercase letters, digits and hyphens, starting with a letter")
        if not self.state.bucket:
            # 20 + 8 + 12 characters at most: always within S3's 63.
            name = bucket_name(self.project, STATE_BUCKET_PURPOSE, unique=self.state.account_id)
            object.__setattr__(self, "state", dataclasses.replace(self.state, bucket=name))
        check(len(self.promotion_order) >= 1 and len(set(self.promotion_order)) == len(self.promotion_order),
              "promotion_order", self.promotion_order, "a list of distinct environment names")
        if self.registry.account_id != self.state.account_id:
            # shared-cicd runs with the registry account's credentials, which the state account does not trust.
            check(self.state.assume_role_arn is not None, "state.assume_role_arn", self.state.assume_role_arn,
                  f"a role in the state account {self.state.account_id} that shared-cicd's backend assumes, "
                  f"since the registry account {self.registry.account_id} is another account")
        role = self.cicd.terraform_role_arn
        if role is not None:
            check(role_account(role) == self.registry.account_id, "cicd.terraform_role_arn", role,
                  f"a role in the registry account {self.registry.account_id} (shared-cicd's default provider)")


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvironmentConfig:
    """One environment (`environments/<name>.hcl`): account, region, and every tier's settings."""

    name: str
    account_id: str
    region: str
    network: NetworkConfig
    database: DatabaseConfig
    api: ApiConfig
    production: bool = False
    assume_role_arn: str | None = None
    name_prefix: str | None = None
    # The end of every bucket name (S3 names are global): the account id unless set.
    bucket_suffix: str | None = None
    backend: BackendConfig = BackendConfig()
    dns: DnsConfig | None = None
    frontend: FrontendConfig = FrontendConfig()
    cicd: CicdEnvironmentConfig = CicdEnvironmentConfig()

    @property
    def bucket_unique(self) -> str:
        """What ends this environment's bucket names: `bucket_suffix`, else the account id."""
        return self.bucket_suffix or self.account_id

    @property
    def api_origin(self) -> str:
        """Where the site's scripts reach the API: `https://api.<zone>` with dns; without,
        the stage's invoke URL, which is only known after apply, so API Gateway's domains
        in this region (AZ_COUNT_BY_REGION holds only the aws partition's regions)."""
        if self.dns is not None:
            return f"https://{self.dns.api_host_name}"
        return f"https://*.execute-api.{self.region}.amazonaws.com"

    def __post_init__(self) -> None:
        check(bool(ENVIRONMENT_NAME.match(self.name)), "name", self.name,
              "2..10 lowercase letters and digits, starting with a letter (it is the file name)")
        check_account("account_id", self.account_id)
        check_region("region", self.region)
        check_role("assume_role_arn", self.assume_role_arn)
        available = AZ_COUNT_BY_REGION[self.region]
        check(self.network.az_count <= available, "network.az_count", self.network.az_count,
              f"at most {available}, the Availability Zones {self.region} offers")
        for zone in self.network.zone_names(self.region):
            check(bool(whole(rf"^{re.escape(self.region)}[a-z]$").match(zone)), "network.availability_zones", zone,
                  f"zone names in {self.region} ({self.region}a, {self.region}b, ...)")
        if self.name_prefix is not None:
            check(bool(NAME_PREFIX.match(self.name_prefix)), "name_prefix", self.name_prefix,
                  "lowercase letters, digits and hyphens, starting with a letter")
        if self.bucket_suffix is not None:
            check(bool(BUCKET_SUFFIX.match(self.bucket_suffix)), "bucket_suffix", self.bucket_suffix,
                  "1..20 lowercase letters, digits and hyphens, starting and ending with a letter or digit")
        self._check_network()
        self._check_frontend()
        self._check_database()
        self._check_api()
        self._check_cicd()
        self._check_backend()

    def _check_backend(self) -> None:
        for arn in self.backend.state_principal_arns:
            check(principal_account(arn) == self.account_id, "backend.state_principal_arns", arn,
                  f"principals in this environment's account {self.account_id}")

    def _check_cicd(self) -> None:
        cicd = self.cicd
        role = cicd.terraform_role_arn or self.assume_role_arn
        check(role is not None, "cicd.terraform_role_arn", role,
              "the role Terraform runs as in this account when assume_role_arn is unset (the deploy role "
              "assumes it, and shared-cicd reaches this account through it)")
        assert role is not None
        key = "cicd.terraform_role_arn" if cicd.terraform_role_arn else "assume_role_arn"
        check(role_account(role) == self.account_id, key, role, f"a role in this environment's account {self.account_id}")
        if cicd.deploy_require_mfa or cicd.deploy_external_id is not None:
            check(bool(cicd.deploy_principal_arns), "cicd.deploy_principal_arns", cicd.deploy_principal_arns,
                  "break-glass principals when deploy_require_mfa or deploy_external_id is set (they apply "
                  "to those principals only; the pipeline's id tokens carry neither)")
        if self.production and cicd.deploy_principal_arns:
            check(cicd.deploy_require_mfa or cicd.deploy_external_id is not None, "cicd.deploy_require_mfa",
                  cicd.deploy_require_mfa, "true, or cicd.deploy_external_id set, when production = true "
                  "and deploy_principal_arns names break-glass principals")
        if self.production:
            check(cicd.prevent_destroy, "cicd.prevent_destroy", cicd.prevent_destroy, "true when production = true")

    def _check_api(self) -> None:
        if self.dns is not None:
            host = self.dns.api_host_name
            check(len(host) <= ACM_DOMAIN_MAX_LENGTH, "dns.zone_name", self.dns.zone_name,
                  f"short enough that the API's name fits ACM's {ACM_DOMAIN_MAX_LENGTH} characters ({shown(host)})")
        if self.production:
            check(self.api.prevent_destroy, "api.prevent_destroy", self.api.prevent_destroy,
                  "true when production = true")
        if self.network.nat_gateways is NatGateways.NONE:
            # Sessions go to Session Manager (ssmmessages) over HTTPS, which the VPC has no
            # endpoint for: without NAT, `aws ecs execute-command` would hang, not fail.
            check(not self.api.enable_execute_command, "api.enable_execute_command", True,
                  'false when network.nat_gateways = "none" (ECS Exec reaches Session Manager '
                  "through the NAT gateways)")
            # Private subnets route to the internet only through NAT: the rule would open a path
            # that leads nowhere, and calls to the third party would time out instead of failing.
            for index, service in enumerate(self.api.service):
                check(not service.internet_egress_https, f"api.service[{index}].internet_egress_https", True,
                      'false when network.nat_gateways = "none" (the private subnets reach the internet '
                      "only through the NAT gateways)")

    def _check_database(self) -> None:
        database = self.database
        allowed = database.max_replicas(self.network.az_count)
        standby = " and its Multi-AZ standby" if database.multi_az else ""
        check(database.replica_count <= allowed, "database.replica_count", database.replica_count,
              f"0..{allowed}: each read replica needs a zone of its own, apart from the primary{standby} "
              f"(network.az_count = {self.network.az_count})")
        if self.production:
            for key in ("multi_az", "prevent_destroy"):
                check(getattr(database, key), f"database.{key}", getattr(database, key),
                      "true when production = true")
            check(database.backup_replication_region is not None, "database.backup_replication_region", None,
                  "a second region when production = true (the automated backups are copied there)")
        check(database.backup_replication_region != self.region, "database.backup_replication_region",
              database.backup_replication_region, f"a region other than the environment's ({self.region})")

    def _check_network(self) -> None:
        if self.production:
            check(self.network.prevent_destroy, "network.prevent_destroy", self.network.prevent_destroy,
                  "true when production = true")

    def _check_frontend(self) -> None:
        frontend = self.frontend
        check(self.region not in CLOUDFRONT_LOGS_UNSUPPORTED_REGIONS, "region", self.region,
              "a region CloudFront delivers standard logs to: the frontend's log bucket lives in the "
              "environment's region, and CloudFront refuses buckets in opt-in regions "
              f"({', '.join(sorted(CLOUDFRONT_LOGS_UNSUPPORTED_REGIONS))})")
        if self.dns is None:
            check(frontend.subdomain is None, "frontend.subdomain", frontend.subdomain,
                  "unset without a dns { zone_name = ... } block (the site then uses CloudFront's own domain)")
        else:
            host = frontend.host_name(self.dns.zone_name)
            check(len(host) <= ACM_DOMAIN_MAX_LENGTH, "frontend.subdomain", frontend.subdomain,
                  f"short enough that the site's name fits ACM's {ACM_DOMAIN_MAX_LENGTH} characters ({shown(host)})")
            # Both stacks would create the same A record; the second apply would fail on it.
            check(host != self.dns.api_host_name, "frontend.subdomain", frontend.subdomain,
                  f"another name than the API's ({shown(self.dns.api_host_name)})")
        if self.production:
            check(frontend.prevent_destroy, "frontend.prevent_destroy", frontend.prevent_destroy,
                  "true when production = true")


@dataclass(frozen=True, slots=True)
class Environments:
    """Everything `environments/` says: the shared settings and each environment."""

    shared: SharedConfig
    environments: tuple[EnvironmentConfig, ...]
    # False when only some environment files were loaded (`ENVIRONMENTS=dev`): stacks built
    # from every environment (`shared-cicd`) are then left out rather than built from a part.
    complete: bool = True

    def get(self, name: str) -> EnvironmentConfig:
        for environment in self.environments:
            if environment.name == name:
                return environment
        known = ", ".join(e.name for e in self.environments)
        raise KeyError(f"unknown environment {name!r}; known: {known}")


def prefix_of(shared: SharedConfig, environment: EnvironmentConfig) -> str:
    """The name prefix of an environment's resources: `name_prefix`, or `<project>-<env>`."""
    return environment.name_prefix or f"{shared.project}-{environment.name}"


def load_shared(directory: Path) -> SharedConfig:
    path = directory / SHARED_FILE
    try:
        return from_data(SharedConfig, parse_hcl(path))
    except ConfigError as error:
        raise error.in_file(display(path)) from None


def load_environment(path: Path, shared: SharedConfig) -> EnvironmentConfig:
    """Load `environments/<name>.hcl`; the environment's name is the file's stem."""
    data = parse_hcl(path)
    found: list[ConfigError] = []
    if "name" in data:
        found.append(ConfigError("name", "is not a key: the environment's name is the file name"))
        data = {k: v for k, v in data.items() if k != "name"}
    try:
        environment = from_data(EnvironmentConfig, {"name": path.stem, **data})
        for index, service in enumerate(environment.api.service):
            if service.canary is not None:
                raise ConfigError(f"api.service[{index}].canary", f"is written into {path.stem}{RELEASE_SUFFIX} by "
                                  "`python -m delivery canary start`, never here: every traffic step is a commit "
                                  "of the release file")
    except ConfigError as error:
        raise ConfigError.joined([*found, error]).in_file(display(path)) from None
    prefix = prefix_of(shared, environment)
    for name_check in (lambda: check_prefix_fits(prefix), lambda: check_bucket_names_fit(environment, prefix),
                       lambda: environment.api.check_names(prefix)):
        with collecting() as checked:
            try:
                name_check()
            except ConfigError as error:
                checked.append(error)
        found.extend(checked)
    if found:
        raise ConfigError.joined(found).in_file(display(path))
    return _with_release(environment, path)


def _with_release(environment: EnvironmentConfig, path: Path) -> EnvironmentConfig:
    """Run the images `<env>.release.hcl` pins, when the environment has a release file."""
    release_file = release_path(path.parent, environment.name)
    release = load_release(release_file)
    if release is None:
        return environment
    return dataclasses.replace(environment, api=apply_release(environment.api, release, release_file))


def check_prefix_fits(prefix: str) -> None:
    """The tightest AWS name limits, checked against the longest names the tiers build."""
    key = "name_prefix"
    check_name(NameKind.LOAD_BALANCER, key, prefix, "api")
    check_name(NameKind.IAM_ROLE, key, prefix, "database-master-password")
    check_name(NameKind.RDS_IDENTIFIER, key, prefix, "postgres-replica-0")


def check_bucket_names_fit(environment: EnvironmentConfig, prefix: str) -> None:
    """Each bucket the environment names by rule (`<prefix>-<purpose>-<account id or bucket_suffix>`)
    fits S3's 63 characters; the error says what to shorten, or which name to give instead."""
    key = "bucket_suffix" if environment.bucket_suffix is not None else "name_prefix"
    for purpose, override in ((SITE_BUCKET_PURPOSE, "frontend.site_bucket_name"),
                              (LOG_BUCKET_PURPOSE, "frontend.log_bucket_name")):
        if getattr(environment.frontend, override.split(".")[1]) is None:
            check_bucket_name(key, prefix, purpose, unique=environment.bucket_unique,
                              instead=f"shorten name_prefix or set a shorter bucket_suffix, or name the bucket "
                                      f"with {override}")


def load_environments(directory: Path, names: tuple[str, ...] | None = None) -> Environments:
    """Load and cross-check `shared.hcl` and every `<env>.hcl` in `directory`; keep `names` (all by default).

    Every file is read and checked even when only some environments are wanted: a new
    environment's CIDR must not overlap dev's, nor its account be prod's, whatever is synthesized.
    """
    shared = load_shared(directory)
    # `<env>.hcl` only: files with more dots (`dev.release.hcl`) are other tools' data.
    paths = sorted(p for p in directory.glob("*.hcl") if p.name != SHARED_FILE and "." not in p.stem)
    if names is not None:
        missing = set(names) - {p.stem for p in paths}
        if missing:
            raise ConfigError("", f"has no file for environment(s) {shown(sorted(missing))}", file=display(directory))
    if not paths:
        raise ConfigError("", "holds no environment files (<env>.hcl)", file=display(directory))
    loaded: list[EnvironmentConfig] = []
    with collecting() as found:
        for path in paths:
            try:
                loaded.append(load_environment(path, shared))
            except ConfigError as error:
                found.append(error)
        every = tuple(loaded)
        unknown = [name for name in shared.promotion_order if name not in {p.stem for p in paths}]
        if unknown:
            report(ConfigError("promotion_order", f"names {shown(unknown)}, which have no environment file",
                               file=display(directory / SHARED_FILE)))
        # Across the files that loaded: their errors do not depend on the ones that did not.
        _check_production(directory, shared, every)
        _check_across(directory, shared, every)
    if found:
        raise ConfigError.joined(found)
    if names is None:
        return Environments(shared, every)
    wanted = tuple(e for e in every if e.name in set(names))
    return Environments(shared, wanted, complete=len(wanted) == len(every))


def outside_promotion(environments: Environments) -> list[str]:
    """One warning for each environment promotion_order leaves out: a legitimate choice (a sandbox),
    but releases and promotions never reach it, so its images move only when its release file is edited."""
    order = environments.shared.promotion_order
    return [f"{e.name}.hcl: {e.name} is not in promotion_order ({' -> '.join(order)}) in {SHARED_FILE}: "
            f"`python -m delivery release` and `promote` never reach it (its images change only when "
            f"{e.name}.release.hcl is edited); add it to promotion_order if it should follow the others"
            for e in environments.environments if e.name not in order]


def _check_production(directory: Path, shared: SharedConfig, environments: tuple[EnvironmentConfig, ...]) -> None:
    """Production is what shared.hcl says it is: an environment cannot leave it by its own file."""
    production = shared.production_accounts or ()
    for environment in environments:
        file = display(directory / f"{environment.name}.hcl")
        if environment.account_id in production and not environment.production:
            report(ConfigError(
                "production", f"must be true: account {environment.account_id} is a production account "
                f"(production_accounts in {SHARED_FILE}); to retire it on purpose, remove the account from "
                "production_accounts in the same reviewed change, got false", file=file))
        if environment.production and environment.account_id not in production:
            report(ConfigError(
                "production", f"is true, but account {environment.account_id} is not in production_accounts in "
                f"{SHARED_FILE}: declare it there too (production is declared once, for every file)", file=file))


def _check_across(directory: Path, shared: SharedConfig, environments: tuple[EnvironmentConfig, ...]) -> None:
    """Checks that need two environments: unique prefixes, no overlapping VPC ranges, one
    owner of each account-and-region setting."""
    for first, second in itertools.combinations(environments, 2):
        # Two environments in one account that may not share it: API Gateway's one role setting is a
        # consequence of that error, not another one.
        clash = first.account_id == second.account_id and second.account_id not in shared.shared_accounts
        if clash:
            report(ConfigError(
                "account_id", f"{shown(second.account_id)} is already {first.name}.hcl's account; an account holds "
                f"one environment unless shared_accounts in {SHARED_FILE} lists it",
                file=display(directory / f"{second.name}.hcl")))
        # A role is in its environment's account (checked per file), so roles cannot clash where accounts do not.
        same_place = (first.account_id, first.region) == (second.account_id, second.region)
        if not clash and same_place and first.api.account_cloudwatch_role and second.api.account_cloudwatch_role:
            report(ConfigError(
                "api.account_cloudwatch_role",
                f"must be false here or in {first.name}.hcl: both environments are in account "
                f"{second.account_id}, {second.region}, where API Gateway has one CloudWatch role setting "
                "(two stacks would overwrite each other's, and destroying one would delete the role it points at)",
                file=display(directory / f"{second.name}.hcl"),
            ))
        if prefix_of(shared, first) == prefix_of(shared, second):
            report(ConfigError(
                "name_prefix",
                f"{shown(prefix_of(shared, second))} is already used by {first.name}.hcl; names must differ",
                file=display(directory / f"{second.name}.hcl"),
            ))
        if first.network.network.overlaps(second.network.network):
            report(ConfigError(
                "network.cidr",
                f"must not overlap other environments (VPCs may be peered or share a transit gateway), "
                f"got {shown(second.network.cidr)} which overlaps {first.name}.hcl's {shown(first.network.cidr)}",
                file=display(directory / f"{second.name}.hcl"),
            ))
