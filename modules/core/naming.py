"""Physical names for AWS resources, checked against each service's limits.

Every construct names things through `physical_name`, so a name that AWS would
reject at apply time (too long, wrong characters) fails at load time instead,
with the limit that was broken. Environment validation calls `check_name` on the
longest names a configuration can produce, so a `name_prefix` that is too long
is a config error that names the file and key.

S3 bucket names are one namespace across all of AWS: `bucket_name` ends every bucket name
with a part only its owner uses (the account id, or a suffix the environment chooses), so
a name somebody else took first (`BucketAlreadyExists`) cannot happen by construction.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from modules.core.errors import ConfigError, hcl_value
from modules.core.schema import whole


@dataclass(frozen=True, slots=True)
class NameRule:
    label: str
    min_length: int
    max_length: int
    pattern: str
    pattern_text: str


class NameKind(enum.Enum):
    S3_BUCKET = NameRule(
        "S3 bucket name", 3, 63, r"^[a-z0-9][a-z0-9-]*[a-z0-9]$",
        "lowercase letters, digits and hyphens, starting and ending with a letter or digit",
    )
    DYNAMODB_TABLE = NameRule("DynamoDB table name", 3, 255, r"^[A-Za-z0-9_.-]+$", "letters, digits, _ . -")
    IAM_ROLE = NameRule("IAM role name", 1, 64, r"^[\w+=,.@-]+$", "letters, digits, +=,.@_-")
    IAM_POLICY = NameRule("IAM policy name", 1, 128, r"^[\w+=,.@-]+$", "letters, digits, +=,.@_-")
    LOG_GROUP = NameRule("CloudWatch log group name", 1, 512, r"^[\w#/.-]+$", "letters, digits, _ - / . #")
    KMS_ALIAS = NameRule("KMS alias", 7, 256, r"^alias/[\w/-]+$", "alias/ then letters, digits, / _ -")
    LOAD_BALANCER = NameRule(
        "load balancer name", 1, 32, r"^(?!internal-)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$",
        "letters, digits and hyphens, not starting or ending with a hyphen",
    )
    TARGET_GROUP = NameRule(
        "target group name", 1, 32, r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$",
        "letters, digits and hyphens, not starting or ending with a hyphen",
    )
    RDS_IDENTIFIER = NameRule(
        "RDS identifier", 1, 63, r"^[a-z](?!.*--)[a-z0-9-]*[a-z0-9]$",
        "lowercase letters, digits and single hyphens, starting with a letter",
    )
    SECURITY_GROUP = NameRule("security group name", 1, 255, r"^[\w .:/()#,@\[\]+=&;{}!$*-]+$", "printable ASCII")
    GENERIC = NameRule("name", 1, 128, r"^[A-Za-z0-9][\w.-]*$", "letters, digits, _ . -")
    ECS = NameRule("ECS name", 1, 255, r"^[A-Za-z0-9][\w-]*$", "letters, digits, _ -")
    ECR_REPOSITORY = NameRule(
        "ECR repository name", 2, 256, r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$",
        "lowercase letters, digits, and . _ - / separators",
    )
    SNS_TOPIC = NameRule("SNS topic name", 1, 256, r"^[\w-]+$", "letters, digits, _ -")
    WAF = NameRule("WAF name", 1, 128, r"^[\w-]+$", "letters, digits, _ -")
    LAMBDA_FUNCTION = NameRule("Lambda function name", 1, 64, r"^[\w-]+$", "letters, digits, _ -")


def _problem(kind: NameKind, name: str) -> str | None:
    rule = kind.value
    if not rule.min_length <= len(name) <= rule.max_length:
        return (
            f"makes the {rule.label} {hcl_value(name)} ({len(name)} characters); "
            f"AWS allows {rule.min_length}..{rule.max_length}"
        )
    if not whole(rule.pattern).match(name):
        return f"makes the {rule.label} {hcl_value(name)}; AWS allows {rule.pattern_text}"
    return None


def join(*parts: str) -> str:
    return "-".join(p for p in parts if p)


def _build(kind: NameKind, parts: tuple[str, ...]) -> str:
    name = join(*parts)
    return f"alias/{name}" if kind is NameKind.KMS_ALIAS else name


def physical_name(kind: NameKind, *parts: str) -> str:
    """`prefix-part-part`, or ValueError if AWS would reject it."""
    name = _build(kind, parts)
    problem = _problem(kind, name)
    if problem:
        raise ValueError(problem.replace("makes the", "the", 1))
    return name


def check_name(kind: NameKind, key: str, *parts: str) -> None:
    """Config-time form of `physical_name`: a `ConfigError` on `key`."""
    problem = _problem(kind, _build(kind, parts))
    if problem:
        raise ConfigError(key, problem)


def bucket_name(*parts: str, unique: str) -> str:
    """`<parts>-<unique>`: an S3 bucket name only the owner of `unique` (an account id) makes."""
    return physical_name(NameKind.S3_BUCKET, *parts, unique)


def check_bucket_name(key: str, *parts: str, unique: str, instead: str) -> None:
    """Config-time form of `bucket_name`; `instead` says how else the bucket may be named."""
    problem = _problem(NameKind.S3_BUCKET, join(*parts, unique))
    if problem:
        raise ConfigError(key, f"{problem}; {instead}")


def pascal(name: str) -> str:
    """`webapp/orders-api` -> `WebappOrdersApi`: the construct id of a thing named in config.

    Each run of letters and digits starts upper case and keeps the rest as written. Construct
    ids are Terraform addresses: the id depends on the name only, so it stays when others change.
    """
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)
