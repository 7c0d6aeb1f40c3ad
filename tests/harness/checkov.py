"""checkov, run from its own virtualenv over every synthesized stack, and its suppressions.

checkov's dependency `bc-python-hcl2` replaces python-hcl2's `hcl2` module, so it
cannot share the project's environment: `make checkov-venv` builds `.venv-checkov/`
from `tests/checkov/requirements.txt`.

checkov 3.3's terraform_json parser fails a whole file on an `ephemeral` block (Terraform
1.10), on a `removed` block (1.7; a list of objects, where it expects named blocks) and on
`terraform.required_version` (a string where it expects blocks), and reports that only as a
parsing error, with no findings. So checkov reads copies of the stacks without those three
(none creates anything to check), and any parsing error fails the run instead of passing it
empty.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
CHECKOV = Path(os.environ.get("CHECKOV_VENV", PROJECT / ".venv-checkov")) / "bin" / "checkov"
SUPPRESSIONS_FILE = PROJECT / "tests" / "checkov" / "suppressions.toml"


@dataclass(frozen=True)
class Failure:
    stack: str
    check_id: str
    resource: str
    name: str

    def __str__(self) -> str:
        return f"{self.stack}: {self.check_id} {self.resource} ({self.name})"


@dataclass(frozen=True)
class Suppression:
    check_id: str
    resource: str
    stacks: str
    reason: str

    def matches(self, failure: Failure) -> bool:
        return (
            self.check_id == failure.check_id
            and fnmatch.fnmatchcase(failure.resource, self.resource)
            and fnmatch.fnmatchcase(failure.stack, self.stacks)
        )


def load_suppressions(path: Path = SUPPRESSIONS_FILE) -> list[Suppression]:
    entries = tomllib.loads(path.read_text())["suppress"]
    suppressions = []
    for index, entry in enumerate(entries):
        reason = entry.get("reason", "").strip()
        if len(reason) < 20:
            raise ValueError(f"{path}: suppress[{index}] ({entry.get('check')}) needs a reason")
        suppressions.append(Suppression(entry["check"], entry["resource"], entry.get("stacks", "*"), reason))
    return suppressions


def _checkable_copy(stacks_dir: Path, copy_dir: Path) -> None:
    """`stacks_dir`'s stacks without what checkov cannot parse (see the module's docstring)."""
    for stack_file in stacks_dir.glob("*/cdk.tf.json"):
        stack = json.loads(stack_file.read_text())
        stack.pop("ephemeral", None)
        stack.pop("removed", None)
        stack.get("terraform", {}).pop("required_version", None)
        target = copy_dir / stack_file.parent.name
        target.mkdir(parents=True)
        (target / stack_file.name).write_text(json.dumps(stack, indent=2))


def run_checkov(stacks_dir: Path) -> tuple[list[Failure], dict[str, int]]:
    """Every failed check in every stack under `stacks_dir`, and how many checks passed in each stack."""
    with tempfile.TemporaryDirectory(prefix="checkov-") as scratch:
        copy_dir = Path(scratch) / "stacks"
        _checkable_copy(stacks_dir, copy_dir)
        result = subprocess.run(
            [str(CHECKOV), "--directory", "stacks", "--framework", "terraform_json",
             "--output", "json", "--compact", "--skip-download"],
            capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"}, timeout=600,
            cwd=scratch,
        )
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov failed ({result.returncode}):\n{result.stderr[-4000:]}")
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failures = []
    passed = {stack_file.parent.name: 0 for stack_file in stacks_dir.glob("*/cdk.tf.json")}
    for report in reports:
        unparsed = report.get("summary", {}).get("parsing_errors", 0)
        if unparsed:
            raise RuntimeError(f"checkov could not parse {unparsed} stack file(s), so it checked nothing in them:\n"
                               f"{result.stderr[-4000:]}")
        if "results" not in report:
            continue
        # Without --quiet, which would leave the passed checks out: each stack must show its own.
        for check in report["results"]["passed_checks"]:
            stack = Path(check["file_path"]).parts[1]
            passed[stack] = passed.get(stack, 0) + 1
        for check in report["results"]["failed_checks"]:
            stack = Path(check["file_path"]).parts[1]
            failures.append(Failure(stack, check["check_id"], check["resource"], check["check_name"]))
    return failures, passed


def main(argv: list[str]) -> int:
    """`python -m tests.harness.checkov <stacks dir>`: 0 when every finding is explained."""
    stacks_dir = Path(argv[0]) if argv else PROJECT / "cdktf.out" / "stacks"
    failures, passed = run_checkov(stacks_dir)
    suppressions = load_suppressions()
    unexplained = [f for f in failures if not any(s.matches(f) for s in suppressions)]
    print(f"checkov: {sum(passed.values())} passed, {len(failures)} failed, {len(failures) - len(unexplained)} explained "
          f"by {SUPPRESSIONS_FILE.relative_to(PROJECT)}")
    for failure in unexplained:
        print(f"UNEXPLAINED {failure}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
