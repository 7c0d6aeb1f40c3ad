"""The slow checks as plain functions, so they can run as background jobs (background.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from modules.core.terraform import TerraformCli

PROJECT = Path(__file__).resolve().parents[2]
CDKTF_CLI = PROJECT / "node_modules" / ".bin" / "cdktf"


def run_main(outdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python main.py` in a fresh process, writing to `outdir` (its parent is created)."""
    outdir.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(PROJECT / "main.py")],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "CDKTF_OUTDIR": str(outdir), **env},
    )


def run_plain_import(outdir: Path) -> subprocess.CompletedProcess[str]:
    """main.py with the provider imported the ordinary way (its whole __init__, eager Node index)."""
    return run_main(outdir, CDKTF_PLAIN_PROVIDER_IMPORT="1")


def cdktf_cli_synth(outdir: Path) -> subprocess.CompletedProcess[str]:
    """`cdktf synth` (cdktf-cli from package.json), which runs main.py via cdktf.json."""
    outdir.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "CDKTF_OUTDIR"}
    return subprocess.run(
        [str(CDKTF_CLI), "synth", "--output", str(outdir)], cwd=PROJECT, capture_output=True, text=True,
        timeout=600, env={**env, "CI": "true"},
    )


# Terraform's own warning for a root module called as a child (the combined run below).
IGNORED_WARNINGS = ("Backend configuration ignored",)
BROKEN_ARGUMENT = "no_such_argument"
# The stack the session's validate run also checks a broken copy of (tests/test_terraform_validate.py).
VALIDATE_BROKEN_COPY_OF = "dev-network"


def _break_a_resource(stack_dir: Path) -> None:
    """Give the stack's first resource an argument its schema does not have."""
    path = stack_dir / "cdk.tf.json"
    config = json.loads(path.read_text())
    first_type = next(iter(config["resource"]))
    first = next(iter(config["resource"][first_type].values()))
    first[BROKEN_ARGUMENT] = "x"
    path.write_text(json.dumps(config))


def validate_stacks(stacks_dir: Path, stacks: list[str], terraform: TerraformCli, root: Path,
                    broken_copy_of: str | None = None) -> dict[str, tuple[bool, str]]:
    """`{stack: (ok, diagnostics)}` from one `terraform init -backend=false` + `terraform validate`
    of a root module that calls every stack as a child module.

    Each validate run spends ~4.5 s loading the aws provider's schema: one run instead of
    one per stack saves ~60 s of CPU. Validate checks a child module as it checks a root
    module; backend blocks it checks in neither (a bogus backend argument passes a root
    validate too), and the warning that a child's backend is ignored is dropped here.
    Diagnostics are given to the stack whose file they point into; one that points at no
    stack fails them all. `broken_copy_of` adds a copy of that stack, `<stack>-broken`,
    with an unknown argument on a resource: proof that a failure lands on its stack.
    """
    workdir = root / "stacks"
    workdir.mkdir(parents=True)
    names = list(stacks)
    for stack in stacks:
        shutil.copytree(stacks_dir / stack, workdir / stack)
    if broken_copy_of is not None:
        broken = f"{broken_copy_of}-broken"
        shutil.copytree(stacks_dir / broken_copy_of, workdir / broken)
        _break_a_resource(workdir / broken)
        names.append(broken)
    (workdir / "main.tf.json").write_text(json.dumps({"module": {name: {"source": f"./{name}"} for name in names}}))
    init = terraform.run(workdir, "init", "-backend=false", "-input=false", "-no-color")
    if init.returncode != 0:
        failure = f"terraform init failed:\n{init.stdout[-3000:]}\n{init.stderr[-3000:]}"
        return {name: (False, failure) for name in names}
    result = terraform.run(workdir, "validate", "-no-color", "-json")
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return {name: (False, f"terraform validate gave no JSON:\n{result.stdout}\n{result.stderr}") for name in names}
    by_stack: dict[str, list[dict]] = {name: [] for name in names}
    unplaced: list[dict] = []
    for diagnostic in report.get("diagnostics", []):
        if diagnostic.get("severity") == "warning" and diagnostic.get("summary") in IGNORED_WARNINGS:
            continue
        filename = diagnostic.get("range", {}).get("filename", "")
        stack = filename.split("/", 1)[0] if "/" in filename else None
        # The snippet quotes the whole line, and cdktf writes each stack on one line.
        diagnostic = {key: value for key, value in diagnostic.items() if key != "snippet"}
        (by_stack[stack] if stack in by_stack else unplaced).append(diagnostic)
    if result.returncode != 0 and not any(d.get("severity") == "error" for d in report.get("diagnostics", [])):
        unplaced.append({"severity": "error", "summary": f"terraform validate exited {result.returncode}",
                         "detail": result.stderr[-3000:]})
    outcome = {}
    for name in names:
        diagnostics = by_stack[name] + unplaced
        ok = not any(d.get("severity") == "error" for d in diagnostics)
        outcome[name] = (ok, json.dumps(diagnostics, indent=2))
    return outcome
