"""The edge: WAF web ACLs run AWS's baseline rule groups; CloudFront uses AWS's managed cache policies."""

from __future__ import annotations

from collections.abc import Iterator

from checks.rules.stack import Stack, address, as_list, references

# AWS WAF "Baseline rule groups" (https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html):
# the core rule set (OWASP Top 10) and known bad inputs (Log4j's JNDI lookups among them).
MINIMUM_WAF_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")

# CloudFront "Use managed cache policies"
# (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-cache-policies.html):
# "Name: Managed-CachingOptimized ID: 658327ea-f89d-4fab-a63d-7e88639e58f6", and the others listed there.
MANAGED_CACHE_POLICIES = {
    "658327ea-f89d-4fab-a63d-7e88639e58f6": "CachingOptimized",
    "b2884449-e4de-46a7-ac36-70bc7f1ddd6d": "CachingOptimizedForUncompressedObjects",
    "4135ea2d-6df8-44a3-9df3-4b5a84be39ad": "CachingDisabled",
    "2e54312d-136d-493c-8eb9-b001f22f67d2": "Amplify",
}
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def web_acls_run_the_baseline_rule_groups(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    for name, acl in stack.resources("aws_wafv2_web_acl").items():
        enforced = set()
        for rule in as_list(acl.get("rule")):
            statement = (rule.get("statement") or {}).get("managed_rule_group_statement") or {}
            counted = "count" in (rule.get("override_action") or {})
            if statement.get("vendor_name") == "AWS" and not counted:
                enforced.add(statement.get("name"))
        missing = [group for group in MINIMUM_WAF_RULE_GROUPS if group not in enforced]
        if missing:
            yield address("aws_wafv2_web_acl", name), f"does not enforce {', '.join(missing)}"


def cloudfront_uses_managed_cache_policies(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    """A literal id must be one AWS documents (a typo is refused by CloudFront at apply); the
    static site's default behaviour caches with CachingOptimized."""
    for name, distribution in stack.resources("aws_cloudfront_distribution").items():
        where = address("aws_cloudfront_distribution", name)
        behaviors = [("default_cache_behavior", b) for b in as_list(distribution.get("default_cache_behavior"))]
        behaviors += [(f"ordered_cache_behavior[{i}]", b)
                      for i, b in enumerate(as_list(distribution.get("ordered_cache_behavior")))]
        for label, behavior in behaviors:
            policy = behavior.get("cache_policy_id")
            if policy is None:
                yield f"{where}.{label}", "no cache policy (legacy forwarded_values)"
            elif references(policy):
                continue  # a cache policy of this stack
            elif policy not in MANAGED_CACHE_POLICIES:
                yield f"{where}.{label}", f"cache_policy_id {policy} is not an AWS managed cache policy"
        defaults: list[dict] = as_list(distribution.get("default_cache_behavior"))
        default = defaults[0] if defaults else {}
        origins_are_s3 = all("s3" in str(o.get("domain_name", "")) for o in as_list(distribution.get("origin")))
        if origins_are_s3 and default.get("cache_policy_id") != CACHING_OPTIMIZED:
            yield f"{where}.default_cache_behavior", "the static site is not cached with Managed-CachingOptimized"
