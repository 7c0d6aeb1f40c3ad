"""The frontend tier: private bucket, CloudFront with OAC, certificate and DNS, WAF, protection, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modules.core.errors import ConfigError
from modules.core.target import Target
from modules.environment import load_environments
from modules.frontend.config import FrontendConfig, GeoRestriction, PriceClass
from tests.harness.edits import append, edit, load_error
from tests.harness.synth import synthesize

# CloudFront "Use managed cache policies": "Name: Managed-CachingOptimized ID: 658327ea-f89d-4fab-a63d-7e88639e58f6"
# (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-cache-policies.html).
CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"
# The frontend's default web ACL (modules/frontend/README.md), AWS managed rule groups by their documented names:
# the Amazon IP reputation list (https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-ip-rep.html),
# the core rule set and known bad inputs (https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html).
DEFAULT_WAF_RULE_GROUPS = ("AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesCommonRuleSet",
                           "AWSManagedRulesKnownBadInputsRuleSet")

ENVS = ("dev", "stage", "prod")
CLOUDFRONT_LOG_DELIVERY = "data.aws_cloudfront_log_delivery_canonical_user_id"


def frontend(synth, env):
    return synth.stack(f"{env}-frontend")


def ref(stack, resource_type: str, path_suffix: str, attribute: str) -> str:
    """`${type.logical_id.attribute}` of the one resource at `path_suffix`."""
    (name,) = [n for n, c in stack.resources(resource_type).items()
               if c["//"]["metadata"]["path"].endswith(path_suffix)]
    return f"${{{resource_type}.{name}.{attribute}}}"


def policy_document(stack, path_suffix: str) -> dict:
    (document,) = [d for d in stack.data("aws_iam_policy_document").values()
                   if d["//"]["metadata"]["path"].endswith(path_suffix)]
    return document


def distribution(stack) -> dict:
    return stack.resource("aws_cloudfront_distribution", "Frontend/Distribution")


# -- the site bucket ---------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_site_bucket_is_not_public_and_has_acls_disabled(synth, env):
    stack = frontend(synth, env)
    block = stack.resource("aws_s3_bucket_public_access_block", "Frontend/SitePublicAccessBlock")
    assert all(block[k] is True for k in (
        "block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    assert block["bucket"] == ref(stack, "aws_s3_bucket", "Frontend/SiteBucket", "id")
    ownership = stack.resource("aws_s3_bucket_ownership_controls", "Frontend/SiteOwnership")
    assert ownership["rule"]["object_ownership"] == "BucketOwnerEnforced"
    site_bucket_id = ref(stack, "aws_s3_bucket", "Frontend/SiteBucket", "id")
    assert not [a for a in stack.resources("aws_s3_bucket_acl").values() if a["bucket"] == site_bucket_id]
    assert "website" not in json.dumps(stack.json).lower()


@pytest.mark.parametrize("env", ENVS)
def test_bucket_policy_lets_only_this_distribution_read_and_refuses_plain_http(synth, env):
    stack = frontend(synth, env)
    bucket_policy = stack.resource("aws_s3_bucket_policy", "Frontend/SiteBucketPolicy")
    (document_name,) = [n for n, d in stack.data("aws_iam_policy_document").items()
                        if d["//"]["metadata"]["path"].endswith("Frontend/SiteBucketPolicyDocument")]
    assert bucket_policy["policy"] == f"${{data.aws_iam_policy_document.{document_name}.json}}"
    assert bucket_policy["bucket"] == ref(stack, "aws_s3_bucket", "Frontend/SiteBucket", "id")
    allow, list_keys, deny = policy_document(stack, "Frontend/SiteBucketPolicyDocument")["statement"]
    # ListBucket on the bucket only, for this distribution only: missing keys become 404s.
    assert list_keys["actions"] == ["s3:ListBucket"]
    assert list_keys["resources"] == [ref(stack, "aws_s3_bucket", "Frontend/SiteBucket", "arn")]
    assert list_keys["principals"] == [{"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}]
    assert list_keys["condition"] == [{
        "test": "StringEquals", "variable": "AWS:SourceArn",
        "values": [ref(stack, "aws_cloudfront_distribution", "Frontend/Distribution", "arn")],
    }]
    assert allow["effect"] == "Allow"
    assert allow["actions"] == ["s3:GetObject"]
    assert allow["principals"] == [{"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}]
    assert allow["resources"] == [ref(stack, "aws_s3_bucket", "Frontend/SiteBucket", "arn") + "/*"]
    assert allow["condition"] == [{
        "test": "StringEquals", "variable": "AWS:SourceArn",
        "values": [ref(stack, "aws_cloudfront_distribution", "Frontend/Distribution", "arn")],
    }]
    assert deny["effect"] == "Deny"
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]


@pytest.mark.parametrize("env", ENVS)
def test_site_bucket_is_versioned_and_replaced_versions_expire_after_the_configured_days(synth, environments, env):
    stack = frontend(synth, env)
    versioning = stack.resource("aws_s3_bucket_versioning", "Frontend/SiteVersioning")
    assert versioning["versioning_configuration"]["status"] == "Enabled"
    (rule,) = stack.resource("aws_s3_bucket_lifecycle_configuration", "Frontend/SiteLifecycle")["rule"]
    days = environments.get(env).frontend.noncurrent_version_expiration_days
    assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": days}]
    assert rule["status"] == "Enabled" and rule["filter"] == [{"prefix": ""}]


def test_noncurrent_retention_differs_by_environment(synth):
    days = {
        env: frontend(synth, env).resource("aws_s3_bucket_lifecycle_configuration", "Frontend/SiteLifecycle")[
            "rule"][0]["noncurrent_version_expiration"][0]["noncurrent_days"]
        for env in ENVS
    }
    assert days == {"dev": 7, "stage": 30, "prod": 90}


@pytest.mark.parametrize("env", ENVS)
def test_site_bucket_is_encrypted_with_its_own_key_that_cloudfront_may_use_only_for_this_distribution(synth, env):
    stack = frontend(synth, env)
    (rule,) = stack.resource("aws_s3_bucket_server_side_encryption_configuration", "Frontend/SiteEncryption")["rule"]
    assert rule["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms", "kms_master_key_id": ref(stack, "aws_kms_key", "Frontend/SiteKey", "arn")}
    assert rule["bucket_key_enabled"] is True
    key = stack.resource("aws_kms_key", "Frontend/SiteKey")
    assert key["enable_key_rotation"] is True
    _root, cloudfront = policy_document(stack, "Frontend/SiteKeyPolicy")["statement"]
    assert cloudfront["actions"] == ["kms:Decrypt"]
    assert cloudfront["principals"] == [{"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}]
    assert cloudfront["condition"][0]["values"] == [
        ref(stack, "aws_cloudfront_distribution", "Frontend/Distribution", "arn")]


@pytest.mark.parametrize("env", ENVS)
def test_site_bucket_access_is_logged_to_the_log_bucket(synth, env):
    stack = frontend(synth, env)
    logging = stack.resource("aws_s3_bucket_logging", "Frontend/SiteAccessLogging")
    assert logging["target_bucket"] == ref(stack, "aws_s3_bucket", "Frontend/LogBucket", "id")
    writer, _deny = policy_document(stack, "Frontend/LogBucketPolicyDocument")["statement"]
    assert writer["principals"] == [{"type": "Service", "identifiers": ["logging.s3.amazonaws.com"]}]
    assert writer["condition"][0]["values"] == [ref(stack, "aws_s3_bucket", "Frontend/SiteBucket", "arn")]


# -- protection --------------------------------------------------------------------------------

@pytest.mark.parametrize("env, protected", [("dev", False), ("stage", True), ("prod", True)])
def test_stateful_resources_follow_prevent_destroy_and_never_force_destroy(synth, env, protected):
    stack = frontend(synth, env)
    for resource_type, path in (("aws_s3_bucket", "Frontend/SiteBucket"), ("aws_s3_bucket", "Frontend/LogBucket"),
                                ("aws_kms_key", "Frontend/SiteKey")):
        resource = stack.resource(resource_type, path)
        assert resource["lifecycle"]["prevent_destroy"] is protected, (env, path)
    for bucket in stack.resources("aws_s3_bucket").values():
        assert bucket["force_destroy"] is False


def test_rejects_production_without_prevent_destroy(environments_copy):
    edit(environments_copy, "prod.hcl", "  prevent_destroy                    = true",
         "  prevent_destroy                    = false")
    error = load_error(environments_copy)
    assert error.file.endswith("prod.hcl") and error.key == "frontend.prevent_destroy"
    assert "must be true when production = true, got false" in str(error)


# -- the log bucket ----------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_log_bucket_lets_cloudfront_deliver_logs_and_expires_them(synth, environments, env):
    stack = frontend(synth, env)
    ownership = stack.resource("aws_s3_bucket_ownership_controls", "Frontend/LogOwnership")
    assert ownership["rule"]["object_ownership"] == "BucketOwnerPreferred"
    grants = stack.resource("aws_s3_bucket_acl", "Frontend/LogAcl")["access_control_policy"]["grant"]
    (delivery,) = stack.data("aws_cloudfront_log_delivery_canonical_user_id")
    grantees = {g["grantee"]["id"] for g in grants}
    assert f"${{{CLOUDFRONT_LOG_DELIVERY}.{delivery}.id}}" in grantees
    assert all(g["grantee"]["type"] == "CanonicalUser" for g in grants)  # no group (public) grants
    block = stack.resource("aws_s3_bucket_public_access_block", "Frontend/LogPublicAccessBlock")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                          "restrict_public_buckets"))
    (rule,) = stack.resource("aws_s3_bucket_lifecycle_configuration", "Frontend/LogLifecycle")["rule"]
    assert rule["expiration"] == [{"days": environments.get(env).frontend.log_retention_days}]
    (sse,) = stack.resource("aws_s3_bucket_server_side_encryption_configuration", "Frontend/LogEncryption")["rule"]
    assert sse["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"
    assert distribution(stack)["logging_config"] == {
        "bucket": ref(stack, "aws_s3_bucket", "Frontend/LogBucket", "bucket_domain_name"),
        "prefix": "cloudfront/", "include_cookies": False,
    }


# -- CloudFront --------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_distribution_reaches_the_bucket_rest_endpoint_through_origin_access_control(synth, env):
    stack = frontend(synth, env)
    (origin,) = distribution(stack)["origin"]
    assert origin["domain_name"] == ref(stack, "aws_s3_bucket", "Frontend/SiteBucket", "bucket_regional_domain_name")
    assert origin["origin_access_control_id"] == ref(
        stack, "aws_cloudfront_origin_access_control", "Frontend/OriginAccessControl", "id")
    assert "s3_origin_config" not in origin and "custom_origin_config" not in origin
    control = stack.resource("aws_cloudfront_origin_access_control", "Frontend/OriginAccessControl")
    assert (control["origin_access_control_origin_type"], control["signing_behavior"],
            control["signing_protocol"]) == ("s3", "always", "sigv4")


@pytest.mark.parametrize("env", ENVS)
def test_distribution_serves_https_http2_and_3_ipv6_compressed_with_caching_optimized(synth, env):
    cloudfront = distribution(frontend(synth, env))
    behavior = cloudfront["default_cache_behavior"]
    assert behavior["viewer_protocol_policy"] == "redirect-to-https"
    assert behavior["cache_policy_id"] == CACHING_OPTIMIZED_POLICY_ID
    assert behavior["compress"] is True
    assert behavior["allowed_methods"] == ["GET", "HEAD"]
    assert cloudfront["default_root_object"] == "index.html"
    assert cloudfront["http_version"] == "http2and3"
    assert cloudfront["is_ipv6_enabled"] is True
    assert cloudfront["enabled"] is True


@pytest.mark.parametrize("env", ENVS)
def test_spa_fallback_serves_index_html_for_404_only_with_the_configured_ttl(synth, environments, env):
    """A 403 (WAF block, broken origin grant) must stay a 403; CloudFront cannot tell the two apart."""
    ttl = environments.get(env).frontend.spa_fallback_ttl_seconds
    responses = distribution(frontend(synth, env))["custom_error_response"]
    assert responses == [
        {"error_code": 404, "response_code": 200, "response_page_path": "/index.html", "error_caching_min_ttl": ttl}
    ]


@pytest.mark.parametrize("env", ENVS)
def test_security_headers_are_attached(synth, environments, env):
    stack = frontend(synth, env)
    config = environments.get(env).frontend
    headers = stack.resource("aws_cloudfront_response_headers_policy", "Frontend/SecurityHeaders")[
        "security_headers_config"]
    assert headers["strict_transport_security"] == {
        "access_control_max_age_sec": config.hsts_max_age_seconds, "include_subdomains": True, "preload": True,
        "override": True}
    assert headers["content_type_options"] == {"override": True}
    assert headers["frame_options"] == {"frame_option": "DENY", "override": True}
    assert headers["referrer_policy"]["referrer_policy"] == "strict-origin-when-cross-origin"
    assert headers["content_security_policy"] == {
        "content_security_policy": config.security_policy(environments.get(env).api_origin), "override": True}
    assert distribution(stack)["default_cache_behavior"]["response_headers_policy_id"] == ref(
        stack, "aws_cloudfront_response_headers_policy", "Frontend/SecurityHeaders", "id")


@pytest.mark.parametrize("env", ENVS)
def test_default_csp_lets_the_site_call_its_own_api(synth, environments, env):
    # `default-src 'self'` alone would block the SPA's calls to the API on its own domain.
    environment = environments.get(env)
    assert environment.frontend.content_security_policy is None, "this test is about the default"
    csp = frontend(synth, env).resource("aws_cloudfront_response_headers_policy", "Frontend/SecurityHeaders")[
        "security_headers_config"]["content_security_policy"]["content_security_policy"]
    directives = dict((d.split()[0], d.split()[1:]) for d in csp.split("; "))
    expected = (f"https://api.{environment.dns.zone_name}" if environment.dns
                else f"https://*.execute-api.{environment.region}.amazonaws.com")
    assert directives["connect-src"] == ["'self'", expected]
    assert directives["default-src"] == ["'self'"] and directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_a_configured_csp_is_sent_as_written():
    policy = "default-src 'self'; connect-src 'self' https://api.example.org"
    assert FrontendConfig(content_security_policy=policy).security_policy("https://api.other.org") == policy


def test_price_class_and_origin_shield_are_environment_data(synth):
    prod, dev = distribution(frontend(synth, "prod")), distribution(frontend(synth, "dev"))
    assert prod["price_class"] == PriceClass.ALL.value
    assert dev["price_class"] == PriceClass.NORTH_AMERICA_EUROPE.value
    assert prod["origin"][0]["origin_shield"] == {"enabled": True, "origin_shield_region": "eu-west-1"}
    assert "origin_shield" not in dev["origin"][0]


@pytest.mark.parametrize("env", ENVS)
def test_the_site_is_served_in_every_country_by_default(synth, env):
    assert distribution(frontend(synth, env))["restrictions"] == {"geo_restriction": {"restriction_type": "none"}}


# -- certificate and DNS -----------------------------------------------------------------------

@pytest.mark.parametrize("env, host", [("prod", "webapp.example.com"), ("stage", "stage.webapp.example.com")])
def test_a_domain_gets_an_alias_and_a_dns_validated_certificate_in_us_east_1(synth, env, host):
    stack = frontend(synth, env)
    cloudfront = distribution(stack)
    assert cloudfront["aliases"] == [host]
    assert cloudfront["viewer_certificate"] == {
        "acm_certificate_arn": ref(stack, "aws_acm_certificate_validation", "Frontend/CertificateValidation",
                                   "certificate_arn"),
        "ssl_support_method": "sni-only", "minimum_protocol_version": "TLSv1.2_2021",
    }
    certificate = stack.resource("aws_acm_certificate", "Frontend/Certificate")
    assert certificate["domain_name"] == host and certificate["validation_method"] == "DNS"
    assert certificate["provider"] == "aws.us_east_1"
    assert certificate["lifecycle"] == {"create_before_destroy": True}
    assert stack.resource("aws_acm_certificate_validation", "Frontend/CertificateValidation")["provider"] == \
        "aws.us_east_1"
    providers = {p.get("alias"): p for p in stack.json["provider"]["aws"]}
    assert providers["us_east_1"]["region"] == "us-east-1"
    assert providers["us_east_1"]["allowed_account_ids"] == providers[None]["allowed_account_ids"]


@pytest.mark.parametrize("env, zone", [("prod", "webapp.example.com"), ("stage", "stage.webapp.example.com")])
def test_the_zone_is_looked_up_and_holds_validation_and_alias_records(synth, env, zone):
    stack = frontend(synth, env)
    (lookup,) = stack.data("aws_route53_zone").values()
    assert lookup["name"] == zone and lookup["private_zone"] is False
    assert not stack.resources("aws_route53_zone")  # never created here
    zone_id = "${data.aws_route53_zone." + next(iter(stack.data("aws_route53_zone"))) + ".zone_id}"
    validation = stack.resource("aws_route53_record", "Frontend/CertificateValidationRecord")
    assert validation["zone_id"] == zone_id and "domain_validation_options" in validation["for_each"]
    aliases = [r for r in stack.resources("aws_route53_record").values() if "alias" in r]
    assert sorted(r["type"] for r in aliases) == ["A", "AAAA"]
    for record in aliases:
        assert record["zone_id"] == zone_id and record["name"] == zone
        assert record["alias"]["name"] == ref(stack, "aws_cloudfront_distribution", "Frontend/Distribution",
                                              "domain_name")
        assert record["alias"]["zone_id"] == ref(stack, "aws_cloudfront_distribution", "Frontend/Distribution",
                                                 "hosted_zone_id")


def test_without_dns_the_site_uses_cloudfronts_domain_and_certificate(synth):
    stack = frontend(synth, "dev")
    cloudfront = distribution(stack)
    assert cloudfront["viewer_certificate"] == {"cloudfront_default_certificate": True}
    assert "aliases" not in cloudfront
    for kind in ("aws_acm_certificate", "aws_acm_certificate_validation", "aws_route53_record"):
        assert not stack.resources(kind), kind
    assert not stack.data("aws_route53_zone")
    assert [p.get("alias") for p in stack.json["provider"]["aws"]] == [None]
    domain = ref(stack, "aws_cloudfront_distribution", "Frontend/Distribution", "domain_name")
    assert stack.json["output"]["site_url"]["value"] == f"https://{domain}"


# -- WAF ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ["stage", "prod"])
def test_a_cloudfront_scope_web_acl_in_us_east_1_guards_the_distribution(synth, environments, env):
    stack = frontend(synth, env)
    config = environments.get(env).frontend
    acl = stack.resource("aws_wafv2_web_acl", "Frontend/WebAcl")
    assert acl["scope"] == "CLOUDFRONT" and acl["provider"] == "aws.us_east_1"
    assert acl["default_action"] == {"allow": {}}
    managed = [r["statement"]["managed_rule_group_statement"]["name"] for r in acl["rule"]
               if "managed_rule_group_statement" in r["statement"]]
    assert managed == list(config.waf_managed_rule_groups) == list(DEFAULT_WAF_RULE_GROUPS)
    (rate,) = [r for r in acl["rule"] if "rate_based_statement" in r["statement"]]
    assert rate["statement"]["rate_based_statement"] == {
        "limit": config.waf_rate_limit_per_5_minutes, "aggregate_key_type": "IP"}
    assert rate["action"] == {"block": {}}
    assert len({r["priority"] for r in acl["rule"]}) == len(acl["rule"])
    assert distribution(stack)["web_acl_id"] == ref(stack, "aws_wafv2_web_acl", "Frontend/WebAcl", "arn")


@pytest.mark.parametrize("env", ["stage", "prod"])
def test_web_acl_logs_to_an_encrypted_aws_waf_logs_group_in_us_east_1(synth, environments, env):
    stack = frontend(synth, env)
    group = stack.resource("aws_cloudwatch_log_group", "Frontend/WafLogGroup")
    assert group["name"] == f"aws-waf-logs-webapp-{env}-frontend"
    assert group["provider"] == "aws.us_east_1"
    assert group["retention_in_days"] == environments.get(env).frontend.log_retention_days
    assert group["kms_key_id"] == ref(stack, "aws_kms_key", "Frontend/WafLogKey", "arn")
    logging = stack.resource("aws_wafv2_web_acl_logging_configuration", "Frontend/WebAclLogging")
    assert logging["log_destination_configs"] == [ref(stack, "aws_cloudwatch_log_group", "Frontend/WafLogGroup",
                                                      "arn")]


def test_dev_runs_no_web_acl(synth):
    stack = frontend(synth, "dev")
    assert not stack.resources("aws_wafv2_web_acl") and "web_acl_id" not in distribution(stack)


# -- outputs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_outputs_have_the_fixed_names_the_deploy_command_reads(synth, env):
    stack = frontend(synth, env)
    outputs = stack.json["output"]
    assert set(outputs) == {"bucket_name", "distribution_id", "distribution_domain_name", "site_url"}
    assert outputs["bucket_name"]["value"] == ref(stack, "aws_s3_bucket", "Frontend/SiteBucket", "bucket")
    assert outputs["distribution_id"]["value"] == ref(stack, "aws_cloudfront_distribution", "Frontend/Distribution",
                                                      "id")


def test_prod_site_url_is_its_domain(synth):
    assert frontend(synth, "prod").json["output"]["site_url"]["value"] == "https://webapp.example.com"


def test_the_frontend_stack_depends_on_no_other_stack(synth):
    for env in ENVS:
        assert "terraform_remote_state" not in frontend(synth, env).json.get("data", {})


# -- variants (synthesized from edited environment files) ---------------------------------------

@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    """dev with a zone looked up by id, a subdomain, geo restriction and WAF; and the emulator target."""
    import shutil

    from tests.harness.project import ENVIRONMENTS_DIR

    directory = tmp_path_factory.mktemp("variant") / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, directory)
    path = directory / "dev.hcl"
    text = path.read_text().replace(
        "  waf_enabled                        = false",
        '  waf_enabled = true\n  subdomain = "www"\n  geo_restriction = "whitelist"\n'
        '  geo_restriction_countries = ["DE", "FR"]\n  waf_managed_rule_groups = ["AWSManagedRulesCommonRuleSet"]',
    )
    path.write_text(text + '\ndns {\n  zone_name = "dev.example.com"\n  zone_id = "Z0123456789ABC"\n}\n')
    environments = load_environments(directory, ("dev",))
    real = synthesize(environments, tmp_path_factory.mktemp("variant-real") / "cdktf.out")
    emulator = synthesize(load_environments(Path(directory), ("dev",)), tmp_path_factory.mktemp("variant-emu") / "out",
                          Target(emulator_endpoint="http://127.0.0.1:1"))
    return real.stack("dev-frontend"), emulator.stack("dev-frontend")


def test_a_subdomain_names_the_site_inside_the_zone_looked_up_by_id(variant):
    stack, _ = variant
    (lookup,) = stack.data("aws_route53_zone").values()
    assert lookup == {**lookup, "zone_id": "Z0123456789ABC"} and "name" not in lookup
    # An id is checked against the name once read (tests/emulator/test_frontend.py applies it).
    (postcondition,) = lookup["lifecycle"]["postcondition"]
    assert postcondition["condition"] == \
        '${trimsuffix(lower(self.name), ".") == "dev.example.com" && !self.private_zone}'
    assert distribution(stack)["aliases"] == ["www.dev.example.com"]
    assert stack.resource("aws_acm_certificate", "Frontend/Certificate")["domain_name"] == "www.dev.example.com"
    assert stack.json["output"]["site_url"]["value"] == "https://www.dev.example.com"


def test_geo_restriction_and_rule_groups_come_from_config(variant):
    stack, _ = variant
    assert distribution(stack)["restrictions"]["geo_restriction"] == {
        "restriction_type": GeoRestriction.WHITELIST.value, "locations": ["DE", "FR"]}
    (managed, _rate) = stack.resource("aws_wafv2_web_acl", "Frontend/WebAcl")["rule"]
    assert managed["statement"]["managed_rule_group_statement"]["name"] == "AWSManagedRulesCommonRuleSet"


def test_the_emulator_target_leaves_out_the_response_headers_policy_moto_lacks(variant):
    _, emulator = variant
    assert not emulator.resources("aws_cloudfront_response_headers_policy")
    cloudfront = distribution(emulator)
    assert "response_headers_policy_id" not in cloudfront["default_cache_behavior"]
    assert set(cloudfront["lifecycle"]["ignore_changes"]) == {"origin", "default_cache_behavior",
                                                              "viewer_certificate"}


# -- config errors -----------------------------------------------------------------------------

def frontend_error(environments_copy, name: str, old: str, new: str) -> ConfigError:
    edit(environments_copy, name, old, new)
    return load_error(environments_copy)


DEV_WAF = "  waf_enabled                        = false"


@pytest.mark.parametrize("setting, key, message", [
    ('subdomain = "WWW"', "frontend.subdomain", "lowercase DNS labels"),
    ('subdomain = ".www"', "frontend.subdomain", "lowercase DNS labels"),
    ('price_class = "PriceClass_50"', "frontend.price_class",
     'one of "PriceClass_100", "PriceClass_200", "PriceClass_All", got "PriceClass_50"'),
    ('origin_shield_region = "eu-westish-1"', "frontend.origin_shield_region", "a region Origin Shield runs in"),
    # A real region without a regional edge cache: CreateDistribution would refuse it at apply.
    ('origin_shield_region = "eu-west-3"', "frontend.origin_shield_region",
     "one with a CloudFront regional edge cache: ap-northeast-1"),
    ('content_security_policy = ""', "frontend.content_security_policy", "a non-empty policy"),
    ('content_security_policy = "' + "a" * 1784 + '"', "frontend.content_security_policy", "at most 1783"),
    ('content_security_policy = "default-src \'self\'\\n"', "frontend.content_security_policy", "one line"),
    ("hsts_max_age_seconds = 86400", "frontend.hsts_max_age_seconds", "preload needs a year"),
    ("spa_fallback_ttl_seconds = -1", "frontend.spa_fallback_ttl_seconds", "must be 0..3600, got -1"),
    ("noncurrent_version_expiration_days = 0", "frontend.noncurrent_version_expiration_days", "1..3650, got 0"),
    ("waf_rate_limit_per_5_minutes = 5", "frontend.waf_rate_limit_per_5_minutes", "10..2000000000, got 5"),
    ('waf_managed_rule_groups = ["CommonRuleSet"]', "frontend.waf_managed_rule_groups[0]",
     "an AWS managed rule group name"),
    ("waf_managed_rule_groups = []", "frontend.waf_managed_rule_groups", "1..10 distinct"),
    # CreateWebACL refuses these without managed_rule_group_configs, which the tier does not write.
    ('waf_managed_rule_groups = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesBotControlRuleSet"]',
     "frontend.waf_managed_rule_groups[1]", "Bot Control, ATP and ACFP need managed_rule_group_configs"),
    ('geo_restriction = "whitelist"', "frontend.geo_restriction_countries", "a list of distinct countries"),
    ('geo_restriction_countries = ["DE"]', "frontend.geo_restriction_countries", 'empty when geo_restriction = "none"'),
    ('geo_restriction = "blacklist"\n  geo_restriction_countries = ["de"]', "frontend.geo_restriction_countries[0]",
     "ISO 3166-1 alpha-2"),
    ("waf_enabeld = true", "frontend.waf_enabeld", "did you mean 'waf_enabled'?"),
])
def test_rejects_bad_frontend_values(environments_copy, setting, key, message):
    # dev.hcl's frontend block may already set the key: drop that line (a key given twice is an
    # error of its own). Only the frontend block: the api block has a waf_rate_limit_per_5_minutes too.
    path = environments_copy / "dev.hcl"
    text = path.read_text()
    start = text.index("\nfrontend {\n")
    end = text.index("\n}\n", start)
    keys = {line.split("=")[0].strip() for line in setting.splitlines()}
    block = "\n".join(line for line in text[start:end].split("\n") if line.split("=")[0].strip() not in keys)
    path.write_text(text[:start] + block + text[end:])
    error = frontend_error(environments_copy, "dev.hcl", DEV_WAF, f"{DEV_WAF}\n  {setting}")
    assert error.file.endswith("dev.hcl")
    assert error.key == key, str(error)
    assert message in str(error), str(error)


def test_rejects_a_site_name_the_api_already_uses(environments_copy):
    """The API stack creates `api.<zone>`; the frontend's alias record of the same name would fail to apply."""
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text().replace(DEV_WAF, f'{DEV_WAF}\n  subdomain = "api"')
                    + '\ndns {\n  zone_name = "dev.example.com"\n}\n')
    error = load_error(environments_copy)
    assert error.key == "frontend.subdomain" and 'another name than the API\'s ("api.dev.example.com")' in str(error)


@pytest.mark.parametrize("region", ["eu-south-1", "af-south-1", "me-south-1", "ap-east-1"])
def test_rejects_a_region_cloudfront_delivers_no_logs_to(environments_copy, region):
    """The log bucket is in the environment's region; CreateDistribution fails for opt-in regions."""
    edit(environments_copy, "dev.hcl", 'region     = "eu-west-1"', f'region     = "{region}"')
    error = load_error(environments_copy)
    assert error.key == "region" and "CloudFront refuses buckets in opt-in regions" in str(error)


def test_rejects_prevent_destroy_that_is_not_a_bool(environments_copy):
    error = frontend_error(environments_copy, "dev.hcl", "prevent_destroy = false", 'prevent_destroy = "no"')
    assert error.key == "frontend.prevent_destroy" and 'must be true or false, got "no"' in str(error)


def test_rejects_log_retention_that_cloudwatch_does_not_offer(environments_copy):
    error = frontend_error(environments_copy, "dev.hcl", "log_retention_days                 = 30",
                           "log_retention_days                 = 31")
    assert error.key == "frontend.log_retention_days" and "CloudWatch's retention periods" in str(error)


def test_rejects_a_subdomain_without_a_dns_zone(environments_copy):
    error = frontend_error(environments_copy, "dev.hcl", DEV_WAF, f'{DEV_WAF}\n  subdomain = "www"')
    assert error.key == "frontend.subdomain"
    assert "unset without a dns { zone_name = ... } block" in str(error) and '"www"' in str(error)


def test_rejects_a_host_name_longer_than_acm_allows(environments_copy):
    error = frontend_error(environments_copy, "prod.hcl", '  price_class                        = "PriceClass_All"',
                           '  price_class = "PriceClass_All"\n  subdomain = "' + "a" * 50 + '"')
    assert error.key == "frontend.subdomain" and "ACM's 64 characters" in str(error)


def test_frontend_block_is_optional_with_secure_defaults(environments_copy):
    path = environments_copy / "dev.hcl"
    text = path.read_text()
    start = text.index("\n# The static site")
    end = text.index("\n}\n", start) + 3
    path.write_text(text[:start] + text[end:])
    config = load_environments(environments_copy).get("dev").frontend
    assert config.prevent_destroy is True and config.waf_enabled is False
    assert config.price_class is PriceClass.NORTH_AMERICA_EUROPE


def test_rejects_unknown_frontend_block_type(environments_copy):
    append(environments_copy, "dev.hcl", 'frontend = "yes"')
    error = load_error(environments_copy)
    assert error.key == "frontend"
