"""IAM policy documents as `aws_iam_policy_document` data sources.

The provider renders and validates them, and checkov reads them, so a policy in
this project is never a hand-built JSON string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from constructs import Construct

from modules import aws


def statement(
    *,
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str] = (),
    effect: str = "Allow",
    principals: Sequence[dict[str, Any]] | None = None,
    conditions: Sequence[dict[str, Any]] | None = None,
) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocumentStatement:
    """One statement; `principals` like `{"type": "Service", "identifiers": [...]}`,
    `conditions` like `{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}`."""
    module = aws.data_aws_iam_policy_document
    return module.DataAwsIamPolicyDocumentStatement(
        sid=sid,
        effect=effect,
        actions=list(actions),
        # trust policies name principals, not resources
        resources=list(resources) or None,
        principals=[module.DataAwsIamPolicyDocumentStatementPrincipals(**p) for p in principals or ()] or None,
        condition=[module.DataAwsIamPolicyDocumentStatementCondition(**c) for c in conditions or ()] or None,
    )


def document(scope: Construct, construct_id: str, *statements: Any) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument:
    """A policy document data source; use `.json` where a policy string is needed."""
    return aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
        scope, construct_id, statement=list(statements)
    )


def service_trust(scope: Construct, construct_id: str, *, sid: str, service: str, account_id: str,
                  conditions: Sequence[dict[str, Any]] = ()) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument:
    """The trust policy of a role that the AWS `service` assumes, only on behalf of
    `account_id` (aws:SourceAccount, the confused-deputy guard), with any further `conditions`."""
    return document(scope, construct_id, statement(
        sid=sid,
        actions=["sts:AssumeRole"],
        principals=[{"type": "Service", "identifiers": [service]}],
        conditions=[{"test": "StringEquals", "variable": "aws:SourceAccount", "values": [account_id]}, *conditions],
    ))


def deny_insecure_transport(bucket_arn: str) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocumentStatement:
    """Deny every S3 request that does not use TLS."""
    return statement(
        sid="DenyInsecureTransport",
        effect="Deny",
        actions=["s3:*"],
        resources=[bucket_arn, f"{bucket_arn}/*"],
        principals=[{"type": "*", "identifiers": ["*"]}],
        conditions=[{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
    )


def account_root_admin(account_id: str, partition: str) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocumentStatement:
    """The key-policy statement that keeps a KMS key manageable through IAM."""
    return statement(
        sid="AccountAdministers",
        actions=["kms:*"],
        resources=["*"],
        principals=[{"type": "AWS", "identifiers": [f"arn:{partition}:iam::{account_id}:root"]}],
    )


def cloudwatch_logs_encrypt(region: str, *log_group_arns: str) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocumentStatement:
    """The key-policy statement that lets CloudWatch Logs in `region` encrypt the log groups
    `log_group_arns` name (a `*` in one matches several) with the key."""
    return statement(
        sid="CloudWatchLogsEncrypts",
        actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources=["*"],
        principals=[{"type": "Service", "identifiers": [f"logs.{region}.amazonaws.com"]}],
        conditions=[{
            "test": "ArnLike" if any("*" in arn for arn in log_group_arns) else "ArnEquals",
            "variable": "kms:EncryptionContext:aws:logs:arn",
            "values": list(log_group_arns),
        }],
    )


def cloudwatch_alarms_publish(account_id: str, partition: str, region: str, alarm_name_pattern: str) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocumentStatement:
    """The key-policy statement that lets CloudWatch alarms named `alarm_name_pattern` (`*`
    wildcards) publish to an SNS topic encrypted with the key."""
    return statement(
        sid="CloudWatchAlarmsPublish",
        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
        resources=["*"],
        principals=[{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}],
        conditions=[
            {"test": "StringEquals", "variable": "aws:SourceAccount", "values": [account_id]},
            {"test": "ArnLike", "variable": "aws:SourceArn",
             "values": [f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{alarm_name_pattern}"]},
        ],
    )


def topic_account_manages(topic_arn: str, account_root_arn: str) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocumentStatement:
    """The topic-policy statement that lets the account's principals (through IAM) manage and use the topic."""
    return statement(
        sid="AccountManages",
        actions=["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:AddPermission",
                 "sns:RemovePermission", "sns:DeleteTopic", "sns:Subscribe",
                 "sns:ListSubscriptionsByTopic", "sns:Publish"],
        resources=[topic_arn],
        principals=[{"type": "AWS", "identifiers": [account_root_arn]}],
    )


def deny_insecure_publish(topic_arn: str) -> aws.data_aws_iam_policy_document.DataAwsIamPolicyDocumentStatement:
    """Deny publishing to an SNS topic without TLS."""
    return statement(
        sid="DenyInsecureTransport",
        effect="Deny",
        actions=["sns:Publish"],
        resources=[topic_arn],
        principals=[{"type": "*", "identifiers": ["*"]}],
        conditions=[{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
    )


def alarm_topic_statements(topic_arn: str, account_id: str, partition: str, region: str,
                           alarm_name_pattern: str) -> list[Any]:
    """An alarm topic's policy: the account manages it, CloudWatch alarms named `alarm_name_pattern`
    publish to it, and nothing is published without TLS."""
    return [
        topic_account_manages(topic_arn, f"arn:{partition}:iam::{account_id}:root"),
        statement(
            sid="CloudWatchAlarmsPublish",
            actions=["sns:Publish"],
            resources=[topic_arn],
            principals=[{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}],
            conditions=[
                {"test": "StringEquals", "variable": "aws:SourceAccount", "values": [account_id]},
                {"test": "ArnLike", "variable": "aws:SourceArn",
                 "values": [f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{alarm_name_pattern}"]},
            ],
        ),
        deny_insecure_publish(topic_arn),
    ]
