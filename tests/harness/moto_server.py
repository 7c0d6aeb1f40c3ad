"""The local AWS emulator: moto's server with the fixes this project's stacks need.

    python -m tests.harness.moto_server --port 4566

Run by the test fixture (`tests/harness/emulator.py`) on a free 127.0.0.1 port.
The fixes below are moto defects measured against aws provider 5.100.0
(ARCHITECTURE.md); each is the smallest change that lets a real
`terraform apply` of this project's stacks finish.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid


def new_db_resource_id() -> str:
    return "db-" + uuid.uuid4().hex[:26].upper()


def give_each_db_instance_its_own_resource_id() -> None:
    """moto gives every RDS instance the same DbiResourceId, so a replica collides with its primary."""
    from moto.rds import models

    original_init = models.DBInstance.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        self.dbi_resource_id = new_db_resource_id()

    models.DBInstance.__init__ = init


def make_read_replicas_instances_of_their_own() -> None:
    """moto makes a read replica as a `copy.copy` of its primary, so (1) it keeps the primary's
    DbiResourceId, by which the provider finds instances: it never finds the replica it
    created; (2) it keeps the primary's Multi-AZ, where CreateDBInstanceReadReplica makes a
    single-AZ replica unless asked (the provider sends MultiAZ only when true)."""
    from moto.rds import models

    original = models.RDSBackend.create_db_instance_read_replica

    def create_db_instance_read_replica(self, db_kwargs):  # type: ignore[no-untyped-def]
        replica = original(self, {"multi_az": False, **db_kwargs})
        replica.dbi_resource_id = new_db_resource_id()
        return replica

    models.RDSBackend.create_db_instance_read_replica = create_db_instance_read_replica


def serve_application_autoscaling_tags() -> None:
    """moto lacks Application Auto Scaling's tag APIs; the provider retries them forever."""
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    tags: dict[str, dict[str, str]] = {}

    def list_tags_for_resource(self) -> str:  # type: ignore[no-untyped-def]
        return json.dumps({"Tags": tags.get(self._get_param("ResourceARN"), {})})

    def tag_resource(self) -> str:  # type: ignore[no-untyped-def]
        tags.setdefault(self._get_param("ResourceARN"), {}).update(self._get_param("Tags") or {})
        return "{}"

    def untag_resource(self) -> str:  # type: ignore[no-untyped-def]
        current = tags.get(self._get_param("ResourceARN"), {})
        for key in self._get_param("TagKeys") or []:
            current.pop(key, None)
        return "{}"

    original_register = ApplicationAutoScalingResponse.register_scalable_target

    def register_scalable_target(self) -> str:  # type: ignore[no-untyped-def]
        # Tags sent with the registration itself (the provider's default_tags) are kept too.
        response = original_register(self)
        tags.setdefault(json.loads(response)["ScalableTargetARN"], {}).update(self._get_param("Tags") or {})
        return response

    ApplicationAutoScalingResponse.list_tags_for_resource = list_tags_for_resource
    ApplicationAutoScalingResponse.tag_resource = tag_resource
    ApplicationAutoScalingResponse.untag_resource = untag_resource
    ApplicationAutoScalingResponse.register_scalable_target = register_scalable_target


def skip_bucket_policy_conditions_moto_cannot_evaluate() -> None:
    """moto checks bucket policies with no request context and treats every Condition
    as met, so the TLS-only Deny (`aws:SecureTransport = false`) refuses every request,
    even over TLS. Statements with a Condition are left out of moto's check; the policy
    itself is still stored and returned as written (tests assert it in the JSON)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3 import models

    def get_permission(self, action: str, resource: str):  # type: ignore[no-untyped-def]
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy)
        statements = document.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        unconditional = [s for s in statements if "Condition" not in s]
        if not unconditional:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": unconditional})).is_action_permitted(action, resource)

    models.FakeBucket.get_permission = get_permission


def list_buckets_with_the_canonical_owner() -> None:
    """moto's ListBuckets answers a fixed owner id that differs from the canonical id every
    bucket ACL carries, so an `aws_s3_bucket_acl` whose owner comes from
    `data.aws_canonical_user_id` (ListBuckets) never plans clean. Answer the ACL owner's id."""
    from moto.s3 import models
    from moto.s3.responses import S3Response

    original = S3Response.all_buckets
    listed_owner = "bcaf1ffd86f41161ca5fb16fd081034f"

    def all_buckets(self):  # type: ignore[no-untyped-def]
        status, headers, body = original(self)
        if isinstance(body, bytes):
            body = body.replace(listed_owner.encode(), models.OWNER.encode())
        else:
            body = body.replace(listed_owner, models.OWNER)
        return status, headers, body

    S3Response.all_buckets = all_buckets


def describe_rules_that_reference_groups_and_prefix_lists_with_their_description() -> None:
    """moto reports a security group rule's description only for CIDR rules: a rule that
    references another group or a prefix list comes back without it, so every such
    `aws_vpc_security_group_*_rule` with a description plans an update forever."""
    from moto.ec2.models.security_groups import SecurityGroupRule

    original_init = SecurityGroupRule.__init__

    def init(self, ec2_backend, ip_protocol, group_id, from_port, to_port, ip_range,  # type: ignore[no-untyped-def]
             source_group=None, prefix_list_id=None, **kwargs):
        original_init(self, ec2_backend, ip_protocol, group_id, from_port, to_port, ip_range, source_group,
                      prefix_list_id, **kwargs)
        self.prefix_list_description = (prefix_list_id or {}).get("Description")

    def description(self):  # type: ignore[no-untyped-def]
        return (self.ip_range.get("Description") or self.source_group.get("Description")
                or getattr(self, "prefix_list_description", None))

    SecurityGroupRule.__init__ = init
    SecurityGroupRule.description = property(description)


def report_invalidations_completed_as_cloudfront_does() -> None:
    """moto reports a finished CloudFront invalidation as "COMPLETED"; CloudFront (and so
    boto3's `invalidation_completed` waiter) says "Completed", so the waiter never ends."""
    from moto.cloudfront import models

    original_init = models.Invalidation.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        self.status = "Completed"

    models.Invalidation.__init__ = init


def run_fargate_tasks_whose_containers_leave_memory_to_the_task() -> None:
    """On Fargate a container may leave memory to the task (task-level `memory`); moto adds
    up each container's memory, fails on the missing value and answers RunTask with HTTP 500.
    Containers without their own memory count as 0 in moto's (EC2 capacity) bookkeeping."""
    from moto.ecs import models

    original = models.EC2ContainerServiceBackend._calculate_task_resource_requirements

    def calculate(task_definition):  # type: ignore[no-untyped-def]
        saved = task_definition.container_definitions
        task_definition.container_definitions = [
            c if any(k in c for k in ("memory", "Memory", "memoryReservation", "MemoryReservation"))
            else {**c, "memory": 0}
            for c in saved
        ]
        try:
            return original(task_definition)
        finally:
            task_definition.container_definitions = saved

    models.EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(calculate)


def give_network_interfaces_a_private_dns_name() -> None:
    """moto's RunTask reads `private_dns_name` from the task's network interface, which its
    NetworkInterface model lacks (AttributeError, HTTP 500). EC2 names it after the address."""
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    if hasattr(NetworkInterface, "private_dns_name"):
        return

    # Where moto does set the name (some paths assign it), that value is kept.
    def get_name(self) -> str:  # type: ignore[no-untyped-def]
        if "_private_dns_name" in self.__dict__:
            return self.__dict__["_private_dns_name"]
        region = self.ec2_backend.region_name
        return f"ip-{str(self.private_ip_address).replace('.', '-')}.{region}.compute.internal"

    def set_name(self, value: str) -> None:  # type: ignore[no-untyped-def]
        self.__dict__["_private_dns_name"] = value

    NetworkInterface.private_dns_name = property(get_name, set_name)


def give_hosted_zones_route53_shaped_ids() -> None:
    """Route 53 zone ids start with "Z" (Z1D633PJN98FT9); moto draws all 22 characters at random,
    so an id it returns fails the environment files' `dns.zone_id` check."""
    from moto.route53 import models

    original = models.create_route53_zone_id

    def create_route53_zone_id(*args, **kwargs):  # type: ignore[no-untyped-def]
        zone_id = original(*args, **kwargs)
        return zone_id if zone_id.startswith("Z") else "Z" + zone_id[1:]

    models.create_route53_zone_id = create_route53_zone_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # Managed policies (for role attachments) must exist; certificates validate at once.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    os.environ.setdefault("MOTO_ACM_VALIDATION_WAIT", "1")
    give_each_db_instance_its_own_resource_id()
    make_read_replicas_instances_of_their_own()
    serve_application_autoscaling_tags()
    skip_bucket_policy_conditions_moto_cannot_evaluate()
    describe_rules_that_reference_groups_and_prefix_lists_with_their_description()
    list_buckets_with_the_canonical_owner()
    report_invalidations_completed_as_cloudfront_does()
    run_fargate_tasks_whose_containers_leave_memory_to_the_task()
    give_network_interfaces_a_private_dns_name()
    give_hosted_zones_route53_shaped_ids()
    from moto.server import main as moto_main

    moto_main(["--host", "127.0.0.1", "--port", str(args.port)])


if __name__ == "__main__":
    main()
