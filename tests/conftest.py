"""One synth per session: every test reads the same synthesized stacks.

Markers: `emulator` tests apply stacks to a moto server (slow; `make test-fast`
leaves them out, `make test` and CI run them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from modules.core import jsii_node  # noqa: E402

# The session synthesizes in this process: start its Node kernel with the lazy provider index
# before any test module imports cdktf (the synth entry point's step; importing does not).
jsii_node.start_kernel()

from modules.core.terraform import TerraformCli  # noqa: E402
from modules.environment import Environments, load_environments  # noqa: E402
from modules.layout import stack_names  # noqa: E402
from tests.harness.background import JOBS  # noqa: E402
from tests.harness.checkov import CHECKOV, run_checkov  # noqa: E402
from tests.harness.edits import PROD_MFA, VARIANT, replace_block  # noqa: E402
from tests.harness.jobs import (  # noqa: E402
    CDKTF_CLI,
    VALIDATE_BROKEN_COPY_OF,
    cdktf_cli_synth,
    run_main,
    run_plain_import,
    validate_stacks,
)
from tests.harness.postgres import PostgresServer, find_bin_dir  # noqa: E402
from tests.harness.project import ENVIRONMENTS_DIR  # noqa: E402
from tests.harness.synth import Synthesized, synthesize  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Where background jobs started before any fixture exists write (removed at the end).
BACKGROUND_OUTDIRS = Path(tempfile.mkdtemp(prefix="cdktf-test-jobs-"))


# Their fixtures wait for background jobs (harness/background.py): run them after the rest, so
# this process builds the other tests' synths while the jobs finish.
WAITING_ON_JOBS = ("test_main.py", "test_terraform_validate.py", "test_checkov.py")


@pytest.hookimpl(tryfirst=True)  # before tests/emulator/conftest.py puts the emulator tests after all
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def waits(item: pytest.Item) -> int:
        name = Path(str(item.path)).name
        return WAITING_ON_JOBS.index(name) + 1 if name in WAITING_ON_JOBS else 0

    items.sort(key=waits)  # stable: the order within a file stays


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the slow subprocess checks that need nothing but the project (harness/background.py)."""
    if session.config.option.collectonly:
        return
    JOBS.selected_files = {Path(str(item.path)).name for item in session.items}
    if JOBS.wanted("test_main.py"):
        JOBS.start("plain-import-run", run_plain_import, BACKGROUND_OUTDIRS / "main-plain" / "cdktf.out")
        JOBS.start("optimized-run", run_main, BACKGROUND_OUTDIRS / "main-optimized" / "cdktf.out")
        if CDKTF_CLI.exists():
            JOBS.start("cdktf-cli-synth", cdktf_cli_synth, BACKGROUND_OUTDIRS / "cdktf-cli" / "cdktf.out")


# Lines a test wants under pytest's summary (the mutation score): printed even when output is captured.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's TerminalReporter
    for line in SUMMARY:
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    JOBS.close()
    shutil.rmtree(BACKGROUND_OUTDIRS, ignore_errors=True)


def require(condition: bool, reason: str) -> None:
    """Skip when a tool is missing on a developer machine; fail in CI, where it must be there."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def environments() -> Environments:
    return load_environments(ENVIRONMENTS_DIR)


# The stacks of the design (README.md, "The stacks"): the state bucket, the organisation's CI/CD,
# and one stack per tier per environment of environments/ (dev, stage, prod). Written out, not
# computed by modules.layout.stack_names, which is what test_stacks.py checks.
EXPECTED_STACKS = ["bootstrap", "shared-cicd"] + [
    f"{env}-{tier}" for env in ("dev", "stage", "prod") for tier in ("network", "database", "api", "frontend")]


@pytest.fixture(scope="session")
def expected_stacks() -> list[str]:
    return list(EXPECTED_STACKS)


@pytest.fixture(scope="session")
def synth(environments: Environments, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """All environments, synthesized once for the real-AWS target.

    Starts validate and checkov on it in the background (their fixtures wait for them).
    """
    synthesized = synthesize(environments, tmp_path_factory.mktemp("synth") / "cdktf.out")
    stacks_dir = synthesized.outdir / "stacks"
    if JOBS.wanted("test_terraform_validate.py"):
        cli = TerraformCli.create(tmp_path_factory.mktemp("terraform-cli-validate"))
        if cli is not None:
            JOBS.start("validate", validate_stacks, stacks_dir, stack_names(environments),
                       cli, tmp_path_factory.mktemp("validate"), VALIDATE_BROKEN_COPY_OF)
    if JOBS.wanted("test_checkov.py") and CHECKOV.exists():
        JOBS.start("checkov", run_checkov, stacks_dir)
    return synthesized


@pytest.fixture(scope="session")
def local_target_synth(environments: Environments, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """All environments, synthesized once for the emulator target (nothing is started: the
    endpoint is never called). Compared with `synth` by the rule pack's WEBAPP-TARGET-1."""
    from modules.core.target import Target

    return synthesize(environments, tmp_path_factory.mktemp("emulator-synth") / "cdktf.out",
                      Target(emulator_endpoint="http://127.0.0.1:1"))


@pytest.fixture(scope="session")
def cicd_variant(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Every environment with the pipeline's other shapes (tests/harness/edits.py VARIANT: OIDC CI role,
    one shared Prometheus workspace, enhanced scanning, SAML Grafana) and MFA on prod's deploy role:
    one synth for the tests of test_cicd.py and test_cicd_collector.py that need them."""
    directory = tmp_path_factory.mktemp("cicd-variant") / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, directory)
    replace_block(directory, "shared.hcl", VARIANT)
    prod = directory / "prod.hcl"
    old, new = PROD_MFA
    assert old in prod.read_text()
    prod.write_text(prod.read_text().replace(old, new))
    return synthesize(load_environments(directory), directory.parent / "cdktf.out")


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> TerraformCli:
    return terraform_cli(tmp_path_factory.mktemp("terraform-cli"))


def terraform_cli(workdir: Path) -> TerraformCli:
    """The terraform CLI with its config in `workdir`; skips (fails in CI) without terraform or its mirror."""
    cli = TerraformCli.create(workdir)
    require(cli is not None, "terraform is not on PATH (install Terraform >= 1.11)")
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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server of its own (tests/harness/postgres.py), stopped at the end of the session."""
    bin_dir = find_bin_dir()
    require(bin_dir is not None, "PostgreSQL's initdb/pg_ctl are missing (make test installs Debian's postgresql)")
    assert bin_dir is not None
    server = PostgresServer.start(bin_dir)
    try:
        yield server
    finally:
        server.stop()
