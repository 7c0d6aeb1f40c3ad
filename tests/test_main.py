"""`python main.py`: output, errors, and equivalence with the in-process synth."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest

from tests.conftest import BACKGROUND_OUTDIRS
from tests.harness.background import JOBS
from tests.harness.jobs import CDKTF_CLI, cdktf_cli_synth, run_main, run_plain_import


def tree_differences(left: Path, right: Path) -> list[str]:
    comparison = filecmp.dircmp(left, right)
    problems = [f"only in one: {name}" for name in comparison.left_only + comparison.right_only]
    problems += [str(left / name) for name in comparison.diff_files]
    problems += [
        str(left / name)
        for name in comparison.common_files
        if not filecmp.cmp(left / name, right / name, shallow=False)
    ]
    for sub in comparison.common_dirs:
        problems += tree_differences(left / sub, right / sub)
    return problems


@pytest.fixture(scope="module")
def plain_import_run():
    """main.py with the provider imported the ordinary way (its whole __init__).

    Started in the background when the session's tests are collected (conftest).
    """
    outdir = BACKGROUND_OUTDIRS / "main-plain" / "cdktf.out"
    return outdir, JOBS.result("plain-import-run", run_plain_import, outdir)


def test_main_reports_where_it_wrote_and_which_stacks(plain_import_run, expected_stacks):
    outdir, result = plain_import_run
    assert result.returncode == 0, result.stderr
    assert f"into {outdir}/stacks:" in result.stdout
    for stack in expected_stacks:
        assert f"  {stack}\n" in result.stdout


def test_main_output_is_byte_identical_to_the_lazy_import_synth(plain_import_run, synth):
    """Also guards the lazy provider import (modules/aws.py) against provider upgrades."""
    outdir, result = plain_import_run
    assert result.returncode == 0, result.stderr
    assert tree_differences(outdir, synth.outdir) == []


@pytest.fixture(scope="module")
def optimized_run():
    """main.py as users run it: lazy provider import, lazy Node index, fast exit."""
    outdir = BACKGROUND_OUTDIRS / "main-optimized" / "cdktf.out"
    return outdir, JOBS.result("optimized-run", run_main, outdir)


def test_optimized_and_plain_main_write_byte_identical_trees(plain_import_run, optimized_run):
    """Both paths in fresh processes, every file (manifest and stacks): what the benchmark compares."""
    (plain, plain_result), (optimized, optimized_result) = plain_import_run, optimized_run
    assert plain_result.returncode == 0, plain_result.stderr
    assert optimized_result.returncode == 0, optimized_result.stderr
    assert tree_differences(plain, optimized) == []


def processes_started_in(scratch: Path) -> list[str]:
    """Command lines of running processes that mention `scratch` (jsii's kernel runs from its TMPDIR)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(scratch) in cmdline:
                found.append(cmdline.replace("\0", " "))
    return found


def test_bad_environment_file_prints_one_error_and_writes_nothing(tmp_path, environments_copy):
    broken = environments_copy / "dev.hcl"
    broken.write_text(broken.read_text().replace('"single"', '"sometimes"'))
    outdir = tmp_path / "cdktf.out"
    # The kernel starts while the files are read (cli.load_bindings_in_background): an error still
    # stops it and removes its folder.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = run_main(outdir, CDKTF_ENVIRONMENTS_DIR=str(environments_copy), TMPDIR=str(scratch))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("error: ")
    assert 'dev.hcl: network.nat_gateways must be one of "none", "single", "per_az", got "sometimes"' in result.stderr
    assert "Traceback" not in result.stderr
    assert not outdir.exists()
    assert list(scratch.iterdir()) == [], "jsii left its runtime folder behind"
    assert processes_started_in(scratch) == []


def test_cdktf_cli_synth_writes_the_same_stacks(synth):
    """`cdktf synth` (cdktf-cli 0.21 from package.json) runs main.py via cdktf.json."""
    from tests.conftest import require

    require(CDKTF_CLI.exists(), "cdktf-cli is not installed (run `npm ci`)")
    outdir = BACKGROUND_OUTDIRS / "cdktf-cli" / "cdktf.out"
    result = JOBS.result("cdktf-cli-synth", cdktf_cli_synth, outdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert tree_differences(outdir / "stacks", synth.outdir / "stacks") == []


def test_fast_exit_leaves_no_node_process_and_no_jsii_temp_dir(tmp_path):
    """The optimized exit skips interpreter teardown but still stops jsii's kernel and cleans up."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    outdir = tmp_path / "cdktf.out"
    result = run_main(outdir, ENVIRONMENTS="dev", TMPDIR=str(scratch), CDKTF_FAST_EXIT="1")
    assert result.returncode == 0, result.stderr
    assert (outdir / "stacks" / "dev-network" / "cdk.tf.json").is_file()
    assert list(scratch.iterdir()) == [], "jsii left its runtime folder behind"
    assert processes_started_in(scratch) == [], "processes left running"


def test_a_partial_synth_removes_stack_folders_it_did_not_write_and_counts_what_it_wrote(tmp_path):
    outdir = tmp_path / "cdktf.out"
    for stale in ("prod-api", "bootstrap"):  # an earlier full synth's
        (outdir / "stacks" / stale).mkdir(parents=True)
        (outdir / "stacks" / stale / "cdk.tf.json").write_text("{}")
    result = run_main(outdir, ENVIRONMENTS="dev")
    assert result.returncode == 0, result.stderr
    written = ["dev-api", "dev-database", "dev-frontend", "dev-network"]
    assert sorted(p.name for p in (outdir / "stacks").iterdir()) == written
    assert f"Synthesized 4 stacks for AWS into {outdir}/stacks:\n" in result.stdout
    assert ("Removed 2 stack folder(s) an earlier synth left there, which this run did not write "
            "(synthesize them again to get them back): bootstrap, prod-api") in result.stdout
    assert sorted(json.loads((outdir / "manifest.json").read_text())["stacks"]) == written


def test_type_error_in_a_construct_argument_names_the_argument(tmp_path):
    from cdktf import App, TerraformStack

    from modules import aws

    stack = TerraformStack(App(outdir=str(tmp_path)), "check")
    with pytest.raises(TypeError) as caught:
        aws.vpc.Vpc(stack, "Vpc", cidr_block=10)  # type: ignore[arg-type]
    assert "cidr_block" in str(caught.value)
