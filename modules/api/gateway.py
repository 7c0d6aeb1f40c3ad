"""API Gateway (REST, regional): the API's single entry point, routing `/<prefix>` to each service."""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

from cdktf import Fn, TerraformOutput, TerraformResourceLifecycle
from constructs import Construct

from modules import aws
from modules.api.config import ApiConfig, ServiceConfig
from modules.api.load_balancer import LoadBalancer
from modules.core import policy
from modules.core.dns import public_zone
from modules.core.naming import NameKind, physical_name
from modules.core.settings import DnsConfig

INTEGRATION_TIMEOUT_MS = 29000
# `/<prefix>/{proxy+}` forwards the rest of the path: `/<prefix>/a/b` reaches the service as `/a/b`.
PROXY_PATH = {"integration.request.path.proxy": "method.request.path.proxy"}

# One JSON object per request (API Gateway `$context` variables).
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "caller": "$context.identity.caller",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "integrationError": "$context.integration.error",
    "wafStatus": "$context.waf.status",
    "xrayTraceId": "$context.xrayTraceId",
}


def api_name(name_prefix: str) -> str:
    """The REST API's name (its 5xx metrics' `ApiName` dimension)."""
    return f"{name_prefix}-api"


def execution_log_group_name(rest_api_id: str, stage_name: str) -> str:
    """The log group API Gateway writes a stage's execution logs to (a name it chooses, not us)."""
    return f"API-Gateway-Execution-Logs_{rest_api_id}/{stage_name}"


def method_settings_path(resource_path: str, http_method: str) -> str:
    """`aws_api_gateway_method_settings.method_path` for one method: `~1a~1{proxy+}/GET` for GET on `/a/{proxy+}`.

    The provider passes the value through as the resource-and-method part of the stage's patch path,
    where API Gateway wants every slash inside the resource path written as `~1` (CloudFormation
    `AWS::ApiGateway::Stage` MethodSetting.ResourcePath: "/resource/subresource must be encoded as
    /~1resource~1subresource"; terraform-provider-aws issues #9738 and #15855). Unescaped, the path
    is refused ("Invalid method setting path") or read back as another resource and method.
    """
    if not resource_path.startswith("/"):
        raise ValueError(f"a resource path starts with '/', got {resource_path!r}")
    return f"{resource_path.replace('/', '~1')}/{http_method}"


def cached(config: ApiConfig, service: ServiceConfig) -> bool:
    """Whether the service's GET responses are cached (the stage has a cache and the service, which has
    a route, allows it)."""
    return config.caching and service.caching and not service.worker


class Gateway(Construct):
    """Creates the REST API and everything in front of the services.

    - the REST API (regional) and a VPC link to the internal NLB;
    - per service: `/<path_prefix>` and `/<path_prefix>/{proxy+}`, each with an ANY
      method proxied (HTTP_PROXY over the VPC link) to the service's NLB listener,
      authorization per service; with caching on, also GET methods whose cache key is
      the path, the `Authorization` header and the declared query parameters;
      a request validator on every method that declares parameters;
    - a deployment replaced whenever the routes change (triggers: a hash of the route
      definition and of the integrations), and a stage with JSON access logs (KMS log
      group), X-Ray tracing, throttling and metrics for every method, the cache
      cluster and per-method cache settings when `cache_cluster_size_gib` is set;
    - the execution log group API Gateway writes to (`API-Gateway-Execution-Logs_<id>/<stage>`),
      created before the stage with the tier's retention and key, so API Gateway never
      creates it unencrypted and kept forever;
    - the account-level CloudWatch role access logging needs (one per account and region:
      `account_cloudwatch_role = false` where another environment in the account sets it);
    - a WAFv2 web ACL (AWS common rules, known bad inputs, a per-IP rate limit) on the
      stage, logging to its own KMS log group with the Authorization header redacted;
    - with `dns`: `api.<zone>` with a regional ACM certificate validated in the zone,
      the domain's base path mapping to the stage, and an alias record.

    Attributes: `rest_api`, `stage`, `execution_logs`, `name` (the API's name), `invoke_url`,
    `custom_domain_url`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: ApiConfig, name_prefix: str,
                 load_balancer: LoadBalancer, log_key_arn: str, log_retention_days: int, account_id: str,
                 partition: str, dns: DnsConfig | None, candidates: dict[str, tuple[Any, Any]] | None = None) -> None:
        super().__init__(scope, construct_id)
        # Each running canary's candidate: (its NLB listener, its ECS service), by service name.
        self.candidates = candidates or {}
        self.config = config
        self.prefix = name_prefix
        # Log groups are kept like the tier's log key (api.py).
        self.keep = TerraformResourceLifecycle(prevent_destroy=True) if config.prevent_destroy else None
        self.name = api_name(name_prefix)
        self.rest_api = aws.api_gateway_rest_api.ApiGatewayRestApi(
            self,
            "RestApi",
            name=self.name,
            description=f"{name_prefix}: the API's single entry point",
            endpoint_configuration=aws.api_gateway_rest_api.ApiGatewayRestApiEndpointConfiguration(types=["REGIONAL"]),
            # A replacement API exists before the old one goes, so the stage is never without one.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        self.vpc_link = aws.api_gateway_vpc_link.ApiGatewayVpcLink(
            self, "VpcLink", name=self.name, description="API Gateway to the API's internal NLB",
            target_arns=[load_balancer.arn],
        )
        self.validator = aws.api_gateway_request_validator.ApiGatewayRequestValidator(
            self, "ParameterValidator", rest_api_id=self.rest_api.id, name="required-parameters",
            validate_request_parameters=True, validate_request_body=False,
        )
        self._dependencies: list[Any] = []
        self._fingerprints: list[str] = []
        for service in config.routed_services:
            self._routes(service, load_balancer)

        # Without it here, another environment in this account and region sets the role.
        account = [self._cloudwatch_account(partition, account_id)] if config.account_cloudwatch_role else []
        access_logs = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "AccessLogGroup", name=physical_name(NameKind.LOG_GROUP, f"/api/{name_prefix}/access-logs"),
            retention_in_days=log_retention_days, kms_key_id=log_key_arn, lifecycle=self.keep,
        )
        # Execution logs (`logging_level`) go to a group API Gateway names and, when it does not
        # exist, creates itself: kept forever and not encrypted. Created here first, it has the
        # tier's retention and key; it stays with logging_level = "OFF", so turning logging off
        # keeps what was logged until the retention ends.
        self.execution_logs = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "ExecutionLogGroup", name=execution_log_group_name(self.rest_api.id, config.stage_name),
            retention_in_days=log_retention_days, kms_key_id=log_key_arn, lifecycle=self.keep,
        )
        # Where API Gateway writes the canary's own logs (AWS API Gateway developer guide, "Set up an API
        # Gateway canary release deployment": the access log group's name plus `/Canary`, and the execution
        # log group's): created here with the tier's retention and key, so a canary never makes them
        # itself, unencrypted and kept forever. Empty while no canary runs.
        aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "CanaryAccessLogGroup", name=f"{access_logs.name}/Canary",
            retention_in_days=log_retention_days, kms_key_id=log_key_arn, lifecycle=self.keep,
        )
        aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "CanaryExecutionLogGroup", name=f"{execution_log_group_name(self.rest_api.id, config.stage_name)}/Canary",
            retention_in_days=log_retention_days, kms_key_id=log_key_arn, lifecycle=self.keep,
        )
        deployment = aws.api_gateway_deployment.ApiGatewayDeployment(
            self,
            "Deployment",
            rest_api_id=self.rest_api.id,
            description="Replaced whenever a route or an integration changes",
            triggers={
                "routes": self._routes_hash(),
                "integrations": Fn.sha1(Fn.jsonencode(self._fingerprints)),
            },
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            depends_on=self._dependencies,
        )
        stage_module = aws.api_gateway_stage
        self.stage = stage_module.ApiGatewayStage(
            self,
            "Stage",
            rest_api_id=self.rest_api.id,
            deployment_id=deployment.id,
            stage_name=config.stage_name,
            xray_tracing_enabled=True,
            cache_cluster_enabled=config.caching,
            cache_cluster_size=f"{config.cache_cluster_size_gib:g}" if config.caching else None,
            access_log_settings=stage_module.ApiGatewayStageAccessLogSettings(
                destination_arn=access_logs.arn, format=json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
            ),
            variables={s.stage_variable: f"{load_balancer.dns_name}:{s.container_port}" for s in config.service
                       if not s.worker},
            canary_settings=self._canary_settings(deployment.id, load_balancer),
            # Exists before API Gateway could write an execution log (and create it itself). A canary's
            # requests go to its candidate only once that is steady (its service waits for it), and on
            # promote or abort the canary leaves the stage before the candidate is destroyed: Terraform
            # destroys a resource after updating those that depended on it.
            depends_on=[*account, self.execution_logs, *(service for _, service in self.candidates.values())],
        )
        self._method_settings()
        self._firewall(log_key_arn, log_retention_days)
        self.invoke_url = self.stage.invoke_url
        self.custom_domain_url = self._custom_domain(dns) if dns is not None else None

        TerraformOutput(self, "InvokeUrl", value=self.invoke_url,
                        description="The stage's invoke URL (https://<id>.execute-api.<region>.amazonaws.com/<stage>)")
        TerraformOutput(self, "CustomDomainUrl", value=self.custom_domain_url or "",
                        description="https://api.<zone> when the environment has dns, else empty")
        TerraformOutput(self, "RestApiId", value=self.rest_api.id, description="REST API id")

    # Routes -----------------------------------------------------------------------------------------

    def _routes(self, service: ServiceConfig, load_balancer: LoadBalancer) -> None:
        assert service.path_prefix is not None and service.container_port is not None
        scope = Construct(self, service.construct_id)
        api_id = self.rest_api.id
        module = aws.api_gateway_resource
        prefix = module.ApiGatewayResource(
            scope, "Resource", rest_api_id=api_id, parent_id=self.rest_api.root_resource_id,
            path_part=service.path_prefix,
        )
        proxy = module.ApiGatewayResource(scope, "ProxyResource", rest_api_id=api_id, parent_id=prefix.id,
                                          path_part="{proxy+}")
        # The host and port come from the service's stage variable (`<NLB DNS name>:<port>`), which a
        # canary overrides with the candidate's listener for the canary's requests only. `$${` is
        # Terraform's escape for a literal `${`: API Gateway, not Terraform, fills `${stageVariables.x}`.
        origin = f"http://$${{stageVariables.{service.stage_variable}}}"
        required = {
            **{f"method.request.header.{h}": True for h in service.required_headers},
            **{f"method.request.querystring.{q}": True for q in service.required_query_parameters},
        }
        methods = ["ANY", "GET"] if cached(self.config, service) else ["ANY"]
        for resource, kind, uri in ((prefix, "", f"{origin}/"), (proxy, "Proxy", f"{origin}/{{proxy}}")):
            path_parameters = {"method.request.path.proxy": True} if kind else {}
            for http_method in methods:
                parameters = {**path_parameters, **required}
                cache_keys: list[str] = []
                if http_method == "GET":
                    # Never serve one caller's cached response to another: the credentials are part of the key.
                    parameters["method.request.header.Authorization"] = False
                    parameters.update({f"method.request.querystring.{q}": False
                                       for q in service.cache_key_query_parameters})
                    cache_keys = sorted(parameters)
                name = f"{kind}{http_method.title()}"
                method = aws.api_gateway_method.ApiGatewayMethod(
                    scope,
                    f"{name}Method",
                    rest_api_id=api_id,
                    resource_id=resource.id,
                    http_method=http_method,
                    authorization=service.authorization.value,
                    request_parameters=parameters or None,
                    request_validator_id=self.validator.id if parameters else None,
                )
                integration = aws.api_gateway_integration.ApiGatewayIntegration(
                    scope,
                    f"{name}Integration",
                    rest_api_id=api_id,
                    resource_id=resource.id,
                    http_method=method.http_method,
                    type="HTTP_PROXY",
                    integration_http_method=http_method,
                    uri=uri,
                    connection_type="VPC_LINK",
                    connection_id=self.vpc_link.id,
                    request_parameters=PROXY_PATH if kind else None,
                    cache_key_parameters=cache_keys or None,
                    timeout_milliseconds=INTEGRATION_TIMEOUT_MS,
                )
                self._dependencies += [method, integration]
                self._fingerprints += [resource.id, method.id, integration.id, integration.uri]

    def _routes_hash(self) -> str:
        """A hash of everything the config says about the routes: a change redeploys the stage."""
        definition = [
            {
                "path_prefix": s.path_prefix,
                "port": s.container_port,
                "authorization": s.authorization.value,
                "required_headers": sorted(s.required_headers),
                "required_query_parameters": sorted(s.required_query_parameters),
                "cached": cached(self.config, s),
                "cache_key_query_parameters": sorted(s.cache_key_query_parameters),
            }
            for s in sorted(self.config.routed_services, key=lambda s: str(s.path_prefix))
        ]
        return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()

    # Canary ---------------------------------------------------------------------------------------

    def _canary_settings(self, deployment_id: str,
                         load_balancer: LoadBalancer) -> aws.api_gateway_stage.ApiGatewayStageCanarySettings | None:
        """The stage's canary while a service runs one: the same deployment (the routes do not change), the
        release file's share of requests, and for the canary's requests each such service's stage variable
        pointing at its candidate's listener; other services' variables are not overridden. The canary's
        requests never use the stage cache: with one deployment for both, API Gateway would otherwise give
        them the stable version's cached responses (developer guide, canary release: one cache key when
        the stage and the canary share a deployment)."""
        canaries = self.config.canaries
        if not canaries:
            return None
        shares = {s.canary.percent for s in canaries if s.canary is not None}
        (percent,) = shares  # ApiConfig checked: one share
        return aws.api_gateway_stage.ApiGatewayStageCanarySettings(
            deployment_id=deployment_id,
            percent_traffic=percent,
            stage_variable_overrides={s.stage_variable: f"{load_balancer.dns_name}:{self.candidates[s.name][0].port}"
                                      for s in canaries},
            use_stage_cache=False,
        )

    # Stage settings ---------------------------------------------------------------------------------

    def _settings(self, **overrides: Any) -> aws.api_gateway_method_settings.ApiGatewayMethodSettingsSettings:
        config = self.config
        values = {
            "metrics_enabled": True,
            "logging_level": config.logging_level.value,
            "data_trace_enabled": False,
            "throttling_burst_limit": config.throttling_burst_limit,
            "throttling_rate_limit": config.throttling_rate_limit,
            "caching_enabled": False,
            "cache_data_encrypted": True,
            **overrides,
        }
        return aws.api_gateway_method_settings.ApiGatewayMethodSettingsSettings(**values)

    def _method_settings(self) -> None:
        module = aws.api_gateway_method_settings
        module.ApiGatewayMethodSettings(
            self, "MethodSettings", rest_api_id=self.rest_api.id, stage_name=self.stage.stage_name,
            method_path="*/*", settings=self._settings(), depends_on=[self.execution_logs],
        )
        for service in self.config.service:
            if not cached(self.config, service):
                continue
            scope = cast(Construct, self.node.find_child(service.construct_id))
            for kind, path in (("", f"/{service.path_prefix}"), ("Proxy", f"/{service.path_prefix}/{{proxy+}}")):
                module.ApiGatewayMethodSettings(
                    scope, f"{kind}GetCacheSettings", rest_api_id=self.rest_api.id, stage_name=self.stage.stage_name,
                    method_path=method_settings_path(path, "GET"),
                    settings=self._settings(
                        caching_enabled=True,
                        cache_ttl_in_seconds=self.config.cache_ttl_seconds,
                        require_authorization_for_cache_control=True,
                        unauthorized_cache_control_header_strategy="SUCCEED_WITH_RESPONSE_HEADER",
                    ),
                )

    def _cloudwatch_account(self, partition: str, account_id: str) -> aws.api_gateway_account.ApiGatewayAccount:
        # aws:SourceAccount only: the account-level CloudWatch role (aws_api_gateway_account) serves
        # every API of the account and region, and API Gateway's documentation names no
        # aws:SourceArn it sends when assuming it; a guessed one would break execution logging.
        trust = policy.service_trust(self, "CloudWatchTrust", sid="ApiGatewayAssumes",
                                     service="apigateway.amazonaws.com", account_id=account_id)
        role = aws.iam_role.IamRole(
            self, "CloudWatchRole", name=physical_name(NameKind.IAM_ROLE, self.prefix, "apigateway-cloudwatch"),
            assume_role_policy=trust.json,
        )
        attachment = aws.iam_role_policy_attachment.IamRolePolicyAttachment(
            self, "CloudWatchRolePolicy", role=role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
        )
        return aws.api_gateway_account.ApiGatewayAccount(
            self, "Account", cloudwatch_role_arn=role.arn, depends_on=[attachment],
        )

    # WAF --------------------------------------------------------------------------------------------

    def _firewall(self, log_key_arn: str, log_retention_days: int) -> None:
        waf = aws.wafv2_web_acl
        name = physical_name(NameKind.WAF, self.prefix, "api")

        def visibility(metric: str) -> dict[str, Any]:
            return {"cloudwatch_metrics_enabled": True, "sampled_requests_enabled": True,
                    "metric_name": f"{name}-{metric}"}

        def managed(rule_group: str, priority: int, count_rules: tuple[str, ...] = ()) -> aws.wafv2_web_acl.Wafv2WebAclRule:
            statement: dict[str, Any] = {"name": rule_group, "vendor_name": "AWS"}
            if count_rules:
                statement["rule_action_override"] = [
                    {"name": rule, "action_to_use": {"count": {}}} for rule in count_rules
                ]
            return waf.Wafv2WebAclRule(
                name=rule_group,
                priority=priority,
                override_action=waf.Wafv2WebAclRuleOverrideAction(none=waf.Wafv2WebAclRuleOverrideActionNone()),
                statement={"managed_rule_group_statement": statement},
                visibility_config=waf.Wafv2WebAclRuleVisibilityConfig(**visibility(rule_group)),
            )

        acl = waf.Wafv2WebAcl(
            self,
            "WebAcl",
            name=name,
            description="AWS common rules, known bad inputs and a per-IP rate limit in front of the API",
            scope="REGIONAL",
            default_action=waf.Wafv2WebAclDefaultAction(allow=waf.Wafv2WebAclDefaultActionAllow()),
            visibility_config=waf.Wafv2WebAclVisibilityConfig(**visibility("web-acl")),
            rule=[
                # Its SizeRestrictions_BODY blocks bodies over 8 KB unless counted (waf_allow_large_bodies).
                managed("AWSManagedRulesCommonRuleSet", 10,
                        ("SizeRestrictions_BODY",) if self.config.waf_allow_large_bodies else ()),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 20),
                waf.Wafv2WebAclRule(
                    name="RateLimitPerIp",
                    priority=30,
                    action=waf.Wafv2WebAclRuleAction(block=waf.Wafv2WebAclRuleActionBlock()),
                    statement={"rate_based_statement": {
                        "limit": self.config.waf_rate_limit_per_5_minutes, "aggregate_key_type": "IP",
                    }},
                    visibility_config=waf.Wafv2WebAclRuleVisibilityConfig(**visibility("rate-limit")),
                ),
            ],
        )
        self.web_acl = acl
        aws.wafv2_web_acl_association.Wafv2WebAclAssociation(
            self, "WebAclAssociation", resource_arn=self.stage.arn, web_acl_arn=acl.arn,
        )
        # WAF writes only to log groups named aws-waf-logs-*.
        logs = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "WafLogGroup", name=physical_name(NameKind.LOG_GROUP, f"aws-waf-logs-{self.prefix}-api"),
            retention_in_days=log_retention_days, kms_key_id=log_key_arn, lifecycle=self.keep,
        )
        logging = aws.wafv2_web_acl_logging_configuration
        logging.Wafv2WebAclLoggingConfiguration(
            self, "WafLogging", resource_arn=acl.arn, log_destination_configs=[logs.arn],
            redacted_fields=[logging.Wafv2WebAclLoggingConfigurationRedactedFields(
                single_header=logging.Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(name="authorization"),
            )],
        )

    # Custom domain ----------------------------------------------------------------------------------

    def _custom_domain(self, dns: DnsConfig) -> str:
        domain_name = dns.api_host_name
        zone = public_zone(self, "Zone", dns)
        certificate = aws.acm_certificate.AcmCertificate(
            self, "Certificate", domain_name=domain_name, validation_method="DNS",
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        # One name, so exactly one validation record.
        option = f"one({certificate.fqn}.domain_validation_options)"
        record = aws.route53_record.Route53Record(
            self,
            "CertificateValidationRecord",
            zone_id=zone.zone_id,
            name=f"${{{option}.resource_record_name}}",
            type=f"${{{option}.resource_record_type}}",
            records=[f"${{{option}.resource_record_value}}"],
            ttl=300,
            allow_overwrite=True,
        )
        validation = aws.acm_certificate_validation.AcmCertificateValidation(
            self, "CertificateValidation", certificate_arn=certificate.arn, validation_record_fqdns=[record.fqdn],
        )
        domain_module = aws.api_gateway_domain_name
        domain = domain_module.ApiGatewayDomainName(
            self,
            "DomainName",
            domain_name=domain_name,
            regional_certificate_arn=validation.certificate_arn,
            endpoint_configuration=domain_module.ApiGatewayDomainNameEndpointConfiguration(types=["REGIONAL"]),
            security_policy="TLS_1_2",
        )
        aws.api_gateway_base_path_mapping.ApiGatewayBasePathMapping(
            self, "BasePathMapping", api_id=self.rest_api.id, stage_name=self.stage.stage_name,
            domain_name=domain.domain_name,
        )
        aws.route53_record.Route53Record(
            self,
            "AliasRecord",
            zone_id=zone.zone_id,
            name=domain.domain_name,
            type="A",
            alias=aws.route53_record.Route53RecordAlias(
                name=domain.regional_domain_name, zone_id=domain.regional_zone_id, evaluate_target_health=False,
            ),
        )
        return f"https://{domain_name}"
