"""The IAM evaluator (checks/iam.py) against the examples of AWS's documentation.

Each vector names its page; the expected outcome is the one the page states. Pages (IAM User Guide
unless said otherwise):
- [operators] "IAM JSON policy elements: Condition operators"
  (reference_policies_elements_condition_operators), incl. "...IfExists condition operators", the
  missing-key note at the top, "Condition operator to check existence of condition keys" (Null) and
  the ARN section.
- [sets] "Creating a condition that tests multiple key values (set operations)"
  (reference_policies_multi-value-conditions): ForAllValues/ForAnyValue tables.
- [multikeys] "Conditions with multiple context keys or values"
  (reference_policies_condition-logic-multiple-context-keys-or-values): AND between operators and
  keys, OR between values, NOR for negated operators.
- [multivalued] "Multivalued context key examples" (reference_policies_condition_examples-multi-valued-
  context-keys): the ForAllValues:StringNotLike aws:TagKeys table.
- [evaluation] "Policy evaluation logic" and "Cross-account policy evaluation logic".
- [principal] "AWS JSON policy elements: Principal".
- [scp-s3] AWS Organizations User Guide, "Example SCPs for Amazon S3": deny uploads without
  `s3:x-amz-server-side-encryption` (Null "true").
"""

from __future__ import annotations

from typing import Any

import pytest

from checks.iam import Decision, Principal, Request, UnsupportedPolicy, evaluate, evaluate_policy

USER = Principal.aws("arn:aws:iam::111122223333:user/alice")
OTHER_ACCOUNT_USER = Principal.aws("arn:aws:iam::444455556666:user/bob")


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def decide(document: dict[str, Any], context: dict[str, Any] | None = None, *, action: str = "s3:PutObject",
           resource: str = "arn:aws:s3:::DOC-EXAMPLE-BUCKET/key", principal: Principal = USER) -> Decision:
    request = Request(action=action, resource=resource, principal=principal, context=context or {})
    resource_policy = any("Principal" in s or "NotPrincipal" in s for s in document["Statement"])
    return evaluate_policy(document, request, resource_policy=resource_policy).decision


ALLOW, DENY, NEITHER = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY


# ------------------------------------------------------------------ [operators] missing keys, IfExists

INSTANCE_TYPES = {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}


def run_instances(operator: str) -> dict[str, Any]:
    return policy({"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
                   "Condition": {operator: INSTANCE_TYPES}})


@pytest.mark.parametrize(("operator", "context", "expected"), [
    # [operators] "...IfExists": THISPOLICYDOESNOTWORK - resources without ec2:InstanceType fail StringLike.
    ("StringLike", {}, NEITHER),
    ("StringLike", {"ec2:InstanceType": "t2.micro"}, ALLOW),
    # [operators] the StringLikeIfExists version: a missing key makes the condition true.
    ("StringLikeIfExists", {}, ALLOW),
    ("StringLikeIfExists", {"ec2:InstanceType": "t2.micro"}, ALLOW),
    ("StringLikeIfExists", {"ec2:InstanceType": "c5.large"}, NEITHER),
])
def test_if_exists_run_instances_example(operator, context, expected):
    assert decide(run_instances(operator), context, action="ec2:RunInstances", resource="*") is expected


@pytest.mark.parametrize(("operator", "context", "expected"), [
    # [operators] top note: a missing key makes a negated operator (StringNotLike) true...
    ("StringNotLike", {}, DENY),
    ("StringNotEquals", {}, DENY),
    # [operators] "...IfExists": "If you are using an Effect: Deny element with a negated condition
    # operator like StringNotEqualsIfExists, the request is still denied even if the tag is missing."
    ("StringNotEqualsIfExists", {}, DENY),
    ("StringNotEqualsIfExists", {"s3:x-amz-server-side-encryption": "aws:kms"}, NEITHER),
    ("StringNotEqualsIfExists", {"s3:x-amz-server-side-encryption": "AES256"}, DENY),
    # ...and a non-negated one false.
    ("StringEquals", {}, NEITHER),
])
def test_negated_operators_with_a_missing_key(operator, context, expected):
    deny = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                   "Resource": "arn:aws:s3:::DOC-EXAMPLE-BUCKET/*",
                   "Condition": {operator: {"s3:x-amz-server-side-encryption": "aws:kms"}}})
    assert decide(deny, context) is expected


@pytest.mark.parametrize(("context", "expected"), [
    # [operators] Null: "true" (the key doesn't exist) - no temporary credentials, so allowed.
    ({}, ALLOW),
    ({"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}, NEITHER),
])
def test_null_token_issue_time_example(context, expected):
    document = policy({"Action": "ec2:*", "Effect": "Allow", "Resource": "*",
                       "Condition": {"Null": {"aws:TokenIssueTime": "true"}}})
    assert decide(document, context, action="ec2:RunInstances", resource="*") is expected


@pytest.mark.parametrize(("context", "expected"), [
    # [scp-s3] "Prevent Amazon S3 unencrypted object uploads": Null "true" on the header denies
    # an upload without it; a header of either kind passes this statement.
    ({}, DENY),
    ({"s3:x-amz-server-side-encryption": "AES256"}, NEITHER),
    ({"s3:x-amz-server-side-encryption": "aws:kms"}, NEITHER),
])
def test_null_deny_unencrypted_uploads_example(context, expected):
    document = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*",
                       "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}})
    assert decide(document, context) is expected


@pytest.mark.parametrize(("secure", "expected"), [
    # [operators] Boolean: BooleanExample denies every S3 action when aws:SecureTransport is false.
    ("false", DENY),
    ("true", NEITHER),
    ("FALSE", DENY),  # Bool compares "true"/"false" without regard to case
])
def test_bool_secure_transport_example(secure, expected):
    document = policy({"Sid": "BooleanExample", "Action": "s3:*", "Effect": "Deny", "Principal": "*",
                       "Resource": ["arn:aws:s3:::DOC-EXAMPLE-BUCKET", "arn:aws:s3:::DOC-EXAMPLE-BUCKET/*"],
                       "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert decide(document, {"aws:SecureTransport": secure}, action="s3:GetObject") is expected


@pytest.mark.parametrize(("max_keys", "expected"), [
    # [operators] Numeric: NumericLessThanEquals s3:max-keys 10 - list up to 10 objects at a time.
    ("10", ALLOW), ("3", ALLOW), ("11", NEITHER),
])
def test_numeric_max_keys_example(max_keys, expected):
    document = policy({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket",
                       "Condition": {"NumericLessThanEquals": {"s3:max-keys": "10"}}})
    assert decide(document, {"s3:max-keys": max_keys}, action="s3:ListBucket",
                  resource="arn:aws:s3:::example_bucket") is expected


@pytest.mark.parametrize(("source_ip", "expected"), [
    # [operators] IP address: 203.0.113.0/24 and 2001:DB8:1234:5678::/64.
    ("203.0.113.7", ALLOW), ("203.0.114.1", NEITHER), ("2001:db8:1234:5678::1", ALLOW),
])
def test_ip_address_example(source_ip, expected):
    document = policy({"Effect": "Allow", "Action": "someservice:*", "Resource": "*",
                       "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}})
    assert decide(document, {"aws:SourceIp": source_ip}, action="someservice:Do", resource="*") is expected


def test_arn_like_matches_each_arn_part_on_its_own_where_string_like_does_not():
    """[operators] ARN: the pattern `arn:aws:someservice:*:111122223333:finance/*` matches the value
    below with StringLike (the first * spans colons) but not with ArnLike."""
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    for operator, expected in (("StringLike", ALLOW), ("ArnLike", NEITHER), ("ArnEquals", NEITHER)):
        document = policy({"Effect": "Allow", "Action": "someservice:Do", "Resource": "*",
                           "Condition": {operator: {"aws:SourceArn": pattern}}})
        assert decide(document, {"aws:SourceArn": value}, action="someservice:Do", resource="*") is expected, operator


@pytest.mark.parametrize(("context", "expected"), [
    # [operators] ARN: SNS may send to the queue only on behalf of the topic in aws:SourceArn;
    # "If an IAM user attempts to perform this operation directly, the condition returns false".
    ({"aws:SourceArn": "arn:aws:sns:REGION:123456789012:TOPIC-ID"}, ALLOW),
    ({"aws:SourceArn": "arn:aws:sns:REGION:123456789012:OTHER-TOPIC"}, NEITHER),
    ({}, NEITHER),
])
def test_arn_equals_source_arn_queue_example(context, expected):
    document = policy({"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "SQS:SendMessage",
                       "Resource": "arn:aws:sqs:REGION:123456789012:QUEUE-ID",
                       "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:REGION:123456789012:TOPIC-ID"}}})
    principal = Principal.aws("arn:aws:iam::123456789012:user/sender")
    assert decide(document, context, action="sqs:SendMessage", resource="arn:aws:sqs:REGION:123456789012:QUEUE-ID",
                  principal=principal) is expected


def test_condition_keys_are_case_insensitive():
    """[operators] / "IAM JSON policy elements: Condition": condition key names are not case-sensitive."""
    document = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                       "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert decide(document, {"AWS:SECURETRANSPORT": "false"}) is DENY


# ------------------------------------------------------------------ [sets] ForAllValues / ForAnyValue

def get_item_policy() -> dict[str, Any]:
    return policy({"Effect": "Allow", "Action": "dynamodb:GetItem",
                   "Resource": "arn:aws:dynamodb:REGION:111122223333:table/Thread",
                   "Condition": {"ForAllValues:StringLike": {"dynamodb:requestedAttributes": [
                       "PostDateTime", "Message", "Tags"]}}})


def put_item_deny() -> dict[str, Any]:
    return policy({"Effect": "Deny", "Principal": "*", "Action": "dynamodb:PutItem",
                   "Resource": "arn:aws:dynamodb:REGION:111122223333:table/Thread",
                   "Condition": {"ForAnyValue:StringLike": {"dynamodb:requestedAttributes": ["ID", "PostDateTime"]}}})


@pytest.mark.parametrize(("attributes", "expected"), [
    (["PostDateTime", "Message"], ALLOW),   # every requested attribute is listed
    (["PostDateTime", "UserName"], NEITHER),  # the table: no match for UserName, so false
    ([], ALLOW),  # the note: an empty data set makes ForAllValues true
])
def test_for_all_values_example(attributes, expected):
    assert decide(get_item_policy(), {"dynamodb:requestedAttributes": attributes}, action="dynamodb:GetItem",
                  resource="arn:aws:dynamodb:REGION:111122223333:table/Thread") is expected


@pytest.mark.parametrize(("attributes", "expected"), [
    (["UserName", "Message", "PostDateTime"], DENY),  # the table: PostDateTime matches, so denied
    (["UserName"], NEITHER),  # "not denied by this policy"
    ([], NEITHER),  # the note: an empty data set makes ForAnyValue false
])
def test_for_any_value_example(attributes, expected):
    assert decide(put_item_deny(), {"dynamodb:requestedAttributes": attributes}, action="dynamodb:PutItem",
                  resource="arn:aws:dynamodb:REGION:111122223333:table/Thread") is expected


def test_for_any_value_with_a_missing_key_is_false_and_for_all_values_true():
    """[sets] the note, for a key the request lacks altogether; [multivalued] "The ForAllValues set
    operator also returns true if there are no context keys in the request"."""
    assert decide(put_item_deny(), {}, action="dynamodb:PutItem",
                  resource="arn:aws:dynamodb:REGION:111122223333:table/Thread") is NEITHER
    assert decide(get_item_policy(), {}, action="dynamodb:GetItem",
                  resource="arn:aws:dynamodb:REGION:111122223333:table/Thread") is ALLOW


@pytest.mark.parametrize(("tag_keys", "expected"), [
    # [multivalued] "Deny a single policy condition value for a multivalued context key": the table.
    (["key1:legal"], NEITHER),
    (["key1:hr", "key1:personnel"], NEITHER),
    (["key2:audit"], DENY),
    (None, DENY),  # "No aws:TagKeys in the request context": match
])
def test_for_all_values_string_not_like_tag_keys_example(tag_keys, expected):
    document = policy({"Sid": "DenyRestrictedTags", "Effect": "Deny", "Principal": "*",
                       "Action": ["iam:Tag*", "iam:UnTag*"], "Resource": ["*"],
                       "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}})
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert decide(document, context, action="iam:TagUser", resource="arn:aws:iam::111122223333:user/x") is expected


# ------------------------------------------------------------------ [multikeys] AND / OR / NOR

def department_policy() -> dict[str, Any]:
    # [multikeys] the ExamplePolicy bucket policy: StringEquals on two principal tags and ArnLike on
    # aws:PrincipalArn; every key must hold (AND), any listed value of a key will do (OR).
    return policy({"Sid": "ExamplePolicy", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                   "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket",
                   "Condition": {
                       "StringEquals": {"aws:PrincipalTag/department": ["finance", "hr", "legal"],
                                        "aws:PrincipalTag/role": ["audit", "security"]},
                       "ArnLike": {"aws:PrincipalArn": ["arn:aws:iam::222222222222:user/Ana",
                                                        "arn:aws:iam::222222222222:user/Mary"]}}})


@pytest.mark.parametrize(("user", "tags", "expected"), [
    ("Mary", {"department": "legal", "role": "audit"}, ALLOW),
    ("Mary", {"department": "legal"}, NEITHER),  # role missing: the AND fails
    ("Mary", {"department": "sales", "role": "audit"}, NEITHER),  # no listed value
    ("Bob", {"department": "hr", "role": "security"}, NEITHER),  # aws:PrincipalArn not listed
])
def test_multiple_keys_and_values_example(user, tags, expected):
    context = {f"aws:PrincipalTag/{k}": v for k, v in tags.items()}
    principal = Principal.aws(f"arn:aws:iam::222222222222:user/{user}")
    assert decide(department_policy(), context, action="s3:ListBucket",
                  resource="arn:aws:s3:::amzn-s3-demo-bucket", principal=principal) is expected


@pytest.mark.parametrize(("department", "expected"), [
    # [multikeys] negated operators: several values are NOR'ed - the value must match none of them.
    ("finance", NEITHER), ("hr", NEITHER), ("sales", DENY),
])
def test_negated_operator_with_several_values_is_nor(department, expected):
    document = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                       "Condition": {"StringNotEquals": {"aws:PrincipalTag/department": ["finance", "hr"]}}})
    assert decide(document, {"aws:PrincipalTag/department": department}) is expected


# ------------------------------------------------------------------ [evaluation] and [principal]

def bucket_allow(principal: Any) -> dict[str, Any]:
    return policy({"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject",
                   "Resource": "arn:aws:s3:::DOC-EXAMPLE-BUCKET/*"})


READ = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::DOC-EXAMPLE-BUCKET/*"}
DENY_READ = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}


def get(principal: Principal = USER) -> Request:
    return Request(action="s3:GetObject", resource="arn:aws:s3:::DOC-EXAMPLE-BUCKET/key", principal=principal)


def test_an_explicit_deny_overrides_any_allow():
    """[evaluation]: "An explicit deny in any policy overrides any allows"."""
    result = evaluate([policy(READ), policy(DENY_READ)], bucket_allow({"AWS": USER.arn}), get(),
                      resource_account="111122223333")
    assert result.decision is DENY
    assert [s.effect for s in result.statements] == ["Deny"]


def test_without_an_allow_the_request_is_implicitly_denied():
    """[evaluation]: by default all requests are implicitly denied."""
    assert evaluate([], None, get(), resource_account="111122223333").decision is NEITHER


def test_same_account_identity_or_resource_policy_allows():
    """[evaluation] "Identity-based policies with resource-based policies": within an account, an
    allow in either is enough."""
    assert evaluate([policy(READ)], None, get(), resource_account="111122223333").decision is ALLOW
    assert evaluate([], bucket_allow({"AWS": USER.arn}), get(), resource_account="111122223333").decision is ALLOW


def test_an_account_principal_delegates_to_the_accounts_identity_policies():
    """[principal] "AWS account principals": naming an account in a resource policy delegates to
    that account; its principals still need an identity-based policy that allows."""
    account = bucket_allow({"AWS": "arn:aws:iam::111122223333:root"})
    assert evaluate([], account, get(), resource_account="111122223333").decision is NEITHER
    assert evaluate([policy(READ)], account, get(), resource_account="111122223333").decision is ALLOW
    short_form = bucket_allow({"AWS": "111122223333"})
    assert evaluate([], short_form, get(), resource_account="111122223333").decision is NEITHER


def test_cross_account_needs_both_policies():
    """[evaluation] "Cross-account policy evaluation logic": the identity-based policy in the
    requesting account and the resource-based policy in the trusting account must both allow."""
    granted = bucket_allow({"AWS": OTHER_ACCOUNT_USER.arn})
    assert evaluate([], granted, get(OTHER_ACCOUNT_USER), resource_account="111122223333").decision is NEITHER
    assert evaluate([policy(READ)], None, get(OTHER_ACCOUNT_USER), resource_account="111122223333").decision is NEITHER
    assert evaluate([policy(READ)], granted, get(OTHER_ACCOUNT_USER),
                    resource_account="111122223333").decision is ALLOW


def test_a_role_is_matched_by_its_role_arn_from_a_session():
    """[principal] "IAM role principals" / "Role session principals": a policy naming the role
    ARN applies to its sessions; aws:PrincipalArn of a session is the role's ARN
    ("AWS global condition context keys", aws:PrincipalArn)."""
    session = Principal.aws("arn:aws:sts::111122223333:assumed-role/reader/alice")
    assert session.principal_arn == "arn:aws:iam::111122223333:role/reader"
    role_policy = bucket_allow({"AWS": "arn:aws:iam::111122223333:role/reader"})
    assert evaluate([], role_policy, get(session), resource_account="111122223333").decision is ALLOW
    other = Principal.aws("arn:aws:sts::111122223333:assumed-role/writer/alice")
    assert evaluate([], role_policy, get(other), resource_account="111122223333").decision is NEITHER


def test_service_principals_are_matched_by_name_and_not_by_aws_principals():
    """[principal] "AWS service principals"."""
    cloudfront = Principal.service("cloudfront.amazonaws.com")
    assert evaluate([], bucket_allow({"Service": "cloudfront.amazonaws.com"}), get(cloudfront)).decision is ALLOW
    assert evaluate([], bucket_allow({"Service": "logging.s3.amazonaws.com"}), get(cloudfront)).decision is NEITHER
    assert evaluate([], bucket_allow({"AWS": "arn:aws:iam::111122223333:root"}), get(cloudfront)).decision is NEITHER
    assert evaluate([], bucket_allow("*"), get(cloudfront)).decision is ALLOW


def test_not_action_and_not_resource():
    """"IAM JSON policy elements: NotAction" / "NotResource": the statement applies to everything
    except what they list."""
    document = policy({"Effect": "Deny", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::open/*"})
    assert decide(document, action="s3:GetObject", resource="arn:aws:s3:::closed/x") is DENY
    assert decide(document, action="iam:ListUsers", resource="arn:aws:s3:::closed/x") is NEITHER
    assert decide(document, action="s3:GetObject", resource="arn:aws:s3:::open/x") is NEITHER


def test_action_names_are_case_insensitive_and_wildcards_match():
    """"IAM JSON policy elements: Action": action names are case-insensitive; `*` and `?` wildcards."""
    document = policy({"Effect": "Allow", "Action": ["S3:get*", "s3:?utObject"], "Resource": "*"})
    assert decide(document, action="s3:GetObject") is ALLOW
    assert decide(document, action="s3:PutObject") is ALLOW
    assert decide(document, action="s3:DeleteObject") is NEITHER


def test_rejects_an_operator_it_does_not_implement():
    document = policy({"Effect": "Allow", "Action": "*", "Resource": "*",
                       "Condition": {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}}})
    with pytest.raises(UnsupportedPolicy, match="DateGreaterThan"):
        decide(document)
