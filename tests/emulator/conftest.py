"""Fixtures for end-to-end applies on the emulator (moto server on 127.0.0.1)."""

from __future__ import annotations

import pytest

from modules.core.target import Target
from tests.harness.deployer import Deployer
from tests.harness.emulator import start_emulator
from tests.harness.synth import synthesize

# Stacks build on each other: the foundation (bootstrap, network, lock contention) runs first.
MODULE_ORDER = ("test_foundation", "test_database", "test_api", "test_frontend", "test_cicd")


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


@pytest.fixture(scope="session")
def deployer(emulator_synth, terraform, emulator) -> Deployer:
    return Deployer(terraform, emulator, emulator_synth.outdir / "stacks")
