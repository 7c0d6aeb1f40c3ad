"""Fixtures for end-to-end applies on the emulator (moto server on 127.0.0.1)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from modules.core.terraform import TerraformCli
from modules.environment import Environments, load_environments
from modules.layout import stack_dependencies, stack_names
from tests.conftest import BACKGROUND_OUTDIRS
from tests.harness import walkthrough
from tests.harness.background import JOBS
from tests.harness.deployer import Deployer
from tests.harness.emulator import Emulator, start_emulator
from tests.harness.jobs import run_main
from tests.harness.project import ENVIRONMENTS_DIR
from tests.harness.scenarios import Scenarios
from tests.harness.synth import Synthesized, read_synthesized

# The foundation (bootstrap, networks, lock contention) runs first. Every stack
# below starts applying in the background at once (MODULE_STACKS), so the order
# only decides what the tests wait for: the database tests go last, as
# stage-database (Multi-AZ primary, then its replica: ~6 min of RDS waits) is the
# last apply to finish, and the other modules' tests run meanwhile.
MODULE_ORDER = ("test_moto_fixes", "test_foundation", "test_api", "test_frontend", "test_cicd",
                "test_frontend_deploy", "test_delivery", "test_canary", "test_saved_plans", "test_database",
                "test_environments", "test_zero_to_dev")

# The session deployer's stacks each test module applies: the deployer starts them
# (and what they depend on) in the background when the emulator is up, each followed
# by its second plan. A stack missing here is still applied when its test asks, only later.
MODULE_STACKS = {
    # Every stack of every environment; the databases (RDS waits) are the long pole.
    "test_environments": tuple(stack_names(load_environments(ENVIRONMENTS_DIR))),
    "test_foundation": ("bootstrap", "dev-network", "prod-network"),
    "test_database": ("dev-database", "stage-database"),
    "test_api": ("dev-api",),
    "test_frontend": ("dev-frontend",),
    "test_cicd": ("shared-cicd",),
    "test_frontend_deploy": ("dev-frontend",),
    "test_delivery": ("shared-cicd", "dev-api"),
    "test_canary": ("dev-api",),  # and copies of it with each canary step's release file
    "test_saved_plans": (),  # stacks of its own (tests/harness/small_stacks.py), in a bucket of its own
}
@dataclass
class EmulatorSession:
    """The moto server, every stack synthesized for it, and the deployer applying them."""

    emulator: Emulator
    synthesized: Synthesized
    deployer: Deployer | None  # None without terraform (the `terraform` fixture skips or fails)
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.deployer is not None:
                self.deployer.close()
            self.emulator.stop()


def start_session(root: Path, modules: set[str]) -> EmulatorSession:
    """Start moto, synthesize for it with `python main.py` (the local target), and start the applies.

    Runs as a background job from collection on (tests/harness/background.py), so the
    emulator's applies, mostly the provider waiting, go on while the fast tests run.
    """
    emulator = start_emulator(root / "moto.log")
    try:
        # The bootstrap stack's local state lands in `<project>/terraform.bootstrap.tfstate`.
        outdir = root / "emulator-project" / "cdktf.out"
        result = run_main(outdir, CDKTF_TARGET="local", EMULATOR_ENDPOINT=emulator.endpoint)
        if result.returncode != 0:
            raise RuntimeError(f"synth for the emulator failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        synthesized = read_synthesized(outdir)
        terraform = TerraformCli.create(root / "terraform-cli")
        deployer = None
        if terraform is not None:
            environments = load_environments(ENVIRONMENTS_DIR)
            create_public_zones(emulator, environments)
            deployer = Deployer(terraform, emulator, outdir / "stacks", plan_after_apply=True,
                                dependencies=stack_dependencies(environments))
            deployer.prefetch(stack for module, stacks in MODULE_STACKS.items() if module in modules
                              for stack in stacks)
        return EmulatorSession(emulator, synthesized, deployer)
    except BaseException:
        emulator.stop()
        raise


def create_public_zones(emulator: Emulator, environments: Environments) -> None:
    """Each environment's public hosted zone (its `dns` block), which the stacks look up by name and
    never create (README, environment files: `dns.zone_name`): a real account has it before the first apply."""
    route53 = emulator.boto3_client("route53", region="us-east-1")
    for environment in environments.environments:
        if environment.dns is not None:
            route53.create_hosted_zone(Name=environment.dns.zone_name, CallerReference=f"{environment.name}-zone")


SESSION_JOB = "emulator-session"
SESSION_ROOT = BACKGROUND_OUTDIRS / "emulator"
# The README's zero-to-dev walkthrough: a copy of the project on a moto server of its own, from collection on.
WALKTHROUGH_JOB = "zero-to-dev"
WALKTHROUGH_ROOT = BACKGROUND_OUTDIRS / "zero-to-dev"


STARTED_SCENARIOS: list[Scenarios] = []


def _order(item: pytest.Item) -> int:
    name = item.path.stem
    return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    emulator_items = [item for item in items if "tests/emulator/" in str(item.path)]
    for item in emulator_items:
        item.add_marker(pytest.mark.emulator)
    # The emulator tests go last, in MODULE_ORDER: their applies start when the tests are
    # collected (pytest_collection_finish below) and go on while the other tests run.
    others = [item for item in items if item not in emulator_items]
    items[:] = others + sorted(emulator_items, key=_order)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:  # nothing will run: apply nothing
        return
    modules = {item.path.stem for item in session.items if "tests/emulator/" in str(item.path)}
    if modules:
        SESSION_ROOT.mkdir(parents=True, exist_ok=True)
        JOBS.start(SESSION_JOB, start_session, SESSION_ROOT, modules)
    if "test_zero_to_dev" in modules:
        WALKTHROUGH_ROOT.mkdir(parents=True, exist_ok=True)
        JOBS.start(WALKTHROUGH_JOB, walkthrough.run, WALKTHROUGH_ROOT)
    # A module of steps on an environment of its own (tests/harness/scenarios.py) starts its selected steps.
    selected: dict[object, list[str]] = {}
    for item in session.items:
        selected.setdefault(getattr(item, "module", None), []).append(item.name)
    for module, names in selected.items():
        scenarios = getattr(module, "SCENARIOS", None)
        if isinstance(scenarios, Scenarios):
            STARTED_SCENARIOS.append(scenarios)
            scenarios.start(names)


def _started_session() -> EmulatorSession | None:
    """The session the background job started, once it is up (None if it never started or failed)."""
    started = JOBS.started(SESSION_JOB)
    if started is None or started.exception() is not None:
        return None
    return started.result()


@pytest.hookimpl(tryfirst=True)  # before tests/conftest.py closes the jobs and removes their folders
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the applies and the server even when no emulator test ran (-x, a failure before them)."""
    for scenarios in STARTED_SCENARIOS:
        scenarios.stop()  # their running step finishes on the server first
    started = _started_session()
    if started is not None:
        started.close()
    ran = JOBS.started(WALKTHROUGH_JOB)
    if ran is not None and ran.done() and ran.exception() is None:
        ran.result().stop()


def session() -> EmulatorSession:
    """The session's emulator and deployer: waits for the background job, starting it if nobody did."""
    return JOBS.result(SESSION_JOB, start_session, SESSION_ROOT, set(MODULE_STACKS))


@pytest.fixture(scope="session")
def emulator_session() -> EmulatorSession:
    return session()


@pytest.fixture(scope="session")
def emulator(emulator_session) -> Emulator:
    return emulator_session.emulator


@pytest.fixture(scope="session")
def emulator_synth(emulator_session) -> Synthesized:
    """Every stack synthesized for the emulator target (`python main.py`, CDKTF_TARGET=local)."""
    return emulator_session.synthesized


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the emulator applies spent their time (waiting for dependencies, then init + apply)."""
    started = _started_session()
    timings = started.deployer.timings if started is not None and started.deployer is not None else {}
    if timings:
        terminalreporter.section("emulator applies")
        for stack, (waited, applied, planned) in sorted(timings.items(), key=lambda item: -item[1][1]):
            plan = f"   second plan {planned:5.1f} s" if planned is not None else ""
            terminalreporter.write_line(f"{stack:<16} waited {waited:6.1f} s   init + apply {applied:6.1f} s{plan}")


@pytest.fixture(scope="session")
def deployer(emulator_session, terraform) -> Deployer:
    # `terraform` skips (or in CI fails) when terraform is missing, before this is reached.
    assert emulator_session.deployer is not None
    return emulator_session.deployer
