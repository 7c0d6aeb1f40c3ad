"""Mutation test: realistic bugs, written as edits of the real synthesized JSON, must each be caught
by the rule pack (checks/rules). The snapshot does not count: `make snapshot-update` re-records
any of them in one go.

The first eleven are the bugs of issue 26 that only checkov, the snapshot or nothing caught;
the rest are bugs of the kind the property tests catch, here caught by the pack as well. JSON
edits only (no terraform, no synth): the whole catalogue runs in well under a second.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from checks.rules import Finding
from tests.conftest import SUMMARY
from tests.harness.checks import check, pack_context

Stacks = dict[str, dict[str, Any]]

# The score recorded in README.md ("What the checks guarantee"); the suite fails below it.
RECORDED_CAUGHT, RECORDED_TOTAL = 25, 25


def resource(stacks: Stacks, stack: str, resource_type: str, path_suffix: str) -> dict[str, Any]:
    found = [config for config in stacks[stack]["resource"][resource_type].values()
             if config["//"]["metadata"]["path"].endswith(path_suffix)]
    assert len(found) == 1, f"{stack}: {len(found)} {resource_type} at */{path_suffix}"
    return found[0]


def name_of(stacks: Stacks, stack: str, resource_type: str, path_suffix: str) -> str:
    (name,) = [n for n, c in stacks[stack]["resource"][resource_type].items()
               if c["//"]["metadata"]["path"].endswith(path_suffix)]
    return name


def document(stacks: Stacks, stack: str, path_suffix: str) -> list[dict[str, Any]]:
    (found,) = [d for d in stacks[stack]["data"]["aws_iam_policy_document"].values()
                if d["//"]["metadata"]["path"].endswith(path_suffix)]
    return found["statement"]


def statement(stacks: Stacks, stack: str, path_suffix: str, sid: str) -> dict[str, Any]:
    (found,) = [s for s in document(stacks, stack, path_suffix) if s.get("sid") == sid]
    return found


def ref(stacks: Stacks, stack: str, resource_type: str, path_suffix: str) -> str:
    return f"${{{resource_type}.{name_of(stacks, stack, resource_type, path_suffix)}.id}}"


@dataclass(frozen=True)
class Mutation:
    name: str
    caught_before: str  # what caught it in issue 26's experiment: property, checkov, snapshot, nothing
    rules: tuple[str, ...]  # the rules expected to catch it
    edit: Callable[[Stacks, Stacks], None]  # (real stacks, emulator stacks), edited in place


def _flow_log_key_for_everyone(s: Stacks, _e: Stacks) -> None:
    statement(s, "dev-network", "Network/FlowLogKeyPolicy", "AccountAdministers")["principals"] = [
        {"type": "AWS", "identifiers": ["*"]}]


# The NLB's access-log bucket that issue 26's experiment mutated is gone (NLB access logs are written
# only for TLS listeners; the api tier has none): its three bugs are made on the frontend's log
# bucket, the remaining bucket with log delivery, where the same rules must catch them.
def _log_bucket_unencrypted(s: Stacks, _e: Stacks) -> None:
    del s["prod-frontend"]["resource"]["aws_s3_bucket_server_side_encryption_configuration"][
        name_of(s, "prod-frontend", "aws_s3_bucket_server_side_encryption_configuration", "Frontend/LogEncryption")]


def _frontend_waf_without_log4j(s: Stacks, _e: Stacks) -> None:
    acl = resource(s, "prod-frontend", "aws_wafv2_web_acl", "Frontend/WebAcl")
    acl["rule"] = [r for r in acl["rule"] if r["name"] != "AWSManagedRulesKnownBadInputsRuleSet"]


def _database_subnets_through_nat(s: Stacks, _e: Stacks) -> None:
    for az in range(3):
        association = resource(s, "prod-network", "aws_route_table_association", f"IsolatedRouteTableAssociation{az}")
        association["route_table_id"] = ref(s, "prod-network", "aws_route_table", f"PrivateRouteTable{az}")


def _service_subnets_on_public_table(s: Stacks, _e: Stacks) -> None:
    for az in range(3):
        association = resource(s, "prod-network", "aws_route_table_association", f"PrivateRouteTableAssociation{az}")
        association["route_table_id"] = ref(s, "prod-network", "aws_route_table", "PublicRouteTable")


def _log_bucket_tls_deny_removed(s: Stacks, _e: Stacks) -> None:
    statements = document(s, "prod-frontend", "Frontend/LogBucketPolicyDocument")
    statements[:] = [x for x in statements if x.get("sid") != "DenyInsecureTransport"]


def _log_delivery_unconditioned(s: Stacks, _e: Stacks) -> None:
    for x in document(s, "prod-frontend", "Frontend/LogBucketPolicyDocument"):
        x["condition"] = [c for c in x.get("condition", [])
                          if c["variable"] not in ("aws:SourceAccount", "aws:SourceArn")]


def _database_key_administered_elsewhere(s: Stacks, _e: Stacks) -> None:
    statement(s, "prod-database", "Database/KeyPolicy", "AccountAdministers")["principals"] = [
        {"type": "AWS", "identifiers": ["arn:aws:iam::999999999999:root"]}]


def _waf_log_key_for_another_regions_logs(s: Stacks, _e: Stacks) -> None:
    # What passing the stack's region (eu-west-1) instead of the key's (us-east-1) writes.
    grant = statement(s, "prod-frontend", "Frontend/WafLogKeyPolicy", "CloudWatchLogsEncrypts")
    grant["principals"] = [{"type": "Service", "identifiers": ["logs.eu-west-1.amazonaws.com"]}]
    for condition in grant["condition"]:
        condition["values"] = [v.replace(":us-east-1:", ":eu-west-1:") for v in condition["values"]]


def _ecr_dkr_endpoint_dropped(s: Stacks, _e: Stacks) -> None:
    del s["dev-network"]["resource"]["aws_vpc_endpoint"][name_of(s, "dev-network", "aws_vpc_endpoint", "EcrDkrEndpoint")]


def _emulator_ignores_policy_and_group_drift(_s: Stacks, e: Stacks) -> None:
    resource(e, "prod-frontend", "aws_s3_bucket_policy", "Frontend/LogBucketPolicy")["lifecycle"] = {
        "ignore_changes": ["policy"]}
    resource(e, "prod-database", "aws_security_group", "Database/SecurityGroup")["lifecycle"] = {
        "ignore_changes": ["ingress", "egress"]}


def _database_open_to_the_world(s: Stacks, _e: Stacks) -> None:
    s["prod-database"]["resource"]["aws_vpc_security_group_ingress_rule"] = {"Open": {
        "security_group_id": ref(s, "prod-database", "aws_security_group", "Database/SecurityGroup"),
        "ip_protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr_ipv4": "0.0.0.0/0"}}


def _service_open_to_the_vpc(s: Stacks, _e: Stacks) -> None:
    rule = resource(s, "prod-api", "aws_vpc_security_group_ingress_rule", "Service1/IngressFromLoadBalancer")
    del rule["referenced_security_group_id"]
    rule["cidr_ipv4"] = "10.30.0.0/16"


def _nlb_internet_facing(s: Stacks, _e: Stacks) -> None:
    resource(s, "prod-api", "aws_lb", "LoadBalancer/LoadBalancer")["internal"] = False


def _site_bucket_policy_may_be_public(s: Stacks, _e: Stacks) -> None:
    resource(s, "prod-frontend", "aws_s3_bucket_public_access_block", "Frontend/SitePublicAccessBlock")[
        "block_public_policy"] = False


def _prod_database_deletable(s: Stacks, _e: Stacks) -> None:
    resource(s, "prod-database", "aws_db_instance", "Database/Primary")["deletion_protection"] = False


def _prod_database_key_unprotected(s: Stacks, _e: Stacks) -> None:
    del resource(s, "prod-database", "aws_kms_key", "Database/Key")["lifecycle"]


def _prod_api_log_group_unprotected(s: Stacks, _e: Stacks) -> None:
    # A destroyed log group takes its events with it: an audit trail lost by a rename.
    del resource(s, "prod-api", "aws_cloudwatch_log_group", "Service1/LogGroup")["lifecycle"]


def _public_subnets_through_nat(s: Stacks, _e: Stacks) -> None:
    route = resource(s, "prod-network", "aws_route", "Network/PublicDefaultRoute")
    del route["gateway_id"]
    route["nat_gateway_id"] = ref(s, "prod-network", "aws_nat_gateway", "NatGateway0")


def _cache_policy_typo(s: Stacks, _e: Stacks) -> None:
    behavior = resource(s, "prod-frontend", "aws_cloudfront_distribution", "Frontend/Distribution")[
        "default_cache_behavior"]
    behavior["cache_policy_id"] = behavior["cache_policy_id"][:-1] + "7"


def _api_common_rules_only_counted(s: Stacks, _e: Stacks) -> None:
    acl = resource(s, "prod-api", "aws_wafv2_web_acl", "Gateway/WebAcl")
    (common,) = [r for r in acl["rule"] if r["name"] == "AWSManagedRulesCommonRuleSet"]
    common["override_action"] = {"count": {}}


def _registry_deletable(s: Stacks, _e: Stacks) -> None:
    repository = resource(s, "shared-cicd", "aws_ecr_repository", "Registry/WebappService1")
    repository["force_delete"] = True
    repository["lifecycle"] = {"prevent_destroy": False}


def _site_readable_by_any_distribution(s: Stacks, _e: Stacks) -> None:
    for sid in ("CloudFrontReadsThroughOriginAccessControl", "CloudFrontSeesMissingKeys"):
        del statement(s, "prod-frontend", "Frontend/SiteBucketPolicyDocument", sid)["condition"]


def _alarm_key_for_any_account(s: Stacks, _e: Stacks) -> None:
    del statement(s, "prod-api", "Api/AlarmKeyPolicy", "CloudWatchAlarmsPublish")["condition"]


def _database_reachable_on_every_port(s: Stacks, _e: Stacks) -> None:
    rule = resource(s, "prod-api", "aws_vpc_security_group_ingress_rule", "Service1/DatabaseIngress")
    rule["from_port"], rule["to_port"] = 0, 65535


CATALOGUE = (
    Mutation("flow-log key grants kms:* to every principal", "checkov", ("WEBAPP-KMS-1",), _flow_log_key_for_everyone),
    Mutation("log bucket unencrypted (was the NLB's)", "checkov", ("WEBAPP-S3-3",), _log_bucket_unencrypted),
    Mutation("frontend WAF without the Log4j rules", "checkov", ("WEBAPP-EDGE-1",), _frontend_waf_without_log4j),
    Mutation("database subnets routed through the NAT gateways", "snapshot", ("WEBAPP-NET-1",),
             _database_subnets_through_nat),
    Mutation("service subnets on the public route table", "snapshot", ("WEBAPP-NET-2",),
             _service_subnets_on_public_table),
    Mutation("log bucket's TLS-only deny removed (was the NLB's)", "snapshot", ("WEBAPP-S3-2",),
             _log_bucket_tls_deny_removed),
    Mutation("log delivery without SourceAccount/SourceArn (was the NLB's)", "snapshot", ("WEBAPP-S3-4",),
             _log_delivery_unconditioned),
    Mutation("database key administered by another account", "snapshot", ("WEBAPP-KMS-1",),
             _database_key_administered_elsewhere),
    Mutation("WAF-log key granted to CloudWatch Logs of the wrong region", "snapshot", ("WEBAPP-KMS-2",),
             _waf_log_key_for_another_regions_logs),
    Mutation("ecr.dkr endpoint dropped", "snapshot", ("WEBAPP-NET-5",), _ecr_dkr_endpoint_dropped),
    Mutation("emulator target ignores bucket-policy and security-group drift", "nothing", ("WEBAPP-TARGET-1",),
             _emulator_ignores_policy_and_group_drift),
    Mutation("database security group open to the internet", "property", ("WEBAPP-SG-1",), _database_open_to_the_world),
    Mutation("service reachable from the VPC, not only the NLB", "property", ("WEBAPP-SG-2",), _service_open_to_the_vpc),
    Mutation("NLB internet-facing", "property", ("WEBAPP-SG-2",), _nlb_internet_facing),
    Mutation("site bucket accepts a public policy", "property", ("WEBAPP-S3-1",), _site_bucket_policy_may_be_public),
    Mutation("production database without deletion protection", "property", ("WEBAPP-STATE-1",),
             _prod_database_deletable),
    Mutation("production database key without prevent_destroy", "property", ("WEBAPP-STATE-1",),
             _prod_database_key_unprotected),
    Mutation("production service log group without prevent_destroy", "property", ("WEBAPP-STATE-1",),
             _prod_api_log_group_unprotected),
    Mutation("public subnets routed through NAT", "property", ("WEBAPP-NET-3",), _public_subnets_through_nat),
    Mutation("CloudFront cache policy id with a typo", "property", ("WEBAPP-EDGE-2",), _cache_policy_typo),
    Mutation("API WAF only counts the common rule set", "property", ("WEBAPP-EDGE-1",), _api_common_rules_only_counted),
    Mutation("registry repository deletable with its images", "property", ("WEBAPP-STATE-1",), _registry_deletable),
    Mutation("site bucket readable by any CloudFront distribution", "property", ("WEBAPP-S3-4",),
             _site_readable_by_any_distribution),
    Mutation("alarm key usable by CloudWatch of any account", "property", ("WEBAPP-KMS-2",), _alarm_key_for_any_account),
    Mutation("database reachable from the tasks on every port", "property", ("WEBAPP-SG-2",),
             _database_reachable_on_every_port),
)


def _key(finding: Finding) -> tuple[str, str, str, str]:
    return finding.rule, finding.stack, finding.address, finding.detail


_CAUGHT: dict[str, list[Finding]] = {}


def new_findings(synth, local_target_synth, environments, mutation: Mutation) -> list[Finding]:
    """The findings the mutation adds, on the stacks it changed (computed once per mutation)."""
    if mutation.name in _CAUGHT:
        return _CAUGHT[mutation.name]
    real, emulated = copy.deepcopy(synth.stacks), copy.deepcopy(local_target_synth.stacks)
    mutation.edit(real, emulated)
    changed = {name for name in real if real[name] != synth.stacks[name] or emulated[name] != local_target_synth.stacks[name]}
    assert changed, f"{mutation.name}: the edit changed nothing"
    baseline = {_key(f) for f in check({n: synth.stacks[n] for n in changed},
                                       pack_context(environments, local_target_synth.stacks))[0]}
    found, _ = check({n: real[n] for n in changed}, pack_context(environments, emulated))
    _CAUGHT[mutation.name] = [f for f in found if _key(f) not in baseline]
    return _CAUGHT[mutation.name]


def test_the_catalogue_holds_issue_26s_twenty_bugs_and_more():
    origins = [m.caught_before for m in CATALOGUE]
    assert (origins.count("checkov"), origins.count("snapshot"), origins.count("nothing")) == (3, 7, 1)
    assert origins.count("property") >= 9 and len({m.name for m in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("mutation", CATALOGUE, ids=[m.name for m in CATALOGUE])
def test_the_expected_rule_catches_the_mutation(synth, local_target_synth, environments, mutation):
    caught_by = {f.rule for f in new_findings(synth, local_target_synth, environments, mutation)}
    assert caught_by & set(mutation.rules), f"{mutation.name}: expected {mutation.rules}, caught by {caught_by or 'nothing'}"


def test_mutation_score_does_not_drop(synth, local_target_synth, environments):
    missed = [m.name for m in CATALOGUE if not new_findings(synth, local_target_synth, environments, m)]
    caught = len(CATALOGUE) - len(missed)
    SUMMARY.append(f"mutation score: {caught}/{len(CATALOGUE)} caught by the rule pack (recorded: "
                   f"{RECORDED_CAUGHT}/{RECORDED_TOTAL})" + (f"; missed: {', '.join(missed)}" if missed else ""))
    assert caught / len(CATALOGUE) >= RECORDED_CAUGHT / RECORDED_TOTAL and caught >= RECORDED_CAUGHT, missed
