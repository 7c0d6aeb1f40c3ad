"""Typed configuration of the frontend tier (the `frontend { ... }` block)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from modules.core.naming import NameKind, bucket_name, check_name
from modules.core.regions import ORIGIN_SHIELD_REGIONS
from modules.core.schema import check, check_range, whole
from modules.core.values import LOG_RETENTION_DAYS

# One or more DNS labels inside the environment's zone (`www`, `app.eu`).
SUBDOMAIN = whole(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
# CloudFront's limit on the Content-Security-Policy value of a response headers policy.
CSP_MAX_LENGTH = 1783
# hstspreload.org refuses a max-age under one year.
HSTS_PRELOAD_MIN_SECONDS = 31_536_000
# What the site and log buckets are named for: `<prefix>-<purpose>-<account id or bucket_suffix>`.
SITE_BUCKET_PURPOSE = "frontend-site"
LOG_BUCKET_PURPOSE = "frontend-cloudfront-logs"
# ACM: the certificate's domain name is its subject CN, at most 64 characters.
ACM_DOMAIN_MAX_LENGTH = 64

# The policy when `content_security_policy` is unset; `{api_origin}` is the environment's
# API (https://api.<zone>, or API Gateway's own domains without dns), which the site calls.
DEFAULT_CSP = (
    "default-src 'self'; connect-src 'self' {api_origin}; img-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'; upgrade-insecure-requests"
)


# AWS managed rule groups the web ACL runs by default, in priority order: known-bad
# sources, the common rule set (OWASP top 10), and known bad inputs (Log4j and the like).
DEFAULT_WAF_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
)
WAF_RULE_GROUP = whole(r"^AWSManagedRules[A-Za-z0-9]+$")
# Managed rule groups that AWS WAF refuses without a `managed_rule_group_configs` block
# (Bot Control's inspection level, ATP's login path, ACFP's registration pages), which
# this tier does not write: the web ACL's create would fail at apply.
WAF_RULE_GROUPS_NEEDING_CONFIG = frozenset({
    "AWSManagedRulesBotControlRuleSet",
    "AWSManagedRulesATPRuleSet",
    "AWSManagedRulesACFPRuleSet",
})
COUNTRY_CODE = whole(r"^[A-Z]{2}$")


class GeoRestriction(enum.Enum):
    """Which countries CloudFront serves (CloudFront's own terms)."""

    NONE = "none"  # everywhere
    WHITELIST = "whitelist"  # only `geo_restriction_countries`
    BLACKLIST = "blacklist"  # everywhere but `geo_restriction_countries`


class PriceClass(enum.Enum):
    """Which CloudFront edge locations serve the site (costly by choice)."""

    NORTH_AMERICA_EUROPE = "PriceClass_100"
    PLUS_ASIA_AFRICA = "PriceClass_200"
    ALL = "PriceClass_All"


@dataclass(frozen=True, kw_only=True, slots=True)
class FrontendConfig:
    """The static site: bucket retention, CDN reach, security headers, WAF, protection."""

    subdomain: str | None = None
    price_class: PriceClass = PriceClass.NORTH_AMERICA_EUROPE
    origin_shield_region: str | None = None
    content_security_policy: str | None = None
    hsts_max_age_seconds: int = 63_072_000
    spa_fallback_ttl_seconds: int = 10
    noncurrent_version_expiration_days: int = 30
    log_retention_days: int = 90
    waf_enabled: bool = False
    waf_rate_limit_per_5_minutes: int = 2000
    waf_managed_rule_groups: tuple[str, ...] = DEFAULT_WAF_RULE_GROUPS
    geo_restriction: GeoRestriction = GeoRestriction.NONE
    geo_restriction_countries: tuple[str, ...] = ()
    prevent_destroy: bool = True
    # Names kept from before bucket names carried the account id (README, "Upgrade notes"):
    # renaming a bucket replaces it, so existing buckets keep theirs until they are moved.
    site_bucket_name: str | None = None
    log_bucket_name: str | None = None
    # CloudFront's additional metrics (cache hit rate, origin latency, error rates by status),
    # billed per distribution: the environment's dashboard shows the cache hit rate only with them.
    additional_metrics: bool = False

    def __post_init__(self) -> None:
        for key in ("site_bucket_name", "log_bucket_name"):
            value = getattr(self, key)
            if value is not None:
                check_name(NameKind.S3_BUCKET, key, value)
        if self.site_bucket_name is not None:
            check(self.site_bucket_name != self.log_bucket_name, "log_bucket_name", self.log_bucket_name,
                  "another name than site_bucket_name")
        if self.subdomain is not None:
            check(bool(SUBDOMAIN.match(self.subdomain)), "subdomain", self.subdomain,
                  "lowercase DNS labels like \"www\" or \"app.eu\" (no dots at the ends; unset for the zone apex)")
        if self.origin_shield_region is not None:
            check(self.origin_shield_region in ORIGIN_SHIELD_REGIONS, "origin_shield_region", self.origin_shield_region,
                  "a region Origin Shield runs in (one with a CloudFront regional edge cache: "
                  f"{', '.join(sorted(ORIGIN_SHIELD_REGIONS))}); the bucket's region if it is one, else "
                  "the nearest (CloudFront guide: Choosing the AWS Region for Origin Shield)")
        csp = self.content_security_policy
        if csp is not None:
            check(bool(csp.strip()) and len(csp) <= CSP_MAX_LENGTH, "content_security_policy", csp,
                  f"a non-empty policy of at most {CSP_MAX_LENGTH} characters (CloudFront's limit)")
            check(all(" " <= c <= "~" for c in csp), "content_security_policy", csp,
                  "printable ASCII on one line (it is sent as an HTTP header)")
        check(HSTS_PRELOAD_MIN_SECONDS <= self.hsts_max_age_seconds <= 2 * HSTS_PRELOAD_MIN_SECONDS,
              "hsts_max_age_seconds", self.hsts_max_age_seconds,
              f"{HSTS_PRELOAD_MIN_SECONDS}..{2 * HSTS_PRELOAD_MIN_SECONDS} (one to two years; preload needs a year)")
        check_range("spa_fallback_ttl_seconds", self.spa_fallback_ttl_seconds, 0, 3600)
        check_range("noncurrent_version_expiration_days", self.noncurrent_version_expiration_days, 1, 3650)
        check(self.log_retention_days in LOG_RETENTION_DAYS, "log_retention_days", self.log_retention_days,
              f"one of CloudWatch's retention periods {LOG_RETENTION_DAYS} (WAF logs live there)")
        check_range("waf_rate_limit_per_5_minutes", self.waf_rate_limit_per_5_minutes, 10, 2_000_000_000)
        groups = self.waf_managed_rule_groups
        check(1 <= len(groups) <= 10 and len(set(groups)) == len(groups), "waf_managed_rule_groups", groups,
              "1..10 distinct AWS managed rule group names")
        for index, group in enumerate(groups):
            check(bool(WAF_RULE_GROUP.match(group)), f"waf_managed_rule_groups[{index}]", group,
                  "an AWS managed rule group name like \"AWSManagedRulesCommonRuleSet\"")
            check(group not in WAF_RULE_GROUPS_NEEDING_CONFIG, f"waf_managed_rule_groups[{index}]", group,
                  "a rule group that needs no configuration of its own (Bot Control, ATP and ACFP need "
                  "managed_rule_group_configs, which this tier does not write)")
        countries = self.geo_restriction_countries
        for index, country in enumerate(countries):
            check(bool(COUNTRY_CODE.match(country)), f"geo_restriction_countries[{index}]", country,
                  "an ISO 3166-1 alpha-2 country code in capitals like \"DE\"")
        if self.geo_restriction is GeoRestriction.NONE:
            check(not countries, "geo_restriction_countries", countries, 'empty when geo_restriction = "none"')
        else:
            check(bool(countries) and len(set(countries)) == len(countries), "geo_restriction_countries", countries,
                  f'a list of distinct countries when geo_restriction = "{self.geo_restriction.value}"')

    def security_policy(self, api_origin: str) -> str:
        """The Content-Security-Policy header: the one configured, else the default letting
        the site's scripts call `api_origin` (a bare `default-src 'self'` would block them)."""
        if self.content_security_policy is not None:
            return self.content_security_policy
        return DEFAULT_CSP.format(api_origin=api_origin)

    def host_name(self, zone_name: str) -> str:
        """The site's name in `zone_name`: `<subdomain>.<zone>`, or the zone apex."""
        return f"{self.subdomain}.{zone_name}" if self.subdomain else zone_name

    def site_bucket(self, prefix: str, unique: str) -> str:
        """The site bucket's name: `site_bucket_name`, else `<prefix>-frontend-site-<unique>`."""
        return self.site_bucket_name or bucket_name(prefix, SITE_BUCKET_PURPOSE, unique=unique)

    def log_bucket(self, prefix: str, unique: str) -> str:
        """The log bucket's name: `log_bucket_name`, else `<prefix>-frontend-cloudfront-logs-<unique>`."""
        return self.log_bucket_name or bucket_name(prefix, LOG_BUCKET_PURPOSE, unique=unique)
