"""`apply-stack bootstrap|shared-cicd` (make bootstrap, make apply-shared): the organisation's two stacks,
planned, checked and applied like an environment's, with production's stateful guard on."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess

import pytest

from delivery.__main__ import main
from tests.conftest import require
from tests.harness.project import PROJECT

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}


def run_cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


def credentials(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def test_rejects_an_organisation_stack_that_was_not_synthesized(tmp_path, monkeypatch):
    credentials(monkeypatch)
    code, err = run_cli("apply-stack", "shared-cicd", "--stacks-dir", str(tmp_path))
    assert code == 2 and err.count("\n") == 1
    assert "run `make synth` first, for every environment" in err and "ENVIRONMENTS=... leaves it out" in err


def test_rejects_a_stack_that_is_not_the_organisations():
    with pytest.raises(SystemExit) as exited, contextlib.redirect_stderr(io.StringIO()):
        main(["apply-stack", "dev-network"])
    assert exited.value.code == 2


@pytest.mark.parametrize("stack", ["bootstrap", "shared-cicd"])
def test_plans_and_applies_only_that_stack_with_the_production_guard(stack, tmp_path, monkeypatch):
    """The state bucket and lock table, the image repositories and keys: a plan that replaces or deletes
    one is refused unless --allow-replace names it (delivery/terraform.py stateful_refusals)."""
    import delivery.terraform as terraform_module

    require(shutil.which("terraform") is not None, "terraform is not on PATH (install Terraform >= 1.11)")
    (tmp_path / "stacks" / stack).mkdir(parents=True)
    (tmp_path / "stacks" / stack / "cdk.tf.json").write_text("{}")
    seen = {}

    def plan_and_apply(_terraform, stacks_dir, plans_dir, plan, apply, before_plan=None, confirm=None):  # type: ignore[no-untyped-def]
        seen.update(stacks_dir=stacks_dir, plans_dir=plans_dir, plan=plan, apply=apply, confirm=confirm)
        return [stack]

    monkeypatch.setattr(terraform_module, "plan_and_apply", plan_and_apply)
    credentials(monkeypatch)
    code, err = run_cli("apply-stack", stack, "--stacks-dir", str(tmp_path / "stacks"),
                        "--allow-replace", "aws_s3_bucket.x")
    assert code == 0, err
    assert seen["plan"].stacks == seen["apply"].stacks == (stack,)
    assert seen["plan"].production and seen["apply"].production
    assert seen["apply"].allow_replace == ("aws_s3_bucket.x",)
    assert seen["plans_dir"] == tmp_path / "plans" / stack
    assert seen["confirm"] is None  # no terminal under pytest's captured stdin: nothing is asked


def test_make_targets_pass_each_allowed_address_and_the_lock_timeout():
    require(shutil.which("make") is not None, "make is not installed")
    for target, stack in (("bootstrap", "bootstrap"), ("apply-shared", "shared-cicd")):
        shown = subprocess.run(["make", "-n", target, "LOCK_TIMEOUT=10m", "ALLOW_REPLACE=aws_kms_key.a aws_s3_bucket.b"],
                               cwd=PROJECT, capture_output=True, text=True, check=True).stdout
        assert (f'-m delivery apply-stack {stack} --allow-replace "aws_kms_key.a" --allow-replace "aws_s3_bucket.b" '
                '--lock-timeout "10m"') in shown
        assert "--yes" in subprocess.run(["make", "-n", target, "YES=1"], cwd=PROJECT, capture_output=True, text=True,
                                         check=True).stdout
