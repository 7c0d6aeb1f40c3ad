"""What the emulator target changes, proven on the JSON: its `ignore_changes` list is short and each
entry that stays has the real value asserted here, on the stacks real accounts get.

Every entry of `EMULATOR_IGNORE_CHANGES` (modules/core/target.py) hides drift a second plan on the
emulator cannot see; so each `(resource type, attribute)` left there must have a test below that
asserts what AWS receives (`REAL_VALUE_TESTS`), and one without fails
`test_every_ignored_attribute_has_its_real_value_asserted`.
"""

from __future__ import annotations

import pytest

from modules.core.target import EMULATOR_IGNORE_CHANGES, Target
from modules.environment import load_environments
from tests.harness.project import ENVIRONMENTS_DIR
from tests.harness.synth import Stack, synthesize

ENVIRONMENTS = ("dev", "stage", "prod")
# The managed "CachingOptimized" cache policy (CloudFront Developer Guide, "Use managed cache policies").
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """Every environment synthesized for the emulator target (no server needed to synthesize)."""
    return synthesize(load_environments(ENVIRONMENTS_DIR), tmp_path_factory.mktemp("emulated") / "cdktf.out",
                      Target(emulator_endpoint="http://127.0.0.1:1"))


def distribution(stack: Stack) -> dict:
    (config,) = stack.resources("aws_cloudfront_distribution").values()
    return config


# -- the real values of what the emulator ignores -------------------------------------------------

def assert_parameter_groups_force_tls(synth) -> None:
    """aws_db_parameter_group.parameter: every group forces TLS (RDS for PostgreSQL User Guide,
    "Requiring an SSL connection": rds.force_ssl = 1) and logs statements slower than 1 s."""
    for env in ENVIRONMENTS:
        groups = synth.stack(f"{env}-database").resources("aws_db_parameter_group").values()
        assert groups, env
        for group in groups:
            assert {p["name"]: p["value"] for p in group["parameter"]} == {
                "rds.force_ssl": "1", "log_min_duration_statement": "1000"}, env


def assert_distribution_origins_are_the_bucket_through_origin_access_control(synth) -> None:
    """aws_cloudfront_distribution.origin: the one origin is the site bucket's regional REST endpoint,
    signed with the stack's origin access control (never a public website endpoint); prod puts Origin
    Shield in front of it (environments/prod.hcl: origin_shield_region = "eu-west-1"), the others do not."""
    for env in ENVIRONMENTS:
        stack = synth.stack(f"{env}-frontend")
        (origin,) = distribution(stack)["origin"]
        assert origin["domain_name"].endswith(".bucket_regional_domain_name}"), env
        (control,) = stack.resources("aws_cloudfront_origin_access_control")
        assert origin["origin_access_control_id"] == f"${{aws_cloudfront_origin_access_control.{control}.id}}", env
        assert "s3_origin_config" not in origin and "custom_origin_config" not in origin, env
    (origin,) = distribution(synth.stack("prod-frontend"))["origin"]
    assert origin["origin_shield"] == {"enabled": True, "origin_shield_region": "eu-west-1"}
    for env in ("dev", "stage"):
        (origin,) = distribution(synth.stack(f"{env}-frontend"))["origin"]
        assert "origin_shield" not in origin, env


def assert_default_behaviour_is_cached_https_with_security_headers(synth) -> None:
    """aws_cloudfront_distribution.default_cache_behavior: GET/HEAD only, HTTP redirected to HTTPS,
    compressed, the CachingOptimized managed policy (no legacy forwarded values or TTLs), and the
    security-headers policy on every response."""
    for env in ENVIRONMENTS:
        stack = synth.stack(f"{env}-frontend")
        behaviour = distribution(stack)["default_cache_behavior"]
        (headers,) = stack.resources("aws_cloudfront_response_headers_policy")
        assert behaviour == {
            "allowed_methods": ["GET", "HEAD"], "cached_methods": ["GET", "HEAD"],
            "cache_policy_id": CACHING_OPTIMIZED, "compress": True,
            "response_headers_policy_id": f"${{aws_cloudfront_response_headers_policy.{headers}.id}}",
            "target_origin_id": "site-bucket", "viewer_protocol_policy": "redirect-to-https",
        }, env


def assert_a_domain_is_served_with_its_acm_certificate_over_tls_1_2(synth) -> None:
    """aws_cloudfront_distribution.viewer_certificate: with a dns block, the validated ACM certificate,
    SNI and TLSv1.2_2021 (CloudFront Developer Guide, "Supported protocols and ciphers between viewers
    and CloudFront"); without one (dev), CloudFront's own certificate."""
    for env in ("stage", "prod"):
        stack = synth.stack(f"{env}-frontend")
        (validation,) = stack.resources("aws_acm_certificate_validation")
        assert distribution(stack)["viewer_certificate"] == {
            "acm_certificate_arn": f"${{aws_acm_certificate_validation.{validation}.certificate_arn}}",
            "minimum_protocol_version": "TLSv1.2_2021", "ssl_support_method": "sni-only",
        }, env
    assert distribution(synth.stack("dev-frontend"))["viewer_certificate"] == {"cloudfront_default_certificate": True}


REAL_VALUE_TESTS = {
    ("aws_db_parameter_group", "parameter"): assert_parameter_groups_force_tls,
    ("aws_cloudfront_distribution", "origin"): assert_distribution_origins_are_the_bucket_through_origin_access_control,
    ("aws_cloudfront_distribution", "default_cache_behavior"): assert_default_behaviour_is_cached_https_with_security_headers,
    ("aws_cloudfront_distribution", "viewer_certificate"): assert_a_domain_is_served_with_its_acm_certificate_over_tls_1_2,
}


def test_every_ignored_attribute_has_its_real_value_asserted():
    ignored = {(kind, attribute) for kind, attributes in EMULATOR_IGNORE_CHANGES.items() for attribute in attributes}
    assert ignored == set(REAL_VALUE_TESTS)


@pytest.mark.parametrize("entry", sorted(REAL_VALUE_TESTS), ids=lambda entry: ".".join(entry))
def test_the_real_value_of_what_the_emulator_ignores(synth, entry):
    REAL_VALUE_TESTS[entry](synth)


# -- how the emulator target applies its list ------------------------------------------------------

def test_the_emulator_adds_its_ignore_changes_after_a_resources_own(synth, emulated):
    """The emulator's entries come after what a resource ignores of its own, which the real stacks
    have too: ECS services leave desired_count to autoscaling, RDS primaries their zone."""
    for env in ENVIRONMENTS:
        for kind, own in (("aws_ecs_service", "desired_count"), ("aws_db_instance", "availability_zone")):
            stack = "api" if kind == "aws_ecs_service" else "database"
            real = [c for c in synth.stack(f"{env}-{stack}").resources(kind).values() if "lifecycle" in c]
            assert real and all(own in c["lifecycle"]["ignore_changes"] for c in real), (env, kind)
            names = {c["//"]["metadata"]["path"] for c in real}
            for config in emulated.stack(f"{env}-{stack}").resources(kind).values():
                if config["//"]["metadata"]["path"] in names:
                    ignored = config["lifecycle"]["ignore_changes"]
                    assert ignored[0] == own, (env, kind, ignored)
                    assert set(ignored[1:]) == set(EMULATOR_IGNORE_CHANGES.get(kind, ())), (env, kind, ignored)
    cloudfront = distribution(emulated.stack("prod-frontend"))
    assert set(cloudfront["lifecycle"]["ignore_changes"]) == set(EMULATOR_IGNORE_CHANGES["aws_cloudfront_distribution"])


def test_one_api_stack_sets_the_account_cloudwatch_role_where_the_emulator_merges_accounts(synth, emulated):
    """API Gateway has one CloudWatch role setting per account and region. dev, stage and prod are three
    accounts (each sets its own); on the emulator they are moto's one account, where only the first keeps
    it (modules/app.py `account_settings_owners`): three would overwrite each other's setting."""
    real = {env: len(synth.stack(f"{env}-api").resources("aws_api_gateway_account")) for env in ENVIRONMENTS}
    on_emulator = {env: len(emulated.stack(f"{env}-api").resources("aws_api_gateway_account")) for env in ENVIRONMENTS}
    assert real == {"dev": 1, "stage": 1, "prod": 1}
    assert on_emulator == {"dev": 1, "stage": 0, "prod": 0}
