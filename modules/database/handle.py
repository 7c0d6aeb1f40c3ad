"""What the tiers built on the database (the API, the migration task) get from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatabaseHandle:
    """The database tier's contract with its clients; values are Terraform tokens.

    Security-group rules between a client and the database live in the client's
    stack (the database stack cannot know its clients' groups without a cycle):
    each client adds the TCP `port` ingress on `security_group_id` from its own group.
    """

    security_group_id: str
    port: int
    writer_endpoint: str  # hostname of the primary
    reader_endpoints: tuple[str, ...]  # hostnames of the read replicas (empty without replicas)
    database_name: str
    master_user_secret_arn: str  # the master user's Secrets Manager secret, JSON keys username/password
    secret_kms_key_arn: str  # the key that encrypts that secret: readers need kms:Decrypt on it
    # `database.master_password_version` (plain data): clients that read the secret at start
    # (ECS tasks) redeploy when it changes, so they pick up a rotated password.
    password_version: int = 1
