"""The frontend tier: a private S3 bucket served by CloudFront through origin access control."""

from __future__ import annotations

from typing import Any

from cdktf import TerraformIterator, TerraformOutput, TerraformResourceLifecycle, TerraformStack, Token
from constructs import Construct

from modules import aws
from modules.core import buckets, kms, policy
from modules.core.dns import public_zone
from modules.core.naming import NameKind, physical_name
from modules.core.settings import DnsConfig
from modules.core.stack import TierStack
from modules.frontend.config import FrontendConfig

# AWS's managed cache policy "Managed-CachingOptimized": its id is the same in every
# account (a published constant), so no lookup is needed at plan time.
CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ORIGIN_ID = "site-bucket"
ENTRY_POINT = "index.html"
# Prefixes in the log bucket: CloudFront's standard logs and the site bucket's access logs.
CLOUDFRONT_LOG_PREFIX = "cloudfront/"
SITE_ACCESS_LOG_PREFIX = "s3-access/site/"
# CloudFront's certificate and a CLOUDFRONT-scope web ACL (and its logs) live here.
GLOBAL_REGION = "us-east-1"
# What the deploy command (`python -m delivery deploy-frontend`) reads from state.
OUTPUT_BUCKET_NAME = "bucket_name"
OUTPUT_DISTRIBUTION_ID = "distribution_id"
OUTPUT_DISTRIBUTION_DOMAIN_NAME = "distribution_domain_name"
OUTPUT_SITE_URL = "site_url"


class Frontend(Construct):
    """Creates the static site of one environment.

    - the site bucket: private (all public-access blocks, ACLs disabled), versioned,
      SSE-KMS with its own key (rotated; CloudFront may decrypt only for this
      distribution), noncurrent versions expired, access logs to the log bucket, a
      policy letting only this distribution's OAC read objects and refusing non-TLS;
    - the log bucket: ACLs on for CloudFront's log delivery, SSE-S3, versioned,
      public access blocked, objects expired after `log_retention_days`;
    - CloudFront: OAC (sigv4, always sign) on the bucket's REST endpoint,
      `index.html` as root object, redirect to HTTPS, HTTP/2 and 3, IPv6,
      compression, CachingOptimized, a security-headers policy (HSTS preload,
      nosniff, DENY framing, referrer policy, CSP that lets the site call `api_origin`), SPA fallback (403/404 ->
      /index.html, 200), price class, optional Origin Shield, standard logs;
    - optional WAFv2 web ACL (CLOUDFRONT scope, us-east-1) with AWS managed rules,
      a per-IP rate limit and KMS-encrypted logs;
    - with `dns`: an ACM certificate in us-east-1 validated through the looked-up
      Route 53 zone, the host name as alias (TLSv1.2_2021, SNI), A and AAAA
      alias records. Without: CloudFront's default domain and certificate.

    `prevent_destroy` on both buckets, the site key and the WAF log group and its key follows
    `config.prevent_destroy`;
    `force_destroy` is always off, so a bucket holding objects is never deleted.

    Attributes: `bucket_name`, `distribution_id`, `distribution_arn`,
    `distribution_domain_name`, `site_url`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: FrontendConfig, dns: DnsConfig | None,
                 name_prefix: str, bucket_unique: str, api_origin: str) -> None:
        super().__init__(scope, construct_id)
        stack = TerraformStack.of(self)
        if not isinstance(stack, TierStack):
            raise TypeError("Frontend must be built inside a TierStack (it needs the us-east-1 provider)")
        self.stack = stack
        self.config = config
        self.prefix = name_prefix
        self.bucket_unique = bucket_unique
        self.api_origin = api_origin
        self.host_name = config.host_name(dns.zone_name) if dns else None
        # Stateful resources: protected where the environment says so (data, not a name).
        self.keep = TerraformResourceLifecycle(prevent_destroy=config.prevent_destroy)

        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Identity")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")
        self.account_id, self.partition = identity.account_id, partition.partition

        self.log_bucket = self._log_bucket()
        self.bucket = aws.s3_bucket.S3Bucket(
            self, "SiteBucket", bucket=config.site_bucket(name_prefix, bucket_unique),
            force_destroy=False, lifecycle=self.keep,
        )
        access_control = aws.cloudfront_origin_access_control.CloudfrontOriginAccessControl(
            self, "OriginAccessControl", name=physical_name(NameKind.GENERIC, name_prefix, "frontend"),
            description=f"CloudFront signs every request to {self.bucket.bucket}",
            origin_access_control_origin_type="s3", signing_behavior="always", signing_protocol="sigv4",
        )
        certificate_arn, zone_id = self._certificate(dns) if dns else (None, None)
        web_acl_arn = self._web_acl() if config.waf_enabled else None
        self.distribution = self._distribution(access_control.id, certificate_arn, web_acl_arn)
        self._site_bucket_settings()
        if zone_id is not None:
            self._alias_records(zone_id)

        self.bucket_name = self.bucket.bucket
        self.distribution_id = self.distribution.id
        # moto has no CreateMonitoringSubscription: the emulator target leaves the subscription out.
        if config.additional_metrics and self.stack.target.supports("aws_cloudfront_monitoring_subscription"):
            module = aws.cloudfront_monitoring_subscription
            module.CloudfrontMonitoringSubscription(
                self, "AdditionalMetrics", distribution_id=self.distribution.id,
                monitoring_subscription=module.CloudfrontMonitoringSubscriptionMonitoringSubscription(
                    realtime_metrics_subscription_config=module.CloudfrontMonitoringSubscriptionMonitoringSubscriptionRealtimeMetricsSubscriptionConfig(
                        realtime_metrics_subscription_status="Enabled"),
                ),
            )
        self.distribution_arn = self.distribution.arn
        self.distribution_domain_name = self.distribution.domain_name
        self.site_url = f"https://{self.host_name or self.distribution.domain_name}"
        self._outputs()

    # -- buckets -----------------------------------------------------------------------------

    def _log_bucket(self) -> aws.s3_bucket.S3Bucket:
        bucket = aws.s3_bucket.S3Bucket(
            self, "LogBucket", bucket=self.config.log_bucket(self.prefix, self.bucket_unique),
            force_destroy=False, lifecycle=self.keep,
        )
        bucket_id = bucket.id
        # CloudFront standard logs are written by the awslogsdelivery account through an
        # ACL grant, so this one bucket keeps ACLs on (the site bucket has them off).
        # SSE-S3: S3 server access logs can only be delivered to SSE-S3 buckets, and
        # CloudFront's log delivery does not send SSE-KMS parameters.
        self.log_bucket_defaults = buckets.SecureBucket(self, "Log", bucket, buckets.BucketSettings(
            kms_key_arn=None, acls=True,
            expiry=buckets.Expiry(rule_id="expire-logs", expiration_days=self.config.log_retention_days,
                                  noncurrent_days=1, abort_multipart_days=1),
        ))
        owner = aws.data_aws_canonical_user_id.DataAwsCanonicalUserId(self, "CanonicalUser")
        log_delivery = aws.data_aws_cloudfront_log_delivery_canonical_user_id.DataAwsCloudfrontLogDeliveryCanonicalUserId(
            self, "CloudFrontLogDelivery"
        )
        acl = aws.s3_bucket_acl
        self.log_acl = acl.S3BucketAcl(
            self, "LogAcl", bucket=bucket_id, depends_on=[self.log_bucket_defaults.ownership],
            access_control_policy=acl.S3BucketAclAccessControlPolicy(
                owner=acl.S3BucketAclAccessControlPolicyOwner(id=owner.id),
                grant=[
                    acl.S3BucketAclAccessControlPolicyGrant(
                        permission="FULL_CONTROL",
                        grantee=acl.S3BucketAclAccessControlPolicyGrantGrantee(type="CanonicalUser", id=owner.id),
                    ),
                    acl.S3BucketAclAccessControlPolicyGrant(
                        permission="FULL_CONTROL",
                        grantee=acl.S3BucketAclAccessControlPolicyGrantGrantee(
                            type="CanonicalUser", id=log_delivery.id
                        ),
                    ),
                ],
            ),
        )
        return bucket

    def _site_bucket_settings(self) -> None:
        """Everything on the site bucket that refers to the distribution or the log bucket."""
        bucket, bucket_id = self.bucket, self.bucket.id
        key_policy = policy.document(
            self,
            "SiteKeyPolicy",
            policy.account_root_admin(self.account_id, self.partition),
            policy.statement(
                sid="CloudFrontDecryptsForThisDistribution",
                actions=["kms:Decrypt"],
                resources=["*"],
                principals=[{"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}],
                conditions=[{"test": "StringEquals", "variable": "AWS:SourceArn",
                             "values": [self.distribution.arn]}],
            ),
        )
        key = kms.key(self, "SiteKey", description=f"Encrypts the {self.prefix} frontend site bucket",
                      policy_json=key_policy.json, alias_prefix=self.prefix, alias="frontend-site", lifecycle=self.keep)
        site = buckets.SecureBucket(self, "Site", bucket, buckets.BucketSettings(
            kms_key_arn=key.arn,
            expiry=buckets.Expiry(rule_id="expire-replaced-site-files",
                                  noncurrent_days=self.config.noncurrent_version_expiration_days,
                                  expire_delete_markers=True, abort_multipart_days=1),
        ))
        site.policy(grants=[
            policy.statement(
                sid="CloudFrontReadsThroughOriginAccessControl",
                actions=["s3:GetObject"],
                resources=[f"{bucket.arn}/*"],
                principals=[{"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}],
                conditions=[{"test": "StringEquals", "variable": "AWS:SourceArn",
                             "values": [self.distribution.arn]}],
            ),
            # With ListBucket S3 answers a missing key with 404, not 403; the SPA fallback then
            # needs only 404, and a 403 (a WAF block, a broken key grant) stays a 403. Viewers
            # cannot list through CloudFront: the cache policy forwards no query string.
            policy.statement(
                sid="CloudFrontSeesMissingKeys",
                actions=["s3:ListBucket"],
                resources=[bucket.arn],
                principals=[{"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}],
                conditions=[{"test": "StringEquals", "variable": "AWS:SourceArn",
                             "values": [self.distribution.arn]}],
            ),
        ], depends_on=[site.public_access_block])
        log_bucket = self.log_bucket
        log_bucket_policy = self.log_bucket_defaults.policy(grants=[
            policy.statement(
                sid="S3WritesSiteAccessLogs",
                actions=["s3:PutObject"],
                resources=[f"{log_bucket.arn}/{SITE_ACCESS_LOG_PREFIX}*"],
                principals=[{"type": "Service", "identifiers": ["logging.s3.amazonaws.com"]}],
                conditions=[
                    {"test": "ArnLike", "variable": "aws:SourceArn", "values": [bucket.arn]},
                    {"test": "StringEquals", "variable": "aws:SourceAccount", "values": [self.account_id]},
                ],
            ),
        ])
        # S3 checks, when logging is turned on, that the target bucket's policy lets it write.
        aws.s3_bucket_logging.S3BucketLoggingA(
            self, "SiteAccessLogging", bucket=bucket_id, target_bucket=log_bucket.id,
            target_prefix=SITE_ACCESS_LOG_PREFIX, depends_on=[log_bucket_policy],
        )

    # -- CloudFront ----------------------------------------------------------------------------

    def _security_headers(self) -> str | None:
        """The response headers policy id, or None where the target has no such API (moto)."""
        if not self.stack.target.supports("aws_cloudfront_response_headers_policy"):
            return None
        headers = aws.cloudfront_response_headers_policy
        security = headers.CloudfrontResponseHeadersPolicySecurityHeadersConfig(
            strict_transport_security=headers.CloudfrontResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurity(
                access_control_max_age_sec=self.config.hsts_max_age_seconds,
                include_subdomains=True, preload=True, override=True,
            ),
            content_type_options=headers.CloudfrontResponseHeadersPolicySecurityHeadersConfigContentTypeOptions(
                override=True
            ),
            frame_options=headers.CloudfrontResponseHeadersPolicySecurityHeadersConfigFrameOptions(
                frame_option="DENY", override=True
            ),
            referrer_policy=headers.CloudfrontResponseHeadersPolicySecurityHeadersConfigReferrerPolicy(
                referrer_policy="strict-origin-when-cross-origin", override=True
            ),
            content_security_policy=headers.CloudfrontResponseHeadersPolicySecurityHeadersConfigContentSecurityPolicy(
                content_security_policy=self.config.security_policy(self.api_origin), override=True
            ),
        )
        policy_resource = headers.CloudfrontResponseHeadersPolicy(
            self, "SecurityHeaders", name=physical_name(NameKind.GENERIC, self.prefix, "frontend-security-headers"),
            comment="HSTS (preload), nosniff, frame DENY, referrer policy and CSP on every response",
            security_headers_config=security,
        )
        return str(policy_resource.id)

    def _distribution(self, access_control_id: str, certificate_arn: str | None,
                      web_acl_arn: str | None) -> aws.cloudfront_distribution.CloudfrontDistribution:
        cloudfront = aws.cloudfront_distribution
        config = self.config
        origin_shield = (
            cloudfront.CloudfrontDistributionOriginOriginShield(
                enabled=True, origin_shield_region=config.origin_shield_region
            )
            if config.origin_shield_region else None
        )
        if certificate_arn:
            certificate = cloudfront.CloudfrontDistributionViewerCertificate(
                acm_certificate_arn=certificate_arn, ssl_support_method="sni-only",
                minimum_protocol_version="TLSv1.2_2021",
            )
        else:
            # *.cloudfront.net: CloudFront fixes the protocol floor of its own certificate.
            certificate = cloudfront.CloudfrontDistributionViewerCertificate(cloudfront_default_certificate=True)
        # Only 404 (a client-side route): CloudFront cannot tell an origin's 403 from a WAF block,
        # and turning those into 200 + index.html would hide blocks and broken origins alike.
        spa_fallback = [
            cloudfront.CloudfrontDistributionCustomErrorResponse(
                error_code=404, response_code=200, response_page_path=f"/{ENTRY_POINT}",
                error_caching_min_ttl=config.spa_fallback_ttl_seconds,
            )
        ]
        return cloudfront.CloudfrontDistribution(
            self,
            "Distribution",
            enabled=True,
            comment=f"{self.prefix} frontend",
            aliases=[self.host_name] if self.host_name else None,
            default_root_object=ENTRY_POINT,
            http_version="http2and3",
            is_ipv6_enabled=True,
            price_class=config.price_class.value,
            web_acl_id=web_acl_arn,
            origin=[cloudfront.CloudfrontDistributionOrigin(
                origin_id=ORIGIN_ID,
                # The REST endpoint (not the website endpoint): OAC signs requests to it.
                domain_name=self.bucket.bucket_regional_domain_name,
                origin_access_control_id=access_control_id,
                origin_shield=origin_shield,
            )],
            default_cache_behavior=cloudfront.CloudfrontDistributionDefaultCacheBehavior(
                target_origin_id=ORIGIN_ID,
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=["GET", "HEAD"],
                cached_methods=["GET", "HEAD"],
                compress=True,
                cache_policy_id=CACHING_OPTIMIZED_POLICY_ID,
                response_headers_policy_id=self._security_headers(),
            ),
            custom_error_response=spa_fallback,
            logging_config=cloudfront.CloudfrontDistributionLoggingConfig(
                bucket=self.log_bucket.bucket_domain_name, prefix=CLOUDFRONT_LOG_PREFIX, include_cookies=False,
            ),
            restrictions=cloudfront.CloudfrontDistributionRestrictions(
                geo_restriction=cloudfront.CloudfrontDistributionRestrictionsGeoRestriction(
                    restriction_type=config.geo_restriction.value,
                    locations=list(config.geo_restriction_countries) or None,
                )
            ),
            viewer_certificate=certificate,
            depends_on=[self.log_acl],
        )

    # -- certificate and DNS ---------------------------------------------------------------------

    def _certificate(self, dns: DnsConfig) -> tuple[str, str]:
        """An ACM certificate in us-east-1 for the host name, validated in the zone; (arn, zone id)."""
        assert self.host_name is not None
        zone = public_zone(self, "Zone", dns)
        global_provider = self.stack.provider_in(GLOBAL_REGION)
        certificate = aws.acm_certificate.AcmCertificate(
            self, "Certificate", provider=global_provider, domain_name=self.host_name, validation_method="DNS",
            tags={"Name": self.host_name},
            # A replacement certificate must be issued before the distribution lets go of this one.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        options = TerraformIterator.from_complex_list(certificate.domain_validation_options, "domain_name")
        records = aws.route53_record.Route53Record(
            self, "CertificateValidationRecord", for_each=options, zone_id=zone.zone_id,
            name=options.get_string("resource_record_name"), type=options.get_string("resource_record_type"),
            records=[options.get_string("resource_record_value")], ttl=300, allow_overwrite=True,
        )
        validation = aws.acm_certificate_validation.AcmCertificateValidation(
            self, "CertificateValidation", provider=global_provider, certificate_arn=certificate.arn,
            validation_record_fqdns=Token.as_list(TerraformIterator.from_resources(records).pluck_property("fqdn")),
        )
        return validation.certificate_arn, zone.zone_id

    def _alias_records(self, zone_id: str) -> None:
        assert self.host_name is not None, "alias records are made only with dns"
        for record_type, construct_id in (("A", "SiteAliasRecord"), ("AAAA", "SiteAliasRecordIpv6")):
            aws.route53_record.Route53Record(
                self, construct_id, zone_id=zone_id, name=self.host_name, type=record_type,
                alias=aws.route53_record.Route53RecordAlias(
                    name=self.distribution.domain_name, zone_id=self.distribution.hosted_zone_id,
                    evaluate_target_health=False,
                ),
            )

    # -- WAF ---------------------------------------------------------------------------------

    def _web_acl(self) -> str:
        """A CLOUDFRONT-scope web ACL (us-east-1) with AWS managed rules, a rate limit and logs."""
        waf = aws.wafv2_web_acl
        provider = self.stack.provider_in(GLOBAL_REGION)
        name = physical_name(NameKind.WAF, self.prefix, "frontend")

        def visibility(metric: str) -> aws.wafv2_web_acl.Wafv2WebAclRuleVisibilityConfig:
            return waf.Wafv2WebAclRuleVisibilityConfig(
                cloudwatch_metrics_enabled=True, sampled_requests_enabled=True, metric_name=metric
            )

        rules = [
            waf.Wafv2WebAclRule(
                name=group, priority=10 * (index + 1),
                override_action=waf.Wafv2WebAclRuleOverrideAction(none=waf.Wafv2WebAclRuleOverrideActionNone()),
                statement={"managed_rule_group_statement": {"name": group, "vendor_name": "AWS"}},
                visibility_config=visibility(group),
            )
            for index, group in enumerate(self.config.waf_managed_rule_groups)
        ]
        rules.append(waf.Wafv2WebAclRule(
            name="RateLimitPerIp", priority=10 * (len(rules) + 1),
            action=waf.Wafv2WebAclRuleAction(block=waf.Wafv2WebAclRuleActionBlock()),
            statement={"rate_based_statement": {
                "limit": self.config.waf_rate_limit_per_5_minutes, "aggregate_key_type": "IP",
            }},
            visibility_config=visibility("RateLimitPerIp"),
        ))
        acl = waf.Wafv2WebAcl(
            self, "WebAcl", provider=provider, name=name, scope="CLOUDFRONT",
            description=f"{self.prefix} frontend: AWS managed rules and a per-IP rate limit",
            default_action=waf.Wafv2WebAclDefaultAction(allow=waf.Wafv2WebAclDefaultActionAllow()),
            rule=rules,
            visibility_config=waf.Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True, sampled_requests_enabled=True, metric_name=name
            ),
        )
        self._web_acl_logs(acl.arn, provider)
        return str(acl.arn)

    def _web_acl_logs(self, acl_arn: str, provider: Any) -> None:
        # WAF only logs to a group named `aws-waf-logs-*` in the web ACL's region.
        log_group_name = physical_name(NameKind.LOG_GROUP, f"aws-waf-logs-{self.prefix}-frontend")
        log_group_arn = (
            f"arn:{self.partition}:logs:{GLOBAL_REGION}:{self.account_id}:log-group:{log_group_name}"
        )
        key_policy = policy.document(
            self,
            "WafLogKeyPolicy",
            policy.account_root_admin(self.account_id, self.partition),
            policy.cloudwatch_logs_encrypt(GLOBAL_REGION, log_group_arn),
        )
        key = kms.key(self, "WafLogKey", description=f"Encrypts {self.prefix} frontend WAF logs",
                      policy_json=key_policy.json, alias_prefix=self.prefix, alias="frontend-waf-logs",
                      provider=provider, lifecycle=self.keep)
        log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "WafLogGroup", provider=provider, name=log_group_name,
            retention_in_days=self.config.log_retention_days, kms_key_id=key.arn, lifecycle=self.keep,
        )
        aws.wafv2_web_acl_logging_configuration.Wafv2WebAclLoggingConfiguration(
            self, "WebAclLogging", provider=provider, resource_arn=acl_arn,
            log_destination_configs=[log_group.arn],
        )

    def _outputs(self) -> None:
        outputs = (
            (OUTPUT_BUCKET_NAME, self.bucket_name, "Site bucket (the deploy command uploads here)"),
            (OUTPUT_DISTRIBUTION_ID, self.distribution_id, "CloudFront distribution (the deploy command invalidates it)"),
            (OUTPUT_DISTRIBUTION_DOMAIN_NAME, self.distribution_domain_name, "CloudFront domain name"),
            (OUTPUT_SITE_URL, self.site_url, "Where the site is served"),
        )
        for name, value, description in outputs:
            output = TerraformOutput(self, "".join(part.title() for part in name.split("_")), value=value,
                                     description=description)
            # A fixed name: the deploy command reads it from state.
            output.override_logical_id(name)
