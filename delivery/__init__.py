"""The project's delivery commands, run from a pipeline (Jenkins) or a shell.

    python -m delivery --help
    python -m delivery deploy-frontend dev --dir dist/

Each command is a module here (`frontend.py`: publish a built site to an
environment's `<env>-frontend` stack; `pipeline.py`: release, promote, migrate,
verify; `terraform.py`: plan and apply an environment's stacks) registered in
`__main__.py`. `aws.py` holds what they share: loading environments, boto3
clients and reading the stacks' state outputs, so commands find what Terraform
created from those outputs, never from hard-coded names.
"""

from pathlib import Path

# The project's one version constant: the VERSION file at its root (CHANGELOG.md names each).
VERSION_FILE = Path(__file__).resolve().parent.parent / "VERSION"


def version() -> str:
    """The project's version, from VERSION (read when asked: importing the package reads no file)."""
    try:
        return VERSION_FILE.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


class UsageError(Exception):
    """Wrong input (a flag, a folder, an environment): nothing was touched. Exit status 2."""


class DeployError(Exception):
    """The command started but could not finish; the message says what state it left. Exit status 1."""
