"""The design's promises as small pure rules over synthesized stacks (the cdk-nag idea).

Each rule is a function `(stack, context) -> [(address, detail)]` with an id and a one-line
rationale; `run(stacks, context)` applies every rule to every stack and returns the findings
that no suppression explains. `python -m checks cdktf.out` is the command (README: "What the
checks guarantee").
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.rules import buckets, edge, keys, network, security_groups, stateful, target
from checks.rules.stack import Stack

Check = Callable[[Stack, Any], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class Rule:
    id: str
    rationale: str
    check: Check


@dataclass(frozen=True)
class Context:
    """What a rule may need beyond one stack: which environments exist and which of them are
    production (from the environment files), and the emulator target's synthesis, if any."""

    environments: frozenset[str] = frozenset()
    production: frozenset[str] = frozenset()
    emulator: Mapping[str, Stack] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    rule: str
    stack: str
    address: str
    detail: str
    rationale: str

    def __str__(self) -> str:
        return f"{self.rule} {self.stack} {self.address}: {self.detail} ({self.rationale})"


RULES: tuple[Rule, ...] = (
    Rule("WEBAPP-NET-1", "Isolated (database) subnets have no route out of the VPC.",
         network.isolated_subnets_have_no_route_out),
    Rule("WEBAPP-NET-2", "Private (app) subnets leave the VPC only through NAT, and do when NAT is on.",
         network.private_subnets_leave_only_through_nat),
    Rule("WEBAPP-NET-3", "Public subnets leave the VPC only through the internet gateway.",
         network.public_subnets_leave_only_through_the_internet_gateway),
    Rule("WEBAPP-NET-4", "Each route table serves subnets of one tier, and each subnet has one route table.",
         network.route_tables_serve_one_subnet_tier),
    Rule("WEBAPP-NET-5", "Every VPC has the endpoints its tasks need without NAT (ECR API and Docker, S3 gateway, "
         "Logs, Secrets Manager, STS, Prometheus).", network.endpoints_without_nat),
    Rule("WEBAPP-S3-1", "Every bucket blocks all public access.", buckets.buckets_block_public_access),
    Rule("WEBAPP-S3-2", "Every bucket's policy denies requests without TLS.", buckets.buckets_are_tls_only),
    Rule("WEBAPP-S3-3", "Every bucket is encrypted by default.", buckets.buckets_are_encrypted),
    Rule("WEBAPP-S3-4", "Log delivery into a bucket is limited by aws:SourceAccount and aws:SourceArn; any other "
         "service by one of them.", buckets.log_delivery_is_limited_to_this_account),
    Rule("WEBAPP-KMS-1", "Every KMS key is administered only by its own account.",
         keys.keys_are_administered_by_their_own_account),
    Rule("WEBAPP-KMS-2", "Every service principal in a key policy is limited to the key's account and region.",
         keys.key_service_principals_are_held_to_account_and_region),
    Rule("WEBAPP-SG-1", "No security group admits ingress from the whole internet.",
         security_groups.no_ingress_from_the_world),
    Rule("WEBAPP-SG-2", "Traffic goes API Gateway -> NLB -> service -> database, and no other way in.",
         security_groups.traffic_follows_api_nlb_service_database),
    Rule("WEBAPP-STATE-1", "Production's stateful resources (and the keys that encrypt them) cannot be destroyed "
         "by accident.", stateful.production_stateful_resources_are_protected),
    Rule("WEBAPP-EDGE-1", "Every WAF web ACL enforces AWS's core rule set and known bad inputs (Log4j).",
         edge.web_acls_run_the_baseline_rule_groups),
    Rule("WEBAPP-EDGE-2", "CloudFront uses AWS managed cache policy ids as AWS documents them (CachingOptimized "
         "for the site).", edge.cloudfront_uses_managed_cache_policies),
    Rule("WEBAPP-TARGET-1", "The emulator target differs from the real one only as modules/core/target.py documents.",
         target.emulator_differs_only_as_documented),
)


@dataclass(frozen=True)
class Suppression:
    rule: str
    stacks: str
    address: str
    reason: str

    def matches(self, finding: Finding) -> bool:
        return (self.rule == finding.rule and fnmatch.fnmatchcase(finding.stack, self.stacks)
                and fnmatch.fnmatchcase(finding.address, self.address))


SUPPRESSIONS_FILE = Path(__file__).resolve().parent / "suppressions.toml"
MINIMUM_REASON = 20


class SuppressionError(ValueError):
    """A suppression without a rule id known here, or without a written reason."""


def load_suppressions(path: Path = SUPPRESSIONS_FILE) -> list[Suppression]:
    """`[[suppress]]` entries: `rule`, `address` and `stacks` (shell patterns), and a `reason`."""
    entries = tomllib.loads(path.read_text()).get("suppress", [])
    known = {rule.id for rule in RULES}
    found = []
    for index, entry in enumerate(entries):
        rule, reason = entry.get("rule"), str(entry.get("reason", "")).strip()
        if rule not in known:
            raise SuppressionError(f"{path}: suppress[{index}].rule must be one of {', '.join(sorted(known))}, "
                                   f"got {rule!r}")
        if len(reason) < MINIMUM_REASON:
            raise SuppressionError(f"{path}: suppress[{index}] ({rule}) needs a reason of at least "
                                   f"{MINIMUM_REASON} characters, got {reason!r}")
        found.append(Suppression(rule, entry.get("stacks", "*"), entry.get("address", "*"), reason))
    return found


def findings(stacks: Iterable[Stack], context: Context, rules: Iterable[Rule] = RULES) -> list[Finding]:
    """Every rule's findings on every stack, unsuppressed."""
    rules = tuple(rules)
    return [Finding(rule.id, stack.name, where, detail, rule.rationale)
            for stack in stacks for rule in rules for where, detail in rule.check(stack, context)]


def run(stacks: Iterable[Stack], context: Context,
        suppressions: Iterable[Suppression] = ()) -> tuple[list[Finding], list[Finding]]:
    """`(unexplained, suppressed)` findings."""
    suppressions = tuple(suppressions)
    unexplained: list[Finding] = []
    suppressed: list[Finding] = []
    for finding in findings(stacks, context):
        (suppressed if any(s.matches(finding) for s in suppressions) else unexplained).append(finding)
    return unexplained, suppressed

