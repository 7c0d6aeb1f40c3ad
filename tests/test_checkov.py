"""checkov over every stack: no failed check unless `tests/checkov/suppressions.toml` explains it."""

from __future__ import annotations

import pytest

from tests.conftest import require
from tests.harness.background import JOBS
from tests.harness.checkov import CHECKOV, load_suppressions, run_checkov


@pytest.fixture(scope="session")
def checkov_result(synth):
    require(CHECKOV.exists(), f"checkov is not installed at {CHECKOV} (run `make checkov-venv`)")
    # Usually started in the background right after the session synth (conftest).
    return JOBS.result("checkov", run_checkov, synth.outdir / "stacks")


def test_checkov_ran_on_every_stack(checkov_result, synth):
    """Each stack produced results of its own: a stack checkov skipped or could not read would
    otherwise hide behind the others' totals."""
    failures, passed = checkov_result
    assert sorted(passed) == sorted(synth.stacks)
    silent = [stack for stack in synth.stacks if passed[stack] == 0]
    assert not silent, f"checkov passed no check in {silent}: did it parse them?"
    assert {f.stack for f in failures} <= set(synth.stacks)


def test_no_unexplained_checkov_failures(checkov_result):
    failures, _ = checkov_result
    suppressions = load_suppressions()
    unexplained = [f for f in failures if not any(s.matches(f) for s in suppressions)]
    assert not unexplained, "checkov failures without a reviewed suppression:\n" + "\n".join(map(str, unexplained))


def test_every_suppression_still_matches_a_finding(checkov_result):
    failures, _ = checkov_result
    stale = [s for s in load_suppressions() if not any(s.matches(f) for f in failures)]
    assert not stale, "suppressions that match nothing any more (remove them):\n" + "\n".join(
        f"{s.check_id} {s.resource} in {s.stacks}" for s in stale
    )
