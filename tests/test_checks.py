"""The rule pack (checks/rules) over every synthesized stack of the session, as `make check` runs it."""

from __future__ import annotations

from checks.rules import RULES, load_suppressions
from tests.harness.checks import check, pack_context
from tests.harness.synth import Synthesized


def test_every_stack_passes_every_rule(synth: Synthesized, local_target_synth: Synthesized, environments):
    assert sorted(local_target_synth.stacks) == sorted(synth.stacks)
    unexplained, _ = check(synth.stacks, pack_context(environments, local_target_synth.stacks))
    assert not unexplained, "rule pack findings:\n" + "\n".join(map(str, unexplained))


def test_every_suppression_still_matches_a_finding(synth: Synthesized, local_target_synth: Synthesized, environments):
    _, suppressed = check(synth.stacks, pack_context(environments, local_target_synth.stacks))
    stale = [s for s in load_suppressions() if not any(s.matches(f) for f in suppressed)]
    assert not stale, "suppressions that match nothing any more (remove them):\n" + "\n".join(
        f"{s.rule} {s.address} in {s.stacks}" for s in stale)


def test_the_production_context_comes_from_the_environment_files(environments, local_target_synth):
    context = pack_context(environments, local_target_synth.stacks)
    # environments/prod.hcl says `production = true`; dev and stage say false.
    assert context.production == {"prod"} and context.environments == {"dev", "stage", "prod"}


def test_the_pack_has_a_rule_for_each_area_of_the_design():
    areas = {rule.id.split("-")[1] for rule in RULES}
    assert areas == {"NET", "S3", "KMS", "SG", "STATE", "EDGE", "TARGET"}
