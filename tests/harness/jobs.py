"""The slow checks as plain functions, so they can run as background jobs (background.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modules.core.terraform import TerraformCli

PROJECT = Path(__file__).resolve().parents[2]
CDKTF_CLI = PROJECT / "node_modules" / ".bin" / "cdktf"
VALIDATE_WORKERS = 2  # the machines have 2 cores; each validate loads the provider schema


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


def validate_stacks(stacks_dir: Path, stacks: list[str], terraform: TerraformCli, root: Path) -> dict[str, tuple[bool, str]]:
    """`{stack: (ok, diagnostics)}`: init -backend=false + validate, each in a copy of its folder."""

    def validate(stack: str) -> tuple[bool, str]:
        workdir = root / stack
        shutil.copytree(stacks_dir / stack, workdir)
        init = terraform.run(workdir, "init", "-backend=false", "-input=false", "-no-color")
        if init.returncode != 0:
            return False, f"terraform init failed:\n{init.stdout[-3000:]}\n{init.stderr[-3000:]}"
        result = terraform.run(workdir, "validate", "-no-color", "-json")
        return result.returncode == 0, result.stdout + result.stderr

    with ThreadPoolExecutor(VALIDATE_WORKERS) as pool:
        return dict(zip(stacks, pool.map(validate, stacks), strict=True))
