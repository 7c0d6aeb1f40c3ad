"""Where the synthesized stacks will be applied: a real AWS account, or the local emulator.

The emulator target (moto server on 127.0.0.1) exists so the test suite can run a
real `terraform init/plan/apply` end to end. Everything it changes lives here, in
one place, and never reaches what real accounts get:

- provider and S3-backend settings that point at the emulator (test keys,
  path-style S3, one endpoint for every service);
- moto's fixed account id in `allowed_account_ids`;
- the resource types moto does not implement, which constructs leave out when
  `target.supports(type)` is false;
- `ignore_changes` for attributes moto reports back differently from what was
  sent (drift that is moto's, not ours), so a second plan is clean;
- moto's one account (`account_id`): what IAM allows once per account is created once
  (the Jenkins issuer's OIDC provider, one per pipeline account on AWS; modules/cicd/pipeline.py
  groups accounts by `account_id`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cdktf import S3BackendEndpointConfig

from modules import aws

EMULATOR_ACCOUNT_ID = "123456789012"

# Every service the stacks call; the provider gets the emulator URL for each.
EMULATOR_SERVICES = (
    "acm", "amp", "apigateway", "applicationautoscaling", "cloudfront", "cloudwatch",
    "cloudwatchlogs", "dynamodb", "ec2", "ecr", "ecs", "elbv2", "events", "grafana", "iam",
    "kms", "lambda", "logs", "rds", "route53", "s3", "secretsmanager", "servicediscovery", "sns", "ssm",
    "sts", "wafv2", "xray",
)

# moto 5.2 has no API for these (measured: an apply against tests/harness/moto_server.py fails on them).
EMULATOR_UNSUPPORTED_RESOURCE_TYPES = frozenset({
    "aws_cloudfront_response_headers_policy",
    "aws_prometheus_alert_manager_definition",
    "aws_grafana_workspace",
    "aws_grafana_role_association",
    "aws_grafana_workspace_api_key",
    "aws_grafana_workspace_saml_configuration",
    # moto 5.2.5 has no StartDBInstanceAutomatedBackupsReplication (measured: not in moto/rds/responses.py).
    "aws_db_instance_automated_backups_replication",
    # moto 5.2.5 answers CreateMonitoringSubscription with 404 (measured: prod-frontend's apply, issue 22).
    "aws_cloudfront_monitoring_subscription",
})

# Attributes moto echoes back differently, so a second plan would never be clean. Each entry names
# the moto 5.2.5 behaviour; tests/test_emulator_target.py asserts the real value of each on the
# stacks real accounts get. Where moto could be mended at server start (tests/harness/moto_server.py:
# RDS Performance Insights, ECS service settings, VPC-link integrations, the NLB's PrivateLink
# setting, Prometheus workspace keys) it is, and the entry is gone.
EMULATOR_IGNORE_CHANGES: dict[str, tuple[str, ...]] = {
    # After CreateDBParameterGroup and ModifyDBParameterGroup, the provider's read-back through moto's
    # DescribeDBParameters finds none of the group's parameters, so a second plan adds every one again
    # (measured with a plain aws_db_parameter_group on moto 5.2.5; moto also ignores `Source`).
    "aws_db_parameter_group": ("parameter",),
    # moto's CloudFront model (moto cloudfront/models.py) rebuilds the distribution config from a few
    # fields: an origin loses its OriginAccessControlId; the default behaviour reports empty function
    # associations and legacy ForwardedValues/TTL defaults beside the cache policy; the viewer
    # certificate reports CloudFrontDefaultCertificate = true beside an ACM certificate.
    "aws_cloudfront_distribution": ("origin", "default_cache_behavior", "viewer_certificate"),
}


@dataclass(frozen=True, slots=True)
class Target:
    """`Target()` is a real AWS account; `Target(emulator_endpoint=url)` is the emulator.

    `plan_only`: the stacks are only planned, by a principal that may read and nothing more (the
    pipeline's plan roles): providers assume no role (they run as the caller, which is already the
    plan role), and backends reach state through the read-and-lock role the stack names for it.
    """

    emulator_endpoint: str | None = None
    plan_only: bool = False

    @classmethod
    def from_environ(cls) -> Target:
        """`CDKTF_TARGET=local` with `EMULATOR_ENDPOINT=http://127.0.0.1:PORT` selects the emulator;
        `CDKTF_PLAN_ONLY=true` synthesizes for plans by a read-only principal."""
        kind = os.environ.get("CDKTF_TARGET", "aws")
        plan_only = os.environ.get("CDKTF_PLAN_ONLY", "false")
        if plan_only not in ("true", "false"):
            raise ValueError(f"CDKTF_PLAN_ONLY must be 'true' or 'false', got {plan_only!r}")
        if kind == "aws":
            return cls(plan_only=plan_only == "true")
        if kind == "local":
            endpoint = os.environ.get("EMULATOR_ENDPOINT", "")
            if not endpoint.startswith("http://127.0.0.1:"):
                raise ValueError(
                    f"CDKTF_TARGET=local needs EMULATOR_ENDPOINT=http://127.0.0.1:PORT, got {endpoint!r}"
                )
            return cls(emulator_endpoint=endpoint)
        raise ValueError(f"CDKTF_TARGET must be 'aws' or 'local', got {kind!r}")

    @property
    def is_emulator(self) -> bool:
        return self.emulator_endpoint is not None

    def account_id(self, configured: str) -> str:
        return EMULATOR_ACCOUNT_ID if self.is_emulator else configured

    def role_arn(self, configured: str | None) -> str | None:
        """The role a backend assumes (the emulator has no roles)."""
        return None if self.is_emulator else configured

    def provider_role_arn(self, configured: str | None) -> str | None:
        """The role a provider assumes: none on the emulator, and none for a plan-only synth."""
        return None if self.is_emulator or self.plan_only else configured

    def supports(self, resource_type: str) -> bool:
        """False for resource types the target cannot create; constructs leave those out."""
        return not (self.is_emulator and resource_type in EMULATOR_UNSUPPORTED_RESOURCE_TYPES)

    def provider_settings(self) -> dict[str, Any]:
        """Extra `AwsProvider` arguments for this target."""
        if not self.is_emulator:
            return {}
        return {
            "access_key": "test",
            "secret_key": "test",
            "skip_credentials_validation": True,
            "skip_metadata_api_check": "true",
            "skip_region_validation": True,
            "s3_use_path_style": True,
            "endpoints": [aws.provider.AwsProviderEndpoints(
                # `lambda` is a Python keyword: the binding's argument is `lambda_`.
                **{"lambda_" if service == "lambda" else service: self.emulator_endpoint
                   for service in EMULATOR_SERVICES}
            )],
        }

    def s3_backend_settings(self) -> dict[str, Any]:
        """Extra `S3Backend` arguments for this target."""
        if not self.is_emulator:
            return {}
        url = self.emulator_endpoint
        return {
            "access_key": "test",
            "secret_key": "test",
            "skip_credentials_validation": True,
            "skip_metadata_api_check": True,
            "skip_region_validation": True,
            "use_path_style": True,
            "endpoints": S3BackendEndpointConfig(s3=url, dynamodb=url, sts=url, iam=url),
        }

    def ignore_changes(self, resource_type: str) -> tuple[str, ...]:
        return EMULATOR_IGNORE_CHANGES.get(resource_type, ()) if self.is_emulator else ()
