"""Apply synthesized stacks to the emulator, each at most once per session.

Applies run on a small thread pool, each after the stacks it depends on
(`modules/layout.py` `stack_dependencies`). `prefetch()` starts the applies a
session will need as soon as the emulator is up, so that independent stacks
(the databases' ~3 min of RDS waits, the frontend, shared-cicd) apply side by
side while the first tests run; `apply()` waits for a stack's apply, starting it
if nobody has.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from modules.core.terraform import TerraformCli
from tests.harness.emulator import Emulator, emulator_env

# Most of an apply on the emulator is the provider polling or waiting (RDS: 60 s
# before its first status check), so more applies than cores run well; and a
# queued apply holds a thread while it waits for its dependencies.
PARALLEL_APPLIES = 8


class TerraformFailed(AssertionError):
    pass


@dataclass
class Deployer:
    terraform: TerraformCli
    emulator: Emulator
    stacks_dir: Path
    dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)
    # stack -> (seconds waiting for dependencies, seconds of init + apply), for the session summary
    timings: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _applies: dict[str, Future[None]] = field(default_factory=dict)
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(PARALLEL_APPLIES, thread_name_prefix="apply"))

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
        """`terraform init` and `apply` once, after its dependencies; later calls wait for that apply."""
        self._submit(stack).result()

    def prefetch(self, stacks: Iterable[str]) -> None:
        """Start applying `stacks` (and what they depend on) in the background."""
        for stack in stacks:
            self._submit(stack)

    def _submit(self, stack: str) -> Future[None]:
        # Dependencies are submitted before their dependents and the pool runs
        # tasks in submission order, so a task only ever waits on tasks that are
        # running or done: no pool size can deadlock.
        with self._lock:
            future = self._applies.get(stack)
            if future is None:
                needs = [self._submit(need) for need in self.dependencies.get(stack, ())]
                if stack in self.applied:  # applied by hand (test_foundation's lock test)
                    future = Future()
                    future.set_result(None)
                else:
                    future = self._pool.submit(self._apply_after, stack, needs)
                self._applies[stack] = future
            return future

    def _apply_after(self, stack: str, needs: list[Future[None]]) -> None:
        queued = time.monotonic()
        for need in needs:
            need.result()
        started = time.monotonic()
        self.init(stack)
        self.run(stack, "apply", "-auto-approve", "-input=false")
        with self._lock:
            self.applied.add(stack)
            self.timings[stack] = (started - queued, time.monotonic() - started)

    def close(self) -> None:
        """Cancel applies not started yet and wait for the running ones (before the emulator stops)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def plan_changes(self, stack: str) -> str | None:
        """None when a plan shows no changes, else the plan's text."""
        result = self.run(stack, "plan", "-detailed-exitcode", "-input=false", check=False)
        if result.returncode == 0:
            return None
        if result.returncode == 2:
            return result.stdout[-8000:]
        raise TerraformFailed(f"terraform plan failed in {stack}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")

    def plan_copy(self, stack: str, name: str, config: str) -> subprocess.CompletedProcess[str]:
        """`terraform plan` of `config` (a cdk.tf.json text) against `stack`'s applied state, in a
        folder of its own (`<stack>-<name>`, same backend and lock file), without taking the
        state lock and without failing on a non-zero exit: what a changed stack would do."""
        source = self.directory(stack)
        copy = source.parent / f"{stack}-{name}"
        copy.mkdir()
        (copy / "cdk.tf.json").write_text(config)
        shutil.copy(source / ".terraform.lock.hcl", copy)
        self.run(copy.name, "init", "-input=false")
        return self.run(copy.name, "plan", "-input=false", "-lock=false", check=False)

    def outputs(self, stack: str) -> dict[str, object]:
        import json

        result = self.run(stack, "output", "-json")
        return {name: value["value"] for name, value in json.loads(result.stdout).items()}
