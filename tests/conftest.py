"""One synth per session: every test reads the same synthesized stacks.

Markers: `emulator` tests apply stacks to a moto server (slow; `make test-fast`
leaves them out, `make test` and CI run them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from modules.core.environment import Environments, load_environments  # noqa: E402
from modules.core.terraform import TerraformCli  # noqa: E402
from modules.layout import stack_names  # noqa: E402
from tests.harness.synth import Synthesized, synthesize  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
ENVIRONMENTS_DIR = PROJECT / "environments"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip when a tool is missing on a developer machine; fail in CI, where it must be there."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def environments() -> Environments:
    return load_environments(ENVIRONMENTS_DIR)


@pytest.fixture(scope="session")
def expected_stacks(environments: Environments) -> list[str]:
    return stack_names(environments)


@pytest.fixture(scope="session")
def synth(environments: Environments, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """All environments, synthesized once for the real-AWS target."""
    return synthesize(environments, tmp_path_factory.mktemp("synth") / "cdktf.out")


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> TerraformCli:
    cli = TerraformCli.create(tmp_path_factory.mktemp("terraform-cli"))
    require(cli is not None, "terraform is not on PATH (install Terraform >= 1.5)")
    assert cli is not None
    require(
        cli.mirror is not None or not IN_CI,
        "no filesystem mirror of hashicorp/aws found (set TF_PROVIDER_MIRROR)",
    )
    return cli


@pytest.fixture
def environments_copy(tmp_path: Path) -> Path:
    """A writable copy of `environments/` for tests that break a file."""
    target = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, target)
    return target
