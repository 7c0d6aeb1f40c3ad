"""`python -m delivery` guides (issue 24, part 5): the command's own checks before credentials, one
spelling of the environment, `--version`, a hint outside the virtualenv, and `apply` asking on a
terminal (a real pseudo-terminal) unless `--yes`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import select
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from delivery.__main__ import main
from tests.harness.project import PROJECT

FIXTURES = Path(__file__).parent / "fixtures" / "plans"
DEV_STACKS = ("dev-network", "dev-database", "dev-api", "dev-frontend")
NO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
                  "AWS_PROFILE": None, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                  "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI": None, "AWS_WEB_IDENTITY_TOKEN_FILE": None}


def run_cli(monkeypatch: pytest.MonkeyPatch, *argv: str, env: dict[str, str | None] | None = None
            ) -> tuple[int, str, str]:
    for name, value in (env or {}).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse's own errors and --version
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


# --- the command's own checks come before credentials ------------------------------------------------

def test_promote_skipping_an_environment_says_so_without_credentials(monkeypatch):
    code, _, err = run_cli(monkeypatch, "promote", "dev", "prod", env=NO_CREDENTIALS)
    assert (code, err) == (2, "error: promotion goes dev -> stage -> prod without skipping: dev promotes to "
                              "stage, not prod\n")


@pytest.mark.parametrize("argv, message", [
    (("promote", "dev", "qa"), "error: 'qa' is not in promotion_order (dev -> stage -> prod)\n"),
    (("release", "stage", "--service", "service1", "--tag", "abc"),
     "error: release writes the first environment of promotion_order (dev); use promote for stage\n"),
    (("migrate", "nowhere"), "error: unknown environment 'nowhere': "),
    (("plan", "dev", "--lock-timeout", "soon"), "error: --lock-timeout must be a duration like 30s, 5m or 1h"),
    (("apply", "dev", "--plans", "/nonexistent/plans"), "error: --plans /nonexistent/plans is not a folder"),
    (("deploy-frontend", "dev", "--dir", "/nonexistent/dist"), "error: "),
])
def test_bad_arguments_without_credentials_give_the_argument_error_and_exit_2(monkeypatch, argv, message):
    code, _, err = run_cli(monkeypatch, *argv, env=NO_CREDENTIALS)
    assert code == 2 and err.startswith(message) and "credentials" not in err, err


def test_missing_synthesized_stacks_are_named_before_credentials(monkeypatch, tmp_path):
    code, _, err = run_cli(monkeypatch, "plan", "dev", "--stacks-dir", str(tmp_path), env=NO_CREDENTIALS)
    assert (code, err) == (2, f"error: {tmp_path}/dev-network/cdk.tf.json does not exist: run `make synth` first\n")


def test_without_credentials_every_command_says_it_in_one_wording(monkeypatch, tmp_path):
    for stack in DEV_STACKS:
        (tmp_path / stack).mkdir()
        (tmp_path / stack / "cdk.tf.json").write_text("{}")
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text("<html></html>")
    wording = ("error: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run "
               "where an instance or task role provides them (Jenkins: the pipeline's role binding)\n")
    for argv in (("plan", "dev", "--stacks-dir", str(tmp_path)), ("migrate", "dev"),
                 ("deploy-frontend", "dev", "--dir", str(tmp_path / "dist"))):
        code, _, err = run_cli(monkeypatch, *argv, env=NO_CREDENTIALS)
        assert (code, err) == (2, wording), argv


# --- one spelling of the environment, --version, outside the virtualenv ---------------------------

def test_the_environment_is_positional_everywhere_and_env_is_another_spelling(monkeypatch):
    assert run_cli(monkeypatch, "stacks", "dev")[:2] == (0, "dev-network dev-database dev-api dev-frontend\n")
    assert run_cli(monkeypatch, "stacks", "--env", "dev")[:2] == (0, "dev-network dev-database dev-api dev-frontend\n")
    assert run_cli(monkeypatch, "role", "deploy", "--env", "dev")[1] == run_cli(monkeypatch, "role", "deploy", "dev")[1]


def test_the_environment_given_twice_or_not_at_all_is_a_usage_error(monkeypatch):
    code, _, err = run_cli(monkeypatch, "stacks", "dev", "--env", "prod")
    assert code == 2 and "the environment is given twice (dev and --env prod)" in err
    code, _, err = run_cli(monkeypatch, "migrate")
    assert code == 2 and "the following arguments are required: ENV" in err


def test_version_is_the_version_file(monkeypatch):
    code, out, _ = run_cli(monkeypatch, "--version")
    assert (code, out) == (0, f"python -m delivery {(PROJECT / 'VERSION').read_text().strip()}\n")


def test_outside_the_virtualenv_a_one_line_hint_instead_of_a_traceback():
    # -S: no site-packages, as with a system Python that lacks the project's packages.
    result = subprocess.run([sys.executable, "-S", "-m", "delivery", "stacks", "dev"], cwd=PROJECT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.endswith("is not installed for " + sys.executable + ": run the commands with the "
                                  "project's virtualenv, `.venv/bin/python -m delivery ...` (`make venv` creates "
                                  "it)\n") and result.stderr.count("\n") == 1, result.stderr


# --- apply asks on a terminal --------------------------------------------------------------------

FAKE_TERRAFORM = """#!{python}
# Plays terraform for `apply --plans`: init, show -json of the saved plan, state pull, apply.
import os, sys
args = [a for a in sys.argv[1:] if a != "-no-color"]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(" ".join(args[:1]) + "\\n")
if args[0] == "show":
    sys.stdout.write(open(os.environ["FAKE_PLAN_JSON"]).read())
elif args[0] == "apply":
    print("Apply complete! Resources: 3 added, 2 changed, 2 destroyed.")
"""


@pytest.fixture
def saved_plan(tmp_path):
    """dev's stacks (stand-ins), a saved plan of dev-network with its summary, and a terraform that plays along."""
    from delivery.terraform import current_commit, stack_hashes, synth_hash

    stacks = tmp_path / "stacks"
    for stack in DEV_STACKS:
        (stacks / stack).mkdir(parents=True)
        (stacks / stack / "cdk.tf.json").write_text(json.dumps({"stack": stack}))
    plans = tmp_path / "plans"
    plans.mkdir()
    with zipfile.ZipFile(plans / "dev-network.tfplan", "w"):
        pass  # a plan file is a zip; this one holds no prior state
    hashes = stack_hashes(stacks, ["dev-network"])
    (plans / "summary.json").write_text(json.dumps({
        "environment": "dev", "commit": current_commit(), "synth_hash": synth_hash(hashes), "stack_hashes": hashes,
        "stacks": [{"stack": "dev-network"}]}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terraform").write_text(FAKE_TERRAFORM.format(python=sys.executable))
    (bin_dir / "terraform").chmod(0o755)
    log = tmp_path / "terraform.log"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_LOG": str(log),
           "FAKE_PLAN_JSON": str(FIXTURES / "create-update-replace-delete.json"),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    env.pop("AWS_PROFILE", None)
    argv = ["apply", "dev", "--stacks-dir", str(stacks), "--plans", str(plans)]
    return argv, env, log


QUESTION = "Apply this plan to dev? Only 'yes' will be accepted to approve: "
# The fixture's plan by terraform's count: 2 creates + 1 replacement to add, 2 updates, 1 delete +
# 1 replacement to destroy (a replacement is one add and one destroy).
PLAN_LINE = "dev-network: Plan: 3 to add, 2 to change, 2 to destroy."


def on_terminal(argv: list[str], env: dict[str, str], answer: str | None) -> tuple[int, str]:
    """Run delivery with a pseudo-terminal as stdin/stdout/stderr; type `answer` when the question shows."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "delivery", *argv], cwd=PROJECT, env=env,
                               stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    output, answered, deadline = b"", False, time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the terminal closed: the process is done
                    break
                if not chunk:
                    break
                output += chunk
            if answer is not None and not answered and b"Only 'yes' will be accepted" in output:
                os.write(leader, answer.encode() + b"\n")
                answered = True
            if process.poll() is not None and not ready:
                break
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    return code, output.decode(errors="replace").replace("\r\n", "\n")


def test_apply_on_a_terminal_asks_and_applies_after_yes(saved_plan):
    argv, env, log = saved_plan
    code, output = on_terminal(argv, env, "yes")
    assert code == 0, output
    assert f"{PLAN_LINE}\n{QUESTION}" in output
    assert "apply" in log.read_text().split()
    assert "dev-network: applying dev-network.tfplan (since " in output and "dev-network: applied in " in output


def test_apply_on_a_terminal_applies_nothing_without_yes(saved_plan):
    argv, env, log = saved_plan
    code, output = on_terminal(argv, env, "y")
    assert code == 1, output
    assert QUESTION in output and "error: apply cancelled: dev-network not applied" in output
    assert "apply" not in log.read_text().split()


def test_apply_yes_skips_the_question(saved_plan):
    argv, env, log = saved_plan
    code, output = on_terminal([*argv, "--yes"], env, None)
    assert code == 0, output
    assert "Only 'yes'" not in output and "apply" in log.read_text().split()


def test_apply_without_a_terminal_asks_nothing(saved_plan):
    # A pipeline: stdin is not a terminal (Jenkins' sh steps), so the saved plans are applied as reviewed.
    argv, env, log = saved_plan
    result = subprocess.run([sys.executable, "-m", "delivery", *argv], cwd=PROJECT, env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Only 'yes'" not in result.stdout and "apply" in log.read_text().split()
