"""Sets the master password of RDS for PostgreSQL instances and stores it in a Secrets Manager secret.

Terraform invokes this function (`aws_lambda_invocation`) when the instances are created and
whenever the operator asks for a new password. It exists so that Terraform never holds the
password nor the secret's value: a secret version managed by Terraform is read back on every
refresh (GetSecretValue), and the roles that plan may read no secret value. RDS can manage the
master password itself (ManageMasterUserPassword), but then it cannot create read replicas of the instance.

The function follows Secrets Manager's rotation protocol, with the event's ClientRequestToken as
the new version's id: the password is first stored under AWSPENDING, then set on every instance,
and only once RDS has applied it everywhere does the version become AWSCURRENT. A run that fails
at any point is finished by invoking again with the same token, which reuses the pending password
instead of making a second one; invoking again after success changes nothing.

Only the standard library and boto3, which the Lambda Python runtime ships: the folder is the
function's whole code. The password is never returned, printed or put in an exception: Terraform
stores the invocation's result in its state, and the log and errors go to CloudWatch and Terraform's
output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import boto3

# Seconds between two looks at the instances while RDS applies a change; the tests lower it.
POLL_SECONDS = 10
# Stop waiting this long before Lambda's timeout, so the run ends with an error that names what is
# still pending rather than being killed without a word.
SAFETY_MARGIN_MS = 30_000
PASSWORD_LENGTH = 40
# Secrets Manager's bounds for a ClientRequestToken, which becomes the version's id.
TOKEN_MIN_LENGTH = 32
TOKEN_MAX_LENGTH = 64

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"


class LambdaContext(Protocol):
    """The part of Lambda's context object the function uses."""

    def get_remaining_time_in_millis(self) -> int: ...


def log(message: str) -> None:
    # flush: a line printed just before a timeout must still reach the log.
    print(f"master-password: {message}", flush=True)


def required_string(event: Mapping[str, Any], key: str) -> str:
    if key not in event:
        raise ValueError(f"event key {key!r} is missing")
    value = event[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"event key {key!r} must be a non-empty string, not {type(value).__name__}")
    return value


def parse_event(event: Any) -> tuple[str, str, str, list[str]]:
    """The event's SecretId, ClientRequestToken, Username and DBInstanceIdentifiers, checked."""
    if not isinstance(event, Mapping):
        raise ValueError(f"the event must be a JSON object, not {type(event).__name__}")
    secret_id = required_string(event, "SecretId")
    token = required_string(event, "ClientRequestToken")
    if not TOKEN_MIN_LENGTH <= len(token) <= TOKEN_MAX_LENGTH:
        raise ValueError(f"event key 'ClientRequestToken' must have {TOKEN_MIN_LENGTH} to {TOKEN_MAX_LENGTH} "
                         f"characters, not {len(token)}")
    username = required_string(event, "Username")
    if "DBInstanceIdentifiers" not in event:
        raise ValueError("event key 'DBInstanceIdentifiers' is missing")
    identifiers = event["DBInstanceIdentifiers"]
    if (not isinstance(identifiers, list) or not identifiers
            or not all(isinstance(i, str) and i for i in identifiers)):
        raise ValueError("event key 'DBInstanceIdentifiers' must be a non-empty list of non-empty strings")
    return secret_id, token, username, identifiers


def version_with_stage(versions: Mapping[str, list[str]], stage: str) -> str | None:
    return next((version for version, stages in versions.items() if stage in stages), None)


def pending_password(secrets: Any, secret_id: str, token: str, username: str) -> str:
    """The password an interrupted run stored under AWSPENDING as version `token`."""
    value = secrets.get_secret_value(SecretId=secret_id, VersionId=token)
    try:
        stored = json.loads(value["SecretString"])
        password = stored["password"]
        stored_username = stored["username"]
    except (KeyError, TypeError, ValueError):
        # Without the value's text, which holds the password.
        raise ValueError(f"version {token} of secret {secret_id} is not a JSON object with keys username "
                         "and password") from None
    if not isinstance(password, str) or not password:
        raise ValueError(f"version {token} of secret {secret_id} holds no password")
    if stored_username != username:
        # A version cannot change; finishing it would store a username the event does not ask for.
        raise ValueError(f"version {token} of secret {secret_id} is for user {stored_username!r}, not "
                         f"{username!r}: invoke with a new ClientRequestToken")
    return password


def wait_for(rds: Any, identifiers: list[str], context: LambdaContext, done: Callable[[dict[str, Any]], bool],
             what: str) -> None:
    """Polls until `done` holds for every instance, or raises TimeoutError before Lambda's timeout."""
    waiting = list(identifiers)
    while True:
        # By identifier, one at a time: the role may describe these instances only, not all of them.
        waiting = [i for i in waiting
                   if not done(rds.describe_db_instances(DBInstanceIdentifier=i)["DBInstances"][0])]
        if not waiting:
            return
        if context.get_remaining_time_in_millis() - POLL_SECONDS * 1000 < SAFETY_MARGIN_MS:
            raise TimeoutError(f"gave up waiting for {what} on {', '.join(waiting)} before the function's "
                               "timeout; invoke again with the same ClientRequestToken to finish")
        log(f"waiting {POLL_SECONDS} s for {what} on {', '.join(waiting)}")
        time.sleep(POLL_SECONDS)


def is_available(instance: dict[str, Any]) -> bool:
    return bool(instance["DBInstanceStatus"] == "available")


def has_new_password(instance: dict[str, Any]) -> bool:
    # Right after ModifyDBInstance the status can still read "available", with the change listed
    # as pending: only both together say RDS has applied it.
    return is_available(instance) and "MasterUserPassword" not in instance.get("PendingModifiedValues", {})


def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    secret_id, token, username, identifiers = parse_event(event)
    result = {"SecretId": secret_id, "VersionId": token, "DBInstanceIdentifiers": identifiers}
    # Created per run, not at import: endpoints and credentials come from the environment of the call.
    secrets = boto3.client("secretsmanager")
    rds = boto3.client("rds")

    versions: dict[str, list[str]] = secrets.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    stages = versions.get(token)
    # Finished means current and no longer pending. A secret's first version is AWSCURRENT from the
    # moment it is written (PutSecretValue attaches it to the first version whatever the request
    # says), so AWSCURRENT alone does not mean the instances have the password yet.
    if stages is not None and CURRENT in stages and PENDING not in stages:
        log(f"version {token} of {secret_id} is already current: nothing to do")
        return result
    if stages is not None and PENDING not in stages:
        # A request that a later one superseded: finishing it now would bring back an old password.
        raise ValueError(f"version {token} of {secret_id} is neither pending nor current (stages {stages}): a later "
                         "request superseded it; invoke with a new ClientRequestToken for a new password")

    if stages is not None:
        password = pending_password(secrets, secret_id, token, username)
        log(f"resuming pending version {token} of {secret_id}")
    else:
        # Letters and digits only: the password goes into connection strings and shell variables.
        password = secrets.get_random_password(PasswordLength=PASSWORD_LENGTH, ExcludePunctuation=True,
                                               RequireEachIncludedType=True)["RandomPassword"]
        secrets.put_secret_value(SecretId=secret_id, ClientRequestToken=token, VersionStages=[PENDING],
                                 SecretString=json.dumps({"username": username, "password": password}))
        log(f"stored a new password as pending version {token} of {secret_id}")

    # RDS may refuse a modification (InvalidDBInstanceState) while an instance is busy, still taking
    # its first backup after creation for one.
    wait_for(rds, identifiers, context, is_available, "the instance to be available")
    for identifier in identifiers:
        rds.modify_db_instance(DBInstanceIdentifier=identifier, MasterUserPassword=password, ApplyImmediately=True)
        log(f"asked RDS to set the master password of {identifier}")
    # DescribeDBInstances may not list the change at once (the API is eventually consistent): one
    # interval first, so "available, nothing pending" means applied, not "not seen yet".
    time.sleep(POLL_SECONDS)
    wait_for(rds, identifiers, context, has_new_password, "the new master password")
    log(f"RDS has applied the master password on {', '.join(identifiers)}")

    versions = secrets.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    if PENDING not in versions.get(token, []):
        # Another request took AWSPENDING while this one waited (two runs at once, which Terraform's
        # state lock prevents): promoting this version could name a password RDS no longer has.
        raise ValueError(f"version {token} of {secret_id} is no longer pending: a later request superseded it "
                         "while RDS applied it; invoke with a new ClientRequestToken")
    current = version_with_stage(versions, CURRENT)
    # A new secret's first version is current already, and moving AWSCURRENT onto the version that
    # carries it is refused without a RemoveFromVersionId.
    if current != token:
        # Without RemoveFromVersionId when no version is current yet; Secrets Manager moves AWSPREVIOUS
        # to the version AWSCURRENT leaves.
        moved_from = {"RemoveFromVersionId": current} if current is not None else {}
        secrets.update_secret_version_stage(SecretId=secret_id, VersionStage=CURRENT, MoveToVersionId=token,
                                            **moved_from)
        log(f"made version {token} of {secret_id} current (was {current})")
    # Last: a version that is still pending tells a later run with this token that work may remain.
    secrets.update_secret_version_stage(SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=token)
    log(f"removed {PENDING} from version {token} of {secret_id}")
    return result
