"""The internal Network Load Balancer API Gateway's VPC link reaches the services through."""

from __future__ import annotations

from typing import Any

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from modules import aws
from modules.api.config import CANDIDATE_SUFFIX, ServiceConfig
from modules.api.health import PROBE_HEALTHY_THRESHOLD, PROBE_INTERVAL_SECONDS, PROBE_UNHEALTHY_THRESHOLD
from modules.core.forget import forget
from modules.core.naming import NameKind, physical_name
from modules.network.network import Network

# The access-log bucket and its settings of earlier versions (construct ids below the load balancer):
# Terraform forgets them, the bucket and its objects stay (README, "Upgrade notes").
FORMER_ACCESS_LOG_BUCKET = (
    ("aws_s3_bucket", "AccessLogBucket"),
    ("aws_s3_bucket_versioning", "AccessLogVersioning"),
    ("aws_s3_bucket_server_side_encryption_configuration", "AccessLogEncryption"),
    ("aws_s3_bucket_public_access_block", "AccessLogPublicAccessBlock"),
    ("aws_s3_bucket_ownership_controls", "AccessLogOwnership"),
    ("aws_s3_bucket_lifecycle_configuration", "AccessLogLifecycle"),
    ("aws_s3_bucket_policy", "AccessLogBucketPolicy"),
)


class LoadBalancer(Construct):
    """Creates the internal NLB every service is reached through.

    - an internal NLB across the private subnets, cross-zone on, deletion protection
      per `prevent_destroy`, and no access logging. AWS writes NLB access logs only for
      TLS listeners, and these are TCP: API Gateway reaches a TLS listener only under a name
      that a certificate from a CA it trusts covers (a custom domain of ours), which an
      environment without `dns` has not got. Requests are recorded by API Gateway's access
      logs, connections by the VPC flow logs (modules/api/README.md, "What is logged");
    - its security group: no inbound rule at all. API Gateway's VPC link reaches the
      NLB over PrivateLink, which `enforce_security_group_inbound_rules_on_private_link_traffic
      = "off"` admits; nothing inside the VPC can connect to it directly. Outbound
      rules (one per service, added by `add_service`) reach only each service's port.

    The access-log bucket of earlier versions is forgotten (`removed`, not destroyed).

    Per service (`add_service`): a TCP listener on the service's port and an `ip`
    target group whose HTTP health check is the service's probe (`modules/api/health.py`):
    its health path, healthy on `health_check_codes` within `health_check_timeout_seconds`.

    Attributes: `arn`, `arn_suffix`, `dns_name`, `security_group_id`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, name_prefix: str, network: Network,
                 prevent_destroy: bool) -> None:
        super().__init__(scope, construct_id)
        self.prefix = name_prefix
        self.network = network
        forget(self, *FORMER_ACCESS_LOG_BUCKET)
        self.security_group = aws.security_group.SecurityGroup(
            self,
            "SecurityGroup",
            name=physical_name(NameKind.SECURITY_GROUP, name_prefix, "api-nlb"),
            description="Internal NLB of the API: reached only through API Gateway's VPC link",
            vpc_id=network.vpc_id,
            tags={"Name": f"{name_prefix}-api-nlb"},
        )
        self.security_group_id = self.security_group.id
        self.nlb = aws.lb.Lb(
            self,
            "LoadBalancer",
            name=physical_name(NameKind.LOAD_BALANCER, name_prefix, "api"),
            load_balancer_type="network",
            internal=True,
            subnets=network.private_subnet_ids,
            security_groups=[self.security_group_id],
            enforce_security_group_inbound_rules_on_private_link_traffic="off",
            enable_cross_zone_load_balancing=True,
            enable_deletion_protection=prevent_destroy,
        )
        self.arn = self.nlb.arn
        self.arn_suffix = self.nlb.arn_suffix
        self.dns_name = self.nlb.dns_name

    def add_service(self, scope: Construct, service: ServiceConfig, security_group_id: str) -> tuple[Any, Any]:
        """In `scope` (the service's construct): `TargetGroup`, `Listener`, `LoadBalancerEgress`,
        `IngressFromLoadBalancer`. Returns the target group and the listener."""
        port = service.container_port
        assert port is not None, f"{service.name} is a worker: it has no listener"
        target_group, listener = self._target(scope, service, physical_name(NameKind.TARGET_GROUP, self.prefix,
                                                                            service.name), port)
        aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule(
            scope, "LoadBalancerEgress", security_group_id=self.security_group_id,
            description=f"Requests and health checks to {service.name}", ip_protocol="tcp",
            from_port=port, to_port=port, referenced_security_group_id=security_group_id,
        )
        aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
            scope, "IngressFromLoadBalancer", security_group_id=security_group_id,
            description="Requests and health checks from the API's NLB", ip_protocol="tcp",
            from_port=port, to_port=port, referenced_security_group_id=self.security_group_id,
        )
        return target_group, listener

    def add_candidate(self, scope: Construct, service: ServiceConfig) -> tuple[Any, Any]:
        """In `scope` (the service's `Canary`): `TargetGroup` (`<prefix>-<service>-canary`, the same probe)
        and `Listener` on `service.candidate_port`. The candidate's tasks listen on `container_port` in the
        service's security group, so the service's egress and ingress rules already admit its traffic."""
        name = physical_name(NameKind.TARGET_GROUP, self.prefix, service.name, CANDIDATE_SUFFIX)
        assert service.candidate_port is not None, f"{service.name} is a worker: it has no canary"
        return self._target(scope, service, name, service.candidate_port)

    def _target(self, scope: Construct, service: ServiceConfig, name: str, listener_port: int) -> tuple[Any, Any]:
        port = service.container_port
        target_group = aws.lb_target_group.LbTargetGroup(
            scope,
            "TargetGroup",
            name=name,
            target_type="ip",
            protocol="TCP",
            port=port,
            vpc_id=self.network.vpc_id,
            deregistration_delay="30",
            health_check=aws.lb_target_group.LbTargetGroupHealthCheck(
                enabled=True,
                protocol="HTTP",
                path=service.health_check_path,
                port="traffic-port",
                matcher=service.health_check_codes,
                interval=PROBE_INTERVAL_SECONDS,
                timeout=service.health_check_timeout_seconds,
                healthy_threshold=PROBE_HEALTHY_THRESHOLD,
                unhealthy_threshold=PROBE_UNHEALTHY_THRESHOLD,
            ),
        )
        listener = aws.lb_listener.LbListener(
            scope,
            "Listener",
            load_balancer_arn=self.arn,
            port=listener_port,
            protocol="TCP",
            default_action=[aws.lb_listener.LbListenerDefaultAction(type="forward", target_group_arn=target_group.arn)],
            # A new container_port replaces the target group (port is ForceNew), and AWS refuses to
            # delete one a listener still forwards to (ResourceInUse): the apply failed half done.
            # Replacing the listener with it (only when the group's id changes, never on a health
            # check edit) orders it: old listener, old group, new group, new listener.
            lifecycle=TerraformResourceLifecycle(
                replace_triggered_by=[f"{target_group.terraform_resource_type}.{target_group.friendly_unique_id}.id"]),
        )
        return target_group, listener
