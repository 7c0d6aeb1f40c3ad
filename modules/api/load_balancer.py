"""The internal Network Load Balancer API Gateway's VPC link reaches the services through."""

from __future__ import annotations

from typing import Any

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from modules import aws
from modules.api.config import ServiceConfig
from modules.core import buckets, policy
from modules.core.naming import NameKind, physical_name
from modules.network.network import Network

ACCESS_LOG_PREFIX = "nlb"


class LoadBalancer(Construct):
    """Creates the internal NLB every service is reached through.

    - an internal NLB across the private subnets, cross-zone on, deletion protection
      per `deletion_protection`, access logging to its own bucket. AWS writes NLB access
      logs only for TLS listeners, and these are TCP: the bucket stays empty until a TLS
      listener exists. Kept anyway: harmless, ready for TLS, and stateful (removing it would
      fail on `prevent_destroy` or delete it). Requests are recorded by API Gateway's access
      logs, connections by the VPC flow logs;
    - its security group: no inbound rule at all. API Gateway's VPC link reaches the
      NLB over PrivateLink, which `enforce_security_group_inbound_rules_on_private_link_traffic
      = "off"` admits; nothing inside the VPC can connect to it directly. Outbound
      rules (one per service, added by `add_service`) reach only each service's port;
    - the access-log bucket (`prevent_destroy` with `deletion_protection`): SSE-KMS with
      the tier's log key, versioned, private, TLS only, log delivery allowed only for
      this account, objects expired after `access_log_retention_days`.

    Per service (`add_service`): a TCP listener on the service's port and an `ip`
    target group with an HTTP health check on its health path.

    Attributes: `arn`, `arn_suffix`, `dns_name`, `security_group_id`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, name_prefix: str, network: Network,
                 deletion_protection: bool, access_log_retention_days: int, log_key_arn: str,
                 account_id: str, partition: str, region: str) -> None:
        super().__init__(scope, construct_id)
        self.prefix = name_prefix
        self.network = network
        self.keep = TerraformResourceLifecycle(prevent_destroy=True) if deletion_protection else None
        bucket = self._access_log_bucket(access_log_retention_days, log_key_arn, account_id, partition, region)
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
            enable_deletion_protection=deletion_protection,
            # Written only for TLS listeners (AWS); with the TCP listeners here, nothing arrives.
            access_logs=aws.lb.LbAccessLogs(bucket=bucket.id, prefix=ACCESS_LOG_PREFIX, enabled=True),
            depends_on=[self._bucket_policy],
        )
        self.arn = self.nlb.arn
        self.arn_suffix = self.nlb.arn_suffix
        self.dns_name = self.nlb.dns_name

    def add_service(self, scope: Construct, service: ServiceConfig, security_group_id: str) -> tuple[Any, Any]:
        """In `scope` (the service's construct): `TargetGroup`, `Listener`, `LoadBalancerEgress`,
        `IngressFromLoadBalancer`. Returns the target group and the listener."""
        port = service.container_port
        target_group = aws.lb_target_group.LbTargetGroup(
            scope,
            "TargetGroup",
            name=physical_name(NameKind.TARGET_GROUP, self.prefix, service.name),
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
                matcher="200-399",
                interval=10,
                timeout=6,
                healthy_threshold=3,
                unhealthy_threshold=3,
            ),
        )
        listener = aws.lb_listener.LbListener(
            scope,
            "Listener",
            load_balancer_arn=self.arn,
            port=port,
            protocol="TCP",
            default_action=[aws.lb_listener.LbListenerDefaultAction(type="forward", target_group_arn=target_group.arn)],
            # A new container_port replaces the target group (port is ForceNew), and AWS refuses to
            # delete one a listener still forwards to (ResourceInUse): the apply failed half done.
            # Replacing the listener with it (only when the group's id changes, never on a health
            # check edit) orders it: old listener, old group, new group, new listener.
            lifecycle=TerraformResourceLifecycle(
                replace_triggered_by=[f"{target_group.terraform_resource_type}.{target_group.friendly_unique_id}.id"]),
        )
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

    def _access_log_bucket(self, retention_days: int, key_arn: str, account_id: str, partition: str,
                           region: str) -> Any:
        bucket = aws.s3_bucket.S3Bucket(
            self, "AccessLogBucket", bucket=physical_name(NameKind.S3_BUCKET, self.prefix, "api-access-logs"),
            lifecycle=self.keep,
        )
        bucket_id = bucket.id
        buckets.versioning(self, "AccessLogVersioning", bucket_id)
        buckets.encryption(self, "AccessLogEncryption", bucket_id, kms_key_arn=key_arn)
        buckets.public_access_block(self, "AccessLogPublicAccessBlock", bucket_id)
        buckets.ownership(self, "AccessLogOwnership", bucket_id)
        buckets.lifecycle(self, "AccessLogLifecycle", bucket_id, rule_id="expire-access-logs",
                          expiration_days=retention_days, noncurrent_days=1, abort_multipart_days=7)
        # Log delivery writes for this account's load balancers only (AWS "Access logs for
        # your Network Load Balancer": bucket policy for delivery.logs.amazonaws.com).
        source = [
            {"test": "StringEquals", "variable": "aws:SourceAccount", "values": [account_id]},
            {"test": "ArnLike", "variable": "aws:SourceArn",
             "values": [f"arn:{partition}:logs:{region}:{account_id}:*"]},
        ]
        document = policy.document(
            self,
            "AccessLogBucketPolicyDocument",
            policy.statement(
                sid="LogDeliveryWrite",
                actions=["s3:PutObject"],
                resources=[f"{bucket.arn}/{ACCESS_LOG_PREFIX}/AWSLogs/{account_id}/*"],
                principals=[{"type": "Service", "identifiers": ["delivery.logs.amazonaws.com"]}],
                conditions=[
                    *source,
                    {"test": "StringEquals", "variable": "s3:x-amz-acl", "values": ["bucket-owner-full-control"]},
                ],
            ),
            policy.statement(
                sid="LogDeliveryAclCheck",
                actions=["s3:GetBucketAcl"],
                resources=[bucket.arn],
                principals=[{"type": "Service", "identifiers": ["delivery.logs.amazonaws.com"]}],
                conditions=source,
            ),
            policy.deny_insecure_transport(bucket.arn),
        )
        self._bucket_policy = aws.s3_bucket_policy.S3BucketPolicy(
            self, "AccessLogBucketPolicy", bucket=bucket_id, policy=document.json,
        )
        self.access_log_bucket = bucket
        return bucket

