"""What the tiers built on the database (the API, the migration task) get from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatabaseHandle:
    """The database tier's contract with its clients; values are Terraform tokens unless noted.

    Security-group rules between a client and the database live in the client's
    stack (the database stack cannot know its clients' groups without a cycle):
    each client adds the TCP `port` ingress on `security_group_id` from its own group.

    Services log in as their own PostgreSQL roles with IAM authentication: a role's
    `rds-db:connect` names `dbuser:<resource id>/<login>` for each of `instance_resource_ids`.
    Only the migration task reads `master_user_secret_arn`.
    """

    security_group_id: str
    port: int  # plain
    writer_endpoint: str  # hostname of the primary
    # Plain: a name in the VPC's private zone that spreads reads over the replicas (the
    # writer without replicas); it never changes when replicas come and go.
    reader_host_name: str
    database_name: str  # plain
    master_username: str  # plain: the migration user, owner of the application's objects
    # DbiResourceIds of the primary and each replica: IAM database authentication checks
    # `rds-db:connect` on the instance a connection lands on.
    instance_resource_ids: tuple[str, ...]
    master_user_secret_arn: str  # the master user's Secrets Manager secret, JSON keys username/password
    secret_kms_key_arn: str  # the key that encrypts that secret: readers need kms:Decrypt on it
