"""The local AWS emulator: moto's server with the fixes this project's stacks need.

    python -m tests.harness.moto_server --port 4566

Run by the test fixture (`tests/harness/emulator.py`) on a free 127.0.0.1 port.
The fixes below are moto defects measured against aws provider 5.100.0 by the
emulator tests (tests/emulator/); each is the smallest change that lets a real
`terraform apply` of this project's stacks finish.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from checks.iam import Decision, Principal, Request, evaluate_policy


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


# The emulator serves plain HTTP on 127.0.0.1 only: it stands in for the HTTPS endpoint every client
# here uses on AWS, so a request counts as TLS unless it says otherwise with this header (what a
# TLS-terminating proxy sets for a plain-HTTP client); tests send it to play a plain-HTTP caller.
PLAIN_HTTP_HEADER = "X-Forwarded-Proto"

# Headers S3 turns into condition keys ("Amazon S3 condition key examples", Service
# Authorization Reference: Amazon S3 condition keys).
S3_HEADER_KEYS = ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
                  "x-amz-acl", "x-amz-copy-source")

# ListObjects(V2)'s own parameters: a bucket GET with only these is s3:ListBucket.
LIST_PARAMETERS = {"prefix", "delimiter", "encoding-type", "list-type", "max-keys", "marker",
                   "continuation-token", "start-after", "fetch-owner"}


@dataclass(frozen=True)
class S3Call:
    access_key: str | None  # None: an unsigned (anonymous) request
    headers: dict[str, str]
    query: dict[str, list[str]]


# What an S3 request looks like to a bucket policy, set per request by the patched
# handlers below and read by `FakeBucket.get_permission` (moto passes it only action and resource).
S3_CALL: ContextVar[S3Call | None] = ContextVar("S3_CALL", default=None)

def s3_call(request, full_url: str) -> S3Call:  # type: ignore[no-untyped-def]
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = parse_qs(urlparse(full_url).query, keep_blank_values=True)
    credential = re.search(r"Credential=([^/,\s]+)/", headers.get("authorization", ""))
    access_key = credential.group(1) if credential else (query.get("X-Amz-Credential", [""])[0].split("/")[0] or None)
    return S3Call(access_key, headers, query)


def s3_request_context(call: S3Call | None, action: str, resource: str, bucket_account: str, region: str) -> Request:
    """The request as S3 puts it to a bucket policy: the caller moto knows for the access key, TLS
    (see PLAIN_HTTP_HEADER), the request's SSE and ACL headers, and `s3:prefix`/`s3:max-keys` of a list."""
    from moto.sts.models import sts_backends

    call = call or S3Call("test", {}, {})
    if call.access_key is None:
        principal = Principal.anonymous()
    else:
        # moto's own answer to GetCallerIdentity for these credentials: an assumed role's session,
        # an IAM user, or its default user (arn:aws:sts::<account>:user/moto) for keys it did not issue.
        _, arn, _ = sts_backends[bucket_account]["global"].get_caller_identity(call.access_key, region)
        principal = Principal.aws(arn)
    plain_http = call.headers.get(PLAIN_HTTP_HEADER.lower(), "").lower() == "http"
    context: dict[str, str] = {"aws:SecureTransport": "false" if plain_http else "true"}
    context.update({f"s3:{name}": call.headers[name] for name in S3_HEADER_KEYS if name in call.headers})
    if action in ("s3:ListBucket", "s3:ListBucketVersions"):
        for parameter in ("prefix", "max-keys", "delimiter"):
            if parameter in call.query:
                context[f"s3:{parameter}"] = call.query[parameter][0]
    return Request(action=action, resource=resource, principal=principal, context=context)


def s3_policy_action(moto_action: str, call: S3Call | None) -> str:
    """moto names an object request after its HTTP method; the policy action S3 checks differs:
    HEAD is s3:GetObject, POST (multipart upload, form upload) is s3:PutObject, and the `?tagging`
    and `?acl` subresources have actions of their own."""
    query = call.query if call else {}
    verb = "Put" if moto_action in ("s3:PutObject", "s3:PostObject") else moto_action[3:].split("Object")[0]
    verb = "Get" if verb == "Head" else verb
    for subresource, suffix in (("tagging", "Tagging"), ("acl", "Acl")):
        if subresource in query:
            return f"s3:{verb}Object{suffix}"
    return f"s3:{verb}Object"


def evaluate_bucket_policies_against_the_request() -> None:
    """moto checks a bucket policy with no request context and treats every Condition as met (the
    TLS-only Deny would refuse everything), and never checks one on a list. Here the policy is
    evaluated by the project's IAM evaluator (checks/iam.py) against the request S3 would see
    (`s3_request_context`), on object requests and on ListObjects: an explicit Deny answers 403
    AccessDenied, as S3 does. Allows stay as lenient as moto is (no identity policies are enforced)."""
    from moto.iam.access_control import PermissionResult
    from moto.s3 import models
    from moto.s3.exceptions import S3AccessDeniedError
    from moto.s3.responses import S3Response

    def get_permission(self, action: str, resource: str):  # type: ignore[no-untyped-def]
        if self.policy is None:
            return PermissionResult.NEUTRAL
        call = S3_CALL.get()
        policy_action = action if action.startswith("s3:List") else s3_policy_action(action, call)
        request = s3_request_context(call, policy_action, resource, self.account_id, self.region_name)
        result = evaluate_policy(json.loads(self.policy), request, source=f"bucket {self.name}",
                                 resource_policy=True)
        if result.decision is Decision.EXPLICIT_DENY:
            print(f"emulator: {policy_action} {resource} by {request.principal.arn or 'anonymous'} "
                  f"with {dict(request.context)}: {result.explain()}", file=sys.stderr, flush=True)
            return PermissionResult.DENIED
        return PermissionResult.PERMITTED if result.allowed else PermissionResult.NEUTRAL

    def with_call(original):  # type: ignore[no-untyped-def]
        def handler(self, request, full_url, headers):  # type: ignore[no-untyped-def]
            token = S3_CALL.set(s3_call(request, full_url))
            try:
                return original(self, request, full_url, headers)
            finally:
                S3_CALL.reset(token)
        return handler

    original_get = S3Response._bucket_response_get

    def bucket_response_get(self, bucket_name, querystring):  # type: ignore[no-untyped-def]
        if set(querystring) - {"versions"} <= LIST_PARAMETERS:
            action = "s3:ListBucketVersions" if "versions" in querystring else "s3:ListBucket"
            try:
                bucket = self.backend.get_bucket(bucket_name)
            except Exception:  # noqa: BLE001 - the original answers NoSuchBucket
                bucket = None
            if bucket is not None:
                arn = f"arn:{bucket.partition}:s3:::{bucket_name}"
                if bucket.get_permission(action, arn) == PermissionResult.DENIED:
                    raise S3AccessDeniedError()
        return original_get(self, bucket_name, querystring)

    models.FakeBucket.get_permission = get_permission
    S3Response.key_response = with_call(S3Response.key_response)
    S3Response.bucket_response = with_call(S3Response.bucket_response)
    S3Response._bucket_response_get = bucket_response_get


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


def make_zones_created_with_a_vpc_private() -> None:
    """Route 53 makes a zone created with a VPC a private zone of that VPC (CreateHostedZone API
    reference: "VPC ... (Private hosted zones only)"); the aws provider sends the VPC and no
    HostedZoneConfig.PrivateZone, and moto reads the VPC only when that flag is true, so the zone
    came out public, without its VPC, and every plan wanted to add it again."""
    from moto.route53.responses import Route53

    original = Route53.create_hosted_zone

    def create_hosted_zone(self):  # type: ignore[no-untyped-def]
        if self._get_param("VPC.VPCId"):
            get_bool = self._get_bool_param

            def private(name, *args, **kwargs):  # type: ignore[no-untyped-def]
                return True if name == "HostedZoneConfig.PrivateZone" else get_bool(name, *args, **kwargs)

            self._get_bool_param = private
        try:
            return original(self)
        finally:
            self.__dict__.pop("_get_bool_param", None)

    create_hosted_zone.original = original  # type: ignore[attr-defined]
    Route53.create_hosted_zone = create_hosted_zone


def refuse_method_setting_paths_api_gateway_refuses() -> None:
    """UpdateStage patches a method's settings at `/<resource path>/<HTTP method>/<setting>`, the resource
    path's own slashes written as `~1` (`/~1a~1{proxy+}/GET/caching/enabled`). API Gateway refuses any
    other shape ("Invalid method setting path", terraform-provider-aws #15855); moto splits an unescaped
    `/a/{proxy+}/GET/caching/enabled` at the wrong slashes, stores nothing, answers 200, and the
    provider's read-back finds no settings ("empty result"). Refuse it as API Gateway does."""
    import re

    from moto.apigateway import models
    from moto.apigateway.exceptions import BadRequestException

    resource_and_method = re.compile(r"^(\*|~1[^/]*)/(\*|[A-Z]+)$")
    original = models.Stage._patch_method_setting

    def patch_method_setting(self, resource_path_and_method: str, key: str, value: str) -> None:  # type: ignore[no-untyped-def]
        path = f"/{resource_path_and_method}/{key}"
        setting = next((s for s in SETTING_KEYS if path.endswith(f"/{s}")), None)
        if setting is not None and not resource_and_method.match(path[1:-len(setting) - 1]):
            raise BadRequestException(f"Invalid method setting path: {path}")
        original(self, resource_path_and_method, key, value)

    models.Stage._patch_method_setting = patch_method_setting


# The per-method settings UpdateStage patches (API Gateway REST API reference, "Stage": patch operations).
SETTING_KEYS = (
    "metrics/enabled", "logging/loglevel", "logging/dataTrace", "throttling/burstLimit", "throttling/rateLimit",
    "caching/enabled", "caching/ttlInSeconds", "caching/dataEncrypted",
    "caching/requireAuthorizationForCacheControl", "caching/unauthorizedCacheControlHeaderStrategy",
)


def report_performance_insights_as_rds_does() -> None:
    """moto takes a DB instance's Performance Insights settings (`EnablePerformanceInsights`, its KMS
    key, retention) and drops them: DescribeDBInstances reports none, so every `aws_db_instance` with
    Performance Insights on plans an update forever. Keep what was sent, as RDS reports it
    (PerformanceInsightsEnabled / PerformanceInsightsKMSKeyId / PerformanceInsightsRetentionPeriod; RDS
    keeps 7 days unless told otherwise, RDS API reference, CreateDBInstance)."""
    from moto.rds import models

    def keep(instance, kwargs) -> None:  # type: ignore[no-untyped-def]
        enabled = kwargs.get("enable_performance_insights")
        if enabled is None:
            return
        instance.performance_insights_enabled = bool(enabled)
        if enabled:
            instance.performance_insights_kms_key_id = kwargs.get("performance_insights_kms_key_id")
            instance.performance_insights_retention_period = int(
                kwargs.get("performance_insights_retention_period") or 7)

    original_init = models.DBInstance.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        keep(self, kwargs)

    original_replica = models.RDSBackend.create_db_instance_read_replica

    def create_db_instance_read_replica(self, db_kwargs):  # type: ignore[no-untyped-def]
        replica = original_replica(self, db_kwargs)
        keep(replica, db_kwargs)
        return replica

    models.DBInstance.__init__ = init
    models.RDSBackend.create_db_instance_read_replica = create_db_instance_read_replica


def keep_the_ecs_service_settings_moto_drops() -> None:
    """moto's CreateService drops `healthCheckGracePeriodSeconds`, `capacityProviderStrategy`,
    `enableECSManagedTags` and `availabilityZoneRebalancing` (its UpdateService keeps them), so
    DescribeServices reports none and every `aws_ecs_service` plans an update forever. Keep them
    on the service, where DescribeServices reports them (its serializer reads the service's attributes)."""
    from moto.core.utils import camelcase_to_underscores
    from moto.ecs.responses import EC2ContainerServiceResponse

    kept = ("healthCheckGracePeriodSeconds", "capacityProviderStrategy", "enableECSManagedTags",
            "availabilityZoneRebalancing")
    original = EC2ContainerServiceResponse.create_service

    def create_service(self):  # type: ignore[no-untyped-def]
        result = original(self)
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        for name in kept:
            value = self._get_param(name)
            if value is not None:
                setattr(service, camelcase_to_underscores(name), value)
        return result

    EC2ContainerServiceResponse.create_service = create_service


def keep_the_integration_connection_and_cache_keys() -> None:
    """moto's PutIntegration drops `connectionId` (the VPC link) and `cacheKeyParameters`, so
    GetIntegration reports neither and every VPC-link or cached `aws_api_gateway_integration` plans
    an update forever. Keep both, and report the connection id as API Gateway does."""
    from moto.apigateway import models
    from moto.apigateway.responses import APIGatewayResponse

    original_put = APIGatewayResponse.put_integration

    def put_integration(self):  # type: ignore[no-untyped-def]
        status, headers, _ = original_put(self)
        parts = self.path.split("/")
        integration = self.backend.get_integration(parts[2], parts[4], parts[6])
        integration.connection_id = self._get_param("connectionId")
        integration.cache_key_parameters = self._get_param("cacheKeyParameters") or []
        return status, headers, json.dumps(integration.to_json())

    original_to_json = models.Integration.to_json

    def to_json(self):  # type: ignore[no-untyped-def]
        document = original_to_json(self)
        if getattr(self, "connection_id", None):
            document["connectionId"] = self.connection_id
        return document

    APIGatewayResponse.put_integration = put_integration
    models.Integration.to_json = to_json


def keep_the_nlb_private_link_security_group_setting() -> None:
    """moto's SetSecurityGroups drops `EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic`, so
    DescribeLoadBalancers never reports it and an NLB that sets it plans an update forever."""
    from moto.elbv2.responses import ELBV2Response

    original = ELBV2Response.set_security_groups
    name = "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic"

    def set_security_groups(self):  # type: ignore[no-untyped-def]
        result = original(self)
        value = self._get_param(name)
        if value is not None:
            balancer = self.elbv2_backend.load_balancers[self._get_param("LoadBalancerArn")]
            balancer.enforce_security_group_inbound_rules_on_private_link_traffic = value
            result.result[name] = value
        return result

    ELBV2Response.set_security_groups = set_security_groups


def report_a_prometheus_workspace_key() -> None:
    """moto's CreateWorkspace drops `kmsKeyArn` and DescribeWorkspace never reports it, so an
    `aws_prometheus_workspace` encrypted with a customer key plans a replacement forever."""
    from moto.amp import models
    from moto.amp.responses import PrometheusServiceResponse

    original_create = PrometheusServiceResponse.create_workspace

    def create_workspace(self):  # type: ignore[no-untyped-def]
        body = original_create(self)
        created = json.loads(body)
        key = json.loads(self.body).get("kmsKeyArn")
        if key:
            self.amp_backend.workspaces[created["workspaceId"]].kms_key_arn = key
            created["kmsKeyArn"] = key
        return json.dumps(created)

    original_to_dict = models.Workspace.to_dict

    def to_dict(self):  # type: ignore[no-untyped-def]
        document = original_to_dict(self)
        if getattr(self, "kms_key_arn", None):
            document["kmsKeyArn"] = self.kms_key_arn
        return document

    PrometheusServiceResponse.create_workspace = create_workspace
    models.Workspace.to_dict = to_dict


def keep_stage_canary_settings() -> None:
    """moto's CreateStage drops `canarySettings`, its UpdateStage ignores the `/canarySettings/...` patch
    operations (answering 200) and GetStage never reports them, so a stage with a canary plans an update
    forever. Keep them as API Gateway does (REST API reference, "Stage" and "CanarySettings"; developer
    guide, "Update a canary release": replace `/canarySettings/percentTraffic`, `/useStageCache`,
    `/stageVariableOverrides/<name>`, remove `/canarySettings` turns the canary off). A canary created by
    a patch starts on the stage's deployment (developer guide: "A deployment ID, initially identical to
    the ID of the base version deployment set on the stage")."""
    from moto.apigateway import models
    from moto.apigateway.responses import APIGatewayResponse

    original_create = APIGatewayResponse.create_stage

    def create_stage(self):  # type: ignore[no-untyped-def]
        status, headers, _ = original_create(self)
        settings = self._get_param("canarySettings")
        stage = self.backend.get_stage(self.path.split("/")[2], self._get_param("stageName"))
        if settings:
            stage.canary_settings = {"useStageCache": False, **settings}
        return status, headers, json.dumps(stage.to_json())

    original_apply = models.Stage.apply_operations

    def apply_operations(self, patch_operations):  # type: ignore[no-untyped-def]
        others = []
        for op in patch_operations:
            path = op.get("path", "")
            if path == "/canarySettings" and op["op"] == "remove":
                self.canary_settings = None
            elif path.startswith("/canarySettings/"):
                # useStageCache is false unless set (REST API reference, CanarySettings: a Boolean flag).
                settings = getattr(self, "canary_settings", None) or {"deploymentId": self.deployment_id,
                                                                      "useStageCache": False}
                name, _, rest = path.removeprefix("/canarySettings/").partition("/")
                if name == "stageVariableOverrides":
                    overrides = settings.setdefault("stageVariableOverrides", {})
                    if op["op"] == "remove":
                        overrides.pop(rest, None)
                    else:
                        overrides[rest] = op["value"]
                elif name == "percentTraffic":
                    settings[name] = float(op["value"])
                elif name == "useStageCache":
                    settings[name] = str(op["value"]).lower() == "true"
                else:
                    settings[name] = op["value"]
                self.canary_settings = settings
            else:
                others.append(op)
        return original_apply(self, others)

    original_to_json = models.Stage.to_json

    def to_json(self):  # type: ignore[no-untyped-def]
        document = original_to_json(self)
        if getattr(self, "canary_settings", None):
            document["canarySettings"] = self.canary_settings
        return document

    APIGatewayResponse.create_stage = create_stage
    models.Stage.apply_operations = apply_operations
    models.Stage.to_json = to_json


def report_ecs_services_running_their_desired_count() -> None:
    """moto starts no tasks, so an ECS service reports 0 running of its desired count and Terraform's
    `wait_for_steady_state` (the provider's waitServiceStable: one deployment and runningCount equal to
    desiredCount) waits until it times out. A real service reaches its desired count once its tasks are
    healthy: report the desired count as running (DescribeServices' runningCount and its deployment's)."""
    from moto.ecs import models

    original_init = models.Service.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        self.running_count, self.pending_count = self.desired_count, 0
        for deployment in self.deployments:
            deployment.update(runningCount=self.desired_count, pendingCount=0, rolloutState="COMPLETED")

    models.Service.__init__ = init


def answer_a_retried_conditional_put_as_its_first_attempt() -> None:
    """Terraform takes its state lock with a conditional PutItem (`attribute_not_exists(LockID)`).
    Under load moto answers after the SDK has given up on the request, the SDK sends the same request
    again, and the second attempt finds the item the first one wrote: ConditionalCheckFailedException,
    and terraform reports its own lock as someone else's (`Created` after its command began), in the
    harness's applies and in `delivery` commands alike. DynamoDB answers the first attempt in
    milliseconds. A conditional put that fails only because exactly the item it writes is already
    there is that first attempt's echo: answer it as the first attempt was answered. A different item
    (another lock holder's ID or time) still fails."""
    from moto.dynamodb.exceptions import ConditionalCheckFailed
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

    original = Table.put_item

    def put_item(self, item_attrs, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return original(self, item_attrs, *args, **kwargs)
        except ConditionalCheckFailed:
            hash_value = DynamoType(item_attrs[self.hash_key_attr])
            range_value = DynamoType(item_attrs[self.range_key_attr]) if self.range_key_attr else None
            current = self.get_item(hash_value, range_value)
            if current is None or current != Item(hash_value, range_value, item_attrs):
                raise
            return current

    Table.put_item = put_item


def keep_the_lambda_logging_config() -> None:
    """moto's CreateFunction and UpdateFunctionConfiguration drop `LoggingConfig` and GetFunction never
    reports it, so a function with its own log group plans an update forever. Keep it as Lambda does
    (API reference, "LoggingConfig": LogFormat Text or JSON, LogGroup defaulting to `/aws/lambda/<name>`;
    the log levels only with JSON), and write the function's logs to that group."""
    from moto.awslambda import models

    def logging_config(self, requested):  # type: ignore[no-untyped-def]
        config = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{self.function_name}", **(requested or {})}
        if config["LogFormat"] == "JSON":
            config = {"ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO", **config}
        self.logging_config = config
        self.logs_group_name = config["LogGroup"]

    original_init = models.LambdaFunction.__init__

    def init(self, account_id, spec, region, version=1):  # type: ignore[no-untyped-def]
        original_init(self, account_id, spec, region, version)
        logging_config(self, spec.get("LoggingConfig"))

    original_get = models.LambdaFunction.get_configuration

    def get_configuration(self, on_create=False):  # type: ignore[no-untyped-def]
        return {**original_get(self, on_create), "LoggingConfig": self.logging_config}

    original_update = models.LambdaFunction.update_configuration

    def update_configuration(self, config_updates):  # type: ignore[no-untyped-def]
        if "LoggingConfig" in config_updates:
            logging_config(self, {**self.logging_config, **config_updates["LoggingConfig"]})
        return original_update(self, config_updates)

    models.LambdaFunction.__init__ = init
    models.LambdaFunction.get_configuration = get_configuration
    models.LambdaFunction.update_configuration = update_configuration


# The Lambda Python runtime's side of an invocation (awslambdaric's bootstrap.py), run by
# `run_python_functions_in_a_local_process` as `python -c LAMBDA_PYTHON_RUNNER <handler> <timeout>
# <function arn> <request id>` in the function's extracted code: the event comes on stdin, the
# handler's result (exit status 0) or Lambda's error document (exit status 1) goes to stdout, and
# whatever the function prints goes to stderr, the invocation's log.
LAMBDA_PYTHON_RUNNER = r'''
import importlib, json, os, sys, threading, time, traceback

handler, timeout, function_arn, request_id = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
answer_stream = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # the function's prints (its children's too) go to the log
sys.stdout = sys.stderr
answering = threading.Lock()


def answer(text, status):
    with answering:
        sys.stderr.flush()
        answer_stream.write(text)
        answer_stream.flush()
        os._exit(status)


def fail(message, kind, trace=(), invocation=""):
    print(f"[ERROR] {kind}: {message}" + ("\nTraceback (most recent call last):\n" + "".join(trace) if trace else ""),
          file=sys.stderr)
    answer(json.dumps({"errorMessage": message, "errorType": kind, "requestId": invocation,
                       "stackTrace": list(trace)}), 1)


class Context:
    aws_request_id, invoked_function_arn = request_id, function_arn
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
    memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
    log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
    log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
    client_context = identity = None

    def get_remaining_time_in_millis(self):
        return max(int((self.deadline - time.monotonic()) * 1000), 0)

    def log(self, message):
        sys.stderr.write(message)


sys.path.insert(0, os.getcwd())
module_name, _, function_name = handler.rpartition(".")
if not module_name:
    fail(f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)", "Runtime.MalformedHandlerName")
try:
    module = importlib.import_module(module_name.replace("/", "."))
except ImportError as e:
    fail(f"Unable to import module '{module_name}': {e}", "Runtime.ImportModuleError")
except SyntaxError as e:
    fail(f"Syntax error in module '{module_name}': {e}", "Runtime.UserCodeSyntaxError",
         [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}'])
except Exception as e:
    fail(str(e), type(e).__name__, traceback.format_list(traceback.extract_tb(e.__traceback__)[1:]))
if not hasattr(module, function_name):
    fail(f"Handler '{function_name}' missing on module '{module_name}'", "Runtime.HandlerNotFound")
event = json.load(sys.stdin)
context = Context()
context.deadline = time.monotonic() + timeout


def timed_out():
    message = f"Task timed out after {timeout:.2f} seconds"
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} {message}", file=sys.stderr)
    answer(json.dumps({"errorType": "Sandbox.Timedout",
                       "errorMessage": f"RequestId: {request_id} Error: {message}"}), 1)


timer = threading.Timer(timeout, timed_out)
timer.daemon = True
timer.start()
try:
    result = getattr(module, function_name)(event, context)
except Exception as e:
    fail(str(e), type(e).__name__, traceback.format_list(traceback.extract_tb(e.__traceback__)[1:]), request_id)
try:
    text = json.dumps(result)
except Exception as e:
    fail(f"Unable to marshal response: {e}", "Runtime.MarshalError", (), request_id)
answer(text, 0)
'''

# Lambda's init phase (importing the handler's module) may take up to 10 s on top of the timeout
# ("Lambda execution environment lifecycle", Init phase).
LAMBDA_INIT_SECONDS = 10


def run_python_functions_in_a_local_process(port: int) -> None:
    """moto's Invoke runs a function in a Docker container (`LambdaFunction._invoke_lambda`); without
    Docker every Invoke answers "error running docker". A Python function runs here in a process of
    this server's interpreter (which has boto3) instead, as Lambda's Python runtime runs it ("Define
    Lambda function handler in Python", "Using the Lambda context object", "Defined runtime environment
    variables", "AWS Lambda function errors in Python"): its zip extracted as the working directory,
    `handler` imported and called with the event and a context, killed after the function's timeout,
    with the function's environment variables plus what Lambda sets (the region, the function's name,
    credentials of its execution role, here a session moto issues for it) and AWS_ENDPOINT_URL pointing
    back at this server, so the function's own API calls come here (the server is threaded: moto's
    `run_simple(..., threaded=True)`). An exception answers as Lambda does: `X-Amz-Function-Error:
    Unhandled` (moto says "Handled") and the error document. An empty payload is the event `{}` (moto
    passes the string "{}"). Other runtimes keep moto's behaviour."""
    import io
    import subprocess
    import tempfile
    import time
    import zipfile

    from moto.awslambda import models
    from moto.core.utils import unix_time_millis
    from moto.sts.models import sts_backends

    original_invoke_lambda = models.LambdaFunction._invoke_lambda
    original_invoke = models.LambdaFunction.invoke

    def is_python(function) -> bool:  # type: ignore[no-untyped-def]
        return (function.run_time or "").startswith("python")

    def invoke_lambda(self, event=None):  # type: ignore[no-untyped-def]
        if not is_python(self):
            return original_invoke_lambda(self, event)
        request_id = str(uuid.uuid4())
        day = time.strftime("%Y/%m/%d", time.gmtime())
        stream = f"{day}/[{self.version}]{uuid.uuid4().hex}"
        role = sts_backends[self.account_id][self.partition].assume_role(
            region_name=self.region, role_session_name=self.function_name, role_arn=self.role,
            policy="", duration=3600, external_id="")
        environment = {
            "PATH": os.environ.get("PATH", os.defpath), "LANG": "en_US.UTF-8", "TZ": ":UTC",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            **{name: str(value) for name, value in (self.environment_vars or {}).items()},
            # Reserved: a function's own variables cannot set these.
            "_HANDLER": self.handler, "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.run_time}",
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": str(self.version),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.logs_group_name, "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_ACCESS_KEY_ID": role.access_key_id, "AWS_SECRET_ACCESS_KEY": role.secret_access_key,
            "AWS_SESSION_TOKEN": role.session_token,
        }
        timeout = float(self.timeout)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="lambda-task-") as task:
            with zipfile.ZipFile(io.BytesIO(self.code_bytes)) as archive:
                archive.extractall(task)
            environment["LAMBDA_TASK_ROOT"] = task
            command = [sys.executable, "-c", LAMBDA_PYTHON_RUNNER, str(self.handler), str(timeout),
                       self.function_arn, request_id]
            try:
                run = subprocess.run(command, input=json.dumps(event).encode(), capture_output=True, cwd=task,
                                     env=environment, timeout=timeout + LAMBDA_INIT_SECONDS)
                status, output, log = run.returncode, run.stdout.decode(), run.stderr.decode(errors="replace")
            except subprocess.TimeoutExpired as expired:
                status, output, log = None, "", (expired.stderr or b"").decode(errors="replace")
        duration = (time.monotonic() - started) * 1000
        if status is None:  # still importing the handler's module when the time was up
            output = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage":
                                 f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"})
        elif status != 0 and not output:  # sys.exit, a crash
            output = json.dumps({"errorType": "Runtime.ExitError", "errorMessage":
                                 f"RequestId: {request_id} Error: Runtime exited with error: exit status {status}"})
        log = (f"START RequestId: {request_id} Version: {self.version}\n{log}"
               + ("" if not log or log.endswith("\n") else "\n")
               + f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
               f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {self.memory_size} MB\n")
        self.logs_backend.ensure_log_group(self.logs_group_name)
        self.logs_backend.create_log_stream(self.logs_group_name, stream)
        self.logs_backend.put_log_events(self.logs_group_name, stream, [
            {"timestamp": unix_time_millis(), "message": line} for line in log.splitlines()])
        # Invoke's LogResult is the log's last 4 KB.
        return output, status != 0, log.encode()[-4096:].decode(errors="ignore")

    def invoke(self, body, request_headers, response_headers):  # type: ignore[no-untyped-def]
        if not is_python(self):
            return original_invoke(self, body, request_headers, response_headers)
        payload = original_invoke(self, body or "{}", request_headers, response_headers)
        if "x-amz-function-error" in response_headers:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    models.LambdaFunction._invoke_lambda = invoke_lambda
    models.LambdaFunction.invoke = invoke


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
    evaluate_bucket_policies_against_the_request()
    describe_rules_that_reference_groups_and_prefix_lists_with_their_description()
    list_buckets_with_the_canonical_owner()
    report_invalidations_completed_as_cloudfront_does()
    run_fargate_tasks_whose_containers_leave_memory_to_the_task()
    give_network_interfaces_a_private_dns_name()
    give_hosted_zones_route53_shaped_ids()
    make_zones_created_with_a_vpc_private()
    refuse_method_setting_paths_api_gateway_refuses()
    report_performance_insights_as_rds_does()
    keep_the_ecs_service_settings_moto_drops()
    keep_the_integration_connection_and_cache_keys()
    keep_the_nlb_private_link_security_group_setting()
    report_a_prometheus_workspace_key()
    keep_stage_canary_settings()
    report_ecs_services_running_their_desired_count()
    answer_a_retried_conditional_put_as_its_first_attempt()
    keep_the_lambda_logging_config()
    run_python_functions_in_a_local_process(args.port)
    from moto.server import main as moto_main

    moto_main(["--host", "127.0.0.1", "--port", str(args.port)])


if __name__ == "__main__":
    main()
