"""The README's "Zero to dev" commands, read from the README and run in order on an emulator of their own.

The commands run in a copy of the project (its tracked and untracked files, as a newcomer's clone
would hold them, with the shared virtualenv linked in), so the walkthrough's `cdktf.out/`, plans and
bootstrap state (`terraform.bootstrap.tfstate`, written beside `cdktf.out/`) never touch the
checkout. The copy synthesizes for the emulator target (CDKTF_TARGET=local) and every AWS client
(terraform, boto3, the AWS CLI) is pointed at a moto server of its own, so the session's emulator,
which applies the same names, is not disturbed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.emulator import Emulator, emulator_env, start_emulator

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
SECTION = "Zero to dev"
# A command the emulator cannot serve carries this comment in the README, with the reason.
REAL_ACCOUNT_ONLY = "# real account only"
# A command that must stop, with this exit status, carries this in its comment.
EXPECTED_EXIT = re.compile(r"\(exit (\d+)\)")
LINKED = (".venv", "node_modules")


@dataclass(frozen=True)
class Command:
    line: str
    expected_exit: int = 0
    real_account_only: bool = False


@dataclass
class Step:
    command: Command
    returncode: int
    output: str
    seconds: float


@dataclass
class Walkthrough:
    emulator: Emulator
    project: Path
    steps: list[Step] = field(default_factory=list)

    def stop(self) -> None:
        self.emulator.stop()


def section(text: str, title: str = SECTION) -> str:
    """The body of the README's `## <title>` section (up to the next `## `)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if match is None:
        raise AssertionError(f"README.md has no '## {title}' section")
    return match.group(1)


def commands(text: str) -> list[Command]:
    """Every command line of the section's ```sh blocks, in order (comment lines left out)."""
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", section(text), re.S | re.M):
        for raw in block.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            comment = line.split(" #", 1)[1] if " #" in line else ""
            expected = EXPECTED_EXIT.search(comment)
            found.append(Command(line=line, expected_exit=int(expected.group(1)) if expected else 0,
                                 real_account_only=REAL_ACCOUNT_ONLY in line))
    return found


def copy_project(destination: Path) -> Path:
    """The project's files as git sees them (tracked and untracked, not ignored), plus links to the
    shared virtualenv and node modules."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=PROJECT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = PROJECT / name
        if name.split("/", 1)[0] in LINKED or not source.is_file():
            continue  # deleted in the working tree, or the linked installs themselves
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)  # keeps times: make sees the shared virtualenv as up to date
    for name in LINKED:
        if (PROJECT / name).exists():
            (destination / name).symlink_to((PROJECT / name).resolve())
    return destination


def environment(endpoint: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("AWS_PROFILE", "CDKTF_OUTDIR", "ENVIRONMENTS", "CDKTF_ENVIRONMENTS_DIR", "CDKTF_PLAN_ONLY")}
    # emulator_env blanks AWS_PROFILE for terraform; boto3 and the AWS CLI want it unset.
    env.update({key: value for key, value in emulator_env().items() if key != "AWS_PROFILE"})
    env.update({"CDKTF_TARGET": "local", "EMULATOR_ENDPOINT": endpoint, "AWS_ENDPOINT_URL": endpoint,
                "AWS_DEFAULT_REGION": env["AWS_REGION"]})
    return env


def run(root: Path) -> Walkthrough:
    """Start the emulator, copy the project, run the README's commands in order until one does not
    end as the README says (real-account-only commands are not run)."""
    emulator = start_emulator(root / "moto.log")
    walkthrough = Walkthrough(emulator, copy_project(root / "project"))
    env = environment(emulator.endpoint)
    try:
        for command in commands(README.read_text()):
            if command.real_account_only:
                continue
            started = time.monotonic()
            result = subprocess.run(["bash", "-c", command.line], cwd=walkthrough.project, env=env,
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=3600)
            walkthrough.steps.append(Step(command, result.returncode, result.stdout + result.stderr,
                                          time.monotonic() - started))
            if result.returncode != command.expected_exit:
                break
    except BaseException:
        emulator.stop()
        raise
    return walkthrough
