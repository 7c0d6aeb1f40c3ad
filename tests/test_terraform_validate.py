"""`terraform init -backend=false && terraform validate` on every stack, against the real aws provider."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.test_snapshots import STACKS

WORKERS = 2  # the machines have 2 cores; each validate loads the provider schema


@pytest.fixture(scope="session")
def validated(synth, terraform, tmp_path_factory):
    """`{stack: (ok, diagnostics)}`, validated in a copy so the shared synth stays clean."""
    root = tmp_path_factory.mktemp("validate")

    def validate(stack: str) -> tuple[bool, str]:
        workdir = root / stack
        shutil.copytree(synth.outdir / "stacks" / stack, workdir)
        init = terraform.run(workdir, "init", "-backend=false", "-input=false", "-no-color")
        if init.returncode != 0:
            return False, f"terraform init failed:\n{init.stdout[-3000:]}\n{init.stderr[-3000:]}"
        result = terraform.run(workdir, "validate", "-no-color", "-json")
        return result.returncode == 0, result.stdout + result.stderr

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(STACKS, pool.map(validate, STACKS), strict=True))


@pytest.mark.parametrize("stack", STACKS)
def test_terraform_validate(validated, stack):
    ok, diagnostics = validated[stack]
    assert ok, f"{stack}: terraform validate failed:\n{diagnostics}"


def test_validate_used_the_installed_provider(validated, terraform, synth):
    assert all(ok for ok, _ in validated.values())
    if terraform.mirror is not None:
        assert (terraform.mirror / "registry.terraform.io/hashicorp/aws/5.100.0").is_dir()
