"""Apply synthesized stacks to the emulator, each at most once per session."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from modules.core.terraform import TerraformCli
from tests.harness.emulator import Emulator, emulator_env


class TerraformFailed(AssertionError):
    pass


@dataclass
class Deployer:
    terraform: TerraformCli
    emulator: Emulator
    stacks_dir: Path
    applied: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def directory(self, stack: str) -> Path:
        return self.stacks_dir / stack

    def run(self, stack: str, *args: str, check: bool = True, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        result = self.terraform.run(self.directory(stack), *args, "-no-color",
                                    extra_env=emulator_env(), timeout=timeout)
        if check and result.returncode != 0:
            raise TerraformFailed(
                f"terraform {' '.join(args)} failed in {stack} ({result.returncode}):\n"
                f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
            )
        return result

    def init(self, stack: str) -> None:
        if not (self.directory(stack) / ".terraform").exists():
            self.run(stack, "init", "-input=false")

    def apply(self, stack: str) -> None:
        """`terraform init` and `apply` once; later calls return at once."""
        with self._lock:
            if stack in self.applied:
                return
        self.init(stack)
        self.run(stack, "apply", "-auto-approve", "-input=false")
        with self._lock:
            self.applied.add(stack)

    def plan_changes(self, stack: str) -> str | None:
        """None when a plan shows no changes, else the plan's text."""
        result = self.run(stack, "plan", "-detailed-exitcode", "-input=false", check=False)
        if result.returncode == 0:
            return None
        if result.returncode == 2:
            return result.stdout[-8000:]
        raise TerraformFailed(f"terraform plan failed in {stack}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")

    def outputs(self, stack: str) -> dict[str, object]:
        import json

        result = self.run(stack, "output", "-json")
        return {name: value["value"] for name, value in json.loads(result.stdout).items()}
