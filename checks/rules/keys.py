"""KMS key policies: administered by the key's own account only; each service principal held to
that account and the key's region.

Structural for now: a statement is read, not evaluated. checks/iam.py (an IAM policy evaluator)
could prove the same against the requests the services really make; these rules are written so
that a policy evaluator can replace their bodies without changing their ids or fixtures.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from checks.rules.stack import Stack, address, conditions, principals, statements

# `logs.eu-west-1.amazonaws.com`: a regional service principal and its region.
REGIONAL_PRINCIPAL = re.compile(r"^[a-z0-9-]+\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.amazonaws\.com$")
# `arn:<partition>:iam::<account>:...`; the partition and account may be references.
IAM_ARN = re.compile(r"^arn:[^:]+:iam::([^:]+):")
ARN_CONDITIONS = ("aws:sourcearn", "kms:encryptioncontext:aws:logs:arn")


def _keys(stack: Stack) -> Iterator[tuple[str, dict, list[dict]]]:
    for name, key in stack.resources("aws_kms_key").items():
        document = stack.policy_document(key.get("policy"))
        yield name, key, statements(document[1]) if document else []


def _where(name: str, statement: dict, index: int) -> str:
    return f"{address('aws_kms_key', name)}.policy[{statement.get('sid', index)}]"


def keys_are_administered_by_their_own_account(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    for name, key, key_statements in _keys(stack):
        own = stack.own_accounts(key)
        if not key_statements:
            yield address("aws_kms_key", name), "no key policy (AWS's default policy is not reviewed here)"
        for index, statement in enumerate(key_statements):
            if statement.get("effect", "Allow") != "Allow":
                continue
            for kind in ("AWS", "*"):
                for principal in principals(statement, kind):
                    match = IAM_ARN.match(principal)
                    account = match.group(1) if match else principal
                    if account not in own:
                        yield _where(name, statement, index), f"principal {principal} is not the key's own account"


def _region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" else None


def _account_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[0] == "arn" else None


def key_service_principals_are_held_to_account_and_region(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    for name, key, key_statements in _keys(stack):
        own, region = stack.own_accounts(key), stack.region(key)
        for index, statement in enumerate(key_statements):
            services = principals(statement, "Service")
            if not services or statement.get("effect", "Allow") != "Allow":
                continue
            where = _where(name, statement, index)
            for service in services:
                match = REGIONAL_PRINCIPAL.match(service)
                if match and match.group(1) != region:
                    yield where, f"{service} is another region's service; the key is in {region}"
            found = conditions(statement)
            pinned = any(value in own for value in found.get("aws:sourceaccount", []))
            for key_name in ARN_CONDITIONS:
                for arn in found.get(key_name, []):
                    if arn.startswith("${aws_"):
                        pinned = True  # a resource of this stack: in the key's own account
                        continue
                    account, arn_region = _account_of_arn(arn), _region_of_arn(arn)
                    if account is not None and account in own:
                        pinned = True
                    elif account is not None:
                        yield where, f"{key_name} {arn} is in another account"
                    if arn_region not in (None, "", region):
                        yield where, f"{key_name} {arn} is in {arn_region}; the key is in {region}"
            if not pinned:
                yield where, (f"{', '.join(services)} is not limited to the key's own account "
                              "(aws:SourceAccount, or an ARN condition in that account)")
            for account in found.get("aws:sourceaccount", []):
                if account not in own:
                    yield where, f"aws:SourceAccount {account} is not the key's own account"


