"""The rule pack (checks/rules): every rule fails its non-compliant fixture and passes its compliant
one (tests/checks_fixtures/<rule id>/), its suppressions need reasons, and the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks.__main__ import main
from checks.rules import RULES, Context, SuppressionError, findings, load_suppressions, run
from checks.rules.stack import Stack

FIXTURES = Path(__file__).resolve().parent / "checks_fixtures"
RULE_IDS = [rule.id for rule in RULES]


def load(rule_id: str, kind: str) -> tuple[Stack, Context]:
    document = json.loads((FIXTURES / rule_id / f"{kind}.json").read_text())
    context = document.get("context", {})
    emulator = {"fixture": Stack("fixture", document["emulator"])} if "emulator" in document else {}
    return Stack("fixture", document["stack"]), Context(
        environments=frozenset(context.get("environments", ())), production=frozenset(context.get("production", ())),
        emulator=emulator)


def rule(rule_id: str):
    (found,) = [r for r in RULES if r.id == rule_id]
    return found


def test_every_rule_has_an_id_a_rationale_and_both_fixtures():
    assert len(set(RULE_IDS)) == len(RULE_IDS)
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(RULE_IDS)
    for each in RULES:
        assert each.id.startswith("WEBAPP-") and each.rationale.endswith(".") and "\n" not in each.rationale


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_passes_its_compliant_fixture(rule_id):
    stack, context = load(rule_id, "compliant")
    assert list(rule(rule_id).check(stack, context)) == []


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_fails_its_noncompliant_fixture(rule_id):
    stack, context = load(rule_id, "noncompliant")
    found = list(rule(rule_id).check(stack, context))
    assert found, f"{rule_id} found nothing in its non-compliant fixture"
    assert all(isinstance(where, str) and where and detail for where, detail in found)


def test_the_noncompliant_fixtures_name_the_resource_at_fault():
    cases = {
        "WEBAPP-NET-1": "aws_route.IsolatedOut", "WEBAPP-S3-3": "aws_s3_bucket.Logs",
        "WEBAPP-KMS-1": "aws_kms_key.LogKey.policy[AccountAdministers]",
        "WEBAPP-SG-1": "aws_vpc_security_group_ingress_rule.Open",
        "WEBAPP-STATE-1": "aws_db_instance.Primary",
        "WEBAPP-TARGET-1": "resource.aws_s3_bucket_policy.Policy.lifecycle",
    }
    for rule_id, expected in cases.items():
        stack, context = load(rule_id, "noncompliant")
        assert expected in {where for where, _ in rule(rule_id).check(stack, context)}, rule_id


def test_stateful_rule_counts_a_log_group_as_stateful():
    # Destroying a log group deletes its events (CloudWatch Logs DeleteLogGroup).
    stack, context = load("WEBAPP-STATE-1", "noncompliant")
    found = {where for where, _ in rule("WEBAPP-STATE-1").check(stack, context)}
    assert "aws_cloudwatch_log_group.Logs" in found


def test_stateful_rule_spares_non_production_environments():
    stack, context = load("WEBAPP-STATE-1", "noncompliant")
    stack.json["provider"]["aws"][0]["default_tags"] = [{"tags": {"environment": "dev"}}]
    assert list(rule("WEBAPP-STATE-1").check(Stack("fixture", stack.json), context)) == []


def test_target_rule_is_not_applicable_without_the_emulator_synthesis():
    stack, _ = load("WEBAPP-TARGET-1", "noncompliant")
    assert list(rule("WEBAPP-TARGET-1").check(stack, Context())) == []


def test_a_suppression_needs_a_known_rule_and_a_written_reason(tmp_path):
    path = tmp_path / "suppressions.toml"
    path.write_text('[[suppress]]\nrule = "WEBAPP-SG-1"\naddress = "*"\nreason = "because"\n')
    with pytest.raises(SuppressionError, match="needs a reason"):
        load_suppressions(path)
    path.write_text('[[suppress]]\nrule = "WEBAPP-XX-9"\nreason = "a reason long enough to be read"\n')
    with pytest.raises(SuppressionError, match="must be one of"):
        load_suppressions(path)


def test_a_suppression_with_a_reason_explains_only_what_it_matches(tmp_path):
    stack, context = load("WEBAPP-SG-1", "noncompliant")
    path = tmp_path / "suppressions.toml"
    path.write_text('[[suppress]]\nrule = "WEBAPP-SG-1"\nstacks = "fixture"\n'
                    'address = "aws_vpc_security_group_ingress_rule.Open"\n'
                    'reason = "a public health port, reviewed for this test"\n')
    unexplained, suppressed = run([stack], context, load_suppressions(path))
    assert [f.address for f in suppressed] == ["aws_vpc_security_group_ingress_rule.Open"]
    assert all(f.rule != "WEBAPP-SG-1" for f in unexplained)


def test_the_shipped_suppressions_load():
    assert all(len(s.reason) >= 20 for s in load_suppressions())


def _outdir(tmp_path: Path, rule_id: str, kind: str) -> Path:
    stack, _ = load(rule_id, kind)
    target = tmp_path / kind / "stacks" / "fixture"
    target.mkdir(parents=True)
    (target / "cdk.tf.json").write_text(json.dumps(stack.json))
    return tmp_path / kind


def test_cli_exits_0_when_clean_1_with_findings_2_on_bad_input(tmp_path, capsys):
    assert main([str(_outdir(tmp_path, "WEBAPP-SG-1", "compliant"))]) == 0
    assert main([str(_outdir(tmp_path, "WEBAPP-SG-1", "noncompliant"))]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "WEBAPP-SG-1 fixture aws_vpc_security_group_ingress_rule.Open: ingress from the whole internet" in out[0]
    assert out[0].endswith("(No security group admits ingress from the whole internet.)")
    assert main([str(tmp_path / "nothing")]) == 2
    assert "error: no stacks under" in capsys.readouterr().err


def test_findings_carry_rule_stack_address_and_rationale():
    stack, context = load("WEBAPP-S3-2", "noncompliant")
    (finding,) = [f for f in findings([stack], context) if f.rule == "WEBAPP-S3-2"]
    assert (finding.stack, finding.address) == ("fixture", "aws_s3_bucket.Logs")
    assert finding.rationale == rule("WEBAPP-S3-2").rationale
