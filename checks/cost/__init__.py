"""What the synthesized stacks cost a month: an estimate from `prices.toml` (README: "What it costs").

Every resource type the stacks may contain is in exactly one of three tables below:
- FIXED: billed for existing (hours, months), priced from the table by a function of its JSON;
- USAGE: billed by traffic or volume, shown as a formula over an assumed volume;
- FREE: no charge of its own (with the reason), or only through another resource.
`estimate()` refuses a type in none of them, so a new resource type cannot go unpriced silently.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.rules.stack import Stack, as_list

PRICES_FILE = Path(__file__).with_name("prices.toml")
# Stacks without an environment tag on their provider (the state bucket) belong to the organisation.
SHARED = "shared"
# Services billed without a region (their resources still name one through their provider).
GLOBAL_ITEMS = ("route53_", "cloudfront_")
REFERENCE = re.compile(r"\$\{aws_[a-z0-9_]+\.([A-Za-z0-9_-]+)\.")


class CostError(Exception):
    """The stacks hold something the estimate cannot place (an unclassified resource type)."""


@dataclass(frozen=True)
class Price:
    item: str
    region: str
    unit: str
    source: str
    usd: float | None = None
    basis: str = ""
    seen: str = ""
    missing: str = ""


@dataclass(frozen=True)
class PriceTable:
    date: str
    hours_per_month: float
    prices: Mapping[tuple[str, str], Price]

    def get(self, item: str, region: str) -> Price | None:
        return self.prices.get((item, "global" if item.startswith(GLOBAL_ITEMS) else region))


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """The table, with one entry per (item, region); a duplicate or an entry without a price or a
    reason is an error naming the entry."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    prices: dict[tuple[str, str], Price] = {}
    for index, entry in enumerate(data.get("price", [])):
        where = f"{path.name}: price[{index}] ({entry.get('item')}, {entry.get('region')})"
        try:
            price = Price(**entry)
        except TypeError as error:
            raise ValueError(f"{where}: {error}") from None
        if (price.usd is None) == (not price.missing):
            raise ValueError(f"{where}: give either usd (with basis and seen) or missing (why there is no price)")
        if price.usd is not None and not (price.basis and price.seen):
            raise ValueError(f"{where}: a price needs its basis and what was seen")
        if (price.item, price.region) in prices:
            raise ValueError(f"{where}: listed twice")
        prices[(price.item, price.region)] = price
    return PriceTable(date=str(data["date"]), hours_per_month=float(data["hours_per_month"]), prices=prices)


@dataclass(frozen=True)
class Line:
    """One priced quantity of one resource: `quantity` `unit`s of `item` at the table's price."""

    environment: str
    stack: str
    address: str
    item: str
    region: str
    quantity: float
    what: str
    price: Price | None
    usage: bool = False

    @property
    def monthly(self) -> float | None:
        return None if self.price is None or self.price.usd is None else self.quantity * self.price.usd

    def formula(self) -> str:
        if self.price is None or self.price.usd is None:
            region = self.price.region if self.price else self.region
            return f"{self.what}: no price for {self.item} in {region}" + (
                f" ({self.price.missing})" if self.price else " (no entry in prices.toml)")
        marker = "~" if self.price.basis == "inferred" else ""
        return f"{self.what} x {marker}${self.price.usd:g}/{self.price.unit}"


@dataclass(frozen=True)
class Assumptions:
    """The volumes a usage-driven line assumes per environment and month (override on the command line)."""

    api_requests_million: float = 1.0
    site_requests_million: float = 1.0
    nat_gb: float = 10.0
    endpoint_gb: float = 10.0
    site_gb_out: float = 50.0
    image_gb: float = 5.0

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)


Lines = Iterator[tuple[str, float, str]]  # (item, quantity, what)


# --- fixed-cost resources: each yields (item, quantity per month, what is counted) --------------------

def _nat_gateway(config: dict[str, Any], context: _Context) -> Lines:
    yield "nat_gateway_hour", context.hours, f"1 NAT gateway x {context.hours:g} h"


def _eip(config: dict[str, Any], context: _Context) -> Lines:
    # A public IPv4 address is billed by the hour whether in use or idle (VPC pricing, since February 2024).
    yield "public_ipv4_hour", context.hours, f"1 public IPv4 address x {context.hours:g} h"


def _vpc_endpoint(config: dict[str, Any], context: _Context) -> Lines:
    if config.get("vpc_endpoint_type", "Gateway") == "Interface":
        zones = len(as_list(config.get("subnet_ids")))
        # com.amazonaws.<region>.ecr.api -> ecr.api
        service = str(config.get("service_name", "")).split(".", 3)[-1]
        yield ("interface_endpoint_az_hour", zones * context.hours,
               f"{service} endpoint in {zones} AZs x {context.hours:g} h")


def _lb(config: dict[str, Any], context: _Context) -> Lines:
    kind = {"network": "nlb", "application": "alb"}.get(config.get("load_balancer_type", "application"), "lb")
    yield f"{kind}_hour", context.hours, f"1 {kind.upper()} x {context.hours:g} h"


def _db_instance(config: dict[str, Any], context: _Context) -> Lines:
    copies = 2 if config.get("multi_az") else 1
    role = "replica" if config.get("replicate_source_db") else "Multi-AZ" if copies == 2 else "Single-AZ"
    klass = config.get("instance_class")
    yield (f"rds_postgres_instance_hour:{klass}", copies * context.hours,
           f"{klass} {role}: {copies} instance{'s' if copies > 1 else ''} x {context.hours:g} h")
    source = context.referenced("aws_db_instance", config.get("replicate_source_db")) or config
    storage = float(config.get("allocated_storage") or source.get("allocated_storage") or 0)
    kind = config.get("storage_type") or source.get("storage_type") or "gp2"
    yield (f"rds_storage_gib_month:{kind}", copies * storage,
           f"{storage:g} GiB {kind} x {copies} cop{'ies' if copies > 1 else 'y'}")
    if int(config.get("performance_insights_retention_period") or 7) > 7:
        yield "rds_performance_insights_long_term_vcpu_month", 1, "Performance Insights kept past 7 days"


def _api_stage(config: dict[str, Any], context: _Context) -> Lines:
    if config.get("cache_cluster_enabled"):
        size = config.get("cache_cluster_size", "0.5")
        yield f"apigw_cache_hour:{size}", context.hours, f"{size} GB cache x {context.hours:g} h"


def _web_acl(config: dict[str, Any], context: _Context) -> Lines:
    rules = as_list(config.get("rule"))
    yield "waf_web_acl_month", 1, f"1 {config.get('scope', '').lower()} web ACL"
    yield "waf_rule_month", len(rules), f"{len(rules)} rule{'s' if len(rules) != 1 else ''}"
    for rule in rules:
        group = (rule.get("statement") or {}).get("managed_rule_group_statement") or {}
        if group.get("name") in PAID_RULE_GROUPS:
            yield f"waf_paid_rule_group_month:{group['name']}", 1, f"{group['name']} subscription"


# AWS managed rule groups with a fee of their own beyond the rule's $1 (AWS WAF pricing: intelligent
# threat mitigation); the others are free to use.
PAID_RULE_GROUPS = frozenset({"AWSManagedRulesBotControlRuleSet", "AWSManagedRulesATPRuleSet",
                              "AWSManagedRulesACFPRuleSet", "AWSManagedRulesAntiDDoSRuleSet"})


def _kms_key(config: dict[str, Any], context: _Context) -> Lines:
    yield "kms_key_month", 1, "1 key"


def _secret(config: dict[str, Any], context: _Context) -> Lines:
    yield "secret_month", 1, "1 secret"


def _alarm(config: dict[str, Any], context: _Context) -> Lines:
    queries = as_list(config.get("metric_query"))
    metrics = [query["metric"] for query in queries if query.get("metric")] if queries else [config]
    high = [m for m in metrics if 0 < int(m.get("period") or 60) < 60]
    standard = len(metrics) - len(high)
    if standard:
        yield "cloudwatch_alarm_metric_month", standard, f"{standard} alarm metric{'s' if standard > 1 else ''}"
    if high:
        yield ("cloudwatch_alarm_high_resolution_metric_month", len(high),
               f"{len(high)} high-resolution alarm metric{'s' if len(high) > 1 else ''}")


def _dashboard(config: dict[str, Any], context: _Context) -> Lines:
    yield "cloudwatch_dashboard_month", 1, "1 dashboard"


def _hosted_zone(config: dict[str, Any], context: _Context) -> Lines:
    yield "route53_hosted_zone_month", 1, "1 hosted zone"


def _cloudfront_metrics(config: dict[str, Any], context: _Context) -> Lines:
    yield "cloudfront_additional_metrics_month", 1, "additional metrics of 1 distribution"


def _grafana(config: dict[str, Any], context: _Context) -> Lines:
    yield "grafana_editor_month", 1, "the 1 editor licence every workspace needs (users add $9 or $5 each)"


def _ssm_parameter(config: dict[str, Any], context: _Context) -> Lines:
    if config.get("tier", "Standard") != "Standard":
        yield "ssm_advanced_parameter_month", 1, "1 advanced parameter"


Pricer = Callable[[dict[str, Any], "_Context"], Lines]

FIXED: Mapping[str, Pricer] = {
    "aws_nat_gateway": _nat_gateway,
    "aws_eip": _eip,
    "aws_vpc_endpoint": _vpc_endpoint,
    "aws_lb": _lb,
    "aws_db_instance": _db_instance,
    "aws_api_gateway_stage": _api_stage,
    "aws_wafv2_web_acl": _web_acl,
    "aws_kms_key": _kms_key,
    "aws_secretsmanager_secret": _secret,
    "aws_cloudwatch_metric_alarm": _alarm,
    "aws_cloudwatch_dashboard": _dashboard,
    "aws_route53_zone": _hosted_zone,
    "aws_cloudfront_monitoring_subscription": _cloudfront_metrics,
    "aws_grafana_workspace": _grafana,
    "aws_ssm_parameter": _ssm_parameter,
}

# Billed by traffic or volume: what drives the bill. The types with a formula below are estimated at
# the assumed volumes; the others are named in the output, not estimated.
USAGE: Mapping[str, str] = {
    "aws_ecs_service": "Fargate vCPU and memory hours of its running tasks",
    "aws_api_gateway_rest_api": "requests, and data transfer out",
    "aws_cloudfront_distribution": "data transfer to viewers and requests, by continent",
    "aws_wafv2_web_acl_association": "requests the web ACL inspects",
    "aws_cloudwatch_log_group": "GB ingested and GB-months stored",
    "aws_flow_log": "log GB delivered (vended logs) into its log group",
    "aws_wafv2_web_acl_logging_configuration": "log GB delivered into its log group",
    "aws_s3_bucket": "GB-months stored and requests",
    "aws_ecr_repository": "GB-months of images stored",
    "aws_dynamodb_table": "on-demand reads and writes, GB stored, point-in-time recovery GB",
    "aws_prometheus_workspace": "samples ingested, GB stored, samples queried",
    "aws_prometheus_rule_group_namespace": "samples its rules query",
    "aws_prometheus_alert_manager_definition": "alerts delivered",
    "aws_db_instance_automated_backups_replication": "backup GB copied to and stored in the second region",
    "aws_sns_topic": "notifications delivered (e-mail beyond the free tier)",
    "aws_ecs_task_definition": "a one-off task's Fargate hours (migrations) while it runs",
    "aws_appautoscaling_target": "the tasks it adds beyond the desired count",
    "aws_lambda_function": "requests and GB-seconds (the master-password function: one run per password, "
                           "within the free tier)",
}

# No charge of their own: configuration of a billed resource, or free by AWS's pricing.
FREE: Mapping[str, str] = {
    "aws_vpc": "free", "aws_subnet": "free", "aws_route_table": "free", "aws_route": "free",
    "aws_route_table_association": "free", "aws_internet_gateway": "free (data transfer is billed elsewhere)",
    "aws_default_security_group": "free", "aws_security_group": "free",
    "aws_vpc_security_group_ingress_rule": "free", "aws_vpc_security_group_egress_rule": "free",
    "aws_iam_role": "free (IAM has no charge)", "aws_iam_role_policy": "free", "aws_iam_role_policy_attachment": "free",
    "aws_iam_openid_connect_provider": "free",
    "aws_kms_alias": "free (the key is billed)",
    "aws_acm_certificate": "free (public certificates)", "aws_acm_certificate_validation": "free",
    "aws_api_gateway_account": "free", "aws_api_gateway_base_path_mapping": "free",
    "aws_api_gateway_deployment": "free", "aws_api_gateway_domain_name": "free (regional custom domain)",
    "aws_api_gateway_integration": "free", "aws_api_gateway_method": "free",
    "aws_api_gateway_method_settings": "free (its cache and logs are billed through the stage and log group)",
    "aws_api_gateway_request_validator": "free", "aws_api_gateway_resource": "free",
    "aws_api_gateway_vpc_link": "free (the NLB behind it is billed)",
    "aws_appautoscaling_policy": "free", "aws_appautoscaling_scheduled_action": "free",
    "aws_ecs_cluster": "free (Fargate tasks are billed)", "aws_ecs_cluster_capacity_providers": "free",
    "aws_lb_listener": "free (the NLB is billed)", "aws_lb_target_group": "free",
    "aws_cloudfront_origin_access_control": "free", "aws_cloudfront_response_headers_policy": "free",
    "aws_db_parameter_group": "free", "aws_db_subnet_group": "free",
    "aws_route53_record": "free to hold (queries are billed; alias queries to AWS resources are free)",
    "aws_s3_bucket_acl": "free", "aws_s3_bucket_lifecycle_configuration": "free",
    "aws_s3_bucket_logging": "free (the log objects are billed as storage)",
    "aws_s3_bucket_ownership_controls": "free", "aws_s3_bucket_policy": "free",
    "aws_s3_bucket_public_access_block": "free", "aws_s3_bucket_server_side_encryption_configuration": "free",
    "aws_s3_bucket_versioning": "free (old versions are billed as storage)",
    "aws_secretsmanager_secret_version": "free (the secret is billed)",
    "aws_sns_topic_policy": "free", "aws_sns_topic_subscription": "free",
    "aws_ecr_lifecycle_policy": "free", "aws_ecr_repository_policy": "free",
    "aws_lambda_invocation": "free (the function's run is billed with the function)",
    "terraform_data": "free (Terraform's own, not an AWS resource)",
}

# What lowers each item, in the environment files' own words (modules/<tier>/README.md).
KNOBS: Mapping[str, str] = {
    "nat_gateway_hour": "network.nat_gateways: \"single\" runs one NAT gateway instead of one per AZ (\"per_az\")",
    "public_ipv4_hour": "network.nat_gateways: each NAT gateway holds one public IPv4 address",
    "interface_endpoint_az_hour": "network.az_count: every interface endpoint is billed in each AZ",
    "nlb_hour": "the NLB: none to turn down (one per environment carries every service behind the VPC link)",
    "rds_postgres_instance_hour": "database.instance_class; database.multi_az doubles instance and storage; "
                                  "database.replica_count adds an instance and its storage each",
    "rds_storage_gib_month": "database.allocated_storage_gib (gp3 storage only grows: max_allocated_storage_gib)",
    "apigw_cache_hour": "api.cache_cluster_size_gib (leave it out for no cache)",
    "waf_web_acl_month": "frontend.waf_enabled; each rule adds $1 a month",
    "kms_key_month": "KMS keys: none to turn down (one key per kind of data is the design's isolation)",
    "fargate_vcpu_hour": "api.service.*: desired_count, cpu_units, memory_mib; cpu_architecture = \"ARM64\" "
                         "is about 20% cheaper; api.fargate_spot_weight moves tasks to Fargate Spot",
}


@dataclass
class _Context:
    stack: Stack
    hours: float

    def referenced(self, resource_type: str, value: Any) -> dict[str, Any] | None:
        match = REFERENCE.search(str(value or ""))
        return self.stack.resources(resource_type).get(match.group(1)) if match else None


@dataclass
class Estimate:
    """Every line of every environment, and the resource types seen by kind."""

    table: PriceTable
    assumptions: Assumptions
    lines: list[Line] = field(default_factory=list)
    usage_types: dict[str, set[str]] = field(default_factory=dict)

    def environments(self) -> list[str]:
        names = sorted({line.environment for line in self.lines} | set(self.usage_types))
        return [name for name in names if name != SHARED] + ([SHARED] if SHARED in names else [])

    def fixed(self, environment: str) -> list[Line]:
        return [line for line in self.lines if line.environment == environment and not line.usage]

    def usage(self, environment: str) -> list[Line]:
        return [line for line in self.lines if line.environment == environment and line.usage]


def unclassified(resource_types: Iterable[str]) -> list[str]:
    return sorted(set(resource_types) - set(FIXED) - set(USAGE) - set(FREE))


def estimate(stacks: Iterable[Stack], table: PriceTable | None = None,
             assumptions: Assumptions | None = None) -> Estimate:
    table = table or load_prices()
    result = Estimate(table=table, assumptions=assumptions or Assumptions())
    stacks = list(stacks)
    unknown = unclassified(kind for stack in stacks for kind, _, _ in stack.all_resources())
    if unknown:
        raise CostError(f"resource types with no place in checks/cost (FIXED, USAGE or FREE): {', '.join(unknown)}")
    for stack in stacks:
        context = _Context(stack, table.hours_per_month)
        for kind, name, config in stack.all_resources():
            provider = stack.provider(config)
            environment = provider.environment or SHARED
            region = provider.region or ""
            if kind in USAGE:
                result.usage_types.setdefault(environment, set()).add(kind)
            for item, quantity, what in FIXED[kind](config, context) if kind in FIXED else ():
                result.lines.append(Line(environment, stack.name, f"{kind}.{name}", item, region, quantity, what,
                                         table.get(item, region)))
        result.lines.extend(_usage_lines(stack, context, result.assumptions, table))
    return result


def _usage_lines(stack: Stack, context: _Context, assume: Assumptions, table: PriceTable) -> Iterator[Line]:
    """The usage-driven lines the table can price: Fargate at the configured task counts, and traffic
    at the assumed volumes (one set of volumes per environment, attached to the stack that carries it)."""
    def line(kind: str, name: str, config: dict[str, Any], item: str, quantity: float, what: str) -> Line:
        provider = stack.provider(config)
        region = provider.region or ""
        return Line(provider.environment or SHARED, stack.name, f"{kind}.{name}", item, region, quantity, what,
                    table.get(item, region), usage=True)

    for name, service in stack.resources("aws_ecs_service").items():
        task = context.referenced("aws_ecs_task_definition", service.get("task_definition")) or {}
        count = int(service.get("desired_count") or 0)
        arch = (task.get("runtime_platform") or {}).get("cpu_architecture", "X86_64")
        vcpu, gb = int(task.get("cpu", 0)) / 1024, int(task.get("memory", 0)) / 1024
        spot = [s for s in as_list(service.get("capacity_provider_strategy")) if s.get("capacity_provider") == "FARGATE_SPOT"]
        note = " (Spot share priced on demand: an upper bound)" if spot else ""
        hours = count * context.hours
        yield line("aws_ecs_service", name, service, f"fargate_vcpu_hour:{arch}", hours * vcpu,
                   f"{count} task{'s' if count != 1 else ''} x {vcpu:g} vCPU {arch} x {context.hours:g} h{note}")
        yield line("aws_ecs_service", name, service, f"fargate_gb_hour:{arch}", hours * gb,
                   f"{count} task{'s' if count != 1 else ''} x {gb:g} GB x {context.hours:g} h")
    for name, api in stack.resources("aws_api_gateway_rest_api").items():
        yield line("aws_api_gateway_rest_api", name, api, "apigw_rest_million_requests", assume.api_requests_million,
                   f"{assume.api_requests_million:g} million requests (assumed)")
    for name, acl in stack.resources("aws_wafv2_web_acl").items():
        volume = assume.site_requests_million if acl.get("scope") == "CLOUDFRONT" else assume.api_requests_million
        yield line("aws_wafv2_web_acl", name, acl, "waf_million_requests", volume,
                   f"{volume:g} million requests inspected (assumed)")
    gateways = stack.resources("aws_nat_gateway")
    if gateways:
        name, config = next(iter(gateways.items()))
        yield line("aws_nat_gateway", name, config, "nat_gateway_gb", assume.nat_gb,
                   f"{assume.nat_gb:g} GB through the NAT gateways (assumed)")
    endpoints = {n: c for n, c in stack.resources("aws_vpc_endpoint").items() if c.get("vpc_endpoint_type") == "Interface"}
    if endpoints:
        name, config = next(iter(endpoints.items()))
        yield line("aws_vpc_endpoint", name, config, "interface_endpoint_gb", assume.endpoint_gb,
                   f"{assume.endpoint_gb:g} GB through the interface endpoints (assumed)")
    for name, distribution in stack.resources("aws_cloudfront_distribution").items():
        yield line("aws_cloudfront_distribution", name, distribution, "cloudfront_gb_out", assume.site_gb_out,
                   f"{assume.site_gb_out:g} GB to viewers (assumed)")
    repositories = stack.resources("aws_ecr_repository")
    if repositories:
        name, config = next(iter(repositories.items()))
        yield line("aws_ecr_repository", name, config, "ecr_storage_gb_month", assume.image_gb * len(repositories),
                   f"{len(repositories)} repositories x {assume.image_gb:g} GB of images (assumed)")



def total(lines: Iterable[Line]) -> tuple[float, int]:
    """The sum of the priced lines, and how many lines have no price."""
    lines = list(lines)
    return (sum(line.monthly or 0.0 for line in lines), sum(1 for line in lines if line.monthly is None))


def knob(item: str) -> str | None:
    return KNOBS.get(item) or KNOBS.get(item.split(":", 1)[0])
