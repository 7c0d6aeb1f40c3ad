"""Buckets: private, TLS-only, encrypted, and written by log delivery only for this account's sources."""

from __future__ import annotations

from collections.abc import Iterator

from checks.rules.stack import Stack, address, as_list, conditions, principals, references, statements

PUBLIC_ACCESS_BLOCK = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
# Service principals that deliver logs into a bucket. AWS asks for both aws:SourceAccount and
# aws:SourceArn on them against the confused-deputy problem: "Elastic Load Balancing access logs"
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-access-logs.html) and
# "Amazon S3 server access logging" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html).
LOG_DELIVERY_PRINCIPALS = frozenset({"delivery.logs.amazonaws.com", "logging.s3.amazonaws.com",
                                     "logdelivery.elasticloadbalancing.amazonaws.com"})
ENCRYPTION_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse", "AES256"})


def _by_bucket(stack: Stack, resource_type: str) -> dict[str, list[tuple[str, dict]]]:
    found: dict[str, list[tuple[str, dict]]] = {}
    for name, config in stack.resources(resource_type).items():
        for kind, bucket in references(config.get("bucket")):
            if kind == "aws_s3_bucket":
                found.setdefault(bucket, []).append((name, config))
    return found


def _policy_statements(stack: Stack, bucket: str) -> list[dict]:
    found = []
    for _name, policy in _by_bucket(stack, "aws_s3_bucket_policy").get(bucket, []):
        document = stack.policy_document(policy.get("policy"))
        if document is not None:
            found.extend(statements(document[1]))
    return found


def buckets_block_public_access(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    blocks = _by_bucket(stack, "aws_s3_bucket_public_access_block")
    for bucket in stack.resources("aws_s3_bucket"):
        found = blocks.get(bucket, [])
        if not found:
            yield address("aws_s3_bucket", bucket), "no aws_s3_bucket_public_access_block"
        for name, block in found:
            off = [key for key in PUBLIC_ACCESS_BLOCK if block.get(key) is not True]
            if off:
                yield address("aws_s3_bucket_public_access_block", name), f"not true: {', '.join(off)}"


def _denies_insecure_transport(statement: dict, bucket: str) -> bool:
    everyone = statement.get("principals") is None or any(
        p.get("type") in ("*", "AWS") and "*" in as_list(p.get("identifiers")) for p in as_list(statement.get("principals")))
    actions = set(as_list(statement.get("actions")))
    resources = as_list(statement.get("resources"))
    arn = f"${{aws_s3_bucket.{bucket}.arn}}"
    secure = [c for c in as_list(statement.get("condition"))
              if str(c.get("variable", "")).lower() == "aws:securetransport" and c.get("test") == "Bool"
              and as_list(c.get("values")) == ["false"]]
    return (statement.get("effect") == "Deny" and everyone and bool(actions & {"s3:*", "*"}) and bool(secure)
            and arn in resources and f"{arn}/*" in resources)


def buckets_are_tls_only(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    for bucket in stack.resources("aws_s3_bucket"):
        if not any(_denies_insecure_transport(s, bucket) for s in _policy_statements(stack, bucket)):
            yield address("aws_s3_bucket", bucket), "its policy does not deny s3:* when aws:SecureTransport is false"


def buckets_are_encrypted(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    configs = _by_bucket(stack, "aws_s3_bucket_server_side_encryption_configuration")
    for bucket in stack.resources("aws_s3_bucket"):
        algorithms = [rule.get("apply_server_side_encryption_by_default", {}).get("sse_algorithm")
                      for _name, config in configs.get(bucket, []) for rule in as_list(config.get("rule"))]
        if not algorithms or not all(a in ENCRYPTION_ALGORITHMS for a in algorithms):
            yield address("aws_s3_bucket", bucket), "no default encryption (aws_s3_bucket_server_side_encryption_configuration)"


def log_delivery_is_limited_to_this_account(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    for name, policy in stack.resources("aws_s3_bucket_policy").items():
        document = stack.policy_document(policy.get("policy"))
        if document is None:
            continue
        for index, statement in enumerate(statements(document[1])):
            if statement.get("effect", "Allow") != "Allow":
                continue
            services = set(principals(statement, "Service"))
            keys = set(conditions(statement))
            where = f"{address('aws_s3_bucket_policy', name)}.statement[{statement.get('sid', index)}]"
            if services & LOG_DELIVERY_PRINCIPALS:
                missing = [k for k in ("aws:SourceAccount", "aws:SourceArn") if k.lower() not in keys]
                if missing:
                    yield where, f"log delivery ({', '.join(sorted(services))}) without {' and '.join(missing)}"
            elif services and "aws:sourcearn" not in keys and "aws:sourceaccount" not in keys:
                yield where, f"service principal {', '.join(sorted(services))} without aws:SourceArn or aws:SourceAccount"
