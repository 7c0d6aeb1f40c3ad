"""The master-password function (modules/database/master_password/handler.py) against moto, in process.

moto stores the password ModifyDBInstance sets (its getter refuses to give it back, so the tests read
the private attribute) and changes it at once: the tests that need RDS to take its time rewrite the
DescribeDBInstances answers the function receives. moto's GetSecretValue without a stage does not follow
UpdateSecretVersionStage (it keeps returning the version last written as current), so the tests ask for
AWSCURRENT by name, as the secret's readers should anyway.
"""

from __future__ import annotations

import importlib.util
import json
import string
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends

HANDLER = Path(__file__).resolve().parents[1] / "modules" / "database" / "master_password" / "handler.py"
REGION = "eu-west-1"
USERNAME = "webapp"
PRIMARY = "webapp-dev-postgres"
RESTORED = "webapp-dev-postgres-restored"
INITIAL_PASSWORD = "throwaway-initial-1"
# Plenty of time: the function never needs to give up.
UNHURRIED_MS = 900_000


class FakeContext:
    """Lambda's context: the time left starts at `start_ms` and drops by `step_ms` each time it is read."""

    def __init__(self, start_ms: int = UNHURRIED_MS, step_ms: int = 0) -> None:
        self.remaining_ms = start_ms
        self.step_ms = step_ms

    def get_remaining_time_in_millis(self) -> int:
        remaining = self.remaining_ms
        self.remaining_ms -= self.step_ms
        return remaining


@dataclass
class Aws:
    secret_id: str
    secrets: Any
    rds: Any

    def create_instance(self, identifier: str) -> None:
        self.rds.create_db_instance(DBInstanceIdentifier=identifier, Engine="postgres", MasterUsername=USERNAME,
                                    MasterUserPassword=INITIAL_PASSWORD, DBInstanceClass="db.t4g.medium",
                                    AllocatedStorage=20)

    def stages(self) -> dict[str, list[str]]:
        return dict(self.secrets.describe_secret(SecretId=self.secret_id).get("VersionIdsToStages", {}))

    def version_count(self) -> int:
        return len(self.secrets.list_secret_version_ids(SecretId=self.secret_id, IncludeDeprecated=True)["Versions"])

    def value(self, **version: str) -> dict[str, Any]:
        return dict(json.loads(self.secrets.get_secret_value(SecretId=self.secret_id, **version)["SecretString"]))

    def current(self) -> dict[str, Any]:
        return self.value(VersionStage="AWSCURRENT")

    def current_version(self) -> str:
        return next(v for v, stages in self.stages().items() if "AWSCURRENT" in stages)


def db_password(identifier: str) -> str:
    # DBInstance.master_user_password raises "Password is not retrievable."; the setter stores it here.
    return str(rds_backends[DEFAULT_ACCOUNT_ID][REGION].databases[identifier]._master_user_password)


def event(aws: Aws, token: str, identifiers: list[str] | None = None) -> dict[str, Any]:
    return {"SecretId": aws.secret_id, "ClientRequestToken": token, "Username": USERNAME,
            "DBInstanceIdentifiers": identifiers or [PRIMARY]}


def new_token() -> str:
    return str(uuid.uuid4())  # what terraform_data's id is: 36 characters


@pytest.fixture
def function(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The handler loaded as Lambda loads it: the file alone, as a top-level module (so it can import
    nothing of this repository), polling without pause."""
    spec = importlib.util.spec_from_file_location("master_password_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # No __pycache__ next to it: the folder is zipped as the function's code.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "POLL_SECONDS", 0)
    return module


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """A postgres instance and a secret with no value yet, as the database stack creates them."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_RDS", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        secrets = boto3.client("secretsmanager")
        created = Aws(secret_id=secrets.create_secret(Name="webapp-dev-database-master")["ARN"], secrets=secrets,
                      rds=boto3.client("rds"))
        created.create_instance(PRIMARY)
        yield created


def hook_clients(monkeypatch: pytest.MonkeyPatch, function: ModuleType, hooks: dict[str, Callable[..., Any]]) -> None:
    """Registers botocore event `hooks` (event name: handler) on the clients the function creates."""
    real_client = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        created = real_client(service, *args, **kwargs)
        for name, hook in hooks.items():
            created.meta.events.register(name, hook)
        return created

    monkeypatch.setattr(function, "boto3", SimpleNamespace(client=client))


def fail_call(operation: str, number: int) -> Callable[..., None]:
    """A before-call hook that makes the `number`th call (from 1) to `operation` fail, as a crash would."""
    calls = 0

    def hook(**_: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == number:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "simulated failure"}}, operation)

    return hook


def report_pending(identifier: str, times: int | None = None) -> Callable[..., None]:
    """An after-call hook on DescribeDBInstances: `identifier` shows its new master password as pending
    once the function has asked for it (`times` answers, or forever), as RDS does while applying it."""
    answers = 0

    def hook(parsed: dict[str, Any], **_: Any) -> None:
        nonlocal answers
        instance = parsed["DBInstances"][0]
        if instance["DBInstanceIdentifier"] != identifier or db_password(identifier) == INITIAL_PASSWORD:
            return
        if times is None or answers < times:
            answers += 1
            instance["PendingModifiedValues"] = {"MasterUserPassword": "****"}

    return hook


def test_the_first_run_sets_a_new_password_and_makes_it_current(function, aws, capsys):
    token = new_token()
    result = function.handler(event(aws, token), FakeContext())

    value = aws.current()
    assert set(value) == {"username", "password"}
    assert value["username"] == USERNAME
    password = value["password"]
    assert len(password) == 40
    assert set(password) <= set(string.ascii_letters + string.digits)
    assert any(c.isupper() for c in password) and any(c.islower() for c in password)
    assert any(c.isdigit() for c in password)
    assert db_password(PRIMARY) == password
    assert aws.stages() == {token: ["AWSCURRENT"]}
    assert result == {"SecretId": aws.secret_id, "VersionId": token, "DBInstanceIdentifiers": [PRIMARY]}
    assert password not in json.dumps(result)
    printed = capsys.readouterr()
    assert printed.out.count("\n") >= 4 and password not in printed.out + printed.err


def test_invoking_again_with_the_same_token_changes_nothing(function, aws):
    token = new_token()
    function.handler(event(aws, token), FakeContext())
    password, versions = aws.current()["password"], aws.version_count()

    again = function.handler(event(aws, token), FakeContext())

    assert again["VersionId"] == token
    assert aws.current()["password"] == password == db_password(PRIMARY)
    assert aws.version_count() == versions
    assert aws.stages() == {token: ["AWSCURRENT"]}


def test_a_new_token_rotates_the_password(function, aws):
    first, second = new_token(), new_token()
    function.handler(event(aws, first), FakeContext())
    old_password = aws.current()["password"]

    function.handler(event(aws, second), FakeContext())

    new_password = aws.current()["password"]
    assert new_password != old_password
    assert db_password(PRIMARY) == new_password
    assert aws.stages() == {first: ["AWSPREVIOUS"], second: ["AWSCURRENT"]}
    assert aws.value(VersionStage="AWSPREVIOUS")["password"] == old_password


def test_a_pending_version_is_finished_rather_than_replaced(function, aws):
    """The state a run leaves when it stops after storing the password: it is the one set."""
    aws.secrets.put_secret_value(SecretId=aws.secret_id, SecretString=json.dumps({"username": USERNAME,
                                                                                 "password": "old-one-1"}))
    previous = aws.current_version()
    token = new_token()
    pending = {"username": USERNAME, "password": "PendingFromAnInterruptedRun1"}
    aws.secrets.put_secret_value(SecretId=aws.secret_id, ClientRequestToken=token, SecretString=json.dumps(pending),
                                 VersionStages=["AWSPENDING"])

    function.handler(event(aws, token), FakeContext())

    assert aws.current() == pending
    assert db_password(PRIMARY) == pending["password"]
    assert aws.stages() == {previous: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}


# Each step a run can stop after (the call that fails, and which call of it), from storing the password
# to removing AWSPENDING.
INTERRUPTIONS = {
    "modify": ("before-call.rds.ModifyDBInstance", 1),
    "second-instance": ("before-call.rds.ModifyDBInstance", 2),
    "wait": ("before-call.rds.DescribeDBInstances", 3),
    "promote": ("before-call.secrets-manager.UpdateSecretVersionStage", 1),  # the removal, for a new secret
    "remove-pending": ("before-call.secrets-manager.UpdateSecretVersionStage", 2),
}


# A new secret's first version is current from the moment it is written: no stage update promotes it,
# the one update removes AWSPENDING.
CASES = [(interruption, has_value) for interruption in INTERRUPTIONS for has_value in (False, True)
         if has_value or interruption != "remove-pending"]


@pytest.mark.parametrize(("interruption", "has_value"), CASES,
                         ids=[f"{i}-{'rotation' if v else 'new-secret'}" for i, v in CASES])
def test_invoking_again_after_a_failure_finishes_with_the_same_password(function, aws, monkeypatch, interruption,
                                                                       has_value):
    if has_value:
        aws.secrets.put_secret_value(SecretId=aws.secret_id, SecretString=json.dumps({"username": USERNAME,
                                                                                     "password": "old-one-1"}))
    aws.create_instance(RESTORED)
    versions = aws.version_count()
    token = new_token()
    operation, number = INTERRUPTIONS[interruption]
    with monkeypatch.context() as patch:
        hook_clients(patch, function, {operation: fail_call(operation, number)})
        with pytest.raises(ClientError, match="simulated failure"):
            function.handler(event(aws, token, [PRIMARY, RESTORED]), FakeContext())
    stored = aws.value(VersionId=token)["password"]

    function.handler(event(aws, token, [PRIMARY, RESTORED]), FakeContext())

    assert aws.current()["password"] == stored == db_password(PRIMARY) == db_password(RESTORED)
    assert aws.version_count() == versions + 1
    assert aws.current_version() == token
    assert not any("AWSPENDING" in stages for stages in aws.stages().values())


def test_every_instance_gets_the_password(function, aws):
    aws.create_instance(RESTORED)

    result = function.handler(event(aws, new_token(), [PRIMARY, RESTORED]), FakeContext())

    password = aws.current()["password"]
    assert db_password(PRIMARY) == db_password(RESTORED) == password
    assert result["DBInstanceIdentifiers"] == [PRIMARY, RESTORED]


def test_the_secret_becomes_current_only_once_rds_has_applied_the_password(function, aws, monkeypatch):
    token = new_token()
    seen_while_pending: list[dict[str, list[str]]] = []
    pending = report_pending(PRIMARY, times=3)

    def watch(parsed: dict[str, Any], **kwargs: Any) -> None:
        pending(parsed=parsed, **kwargs)
        if "PendingModifiedValues" in parsed["DBInstances"][0]:
            seen_while_pending.append(aws.stages())

    hook_clients(monkeypatch, function, {"after-call.rds.DescribeDBInstances": watch})
    function.handler(event(aws, token), FakeContext())

    assert len(seen_while_pending) == 3
    assert all(stages[token] == ["AWSPENDING", "AWSCURRENT"] for stages in seen_while_pending)  # first version
    assert aws.stages() == {token: ["AWSCURRENT"]}


def test_a_password_rds_never_applies_times_out_and_stays_pending(function, aws, monkeypatch):
    aws.secrets.put_secret_value(SecretId=aws.secret_id, SecretString=json.dumps({"username": USERNAME,
                                                                                 "password": "old-one-1"}))
    previous = aws.current_version()
    aws.create_instance(RESTORED)
    token = new_token()
    with monkeypatch.context() as patch:
        hook_clients(patch, function, {"after-call.rds.DescribeDBInstances": report_pending(PRIMARY)})
        # Names the instance still pending, and only it.
        with pytest.raises(TimeoutError, match=rf"the new master password on {PRIMARY} before"):
            function.handler(event(aws, token, [PRIMARY, RESTORED]), FakeContext(start_ms=120_000, step_ms=10_000))
    assert aws.current_version() == previous
    assert aws.stages()[token] == ["AWSPENDING"]

    # Once RDS has applied it, the same request finishes.
    function.handler(event(aws, token, [PRIMARY, RESTORED]), FakeContext())
    assert aws.current_version() == token
    assert aws.current()["password"] == db_password(PRIMARY)


def test_an_instance_that_never_becomes_available_times_out_before_any_change(function, aws):
    aws.create_instance(RESTORED)
    rds_backends[DEFAULT_ACCOUNT_ID][REGION].databases[RESTORED].status = "backing-up"
    assert aws.rds.describe_db_instances(DBInstanceIdentifier=RESTORED)["DBInstances"][0]["DBInstanceStatus"] == \
        "backing-up"
    token = new_token()

    with pytest.raises(TimeoutError, match=rf"the instance to be available on {RESTORED} before"):
        function.handler(event(aws, token, [PRIMARY, RESTORED]), FakeContext(start_ms=120_000, step_ms=10_000))

    assert db_password(PRIMARY) == db_password(RESTORED) == INITIAL_PASSWORD
    assert "AWSPENDING" in aws.stages()[token]


def test_a_new_token_after_a_failure_takes_over_the_pending_stage(function, aws, monkeypatch):
    abandoned, replacement = new_token(), new_token()
    with monkeypatch.context() as patch:
        hook_clients(patch, function, {"before-call.rds.ModifyDBInstance": fail_call("ModifyDBInstance", 1)})
        with pytest.raises(ClientError):
            function.handler(event(aws, abandoned), FakeContext())

    function.handler(event(aws, replacement), FakeContext())

    assert aws.current_version() == replacement
    assert aws.current()["password"] == db_password(PRIMARY)
    assert not any("AWSPENDING" in stages for stages in aws.stages().values())


def test_a_superseded_token_is_refused(function, aws):
    first, second = new_token(), new_token()
    function.handler(event(aws, first), FakeContext())
    function.handler(event(aws, second), FakeContext())
    password = aws.current()["password"]

    with pytest.raises(ValueError, match="new ClientRequestToken"):
        function.handler(event(aws, first), FakeContext())

    assert aws.current_version() == second
    assert db_password(PRIMARY) == password


def test_a_request_superseded_while_rds_applies_it_is_not_promoted(function, aws, monkeypatch):
    """Two runs at once (which Terraform's state lock prevents): the one whose version lost AWSPENDING
    meanwhile stops before making it current, since RDS may already hold the other run's password."""
    first, second, other = new_token(), new_token(), new_token()
    function.handler(event(aws, first), FakeContext())

    def another_request(**_: Any) -> None:
        aws.secrets.put_secret_value(SecretId=aws.secret_id, ClientRequestToken=other, VersionStages=["AWSPENDING"],
                                     SecretString=json.dumps({"username": "app_admin", "password": "Other1234"}))

    hook_clients(monkeypatch, function, {"before-call.rds.ModifyDBInstance": another_request})
    with pytest.raises(ValueError, match="no longer pending"):
        function.handler(event(aws, second), FakeContext())

    assert aws.current_version() == first
    assert "AWSCURRENT" not in aws.stages()[second]


@pytest.mark.parametrize(("change", "key"), [
    (lambda e: e.pop("SecretId"), "SecretId"),
    (lambda e: e.pop("ClientRequestToken"), "ClientRequestToken"),
    (lambda e: e.update(ClientRequestToken="too-short"), "ClientRequestToken"),
    (lambda e: e.update(ClientRequestToken=12345678901234567890123456789012345), "ClientRequestToken"),
    (lambda e: e.pop("Username"), "Username"),
    (lambda e: e.update(Username=""), "Username"),
    (lambda e: e.pop("DBInstanceIdentifiers"), "DBInstanceIdentifiers"),
    (lambda e: e.update(DBInstanceIdentifiers=[]), "DBInstanceIdentifiers"),
    (lambda e: e.update(DBInstanceIdentifiers=PRIMARY), "DBInstanceIdentifiers"),
    (lambda e: e.update(DBInstanceIdentifiers=[PRIMARY, 7]), "DBInstanceIdentifiers"),
], ids=["no-secret", "no-token", "short-token", "number-token", "no-username", "empty-username", "no-instances",
        "empty-instances", "string-instances", "number-instance"])
def test_a_bad_event_is_refused_naming_the_key(function, aws, change, key):
    bad = event(aws, new_token())
    change(bad)

    with pytest.raises(ValueError, match=key):
        function.handler(bad, FakeContext())

    assert aws.stages() == {}
    assert db_password(PRIMARY) == INITIAL_PASSWORD
