"""`delivery plan/apply/drift`: the checks before a saved plan is applied, terraform as a child
process (signals, no timeout, lock timeout), and the one-line exits. Terraform itself runs in
tests/emulator/test_saved_plans.py; here a stand-in script plays it where its reaction to a
signal is what is tested."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from delivery.__main__ import main
from delivery.summary import StackChanges
from delivery.terraform import (
    ApplyOptions,
    Interrupted,
    Terraform,
    _ordered,
    refusals,
    synth_hash,
    waves,
)
from modules.core.terraform import TerraformCli
from tests.conftest import require

FIXTURES = Path(__file__).parent / "fixtures" / "plans"
DEV = {"dev-network": (), "dev-database": ("dev-network",), "dev-api": ("dev-network", "dev-database"),
       "dev-frontend": ()}
HASHES = {"prod-database": "sha256:aa", "prod-api": "sha256:bb"}


def recorded(stack: str, name: str = "create-update-replace-delete.json") -> StackChanges:
    return StackChanges.from_plan_json(stack, json.loads((FIXTURES / name).read_text()))


def summary(**overrides: object) -> dict[str, object]:
    return {"environment": "prod", "commit": "c0ffee", "synth_hash": synth_hash(HASHES),
            "stack_hashes": dict(HASHES), **overrides}


def options(**overrides: object) -> ApplyOptions:
    settings: dict[str, object] = {"environment": "prod", "stacks": tuple(HASHES), "dependencies": {},
                                   "production": True}
    settings.update(overrides)
    return ApplyOptions(**settings)  # type: ignore[arg-type]


# --- refusals: one line each, before anything runs --------------------------------------------------

def test_accepts_plans_of_this_commit_and_synth_without_stateful_destruction():
    clean = recorded("prod-database", "no-changes.json")
    assert refusals(options(), summary(), HASHES, "c0ffee", [clean], stale=[]) == []


def test_refuses_plans_of_another_commit_or_synth():
    changed = {**HASHES, "prod-api": "sha256:cc"}
    reasons = refusals(options(), summary(), changed, "badbad", [], stale=[])
    assert reasons == [
        "the plans were made from commit c0ffee, this is badbad: plan again",
        "the plans were made from another synth (prod-api differ from cdktf.out): plan again",
    ]


def test_refuses_a_stale_plan_in_terraforms_words():
    reasons = refusals(options(), summary(), HASHES, "c0ffee", [], stale=["prod-api"])
    assert reasons == ["prod-api: Saved plan is stale: its state changed after the plan was made: plan again"]


def test_refuses_stateful_replace_and_delete_in_production_unless_each_is_allowed():
    changes = recorded("prod-database")
    reasons = refusals(options(), summary(), HASHES, "c0ffee", [changes], stale=[])
    # The recorded plan replaces a log group and deletes a bucket (stateful); the KMS key is only updated.
    assert len(reasons) == 2
    assert any(r.startswith("prod-database: aws_cloudwatch_log_group.logs is a log group and would be replaced "
                            "in production prod: refused unless --allow-replace aws_cloudwatch_log_group.logs")
               for r in reasons)
    assert any("aws_s3_bucket.old is a bucket and would be deleted" in r for r in reasons)
    partly = options(allow_replace=("aws_cloudwatch_log_group.logs",))
    assert [r for r in refusals(partly, summary(), HASHES, "c0ffee", [changes], stale=[])
            if "log group" in r] == []
    allowed = options(allow_replace=("aws_cloudwatch_log_group.logs", "prod-database:aws_s3_bucket.old"))
    assert refusals(allowed, summary(), HASHES, "c0ffee", [changes], stale=[]) == []


def test_outside_production_stateful_changes_are_flagged_not_refused():
    changes = recorded("stage-database")
    assert refusals(options(production=False, environment="stage"), summary(environment="stage"), HASHES,
                    "c0ffee", [changes], stale=[]) == []


def test_a_release_refuses_any_change_beyond_task_definitions_and_services():
    changes = recorded("prod-api")
    reasons = refusals(options(release=True, production=False), summary(), HASHES, "c0ffee", [changes], stale=[])
    assert len(reasons) == 1
    assert reasons[0].startswith("infrastructure changes pending in prod-api: run the infrastructure pipeline first (")


def test_plans_of_another_environment_are_refused():
    assert refusals(options(), summary(environment="stage"), HASHES, "c0ffee", [], stale=[])[0] == \
        "the plans are of stage, not prod"


# --- order ----------------------------------------------------------------------------------------

def test_apply_order_puts_every_stack_after_what_it_reads():
    order = _ordered(["dev-api", "dev-frontend", "dev-database", "dev-network"], DEV)
    assert order.index("dev-network") < order.index("dev-database") < order.index("dev-api")
    assert waves(list(DEV), DEV) == [["dev-network", "dev-frontend"], ["dev-database"], ["dev-api"]]


# --- the secrets check's place: before <env>-api is planned (apply), or applied (saved plans) ---------

class Stop(Exception):
    pass


def test_apply_runs_the_check_before_the_api_group_is_planned_and_plans_nothing_after_it(monkeypatch):
    import delivery.terraform as terraform_module

    events: list[str] = []
    monkeypatch.setattr(terraform_module, "plan_environment",
                        lambda _t, _s, _d, plan: events.append(f"plan {' '.join(plan.stacks)}"))
    monkeypatch.setattr(terraform_module, "apply_plans", lambda _t, _s, directory, _o, **_: events.append(
        f"apply {directory.name}") or [])

    def before_plan(stack: str) -> None:
        events.append(f"check {stack}")
        if stack == "dev-api":
            raise Stop

    plan = terraform_module.PlanOptions(environment="dev", stacks=tuple(DEV), dependencies=DEV)
    with pytest.raises(Stop):
        terraform_module.plan_and_apply(None, Path("stacks"), Path("plans"), plan,  # type: ignore[arg-type]
                                        options(environment="dev", stacks=tuple(DEV), dependencies=DEV,
                                                production=False), before_plan=before_plan)
    assert events == ["check dev-network", "check dev-frontend", "plan dev-network dev-frontend", "apply group-0",
                      "check dev-database", "plan dev-database", "apply group-1", "check dev-api"]


class RecordingTerraform:
    """What _apply_in_order asks of the runner: applies succeed and are recorded."""

    lock_timeout = "5m"
    interrupted = False

    def __init__(self) -> None:
        self.events: list[str] = []

    def write(self, line: str) -> None:
        pass

    def run(self, directory: Path, *args: str, echo: str | None = None) -> object:
        self.events.append(f"apply {directory.name}")
        return type("Done", (), {"returncode": 0, "stdout": ""})()


def test_saved_plans_run_the_check_just_before_the_api_plan_is_applied(tmp_path):
    from delivery.terraform import _apply_in_order

    terraform = RecordingTerraform()
    changes = [recorded(stack) for stack in ("dev-api", "dev-database", "dev-network")]

    def before_apply(stack: str) -> None:
        terraform.events.append(f"check {stack}")
        if stack == "dev-api":
            raise Stop

    with pytest.raises(Stop):
        _apply_in_order(terraform, tmp_path, tmp_path, options(environment="dev", dependencies=DEV),  # type: ignore[arg-type]
                        changes, before_apply)
    assert terraform.events == ["check dev-network", "apply dev-network", "check dev-database", "apply dev-database",
                                "check dev-api"]


# --- terraform as a child process ---------------------------------------------------------------------

FAKE_TERRAFORM = textwrap.dedent("""\
    #!{python}
    # Plays terraform's reaction to signals: the first SIGINT starts a clean stop that takes a
    # moment (releasing the lock), a second one would exit at once ("Two interrupts received").
    import os, signal, sys, time
    log = open(os.environ["FAKE_LOG"], "a")
    received = []
    def stop(signum, frame):
        received.append(signum)
        log.write(f"signal {{signal.Signals(signum).name}}\\n"); log.flush()
        if len(received) > 1:
            log.write("exiting immediately, lock left behind\\n"); log.flush()
            os._exit(1)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print("applying", flush=True)
    deadline = time.monotonic() + 60
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    log.write("stopped cleanly, lock released\\n"); log.flush()
    print("Error: execution halted", flush=True)
    sys.exit(1)
""")


@pytest.fixture
def fake_terraform(tmp_path, monkeypatch):
    script = tmp_path / "terraform"
    script.write_text(FAKE_TERRAFORM.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "terraform.log"
    log.write_text("")
    monkeypatch.setenv("FAKE_LOG", str(log))
    cli = TerraformCli(binary=str(script), config_file=tmp_path / "terraform.rc", mirror=None)
    return Terraform(cli, io.StringIO()), log


def test_an_interrupt_is_forwarded_once_as_sigint_and_terraform_is_waited_for(fake_terraform, tmp_path):
    terraform, log = fake_terraform
    outcome: dict[str, object] = {}

    def apply() -> None:
        try:
            terraform.check(tmp_path, "apply", "plan.tfplan", echo="dev-api")
        except Interrupted as error:
            outcome["error"] = str(error)

    runner = threading.Thread(target=apply)
    runner.start()
    while "applying" not in terraform.out.getvalue():  # type: ignore[attr-defined]
        time.sleep(0.05)
    terraform.interrupt(signal.SIGTERM)   # a pipeline abort
    terraform.interrupt(signal.SIGINT)    # and an impatient Ctrl-C: not forwarded
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert log.read_text() == "signal SIGINT\nstopped cleanly, lock released\n"
    assert "interrupted: terraform apply in " in str(outcome["error"]) and "released the state lock" in \
        str(outcome["error"])
    with pytest.raises(Interrupted, match="not started"):
        terraform.run(tmp_path, "apply")


def test_terraform_runs_in_its_own_session_so_a_terminal_ctrl_c_reaches_it_only_through_us(fake_terraform,
                                                                                           tmp_path):
    terraform, _ = fake_terraform
    child = terraform.cli.start(tmp_path, "apply")
    try:
        assert os.getpgid(child.pid) != os.getpgid(0)
    finally:
        # Signal it once its handlers are in (its first line): a pytest started in the background by a
        # non-interactive shell ignores SIGINT, the child inherits that, and an early SIGINT was lost.
        assert child.stdout is not None and child.stdout.readline() == "applying\n"
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)


def test_no_timeout_of_ours_and_a_lock_timeout_on_every_state_command():
    import inspect

    import delivery.terraform as module

    source = inspect.getsource(module)
    assert "timeout=3600" not in source and ".run(directory, *args, timeout" not in source
    for command in ('"init"', '"plan"', '"apply"'):
        calls = [line for line in source.splitlines() if f"terraform.check(directory, {command}" in line
                 or f'"{command[1:-1]}", "-input=false"' in line]
        assert calls, command
    assert source.count("-lock-timeout={terraform.lock_timeout}") >= 4


def test_jenkins_cookies_are_not_passed_to_terraform(tmp_path, monkeypatch):
    """Jenkins ends an aborted step by killing what carries the build's cookie; terraform must outlive
    us long enough to release its lock after our SIGINT."""
    monkeypatch.setenv("JENKINS_NODE_COOKIE", "build-cookie")
    monkeypatch.setenv("JENKINS_SERVER_COOKIE", "durable-cookie")
    require(TerraformCli.create(tmp_path / "cli") is not None, "terraform is not on PATH (install Terraform >= 1.11)")
    terraform = Terraform.create(tmp_path / "cli", io.StringIO())
    env = terraform.cli.env(terraform.extra_env)
    assert env["JENKINS_NODE_COOKIE"] != "build-cookie" and env["JENKINS_SERVER_COOKIE"] != "durable-cookie"


# --- exits: one line, status 2, before anything runs ----------------------------------------------------

def run_cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


def test_unknown_environment_exits_2_with_one_line():
    code, err = run_cli("plan", "nowhere")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: unknown environment 'nowhere'")


def test_missing_plans_exit_2_with_one_line(tmp_path):
    code, err = run_cli("apply", "dev", "--plans", str(tmp_path / "absent"))
    assert code == 2 and err.count("\n") == 1 and "is not a folder" in err
    (tmp_path / "empty").mkdir()
    synthesized(tmp_path, DEV)
    monkeypatched = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    with _env(monkeypatched):
        code, err = run_cli("apply", "dev", "--plans", str(tmp_path / "empty"), "--stacks-dir", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "summary.json does not exist" in err


def synthesized(stacks_dir: Path, stacks: object) -> None:
    """Stand-in synthesized stacks (their folders and cdk.tf.json), for checks that only look for them."""
    for stack in stacks:  # type: ignore[attr-defined]
        (stacks_dir / stack).mkdir(parents=True, exist_ok=True)
        (stacks_dir / stack / "cdk.tf.json").write_text("{}")


def test_missing_credentials_exit_2_with_one_line(tmp_path):
    cleared = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
               "AWS_PROFILE": None, "AWS_CONFIG_FILE": str(tmp_path / "none"),
               "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true",
               "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None, "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
               "AWS_WEB_IDENTITY_TOKEN_FILE": None}
    synthesized(tmp_path / "stacks", DEV)  # every local fact holds: the credentials are what is missing
    for argv in (("plan", "dev"), ("apply", "dev"), ("drift", "dev"), ("apply-migrations", "dev")):
        with _env(cleared):
            code, err = run_cli(*argv, "--stacks-dir", str(tmp_path / "stacks"))
        assert (code, err.count("\n")) == (2, 1), (argv, err)
        assert err.startswith("error: no AWS credentials"), err


def test_a_bad_lock_timeout_exits_2(tmp_path):
    with _env({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}):
        code, err = run_cli("plan", "dev", "--lock-timeout", "soon")
    assert code == 2 and "--lock-timeout must be a duration" in err


def test_an_unexpected_error_is_one_line_not_a_traceback(monkeypatch):
    import delivery.__main__ as entry

    def broken(_args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(entry, "_stacks", broken)
    monkeypatch.delenv("DELIVERY_DEBUG", raising=False)
    parser = entry.parser()
    monkeypatch.setattr(entry, "parser", lambda: parser)
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        action.choices["stacks"].set_defaults(handler=broken)  # type: ignore[index]
    code, err = run_cli("stacks", "dev")
    assert code == 1 and err == "error: unexpected RuntimeError: boom (DELIVERY_DEBUG=1 shows the traceback)\n"


@contextlib.contextmanager
def _env(values: dict[str, str | None]):  # type: ignore[no-untyped-def]
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_make_passes_plans_each_allowed_address_and_the_lock_timeout():
    import shutil
    import subprocess

    from tests.harness.project import PROJECT

    require(shutil.which("make") is not None, "make is not installed")
    shown = subprocess.run(["make", "-n", "apply-env", "ENV=prod", "PLANS=plans/prod", "LOCK_TIMEOUT=10m",
                            "ALLOW_REPLACE=aws_db_instance.a aws_s3_bucket.b"], cwd=PROJECT, capture_output=True,
                           text=True, check=True).stdout
    assert ('-m delivery apply "prod" --plans "plans/prod" --allow-replace "aws_db_instance.a" '
            '--allow-replace "aws_s3_bucket.b" --lock-timeout "10m"') in shown
