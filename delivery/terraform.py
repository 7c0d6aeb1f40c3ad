"""Plan, apply and check an environment's stacks with saved plans, and find the pipeline's roles.

    python -m delivery stacks dev                 # dev-network dev-database dev-api dev-frontend
    python -m delivery plan dev --out plans/dev   # every stack: <stack>.tfplan, .tfplan.json, .tfplan.txt,
                                                  # summary.json and summary.md
    python -m delivery apply dev --plans plans/dev   # exactly those plans, in dependency order
    python -m delivery apply dev                  # plan and apply now (humans), same guards
    python -m delivery drift dev                  # exit 0 no drift, 3 drift, 1 error
    python -m delivery apply-migrations dev       # only dev-api's Flyway task definition (before migrate)
    python -m delivery role deploy dev            # the deploy role ARN (shared-cicd state)
    python -m delivery access deploy prod         # how that role is assumed (environment files)

Run `make synth` first: these commands work in `cdktf.out/stacks/<stack>/`.

Terraform runs as a child process with no timeout of ours: an apply may legitimately wait as long
as its slowest resource (an RDS instance update: 80 minutes). SIGINT or SIGTERM (Ctrl-C, a pipeline
abort) is forwarded to terraform once, as SIGINT, and we wait for it to stop cleanly: it finishes or
cancels the calls in flight, writes the state and releases the lock. A second signal is not
forwarded (terraform would exit at once, leaving the lock and maybe losing state).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from delivery import DeployError, UsageError
from delivery.aws import read_state_outputs, stack_output
from delivery.summary import STATEFUL_TYPES, StackChanges, Summary, unapproved_stateful

PROJECT = Path(__file__).resolve().parent.parent
# Long enough for a colleague's plan of the same stack to finish; short enough that a lock left by a
# killed run shows up within minutes (`terraform force-unlock` after checking nobody holds it).
DEFAULT_LOCK_TIMEOUT = "5m"
LOCK_TIMEOUT = re.compile(r"^\d+[smh]$")
DEFAULT_PARALLEL_PLANS = 4
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
STALE = "Saved plan is stale"
# Jenkins ends an aborted step by signalling every process that carries the build's cookie, then
# killing them a few seconds later (hudson.util.ProcessTree). Terraform gets other values, so only
# we are signalled: we forward one SIGINT and terraform stops cleanly even if we are killed first.
JENKINS_COOKIES = ("JENKINS_NODE_COOKIE", "JENKINS_SERVER_COOKIE", "BUILD_ID")


class Interrupted(DeployError):
    """SIGINT/SIGTERM arrived; terraform was asked to stop and has stopped. Exit status 130."""


class Cancelled(DeployError):
    """The person at the terminal did not approve the apply (terraform: "Apply cancelled"). Exit status 1."""


# Asked on a terminal before plans are applied; True approves. None (pipelines, --yes) applies unasked.
Confirm = Callable[[str], bool]


def clock() -> str:
    """The wall-clock time progress lines give ("since 14:02:07"), so a long apply shows when it began."""
    return datetime.now().strftime("%H:%M:%S")


class Refused(UsageError):
    """One or more reasons not to apply, one line each; nothing was run. Exit status 2."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("\n".join(reasons))
        self.reasons = list(reasons)


def environment_stacks(environments: Any, environment: str) -> list[str]:
    from modules.layout import stack_name, tier_names

    environments.get(environment)
    return [stack_name(environment, tier) for tier in tier_names()]


def environment_dependencies(environments: Any, environment: str) -> dict[str, tuple[str, ...]]:
    """The environment's stacks (in apply order) with the stacks of the same environment they need."""
    from modules.layout import stack_dependencies

    stacks = environment_stacks(environments, environment)
    graph = stack_dependencies(environments)
    return {stack: tuple(need for need in graph.get(stack, ()) if need in stacks) for stack in stacks}


def check_lock_timeout(value: str) -> str:
    if not LOCK_TIMEOUT.match(value):
        raise UsageError(f"--lock-timeout must be a duration like 30s, 5m or 1h, got {value!r}")
    return value


# --- terraform as a child process ----------------------------------------------------------------

@dataclass
class Terraform:
    """Runs terraform commands: no timeout, one SIGINT forwarded on interrupt, -lock-timeout, output tails."""

    cli: Any
    out: TextIO
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT
    extra_env: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    _children: set[subprocess.Popen[str]] = field(default_factory=set)
    # Reentrant: the signal handler (interrupt) runs in the main thread, maybe inside write().
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def create(cls, workdir: Path, out: TextIO, lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
               extra_env: Mapping[str, str] | None = None) -> Terraform:
        from modules.core.terraform import TerraformCli

        cli = TerraformCli.create(workdir)
        if cli is None:
            raise UsageError("terraform is not on PATH (install Terraform >= 1.11)")
        env = {name: f"delivery-terraform-{os.getpid()}" for name in JENKINS_COOKIES if name in os.environ}
        return cls(cli, out, check_lock_timeout(lock_timeout), {**env, **(extra_env or {})})

    def write(self, line: str) -> None:
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def interrupt(self, signum: int) -> None:
        """Forward SIGINT once to every running terraform; start no new one."""
        with self._lock:
            first = not self.interrupted
            self.interrupted = True
            children = list(self._children)
        name = signal.Signals(signum).name
        if not first:
            self.write(f"{name} again: still waiting for terraform to stop cleanly (it holds the state lock)")
            return
        self.write(f"{name}: asking terraform to stop (SIGINT) and waiting for it to release the state lock")
        for child in children:
            try:
                child.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass

    def run(self, directory: Path, *args: str, echo: str | None = None) -> subprocess.CompletedProcess[str]:
        """terraform ARGS in `directory`; with `echo`, each output line is written as `<echo>: line`."""
        with self._lock:
            if self.interrupted:
                raise Interrupted("interrupted before terraform " + args[0] + f" in {directory.name}: not started")
            child = self.cli.start(directory, *args, "-no-color", extra_env=self.extra_env)
            self._children.add(child)
        lines: list[str] = []
        try:
            assert child.stdout is not None
            for line in child.stdout:
                lines.append(line)
                if echo and line.strip():
                    self.write(f"{echo}: {line.rstrip()}")
            code = child.wait()
        finally:
            with self._lock:
                self._children.discard(child)
        return subprocess.CompletedProcess(args, code, stdout="".join(lines), stderr="")

    def check(self, directory: Path, *args: str, echo: str | None = None, ok: tuple[int, ...] = (0,)
              ) -> subprocess.CompletedProcess[str]:
        result = self.run(directory, *args, echo=echo)
        if self.interrupted:
            raise Interrupted(f"interrupted: terraform {args[0]} in {directory.name} stopped "
                              f"({'cleanly' if result.returncode in (0, 1, 2) else f'exit {result.returncode}'}); "
                              "it released the state lock. What it applied before stopping is in the state: "
                              "plan again")
        if result.returncode not in ok:
            raise DeployError(f"terraform {args[0]} failed in {directory.name}: {first_error(result.stdout)}\n"
                              f"{result.stdout[-4000:]}")
        return result


def first_error(output: str) -> str:
    """Terraform's own first `Error: ...` line, or the last line of its output."""
    for line in output.splitlines():
        if line.strip().startswith("Error: "):
            return line.strip()
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


@contextmanager
def forwarding_signals(terraform: Terraform) -> Iterator[None]:
    """While the body runs, SIGINT and SIGTERM go to `terraform.interrupt` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda signum, _frame: terraform.interrupt(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def init(terraform: Terraform, directory: Path) -> None:
    """`terraform init`, skipped when this folder was initialised for this very cdk.tf.json (each init
    re-checks the provider's checksum: seconds per stack)."""
    marker = directory / ".terraform" / "delivery-initialised"
    config = hashlib.sha256((directory / "cdk.tf.json").read_bytes()).hexdigest()
    if marker.is_file() and marker.read_text() == config:
        return
    terraform.check(directory, "init", "-input=false", f"-lock-timeout={terraform.lock_timeout}")
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(config)


# --- where plans come from -----------------------------------------------------------------------

def current_commit() -> str:
    """The commit of this checkout (`git rev-parse HEAD`), else GIT_COMMIT, else `unknown`. Not
    GIT_COMMIT first: the application pipeline runs delivery in an infra checkout of its own
    while GIT_COMMIT names the application's commit."""
    try:
        found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True, text=True,
                               timeout=30)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return os.environ.get("GIT_COMMIT") or "unknown"


def synthesized(stacks_dir: Path, stack: str) -> Path:
    """The stack's synthesized cdk.tf.json, or UsageError in the one wording every command uses."""
    path = stacks_dir / stack / "cdk.tf.json"
    if not path.is_file():
        raise UsageError(f"{path} does not exist: run `make synth` first")
    return path


def stack_hashes(stacks_dir: Path, stacks: Sequence[str]) -> dict[str, str]:
    """sha256 of each stack's synthesized cdk.tf.json."""
    return {stack: "sha256:" + hashlib.sha256(synthesized(stacks_dir, stack).read_bytes()).hexdigest()
            for stack in stacks}


def synth_hash(hashes: Mapping[str, str]) -> str:
    joined = "\n".join(f"{stack} {digest}" for stack, digest in sorted(hashes.items()))
    return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()


def versions(terraform: Terraform, directory: Path) -> tuple[str, dict[str, str]]:
    """terraform's version and the providers the initialized stack selected."""
    shown = json.loads(terraform.check(directory, "version", "-json").stdout)
    return str(shown.get("terraform_version")), dict(shown.get("provider_selections") or {})


# --- plan ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanOptions:
    environment: str
    stacks: tuple[str, ...]
    dependencies: Mapping[str, tuple[str, ...]]
    production: bool = False
    release: bool = False
    parallel: int = DEFAULT_PARALLEL_PLANS


def plan_stack(terraform: Terraform, stacks_dir: Path, out_dir: Path, stack: str,
               targets: Sequence[str] = ()) -> StackChanges:
    """init, plan -out, show -json and show of one stack; its changes."""
    directory = stacks_dir / stack
    out_dir.mkdir(parents=True, exist_ok=True)
    plan_file = out_dir.resolve() / f"{stack}.tfplan"
    started = time.monotonic()
    terraform.write(f"{stack}: planning (since {clock()})")
    init(terraform, directory)
    terraform.check(directory, "plan", "-input=false", "-detailed-exitcode", f"-out={plan_file}",
                    f"-lock-timeout={terraform.lock_timeout}", *(f"-target={t}" for t in targets), ok=(0, 2))
    shown = terraform.check(directory, "show", "-json", str(plan_file)).stdout
    (out_dir / f"{stack}.tfplan.json").write_text(shown)
    (out_dir / f"{stack}.tfplan.txt").write_text(terraform.check(directory, "show", str(plan_file)).stdout)
    changes = StackChanges.from_plan_json(stack, json.loads(shown))
    counts = ", ".join(f"{n} to {action}" for action, n in changes.counts.items())
    flagged = f", {len(changes.stateful())} STATEFUL replaced or deleted" if changes.stateful() else ""
    terraform.write(f"{stack}: {counts}{flagged} ({time.monotonic() - started:.1f} s): {changes.plan_line}")
    return changes


def plan_environment(terraform: Terraform, stacks_dir: Path, out_dir: Path, options: PlanOptions) -> Summary:
    """Plan every stack of the environment into `out_dir` and write summary.json and summary.md.

    A plan changes nothing (it reads state and the cloud), so the stacks are planned side by side,
    `options.parallel` at a time, submitted in dependency order; applying is what follows the order.
    """
    hashes = stack_hashes(stacks_dir, options.stacks)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.tfplan*"):
        old.unlink()
    (out_dir / SUMMARY_JSON).unlink(missing_ok=True)
    started = time.monotonic()
    results: dict[str, Future[StackChanges]] = {}
    with ThreadPoolExecutor(max(1, options.parallel), thread_name_prefix="plan") as pool:
        for stack in _ordered(options.stacks, options.dependencies):
            results[stack] = pool.submit(plan_stack, terraform, stacks_dir, out_dir, stack)
        errors = []
        for future in results.values():
            try:
                future.result()
            except Interrupted:
                raise
            except DeployError as error:  # the other plans finish; nothing is applied
                errors.append(str(error))
    if errors:
        raise DeployError("\n".join(errors))
    version, providers = versions(terraform, stacks_dir / options.stacks[0])
    summary = Summary(
        environment=options.environment, stacks=tuple(results[s].result() for s in options.stacks),
        commit=current_commit(), synth_hash=synth_hash(hashes), stack_hashes=hashes, terraform_version=version,
        provider_versions=providers, created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        production=options.production, release=options.release,
    )
    (out_dir / SUMMARY_JSON).write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    (out_dir / SUMMARY_MD).write_text(summary.to_markdown())
    terraform.write(f"planned {len(options.stacks)} stacks in {time.monotonic() - started:.1f} s: "
                    f"{out_dir / SUMMARY_MD}")
    return summary


def _ordered(stacks: Sequence[str], dependencies: Mapping[str, tuple[str, ...]]) -> list[str]:
    """`stacks` with every stack after the ones it needs (stable otherwise)."""
    done: list[str] = []

    def visit(stack: str, path: tuple[str, ...]) -> None:
        if stack in done or stack not in stacks:
            return
        if stack in path:
            raise DeployError(f"stack dependencies form a cycle: {' -> '.join((*path, stack))}")
        for need in dependencies.get(stack, ()):
            visit(need, (*path, stack))
        done.append(stack)

    for stack in stacks:
        visit(stack, ())
    return done


# --- apply saved plans ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ApplyOptions:
    environment: str
    stacks: tuple[str, ...]
    dependencies: Mapping[str, tuple[str, ...]]
    production: bool = False
    release: bool = False
    allow_replace: tuple[str, ...] = ()


def read_summary(plans_dir: Path) -> dict[str, Any]:
    path = plans_dir / SUMMARY_JSON
    if not path.is_file():
        raise UsageError(f"{path} does not exist: make the plans with `python -m delivery plan <env> --out "
                         f"{plans_dir}`")
    try:
        data = json.loads(path.read_text())
        for key in ("environment", "commit", "synth_hash", "stack_hashes", "stacks"):
            data[key]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path} is not a plan summary written by `python -m delivery plan`") from None
    return dict(data)


def _version_of(state: Mapping[str, Any]) -> tuple[str, int] | None:
    """(lineage, serial) of a state document; None for no state, or one that holds nothing."""
    if not state.get("lineage") or not (state.get("resources") or state.get("outputs")):
        return None
    return str(state["lineage"]), int(state.get("serial") or 0)


def state_version(terraform: Terraform, directory: Path) -> tuple[str, int] | None:
    """(lineage, serial) of the stack's current state (`terraform state pull`; reads, takes no lock)."""
    pulled = terraform.check(directory, "state", "pull").stdout.strip()
    return _version_of(json.loads(pulled)) if pulled else None


def planned_state_version(plan_file: Path) -> tuple[str, int] | None:
    """(lineage, serial) of the state the plan was made against: the `tfstate` a plan file holds,
    which terraform itself compares with the current state before it applies a saved plan."""
    with zipfile.ZipFile(plan_file) as archive:
        try:
            return _version_of(json.loads(archive.read("tfstate")))
        except KeyError:
            return None


def refusals(options: ApplyOptions, summary: Mapping[str, Any], hashes: Mapping[str, str], commit: str,
             changes: Sequence[StackChanges], stale: Sequence[str]) -> list[str]:
    """Every reason not to apply these plans, one line each (pure: the tests call it directly)."""
    from modules.layout import stack_name

    reasons = []
    if summary["environment"] != options.environment:
        reasons.append(f"the plans are of {summary['environment']}, not {options.environment}")
    if summary["commit"] != commit:
        reasons.append(f"the plans were made from commit {summary['commit']}, this is {commit}: plan again")
    if summary["synth_hash"] != synth_hash(hashes):
        differ = [s for s in hashes if summary["stack_hashes"].get(s) != hashes[s]]
        reasons.append(f"the plans were made from another synth ({', '.join(differ) or 'other stacks'} "
                       f"differ from cdktf.out): plan again")
    for stack in stale:
        reasons.append(f"{stack}: {STALE}: its state changed after the plan was made: plan again")
    reasons += stateful_refusals(options, changes)
    if options.release:
        api = stack_name(options.environment, "api")
        for planned in changes:
            pending = planned.outside_release() if planned.stack == api else list(planned.changes)
            if pending:
                listed = ", ".join(f"{c.address} ({c.action})" for c in pending[:5])
                more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
                reasons.append(f"infrastructure changes pending in {planned.stack}: run the infrastructure pipeline "
                               f"first ({listed}{more})")
    return reasons


def stateful_refusals(options: ApplyOptions, changes: Sequence[StackChanges]) -> list[str]:
    """In production, one line for each stateful replace or delete --allow-replace does not name."""
    if not options.production:
        return []
    return [f"{stack}: {change.address} is a {STATEFUL_TYPES[change.type]} and would be "
            f"{'replaced' if change.action == 'replace' else 'deleted'} in production "
            f"{options.environment}: refused unless --allow-replace {change.address}"
            for stack, change in unapproved_stateful(changes, options.allow_replace)]


def apply_plans(terraform: Terraform, stacks_dir: Path, plans_dir: Path, options: ApplyOptions,
                before_apply: Callable[[str], None] | None = None, confirm: Confirm | None = None) -> list[str]:
    """Apply exactly the saved plans in `plans_dir`, in dependency order; the stacks applied.

    Refuses (Refused, exit 2) before anything is applied: plans of another environment, commit or
    synth, a stale plan, an unapproved stateful replace/delete in production, and under `release`
    any change outside the release's resources. `before_apply(stack)` runs just before a stack's
    plan with changes is applied, after the stacks it needs (delivery/secrets.py: the secrets the
    services read have values) and may stop the run. `confirm` (on a terminal) is asked once, after
    the checks and before the first apply, with each stack's plan line shown; anything but approval
    raises Cancelled.
    """
    summary = read_summary(plans_dir)
    planned = [entry["stack"] for entry in summary["stacks"]]
    if options.release:
        from modules.layout import stack_name

        api = stack_name(options.environment, "api")
        if planned != [api]:
            raise Refused([f"a release applies {api} only; {plans_dir} holds plans of {', '.join(planned)}: "
                           "plan with --release"])
    unknown = [stack for stack in planned if stack not in options.stacks]
    missing = [stack for stack in planned if not (plans_dir / f"{stack}.tfplan").is_file()]
    if unknown or missing:
        raise Refused([f"{plans_dir}: {stack} is not a stack of {options.environment}" for stack in unknown]
                      + [f"{plans_dir}/{stack}.tfplan is missing" for stack in missing])
    hashes = stack_hashes(stacks_dir, planned)

    def inspect(stack: str) -> tuple[StackChanges, bool]:
        """What the saved plan changes (terraform's own reading of it), and whether it is stale."""
        directory, plan_file = stacks_dir / stack, (plans_dir / f"{stack}.tfplan").resolve()
        init(terraform, directory)
        shown = terraform.check(directory, "show", "-json", str(plan_file)).stdout
        changes = StackChanges.from_plan_json(stack, json.loads(shown))
        return changes, changes.has_changes and planned_state_version(plan_file) != state_version(terraform, directory)

    with ThreadPoolExecutor(DEFAULT_PARALLEL_PLANS, thread_name_prefix="inspect") as pool:
        inspected = list(pool.map(inspect, planned))
    changes = [found for found, _ in inspected]
    stale = [found.stack for found, is_stale in inspected if is_stale]
    reasons = refusals(options, summary, hashes, current_commit(), changes, stale)
    if reasons:
        raise Refused(reasons)
    _approve(terraform, options, changes, confirm)
    return _apply_in_order(terraform, stacks_dir, plans_dir, options, changes, before_apply)


def _approve(terraform: Terraform, options: ApplyOptions, changes: Sequence[StackChanges],
             confirm: Confirm | None) -> None:
    pending = [c for c in changes if c.has_changes]
    if confirm is None or not pending:
        return
    for change in pending:
        terraform.write(f"{change.stack}: {change.plan_line}")
    plans = "this plan" if len(pending) == 1 else f"these {len(pending)} plans"
    if not confirm(f"Apply {plans} to {options.environment}? Only 'yes' will be accepted to approve: "):
        raise Cancelled(f"apply cancelled: {', '.join(c.stack for c in pending)} not applied")


def _apply_in_order(terraform: Terraform, stacks_dir: Path, plans_dir: Path, options: ApplyOptions,
                    changes: Sequence[StackChanges], before_apply: Callable[[str], None] | None = None
                    ) -> list[str]:
    by_stack = {c.stack: c for c in changes}
    applied: list[str] = []
    for stack in _ordered(list(by_stack), options.dependencies):
        if not by_stack[stack].has_changes:
            terraform.write(f"{stack}: no changes")
            continue
        if before_apply is not None:
            before_apply(stack)
        plan_file = (plans_dir / f"{stack}.tfplan").resolve()
        started = time.monotonic()
        terraform.write(f"{stack}: applying {plan_file.name} (since {clock()}): {by_stack[stack].plan_line}")
        result = terraform.run(stacks_dir / stack, "apply", "-input=false", f"-lock-timeout={terraform.lock_timeout}",
                               str(plan_file), echo=stack)
        if terraform.interrupted:
            raise Interrupted(f"interrupted: terraform apply in {stack} stopped (exit {result.returncode}) and "
                              f"released the state lock; applied before it: {', '.join(applied) or 'nothing'}. "
                              "What it changed is in the state: plan again")
        if result.returncode != 0:
            if STALE in result.stdout:
                raise DeployError(f"{stack}: {STALE}: its state changed after the plan was made (applied before "
                                  f"it: {', '.join(applied) or 'nothing'}): plan again")
            raise DeployError(f"terraform apply failed in {stack}: {first_error(result.stdout)} (applied before "
                              f"it: {', '.join(applied) or 'nothing'})")
        applied.append(stack)
        terraform.write(f"{stack}: applied in {time.monotonic() - started:.0f} s")
        readers = [s for s in by_stack if stack in options.dependencies.get(s, ())]
        if by_stack[stack].outputs_change and readers:
            terraform.write(f"note: {stack}'s outputs changed; {', '.join(readers)} was planned with the old ones: "
                            "the next plan carries them")
    return applied


def waves(stacks: Sequence[str], dependencies: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """`stacks` in groups: each group needs only stacks of the groups before it."""
    placed: dict[str, int] = {}
    for stack in _ordered(stacks, dependencies):
        placed[stack] = 1 + max((placed[need] for need in dependencies.get(stack, ()) if need in placed), default=-1)
    return [[s for s in placed if placed[s] == level] for level in range(max(placed.values(), default=-1) + 1)]


def plan_and_apply(terraform: Terraform, stacks_dir: Path, plans_dir: Path, plan: PlanOptions,
                   apply: ApplyOptions, before_plan: Callable[[str], None] | None = None,
                   confirm: Confirm | None = None) -> list[str]:
    """`apply <env>` without saved plans (humans): each group of stacks is planned once the stacks it
    reads are applied (so a new environment applies in one go, and a stack sees the outputs it
    reads as they now are), checked like saved plans, and applied. `before_plan(stack)` runs for
    each stack of a group before the group is planned, after the groups before it were applied
    (delivery/secrets.py: the api stack's secrets created alone, then checked) and may stop the run.
    `confirm` is asked for each group, since a group is planned only once the ones before it are applied."""
    applied: list[str] = []
    for number, group in enumerate(waves(plan.stacks, plan.dependencies)):
        if before_plan is not None:
            for stack in group:
                before_plan(stack)
        directory = plans_dir / f"group-{number}"
        plan_environment(terraform, stacks_dir, directory, replace(plan, stacks=tuple(group)))
        try:
            applied += apply_plans(terraform, stacks_dir, directory, apply, confirm=confirm)
        except Refused as refused:
            if applied:
                refused.reasons.append(f"applied before this refusal: {', '.join(applied)}")
                raise Refused(refused.reasons) from None
            raise
        except Cancelled as cancelled:
            if applied:
                raise Cancelled(f"{cancelled}; applied before: {', '.join(applied)}") from None
            raise
    return applied


def apply_targeted(terraform: Terraform, stacks_dir: Path, out_dir: Path, stack: str, targets: Sequence[str],
                   options: ApplyOptions) -> bool:
    """Plan `stack` limited to `targets` (and what they need) into `out_dir`, refuse it like a saved
    plan when production would lose a stateful resource, and apply it; whether anything changed."""
    changes = plan_stack(terraform, stacks_dir, out_dir, stack, targets=targets)
    reasons = stateful_refusals(options, [changes])
    if reasons:
        raise Refused(reasons)
    if not changes.has_changes:
        terraform.write(f"{stack} ({out_dir.name}): no changes")
        return False
    terraform.check(stacks_dir / stack, "apply", "-input=false", f"-lock-timeout={terraform.lock_timeout}",
                    str((out_dir / f"{stack}.tfplan").resolve()), echo=f"{stack} ({out_dir.name})")
    terraform.write(f"{stack} ({out_dir.name}): applied")
    return True


# --- drift ---------------------------------------------------------------------------------------

DRIFT = 3


def drift(terraform: Terraform, stacks_dir: Path, out_dir: Path, options: PlanOptions) -> int:
    """Plan everything, change nothing: 0 when real and planned agree, DRIFT (3) when not."""
    summary = plan_environment(terraform, stacks_dir, out_dir, options)
    drifted = [s.stack for s in summary.stacks if s.has_changes or s.drift]
    if not drifted:
        terraform.write(f"{options.environment}: no drift")
        return 0
    terraform.write(f"DRIFT in {', '.join(drifted)}")
    terraform.write(summary.to_markdown().rstrip())
    return DRIFT


# --- migrations ----------------------------------------------------------------------------------

MIGRATIONS_OUTPUT = "Api_Migrations_MigrationTaskDefinitionArn"


def migrations_target(stacks_dir: Path, environment: str) -> tuple[str, str]:
    """(`<env>-api`, `aws_ecs_task_definition.<id>`): the stack and the Flyway task definition that
    the stack's MigrationTaskDefinitionArn output (what `migrate` runs) names."""
    from modules.layout import stack_name

    stack = stack_name(environment, "api")
    path = synthesized(stacks_dir, stack)
    outputs = {name: value.get("value") for name, value in json.loads(path.read_text()).get("output", {}).items()}
    reference = str(stack_output(outputs, MIGRATIONS_OUTPUT))
    match = re.fullmatch(r"\$\{(aws_ecs_task_definition\.[\w-]+)\.arn\}", reference)
    if match is None:
        raise DeployError(f"{path}: {MIGRATIONS_OUTPUT} is {reference!r}, not a task definition's arn")
    return stack, match.group(1)


def apply_migrations(terraform: Terraform, stacks_dir: Path, environment: str,
                     out_dir: Path | None = None) -> list[str]:
    """Register the release's Flyway task definition before the services roll: a plan of `<env>-api`
    targeted at that task definition (and what it needs), refused like a release when it holds
    anything else, then applied, as the same Terraform role as every apply. `migrate` then runs the
    new revision (the stack's output follows the apply)."""
    stack, target = migrations_target(stacks_dir, environment)
    with _plans_dir(out_dir) as directory:
        changes = plan_stack(terraform, stacks_dir, directory, stack, targets=(target,))
        pending = changes.outside_release()
        if pending:
            raise Refused([f"infrastructure changes pending in {stack}: run the infrastructure pipeline first "
                           f"({', '.join(f'{c.address} ({c.action})' for c in pending[:5])})"])
        if not changes.has_changes:
            terraform.write(f"{stack} (migrations): no changes")
            return []
        terraform.check(stacks_dir / stack, "apply", "-input=false", f"-lock-timeout={terraform.lock_timeout}",
                        str((directory / f"{stack}.tfplan").resolve()), echo=f"{stack} (migrations)")
        terraform.write(f"{stack} (migrations): applied")
        return [stack]


@contextmanager
def _plans_dir(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="delivery-plans-") as temporary:
        yield Path(temporary)


# --- roles ---------------------------------------------------------------------------------------

def report_topic(environments: Any, aws: Any) -> str:
    """The pipeline report topic's ARN, from the shared-cicd stack's state outputs."""
    state = environments.shared.state
    outputs = read_state_outputs(aws, state.bucket, "shared/cicd.tfstate", state.region, state.assume_role_arn)
    path = "ReportTopic_TopicArn"
    missing = f"s3://{state.bucket}/shared/cicd.tfstate has no output {path}: apply shared-cicd"
    return str(stack_output(outputs, path, missing=missing))


def pipeline_lock(environments: Any, environment: str) -> str:
    """The infrastructure pipeline's lock on an environment: `<project>-<env>`, so two organisations'
    (or two forks') pipelines on one Jenkins never wait for each other's `dev`."""
    environments.get(environment)
    return f"{environments.shared.project}-{environment}"


def role(environments: Any, kind: str, environment: str | None) -> str:
    """The ARN of the CI role, or of an environment's plan or deploy role, derived from the
    environment files by the names shared-cicd gives them (no AWS call: Jenkins needs the ARN
    before it holds any credentials, to exchange its id token for the role's)."""
    from modules import state_access
    from modules.core.naming import NameKind, physical_name

    shared = environments.shared
    if kind == "ci":
        partition = state_access.partition_of(environments.environments[0])
        return (f"arn:{partition}:iam::{shared.registry.account_id}:role/"
                f"{physical_name(NameKind.IAM_ROLE, shared.project, 'ci')}")
    if environment is None:
        raise UsageError(f"role {kind} needs the environment")
    config = environments.get(environment)
    derive = state_access.plan_role_arn if kind == "plan" else state_access.deploy_role_arn
    return derive(shared, config)
