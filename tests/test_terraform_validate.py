"""`terraform init -backend=false && terraform validate` of every stack, against the real aws provider.

All stacks are validated in one run, each as a child module of one root (tests/harness/jobs.py
`validate_stacks`): the provider's schema loads once.
"""

from __future__ import annotations

import pytest

from tests.harness.background import JOBS
from tests.harness.jobs import BROKEN_ARGUMENT, VALIDATE_BROKEN_COPY_OF, validate_stacks
from tests.harness.project import STACKS


@pytest.fixture(scope="session")
def validated(synth, terraform, tmp_path_factory):
    """`{stack: (ok, diagnostics)}`, validated in copies so the shared synth stays clean.

    Usually started in the background right after the session synth (conftest).
    """
    return JOBS.result("validate", validate_stacks, synth.outdir / "stacks", STACKS, terraform,
                       tmp_path_factory.mktemp("validate"), VALIDATE_BROKEN_COPY_OF)


@pytest.mark.parametrize("stack", STACKS)
def test_terraform_validate(validated, stack):
    ok, diagnostics = validated[stack]
    assert ok, f"{stack}: terraform validate failed:\n{diagnostics}"


def test_a_broken_stack_fails_on_its_own_with_terraforms_message(validated):
    """The same run validates a copy of one stack with an unknown argument on a resource."""
    ok, diagnostics = validated[f"{VALIDATE_BROKEN_COPY_OF}-broken"]
    assert not ok
    assert f'No argument or block type is named \\"{BROKEN_ARGUMENT}\\".' in diagnostics, diagnostics
    assert validated[VALIDATE_BROKEN_COPY_OF][0], "the failure leaked onto the stack it was copied from"


def test_validate_used_the_installed_provider(validated, terraform, synth):
    assert all(ok for stack, (ok, _) in validated.items() if stack in STACKS)
    assert set(STACKS) <= set(validated)
    if terraform.mirror is not None:
        assert (terraform.mirror / "registry.terraform.io/hashicorp/aws/5.100.0").is_dir()
