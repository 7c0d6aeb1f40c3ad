"""Fixtures for end-to-end applies on the emulator (moto server on 127.0.0.1)."""

from __future__ import annotations

import pytest

from modules.core.target import Target
from tests.harness.deployer import Deployer
from tests.harness.emulator import start_emulator
from tests.harness.synth import synthesize


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/emulator/" in str(item.fspath):
            item.add_marker(pytest.mark.emulator)


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
