"""`terraform init -backend=false && terraform validate` on every stack, against the real aws provider."""

from __future__ import annotations

import pytest

from tests.harness.background import JOBS
from tests.harness.jobs import validate_stacks
from tests.test_snapshots import STACKS


@pytest.fixture(scope="session")
def validated(synth, terraform, tmp_path_factory):
    """`{stack: (ok, diagnostics)}`, validated in copies so the shared synth stays clean.

    Usually started in the background right after the session synth (conftest).
    """
    return JOBS.result("validate", validate_stacks, synth.outdir / "stacks", STACKS, terraform,
                       tmp_path_factory.mktemp("validate"))


@pytest.mark.parametrize("stack", STACKS)
def test_terraform_validate(validated, stack):
    ok, diagnostics = validated[stack]
    assert ok, f"{stack}: terraform validate failed:\n{diagnostics}"


def test_validate_used_the_installed_provider(validated, terraform, synth):
    assert all(ok for ok, _ in validated.values())
    if terraform.mirror is not None:
        assert (terraform.mirror / "registry.terraform.io/hashicorp/aws/5.100.0").is_dir()
