"""End to end on the emulator: the frontend stacks applied through the S3 backend, planned again, inspected.

Two stacks, applied in parallel: `dev-frontend` as the environment files define it
(no domain, no WAF), and `qa-frontend`, a copy of dev given a Route 53 zone, a
subdomain, Origin Shield and the WAF, so the us-east-1 alias (ACM certificate,
its DNS validation, the CLOUDFRONT-scope web ACL and its logs) and the alias
records are applied too.

moto has no CloudFront response headers policy API (CreateResponseHeadersPolicy
answers 404), so the emulator target leaves `aws_cloudfront_response_headers_policy`
out (modules/core/target.py); the real-AWS JSON keeps it (tests/test_frontend.py).
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from modules.core.target import Target
from modules.environment import load_environments
from modules.frontend.frontend import (
    OUTPUT_BUCKET_NAME,
    OUTPUT_DISTRIBUTION_DOMAIN_NAME,
    OUTPUT_DISTRIBUTION_ID,
    OUTPUT_SITE_URL,
)
from tests.harness.deployer import Deployer
from tests.harness.project import ENVIRONMENTS_DIR
from tests.harness.synth import synthesize

STACK = "dev-frontend"
VARIANT = "qa-frontend"
VARIANT_ZONE = "qa.example.com"
VARIANT_HOST = f"www.{VARIANT_ZONE}"
VARIANT_FRONTEND = f"""
frontend {{
  subdomain                    = "www"
  origin_shield_region         = "eu-west-1"
  waf_enabled                  = true
  waf_rate_limit_per_5_minutes = 500
  log_retention_days           = 30
  prevent_destroy              = false
}}

dns {{
  zone_name = "{VARIANT_ZONE}"
  zone_id   = "%(zone_id)s"
}}
"""


def variant_environments(directory, zone_id):
    """`environments/` plus `qa.hcl`: dev's file with the frontend block above and a dns block
    naming the zone by id (so the apply passes the zone's postcondition: modules/core/dns.py)."""
    shutil.copytree(ENVIRONMENTS_DIR, directory)
    # qa is an environment of its own: its own account and VPC range (the loader checks every file,
    # and an account holds one environment); on the emulator every account is moto's anyway.
    text = (directory / "dev.hcl").read_text().replace("222222222222", "555555555555")
    text = text.replace('"10.10.0.0/16"', '"10.50.0.0/16"')
    start = text.index("\nfrontend {")
    end = text.index("\n}\n", start) + 3
    (directory / "qa.hcl").write_text(text[:start] + VARIANT_FRONTEND % {"zone_id": zone_id} + text[end:])
    return load_environments(directory, ("qa",))


def zone_id(response) -> str:
    return response["HostedZone"]["Id"].split("/")[-1]


@pytest.fixture(scope="module")
def applied(deployer, emulator, terraform, tmp_path_factory):
    """Both stacks applied (in parallel); `{stack: (deployer, outputs)}`."""
    root = tmp_path_factory.mktemp("frontend-variant")
    # The zone exists before the stack (the stack looks it up, never creates it).
    zone = zone_id(emulator.boto3_client("route53", region="us-east-1").create_hosted_zone(
        Name=VARIANT_ZONE, CallerReference="frontend-emulator-test"))
    synthesized = synthesize(variant_environments(root / "environments", zone), root / "cdktf.out",
                             Target(emulator_endpoint=emulator.endpoint))
    variant = Deployer(terraform, emulator, synthesized.outdir / "stacks")
    deployer.apply("bootstrap")
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda pair: pair[0].apply(pair[1]), [(deployer, STACK), (variant, VARIANT)]))
    return {STACK: (deployer, deployer.outputs(STACK)), VARIANT: (variant, variant.outputs(VARIANT))}


@pytest.fixture(scope="module")
def frontend(applied):
    return applied[STACK][1]


@pytest.mark.parametrize("stack", [STACK, VARIANT])
def test_frontend_applies_and_a_second_plan_is_clean(applied, stack):
    deployer, _ = applied[stack]
    changes = deployer.plan_changes(stack)
    assert changes is None, changes


def test_a_zone_id_of_another_or_a_private_zone_fails_the_plan(applied, emulator):
    """dns.zone_id is checked against dns.zone_name once the zone is read: a copy of the applied
    variant pointed at another public zone, or at a private zone of the same name, stops at plan."""
    deployer, _ = applied[VARIANT]
    route53 = emulator.boto3_client("route53", region="us-east-1")
    vpc = emulator.boto3_client("ec2").create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    wrong = {
        "other": zone_id(route53.create_hosted_zone(Name="other.example.com", CallerReference="frontend-other")),
        "private": zone_id(route53.create_hosted_zone(
            Name=VARIANT_ZONE, CallerReference="frontend-private", HostedZoneConfig={"PrivateZone": True},
            VPC={"VPCRegion": "eu-west-1", "VPCId": vpc})),
    }
    text = (deployer.directory(VARIANT) / "cdk.tf.json").read_text()
    (lookup,) = json.loads(text)["data"]["aws_route53_zone"].values()
    for name, wrong_id in wrong.items():
        # Every mention of the id replaced, as if the environment file named the wrong zone.
        result = deployer.plan_copy(VARIANT, f"{name}-zone", text.replace(lookup["zone_id"], wrong_id))
        assert result.returncode == 1, f"{name}: {result.stdout[-2000:]}"
        error = " ".join(result.stderr.split())  # terraform wraps long messages
        assert "Resource postcondition failed" in error, result.stderr[-2000:]
        assert f"dns.zone_id {wrong_id} must be the public hosted zone {VARIANT_ZONE}" in error, error[-2000:]


def test_the_stack_outputs_what_the_deploy_command_reads(frontend):
    assert frontend[OUTPUT_BUCKET_NAME] == "webapp-dev-frontend-site-222222222222"
    assert frontend[OUTPUT_DISTRIBUTION_ID]
    assert frontend[OUTPUT_SITE_URL] == f"https://{frontend[OUTPUT_DISTRIBUTION_DOMAIN_NAME]}"


def test_site_bucket_is_private_versioned_kms_encrypted_and_logged(frontend, emulator):
    s3 = emulator.boto3_client("s3")
    bucket = frontend[OUTPUT_BUCKET_NAME]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()), block
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    logging = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
    assert logging["TargetBucket"] == "webapp-dev-frontend-cloudfront-logs-222222222222"


def test_log_bucket_grants_cloudfront_log_delivery(frontend, emulator):
    acl = emulator.boto3_client("s3").get_bucket_acl(Bucket="webapp-dev-frontend-cloudfront-logs-222222222222")
    grantees = {g["Grantee"].get("ID") for g in acl["Grants"]}
    # CloudFront's log delivery canonical user (awslogsdelivery), as the provider publishes it.
    assert "c4c1ede66af53448b93c283ce9448c4ba468c9432aa01d700d3878632f77d2d0" in grantees
    assert not any(g["Grantee"].get("URI") for g in acl["Grants"])  # no group (public) grant


def test_bucket_policy_lets_only_this_distribution_read(frontend, emulator):
    distribution = emulator.boto3_client("cloudfront", region="us-east-1").get_distribution(
        Id=frontend[OUTPUT_DISTRIBUTION_ID])["Distribution"]
    document = json.loads(emulator.boto3_client("s3").get_bucket_policy(Bucket=frontend[OUTPUT_BUCKET_NAME])["Policy"])
    allow = next(s for s in document["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution["ARN"]}}


def test_distribution_serves_the_bucket_through_origin_access_control(frontend, emulator):
    cloudfront = emulator.boto3_client("cloudfront", region="us-east-1")
    config = cloudfront.get_distribution_config(Id=frontend[OUTPUT_DISTRIBUTION_ID])["DistributionConfig"]
    (origin,) = config["Origins"]["Items"]
    assert origin["DomainName"] == "webapp-dev-frontend-site-222222222222.s3.eu-west-1.amazonaws.com"
    # moto does not echo an origin's OriginAccessControlId (tests/test_frontend.py asserts the
    # attachment in the JSON); the control itself exists with the signing settings.
    (control,) = [c for c in cloudfront.list_origin_access_controls()["OriginAccessControlList"]["Items"]
                  if c["Name"] == "webapp-dev-frontend"]
    assert (control["SigningProtocol"], control["SigningBehavior"], control["OriginAccessControlOriginType"]) == (
        "sigv4", "always", "s3")
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    errors = {e["ErrorCode"]: (e["ResponseCode"], e["ResponsePagePath"]) for e in config["CustomErrorResponses"]["Items"]}
    assert errors == {404: ("200", "/index.html")}
    assert config["Logging"]["Bucket"].startswith("webapp-dev-frontend-cloudfront-logs-222222222222.")


def test_a_domain_gets_a_us_east_1_certificate_alias_records_and_the_web_acl(applied, emulator):
    _, outputs = applied[VARIANT]
    assert outputs[OUTPUT_SITE_URL] == f"https://{VARIANT_HOST}"
    cloudfront = emulator.boto3_client("cloudfront", region="us-east-1")
    config = cloudfront.get_distribution_config(Id=outputs[OUTPUT_DISTRIBUTION_ID])["DistributionConfig"]
    assert config["Aliases"]["Items"] == [VARIANT_HOST]
    certificate_arn = config["ViewerCertificate"]["ACMCertificateArn"]
    assert certificate_arn.startswith("arn:aws:acm:us-east-1:")
    certificate = emulator.boto3_client("acm", region="us-east-1").describe_certificate(
        CertificateArn=certificate_arn)["Certificate"]
    assert certificate["DomainName"] == VARIANT_HOST and certificate["Status"] == "ISSUED"

    route53 = emulator.boto3_client("route53", region="us-east-1")
    (zone,) = [z for z in route53.list_hosted_zones()["HostedZones"]
               if z["Name"] == f"{VARIANT_ZONE}." and not z["Config"]["PrivateZone"]]
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    aliases = {r["Type"]: r["AliasTarget"]["DNSName"] for r in records
               if r["Name"] == f"{VARIANT_HOST}." and "AliasTarget" in r}
    assert set(aliases) == {"A", "AAAA"}
    assert all(name.rstrip(".") == outputs[OUTPUT_DISTRIBUTION_DOMAIN_NAME] for name in aliases.values())
    assert any(r["Type"] == "CNAME" for r in records), "no certificate validation record"

    wafv2 = emulator.boto3_client("wafv2", region="us-east-1")
    (acl,) = [a for a in wafv2.list_web_acls(Scope="CLOUDFRONT")["WebACLs"] if a["Name"] == "webapp-qa-frontend"]
    assert config["WebACLId"] == acl["ARN"]
    logging = wafv2.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]
    assert logging["LogDestinationConfigs"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:aws-waf-logs-webapp-qa-frontend"]
