"""What every delivery command shares: the environments, boto3 clients, and stack outputs.

Commands read what Terraform created from the stacks' state objects in the state
bucket (`s3://<state bucket>/<env>/<tier>.tfstate`), never from hard-coded names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delivery import DeployError, UsageError


def load_environments(directory: Path, *names: str) -> Any:
    """The named environments' config (all when none are named), or UsageError naming the known ones."""
    from modules.core.errors import ConfigError
    from modules.environment import load_environments as load

    known = sorted(p.stem for p in directory.glob("*.hcl") if p.name != "shared.hcl" and "." not in p.stem)
    for name in names:
        if name not in known:
            raise UsageError(f"unknown environment {name!r}: {directory}/ has {', '.join(known) or 'none'}")
    try:
        return load(directory, names or None)
    except ConfigError as error:
        raise UsageError(str(error)) from None


# The one wording of a missing credential chain, for every command (terraform shares the chain).
NO_CREDENTIALS = ("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where "
                  "an instance or task role provides them (Jenkins: the pipeline's role binding)")


def credentials_session(session: Any = None) -> Any:
    """`session` (a new boto3 Session when None) once it has credentials, or UsageError saying how to give them."""
    from botocore.exceptions import ProfileNotFound

    try:
        if session is None:
            import boto3

            session = boto3.Session()
        credentials = session.get_credentials()
    except ProfileNotFound as error:
        raise UsageError(f"{error} (AWS_PROFILE names a profile that is not in the AWS config files)") from None
    if credentials is None:
        raise UsageError(NO_CREDENTIALS)
    return session


@dataclass
class Aws:
    """boto3 clients for one run; `endpoint_url` points them at an emulator.

    With `session=None`, the credential chain is read when the first client is made, so a
    command checks its arguments and the environment files before it needs credentials.
    """

    session: Any = None
    endpoint_url: str | None = None

    def _session(self) -> Any:
        if self.session is None:
            self.session = credentials_session()
        return self.session

    def client(self, service: str, region: str, session: Any = None) -> Any:
        from botocore.config import Config

        settings: dict[str, Any] = {"region_name": region,
                                    "config": Config(retries={"mode": "standard", "max_attempts": 5})}
        if self.endpoint_url:
            settings["endpoint_url"] = self.endpoint_url
        return (session or self._session()).client(service, **settings)

    def assumed(self, role_arn: str | None, region: str) -> Any:
        """A session for `role_arn` (or this one when None)."""
        if not role_arn:
            return self._session()
        import boto3

        credentials = self.client("sts", region).assume_role(
            RoleArn=role_arn, RoleSessionName="delivery-deploy-frontend"
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )


def aws_error(error: Exception) -> str:
    """`Code: Message` of a botocore ClientError, else the exception's text."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message')}"
    return str(error)


def state_role(aws: Aws, environments: Any, environment: str) -> str | None:
    """The role that reads `environment`'s state objects: its state-access role in the state
    account (bootstrap creates it; its stacks' backend assumes it too). None on the emulator,
    which maps every account to one, as the emulator target does for the backend."""
    if aws.endpoint_url:
        return None
    from modules.state_access import state_role_arn

    return state_role_arn(environments.shared, environments.get(environment))


def read_state_outputs(aws: Aws, bucket: str, key: str, region: str, role_arn: str | None) -> dict[str, Any]:
    """The `outputs` of a Terraform state object in S3: `{name: value}`."""
    from botocore.exceptions import ClientError

    s3 = aws.client("s3", region, aws.assumed(role_arn, region))
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            raise DeployError(f"no Terraform state at s3://{bucket}/{key}: apply the stack first, "
                              "or pass --bucket and --distribution-id") from None
        raise DeployError(f"cannot read s3://{bucket}/{key}: {aws_error(error)}") from None
    try:
        outputs = json.loads(body)["outputs"]
    except (ValueError, KeyError, TypeError):
        raise DeployError(f"s3://{bucket}/{key} is not a Terraform state file (no outputs)") from None
    return {name: value.get("value") for name, value in outputs.items()}


def stack_output(outputs: dict[str, Any], path: str, *, missing: str = "") -> Any:
    """The output a construct path names (`Api_Gateway_InvokeUrl` matches `Api_Gateway_InvokeUrl_7FA54FF9`).

    `missing` replaces the error message when there is not exactly one.
    """
    pattern = re.compile(rf"^{re.escape(path)}(_[0-9A-F]{{8}})?$")
    matches = [value for name, value in outputs.items() if pattern.match(name)]
    if len(matches) != 1:
        raise DeployError(missing or f"the stack state has no single output {path!r} (has {', '.join(sorted(outputs))})")
    return matches[0]
