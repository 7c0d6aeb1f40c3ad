"""Plan time of a whole environment on the emulator: before (stack by stack) and after (side by side).

    .venv/bin/python -m bench.plans [--environment dev] [--rounds 2]

Starts moto on 127.0.0.1, synthesizes every stack for it, applies what the environment's stacks
read (bootstrap, shared-cicd) and the environment itself, then times, alternating, `rounds` times:
- before: the delivery plan of commit d6f92c2, one stack after the other: init, plan -out, show;
- after:  `plan_environment` (delivery/terraform.py): the stacks side by side (4 at a time), init
  skipped when the folder is initialised for the same cdk.tf.json, plan -out, show -json, show.
Prints one line per run and the load average, which on a shared machine moves both numbers.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

from delivery.terraform import PlanOptions, Terraform, environment_dependencies, plan_environment
from modules.core.terraform import TerraformCli
from modules.environment import load_environments
from modules.layout import stack_dependencies
from tests.harness.deployer import Deployer
from tests.harness.emulator import emulator_env, start_emulator
from tests.harness.jobs import run_main

PROJECT = Path(__file__).resolve().parent.parent


def before(cli: TerraformCli, stacks_dir: Path, stacks: list[str]) -> None:
    """The plan loop of `python -m delivery plan` before saved plans (commit d6f92c2), as it ran."""
    for stack in stacks:
        directory = stacks_dir / stack
        for args in (("init", "-input=false"),
                     ("plan", "-input=false", "-detailed-exitcode", f"-out={stack}.tfplan"),
                     ("show", f"{stack}.tfplan")):
            result = cli.run(directory, *args, "-no-color", extra_env=emulator_env(), timeout=3600)
            if result.returncode not in (0, 2):
                raise RuntimeError(f"{stack}: terraform {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr}")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--environment", default="dev")
    arguments.add_argument("--rounds", type=int, default=2)
    args = arguments.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-plans-"))
    emulator = start_emulator(root / "moto.log")
    try:
        outdir = root / "emulator-project" / "cdktf.out"
        synth = run_main(outdir, CDKTF_TARGET="local", EMULATOR_ENDPOINT=emulator.endpoint)
        if synth.returncode != 0:
            raise RuntimeError(synth.stderr[-3000:])
        environments = load_environments(PROJECT / "environments")
        cli = TerraformCli.create(root / "cli")
        assert cli is not None, "terraform is not on PATH"
        deployer = Deployer(cli, emulator, outdir / "stacks", dependencies=stack_dependencies(environments))
        dependencies = environment_dependencies(load_environments(PROJECT / "environments", (args.environment,)),
                                                args.environment)
        started = time.monotonic()
        deployer.prefetch(dependencies)
        for stack in dependencies:
            deployer.apply(stack)
        print(f"applied {', '.join(dependencies)} in {time.monotonic() - started:.0f} s", flush=True)
        terraform = Terraform.create(root / "cli-after", io.StringIO(), extra_env=emulator_env())
        options = PlanOptions(environment=args.environment, stacks=tuple(dependencies), dependencies=dependencies)
        for round_number in range(args.rounds):
            load = os.getloadavg()[0]
            started = time.monotonic()
            before(cli, outdir / "stacks", list(dependencies))
            print(f"round {round_number + 1} before: {time.monotonic() - started:6.1f} s (load {load:.1f})",
                  flush=True)
            load = os.getloadavg()[0]
            started = time.monotonic()
            plan_environment(terraform, outdir / "stacks", root / "plans", options)
            print(f"round {round_number + 1} after:  {time.monotonic() - started:6.1f} s (load {load:.1f})",
                  flush=True)
        deployer.close()
    finally:
        emulator.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
