"""Fixtures for end-to-end applies on the emulator (moto server on 127.0.0.1)."""

from __future__ import annotations

import pytest

from modules.core.target import Target
from modules.layout import stack_dependencies
from tests.harness.deployer import Deployer
from tests.harness.emulator import start_emulator
from tests.harness.synth import synthesize

# The foundation (bootstrap, networks, lock contention) runs first. Every stack
# below starts applying in the background at once (MODULE_STACKS), so the order
# only decides what the tests wait for: the database tests go last, as
# stage-database (Multi-AZ primary, then its replica: ~6 min of RDS waits) is the
# last apply to finish, and the other modules' tests run meanwhile.
MODULE_ORDER = ("test_foundation", "test_api", "test_frontend", "test_cicd", "test_frontend_deploy",
                "test_delivery", "test_database")

# The session deployer's stacks each test module applies: the deployer starts them
# (and what they depend on) in the background when the emulator is up. A stack
# missing here is still applied when its test asks, only later; test_foundation
# applies prod-network by hand (its lock test), so it must not be prefetched.
MODULE_STACKS = {
    "test_foundation": ("bootstrap", "dev-network"),
    "test_database": ("dev-database", "stage-database"),
    "test_api": ("dev-api",),
    "test_frontend": ("dev-frontend",),
    "test_cicd": ("shared-cicd",),
    "test_frontend_deploy": ("dev-frontend",),
    "test_delivery": ("dev-api",),
}
SELECTED_MODULES = pytest.StashKey[set[str]]()


def _order(item: pytest.Item) -> int:
    name = item.path.stem
    return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    emulator_items = [item for item in items if "tests/emulator/" in str(item.path)]
    for item in emulator_items:
        item.add_marker(pytest.mark.emulator)
    # Stable sort of the emulator tests among themselves, leaving the rest in place.
    positions = [i for i, item in enumerate(items) if item in emulator_items]
    for position, item in zip(positions, sorted(emulator_items, key=_order), strict=True):
        items[position] = item
    if emulator_items:
        emulator_items[0].config.stash[SELECTED_MODULES] = {item.path.stem for item in emulator_items}


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    server = start_emulator(tmp_path_factory.mktemp("emulator") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emulator_synth(emulator, environments, tmp_path_factory):
    """Every stack synthesized for the emulator target, in a folder of its own.

    The bootstrap stack's local state lands in `<project>/terraform.bootstrap.tfstate`.
    """
    project = tmp_path_factory.mktemp("emulator-project")
    return synthesize(environments, project / "cdktf.out", Target(emulator_endpoint=emulator.endpoint))


DEPLOYERS: list[Deployer] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the emulator applies spent their time (waiting for dependencies, then init + apply)."""
    timings = {stack: t for deployer in DEPLOYERS for stack, t in deployer.timings.items()}
    if timings:
        terminalreporter.section("emulator applies")
        for stack, (waited, applied) in sorted(timings.items(), key=lambda item: -item[1][1]):
            terminalreporter.write_line(f"{stack:<16} waited {waited:6.1f} s   init + apply {applied:6.1f} s")


@pytest.fixture(scope="session")
def deployer(emulator_synth, terraform, emulator, environments, request):
    deployer = Deployer(terraform, emulator, emulator_synth.outdir / "stacks",
                        dependencies=stack_dependencies(environments))
    DEPLOYERS.append(deployer)
    selected = request.config.stash.get(SELECTED_MODULES, set())
    deployer.prefetch(stack for module, stacks in MODULE_STACKS.items() if module in selected for stack in stacks)
    yield deployer
    deployer.close()
