"""`python main.py`'s messages before it writes anything: every error of the environment files, one
`error:` line each, exit 2; the cross-environment checks under ENVIRONMENTS=...; the warning for an
environment outside promotion_order (issue 24)."""

from __future__ import annotations

from tests.harness.edits import append, edit
from tests.harness.jobs import run_main


def qa_copy_of_dev(directory, cidr: str) -> None:
    """qa.hcl: dev's file in an account of its own, with the VPC range `cidr`."""
    qa = (directory / "dev.hcl").read_text().replace("222222222222", "555555555555")
    (directory / "qa.hcl").write_text(qa.replace('"10.10.0.0/16"', f'"{cidr}"'))


def test_three_errors_are_three_error_lines_and_nothing_is_written(tmp_path, environments_copy):
    edit(environments_copy, "dev.hcl", '"single"', '"sometimes"')
    edit(environments_copy, "dev.hcl", "backup_retention_days     = 7", "backup_retention_days     = 0")
    append(environments_copy, "dev.hcl", 'regoin = "eu-west-1"')
    outdir = tmp_path / "cdktf.out"
    result = run_main(outdir, CDKTF_ENVIRONMENTS_DIR=str(environments_copy))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3 and all(f"{environments_copy}/dev.hcl: " in line for line in errors), result.stderr
    assert result.stderr.splitlines()[-1] == "nothing was written"
    assert "Traceback" not in result.stderr and not outdir.exists()


def test_environments_qa_is_refused_when_its_range_is_devs(tmp_path, environments_copy):
    qa_copy_of_dev(environments_copy, "10.10.0.0/16")
    outdir = tmp_path / "cdktf.out"
    result = run_main(outdir, CDKTF_ENVIRONMENTS_DIR=str(environments_copy), ENVIRONMENTS="qa")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: {environments_copy}/qa.hcl: network.cidr must not overlap other environments (VPCs may be peered "
        'or share a transit gateway), got "10.10.0.0/16" which overlaps dev.hcl\'s "10.10.0.0/16"',
        "nothing was written"]
    assert not outdir.exists()


def test_synth_warns_of_an_environment_outside_promotion_order(tmp_path, environments_copy):
    qa_copy_of_dev(environments_copy, "10.50.0.0/16")
    outdir = tmp_path / "cdktf.out"
    result = run_main(outdir, CDKTF_ENVIRONMENTS_DIR=str(environments_copy), ENVIRONMENTS="qa")
    assert result.returncode == 0, result.stderr
    assert "warning: qa.hcl: qa is not in promotion_order (dev -> stage -> prod) in shared.hcl" in result.stderr
    assert (outdir / "stacks" / "qa-network" / "cdk.tf.json").is_file()
