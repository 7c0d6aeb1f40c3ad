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
# Every stack of every environment (14) fits at once, plus a test's variant stack.
PARALLEL_APPLIES = 16


class TerraformFailed(AssertionError):
    pass


@dataclass
class Deployer:
    terraform: TerraformCli
    emulator: Emulator
    stacks_dir: Path
    dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)
    plan_after_apply: bool = False
    # stack -> (seconds waiting for dependencies, seconds of init + apply, seconds of the second plan
    # or None), for the session summary
    timings: dict[str, tuple[float, float, float | None]] = field(default_factory=dict)
    # stack -> what the plan right after its apply showed (None: no changes)
    second_plans: dict[str, str | None] = field(default_factory=dict)
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
        applied = time.monotonic()
        with self._lock:
            self.applied.add(stack)
            self.timings[stack] = (started - queued, applied - started, None)
        if self.plan_after_apply:
            # Without the lock: a test may hold it (test_foundation's lock test), and a plan writes no state.
            try:
                changes = self.plan_changes(stack, lock=False)
            except TerraformFailed as failed:  # the apply stands; the test of its second plan shows this
                changes = f"the second plan failed:\n{failed}"
            with self._lock:
                self.second_plans[stack] = changes
                self.timings[stack] = (started - queued, applied - started, time.monotonic() - applied)

    def second_plan(self, stack: str) -> str | None:
        """What the plan right after the stack's apply showed: None when it had no changes.
        Applies the stack first if nobody has (needs `plan_after_apply`)."""
        assert self.plan_after_apply, "this deployer plans only when asked (plan_changes)"
        self.apply(stack)
        with self._lock:
            if stack in self.second_plans:
                return self.second_plans[stack]
        return self.plan_changes(stack)  # applied by hand (test_foundation), so not planned after

    def close(self) -> None:
        """Cancel applies not started yet and wait for the running ones (before the emulator stops)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def plan_changes(self, stack: str, *, lock: bool = True) -> str | None:
        """None when a plan shows no changes, else the plan's text."""
        result = self.run(stack, "plan", "-detailed-exitcode", "-input=false", f"-lock={str(lock).lower()}",
                          check=False)
        if result.returncode == 0:
            return None
        if result.returncode == 2:
            return result.stdout[-8000:]
        raise TerraformFailed(f"terraform plan failed in {stack}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")

    def copy(self, stack: str, name: str, config: str) -> str:
        """`config` (a cdk.tf.json text) in a folder of its own beside `stack`'s, `<stack>-<name>`, with the
        same backend (so `stack`'s state) and provider lock file, initialized: the copy's stack name."""
        source = self.directory(stack)
        copy = source.parent / f"{stack}-{name}"
        copy.mkdir()
        (copy / "cdk.tf.json").write_text(config)
        shutil.copy(source / ".terraform.lock.hcl", copy)
        if (source / "assets").exists():
            # Files a resource names relative to the stack (a Lambda function's code).
            (copy / "assets").symlink_to((source / "assets").resolve())
        self.run(copy.name, "init", "-input=false")
        return copy.name

    def plan_copy(self, stack: str, name: str, config: str) -> subprocess.CompletedProcess[str]:
        """`terraform plan` of `config` (a cdk.tf.json text) against `stack`'s applied state (`copy`),
        without taking the state lock and without failing on a non-zero exit: what a changed stack would do."""
        copy = self.copy(stack, name, config)
        return self.run(copy, "plan", "-input=false", "-lock=false", check=False)

    def outputs(self, stack: str) -> dict[str, object]:
        import json

        result = self.run(stack, "output", "-json")
        return {name: value["value"] for name, value in json.loads(result.stdout).items()}
