"""Values AWS (and Docker) accept, written once and checked the same way by every tier:
account ids, IAM role and principal ARNs, e-mail addresses, image tags and digests,
CloudWatch Logs retention periods.
"""

from __future__ import annotations

from modules.core.regions import AZ_COUNT_BY_REGION
from modules.core.schema import check, whole

ACCOUNT_ID = whole(r"^[0-9]{12}$")
# Principals a trust policy may name: roles and users, never a whole account (`:root`),
# which would hand the decision to every administrator of that account.
PRINCIPAL_ARN = whole(r"^arn:aws[a-z-]*:iam::([0-9]{12}):(?:role|user)/[\w+=,.@/-]{1,64}$")
ROLE_ARN = whole(r"^arn:aws[a-z-]*:iam::([0-9]{12}):role/[\w+=,.@/-]{1,64}$")
# An address SNS can deliver to: a local part of printable ASCII but `@`, `@`, a domain of letters,
# digits, hyphens and dots with a top-level label of letters (ASCII: `[^@\s]` took any Unicode letter).
EMAIL = whole(r"^[\x21-\x3f\x41-\x7e]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# Docker's tag grammar: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`.
IMAGE_TAG = whole(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
IMAGE_DIGEST = whole(r"^sha256:[a-f0-9]{64}$")

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)


def role_account(arn: str) -> str:
    """The account of a role ARN that `ROLE_ARN` accepted."""
    match = ROLE_ARN.match(arn)
    assert match, arn
    return match.group(1)


def principal_account(arn: str) -> str:
    """The account of a role or user ARN that `PRINCIPAL_ARN` accepted."""
    match = PRINCIPAL_ARN.match(arn)
    assert match, arn
    return match.group(1)


def check_account(key: str, value: str) -> None:
    check(bool(ACCOUNT_ID.match(value)), key, value, "a 12-digit AWS account id in quotes")


def check_region(key: str, value: str) -> None:
    check(value in AZ_COUNT_BY_REGION, key, value, f"an AWS region ({', '.join(sorted(AZ_COUNT_BY_REGION))})")


def check_role(key: str, value: str | None) -> None:
    if value is not None:
        check(bool(ROLE_ARN.match(value)), key, value, "an IAM role ARN (arn:aws:iam::123456789012:role/name)")
