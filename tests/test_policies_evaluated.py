"""The synthesized bucket, key and trust policies, evaluated (checks/iam.py) against the requests
the system really makes, and against the attacks next to them.

Policies come from the session synth with their Terraform references resolved to example values
(tests/harness/policies.py). Requests are written out here from what each caller sends:
- Terraform's S3 backend (Terraform docs, "Backend Type: s3", permissions: s3:ListBucket on the
  bucket, s3:GetObject/PutObject on the state key, s3:DeleteObject and PutObject on `<key>.tflock`
  with `use_lockfile`, dynamodb:GetItem/PutItem/DeleteItem with `dynamodb:LeadingKeys` the lock ids
  `<bucket>/<key>` and `<bucket>/<key>-md5`); no encryption header (modules/core/stack.py);
- S3 on the caller's behalf to KMS (`kms:ViaService` s3.<region>.amazonaws.com, encryption context
  `aws:s3:arn` = the object's ARN without a bucket key; "Amazon S3 encryption context", S3 User Guide);
- CloudFront OAC (CloudFront Developer Guide, "Restrict access to an Amazon S3 origin": service
  principal cloudfront.amazonaws.com, `AWS:SourceArn` = the distribution);
- S3 server access logging (S3 User Guide, "Grant permissions to the logging service principal":
  logging.s3.amazonaws.com, `aws:SourceArn` = the source bucket, `aws:SourceAccount`);
- the pipeline's role chain (infra main -> deploy role -> state-access role; the CI role reaches none) and the
  services that assume the stacks' roles, with the `aws:SourceAccount`/`aws:SourceArn` they send.
"""

from __future__ import annotations

from typing import Any

import pytest

from checks.iam import Decision, Principal, Request, evaluate
from tests.harness.policies import Policies

REGION = "eu-west-1"
STATE_ACCOUNT = "111111111111"  # environments/shared.hcl: state { account_id }, also the registry account
ACCOUNTS = {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}  # environments/*.hcl
STATE_BUCKET = "webapp-tfstate-111111111111"
LOCK_TABLE = "webapp-tfstate-locks"
STRANGER = "999999999999"
TLS = {"aws:SecureTransport": "true"}
PLAIN_HTTP = {"aws:SecureTransport": "false"}

ALLOW, DENY, NEITHER = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY


@pytest.fixture(scope="module")
def policies(synth) -> Policies:
    return Policies(synth.stacks)


def session(account: str, role: str, name: str = "terraform") -> Principal:
    return Principal.aws(f"arn:aws:sts::{account}:assumed-role/{role}/{name}")


def decide(identity: list[dict[str, Any]], resource_policy: dict[str, Any] | None, principal: Principal,
           action: str, resource: str, context: dict[str, Any], resource_account: str) -> Decision:
    result = evaluate(identity, resource_policy, Request(action=action, resource=resource, principal=principal,
                                                         context=context), resource_account=resource_account)
    return result.decision


# ------------------------------------------------------------------ Terraform's S3 backend

class StateAccess:
    """One environment's state-access role against the state bucket, lock table and state key."""

    def __init__(self, policies: Policies, env: str) -> None:
        role = policies.named("bootstrap", "aws_iam_role", f"StateBackend/{env.title()}Access/Role")
        bucket = policies.named("bootstrap", "aws_s3_bucket", "StateBackend/Bucket")
        key = policies.named("bootstrap", "aws_kms_key", "StateBackend/Key")
        table = policies.named("bootstrap", "aws_dynamodb_table", "StateBackend/LockTable")
        self.env = env
        self.identity = policies.role_policies("bootstrap", role)
        self.bucket_policy = policies.bucket_policy("bootstrap", bucket)
        self.key_policy = policies.key_policy("bootstrap", key)
        self.key_arn = policies.value("bootstrap", f"aws_kms_key.{key}.arn")
        self.table_arn = policies.value("bootstrap", f"aws_dynamodb_table.{table}.arn")
        self.principal = session(STATE_ACCOUNT, f"webapp-{env}-tfstate")

    def s3(self, action: str, key: str | None, context: dict[str, Any] | None = None, *,
           principal: Principal | None = None, identity: list[dict[str, Any]] | None = None,
           bucket_policy: dict[str, Any] | None = None) -> Decision:
        resource = f"arn:aws:s3:::{STATE_BUCKET}" + (f"/{key}" if key is not None else "")
        return decide(self.identity if identity is None else identity,
                      self.bucket_policy if bucket_policy is None else bucket_policy,
                      principal or self.principal, action, resource, {**TLS, **(context or {})}, STATE_ACCOUNT)

    def lock_item(self, action: str, lock_ids: list[str]) -> Decision:
        return decide(self.identity, None, self.principal, action, self.table_arn,
                      {**TLS, "dynamodb:LeadingKeys": lock_ids}, STATE_ACCOUNT)

    def key(self, action: str, via: str, context: dict[str, str]) -> Decision:
        return decide(self.identity, self.key_policy, self.principal, action, self.key_arn,
                      {**TLS, "kms:ViaService": f"{via}.{REGION}.amazonaws.com", **context}, STATE_ACCOUNT)


@pytest.fixture(scope="module", params=sorted(ACCOUNTS))
def state(request, policies) -> StateAccess:
    return StateAccess(policies, request.param)


def test_the_backend_reads_and_writes_its_state_without_an_encryption_header(state):
    key = f"{state.env}/network.tfstate"
    assert state.s3("s3:GetObject", key) is ALLOW
    assert state.s3("s3:PutObject", key) is ALLOW
    # A workspace other than default: `<workspace_key_prefix>/<workspace>/<key>`.
    assert state.s3("s3:PutObject", f"{state.env}/feature/{key}") is ALLOW


def test_the_backend_takes_and_releases_its_lockfile(state):
    """`use_lockfile`: a conditional PutObject (If-None-Match, no condition key) and a DeleteObject."""
    lock = f"{state.env}/network.tfstate.tflock"
    assert state.s3("s3:PutObject", lock) is ALLOW
    assert state.s3("s3:GetObject", lock) is ALLOW
    assert state.s3("s3:DeleteObject", lock) is ALLOW


def test_the_backend_lists_its_environments_prefix(state):
    assert state.s3("s3:ListBucket", None, {"s3:prefix": f"{state.env}/"}) is ALLOW


def test_the_backend_takes_its_dynamodb_lock(state):
    key = f"{STATE_BUCKET}/{state.env}/network.tfstate"
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"):
        assert state.lock_item(action, [key]) is ALLOW, action
        assert state.lock_item(action, [f"{key}-md5"]) is ALLOW, action


def test_s3_and_dynamodb_use_the_state_key_for_the_environments_objects(state):
    object_arn = f"arn:aws:s3:::{STATE_BUCKET}/{state.env}/network.tfstate"
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert state.key(action, "s3", {"kms:EncryptionContext:aws:s3:arn": object_arn}) is ALLOW, action
    table = {"kms:EncryptionContext:aws:dynamodb:tableName": LOCK_TABLE}
    for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"):
        context = table if action != "kms:DescribeKey" else {}
        assert state.key(action, "dynamodb", context) is ALLOW, action


def test_rejects_another_environments_state(state):
    other = next(env for env in sorted(ACCOUNTS) if env != state.env)
    assert state.s3("s3:GetObject", f"{other}/network.tfstate") is NEITHER
    assert state.s3("s3:PutObject", f"{other}/network.tfstate") is NEITHER
    assert state.s3("s3:DeleteObject", f"{other}/network.tfstate.tflock") is NEITHER
    assert state.s3("s3:ListBucket", None, {"s3:prefix": f"{other}/"}) is NEITHER
    assert state.s3("s3:ListBucket", None, {"s3:prefix": ""}) is NEITHER
    assert state.lock_item("dynamodb:PutItem", [f"{STATE_BUCKET}/{other}/network.tfstate"]) is NEITHER
    other_object = f"arn:aws:s3:::{STATE_BUCKET}/{other}/network.tfstate"
    assert state.key("kms:Decrypt", "s3", {"kms:EncryptionContext:aws:s3:arn": other_object}) is NEITHER
    # The key straight from KMS, not through S3 for an object of its prefix:
    assert decide(state.identity, state.key_policy, state.principal, "kms:Decrypt", state.key_arn, TLS,
                  STATE_ACCOUNT) is NEITHER


def test_rejects_plain_http(state):
    key = f"{state.env}/network.tfstate"
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert state.s3(action, key, PLAIN_HTTP) is DENY, action
    assert state.s3("s3:ListBucket", None, {**PLAIN_HTTP, "s3:prefix": f"{state.env}/"}) is DENY


@pytest.mark.parametrize("headers", [
    {"s3:x-amz-server-side-encryption": "AES256"},  # what `encrypt = true` without kms_key_id sends
    {"s3:x-amz-server-side-encryption": "aws:kms",
     "s3:x-amz-server-side-encryption-aws-kms-key-id": f"arn:aws:kms:{REGION}:{STATE_ACCOUNT}:key/another-key"},
    {"s3:x-amz-server-side-encryption": "aws:kms"},  # S3 would pick aws/s3
    {"s3:x-amz-server-side-encryption-customer-algorithm": "AES256"},  # SSE-C
])
def test_rejects_a_state_upload_asking_for_another_encryption(state, headers):
    assert state.s3("s3:PutObject", f"{state.env}/network.tfstate", headers) is DENY


def test_an_upload_naming_the_state_key_is_taken(state):
    headers = {"s3:x-amz-server-side-encryption": "aws:kms",
               "s3:x-amz-server-side-encryption-aws-kms-key-id": state.key_arn}
    assert state.s3("s3:PutObject", f"{state.env}/network.tfstate", headers) is ALLOW


def test_rejects_another_account_reaching_the_bucket_directly(state):
    """Cross-account, the bucket policy would have to allow: it allows no one."""
    anything = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    for principal in (session(ACCOUNTS[state.env], f"webapp-{state.env}-deploy"), session(STRANGER, "intruder")):
        assert state.s3("s3:GetObject", f"{state.env}/network.tfstate", principal=principal,
                        identity=anything) is NEITHER


def test_the_policy_before_issue_25_refused_every_state_write(state):
    """The regression this file exists for: the old Denies used StringNotEqualsIfExists, which is
    true when the header is missing ("IAM JSON policy elements: Condition operators", ...IfExists)."""
    old = {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyOtherEncryption", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{STATE_BUCKET}/*",
         "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}}]}
    assert state.s3("s3:PutObject", f"{state.env}/network.tfstate", bucket_policy=old) is DENY
    assert state.s3("s3:PutObject", f"{state.env}/network.tfstate.tflock", bucket_policy=old) is DENY


# ------------------------------------------------------------------ the role chain to the state

def deploy_role(policies: Policies, env: str) -> str:
    return policies.named("shared-cicd", "aws_iam_role", f"Pipeline/{env.title()}/DeployRole")


@pytest.mark.parametrize("env", sorted(ACCOUNTS))
def test_the_deploy_role_assumes_its_environments_state_role(policies, env):
    trust = policies.trust_policy("bootstrap", policies.named("bootstrap", "aws_iam_role",
                                                              f"StateBackend/{env.title()}Access/Role"))
    deploy_permissions = policies.role_policies("shared-cicd", deploy_role(policies, env))
    state_role = f"arn:aws:iam::{STATE_ACCOUNT}:role/webapp-{env}-tfstate"
    deploy = session(ACCOUNTS[env], f"webapp-{env}-deploy")
    assert decide(deploy_permissions, trust, deploy, "sts:AssumeRole", state_role, TLS, STATE_ACCOUNT) is ALLOW

    anything = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                          "Resource": "*"}]}]
    for intruder in (session(ACCOUNTS[env], "someone-else"), session(STRANGER, f"webapp-{env}-deploy")):
        assert decide(anything, trust, intruder, "sts:AssumeRole", state_role, TLS, STATE_ACCOUNT) is NEITHER
    other = next(e for e in sorted(ACCOUNTS) if e != env)
    other_permissions = policies.role_policies("shared-cicd", deploy_role(policies, other))
    assert decide(other_permissions, trust, session(ACCOUNTS[other], f"webapp-{other}-deploy"), "sts:AssumeRole",
                  state_role, TLS, STATE_ACCOUNT) is NEITHER


# Issue 17: the CI role reaches no deploy role, and no static principal of the pipeline is trusted by
# default (the attack paths and the OIDC trusts are in tests/test_trust_boundaries.py).

@pytest.mark.parametrize("env", sorted(ACCOUNTS))
def test_the_ci_role_reaches_no_deploy_role(policies, env):
    ci_role = policies.named("shared-cicd", "aws_iam_role", "Pipeline/CiRole")
    trust = policies.trust_policy("shared-cicd", deploy_role(policies, env))
    target = f"arn:aws:iam::{ACCOUNTS[env]}:role/webapp-{env}-deploy"
    ci = session(STATE_ACCOUNT, "webapp-ci", "jenkins")
    assert decide(policies.role_policies("shared-cicd", ci_role), trust, ci, "sts:AssumeRole", target, TLS,
                  ACCOUNTS[env]) is NEITHER


def test_the_former_prod_approvals_role_no_longer_reaches_prod(policies):
    """Before issue 17 prod's deploy role trusted webapp-jenkins-prod-approvals (static keys held in
    Jenkins) with the external id webapp-prod-deploy; now only infra main's id tokens."""
    trust = policies.trust_policy("shared-cicd", deploy_role(policies, "prod"))
    target = f"arn:aws:iam::{ACCOUNTS['prod']}:role/webapp-prod-deploy"
    may_assume = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                           "Resource": target}]}]
    approvals = session(STATE_ACCOUNT, "webapp-jenkins-prod-approvals", "release")
    assert decide(may_assume, trust, approvals, "sts:AssumeRole", target, {"sts:ExternalId": "webapp-prod-deploy"},
                  ACCOUNTS["prod"]) is NEITHER


def test_no_static_principal_assumes_the_ci_role_by_default(policies):
    """shared.hcl leaves static_credentials_fallback off: the former Jenkins role with its external
    id is refused."""
    trust = policies.trust_policy("shared-cicd", policies.named("shared-cicd", "aws_iam_role", "Pipeline/CiRole"))
    target = f"arn:aws:iam::{STATE_ACCOUNT}:role/webapp-ci"
    jenkins = session(STATE_ACCOUNT, "webapp-jenkins", "build")
    assert decide([], trust, jenkins, "sts:AssumeRole", target, {"sts:ExternalId": "webapp-jenkins-ci"},
                  STATE_ACCOUNT) is NEITHER


# ------------------------------------------------------------------ the frontend: OAC, its key, its logs

class Frontend:
    def __init__(self, policies: Policies, env: str) -> None:
        stack = f"{env}-frontend"
        self.account = ACCOUNTS[env]
        site = policies.named(stack, "aws_s3_bucket", "Frontend/SiteBucket")
        logs = policies.named(stack, "aws_s3_bucket", "Frontend/LogBucket")
        distribution = policies.named(stack, "aws_cloudfront_distribution", "Frontend/Distribution")
        self.site_policy = policies.bucket_policy(stack, site)
        self.log_policy = policies.bucket_policy(stack, logs)
        self.key_policy = policies.key_policy(stack, policies.named(stack, "aws_kms_key", "Frontend/SiteKey"))
        self.site_arn = policies.value(stack, f"aws_s3_bucket.{site}.arn")
        self.log_arn = policies.value(stack, f"aws_s3_bucket.{logs}.arn")
        self.distribution_arn = policies.value(stack, f"aws_cloudfront_distribution.{distribution}.arn")
        self.deploy_permissions = policies.role_policies("shared-cicd", deploy_role(policies, env))
        self.cloudfront = Principal.service("cloudfront.amazonaws.com")


@pytest.fixture(scope="module", params=sorted(ACCOUNTS))
def frontend(request, policies) -> Frontend:
    return Frontend(policies, request.param)


def test_cloudfront_reads_the_site_through_its_distributions_oac(frontend):
    source = {**TLS, "aws:SourceArn": frontend.distribution_arn}
    assert decide([], frontend.site_policy, frontend.cloudfront, "s3:GetObject", f"{frontend.site_arn}/index.html",
                  source, frontend.account) is ALLOW
    # A missing key answers 404, not 403, so the error pages work (ListBucket).
    assert decide([], frontend.site_policy, frontend.cloudfront, "s3:ListBucket", frontend.site_arn, source,
                  frontend.account) is ALLOW
    assert decide([], frontend.key_policy, frontend.cloudfront, "kms:Decrypt", "*", source,
                  frontend.account) is ALLOW


def test_rejects_another_distribution_and_plain_http(frontend):
    other = {**TLS, "aws:SourceArn": f"arn:aws:cloudfront::{STRANGER}:distribution/EOTHER"}
    assert decide([], frontend.site_policy, frontend.cloudfront, "s3:GetObject", f"{frontend.site_arn}/index.html",
                  other, frontend.account) is NEITHER
    assert decide([], frontend.key_policy, frontend.cloudfront, "kms:Decrypt", "*", other,
                  frontend.account) is NEITHER
    assert decide([], frontend.site_policy, frontend.cloudfront, "s3:GetObject", f"{frontend.site_arn}/index.html",
                  {**PLAIN_HTTP, "aws:SourceArn": frontend.distribution_arn}, frontend.account) is DENY
    # Without OAC (no SourceArn) CloudFront gets nothing.
    assert decide([], frontend.site_policy, frontend.cloudfront, "s3:GetObject", f"{frontend.site_arn}/index.html",
                  TLS, frontend.account) is NEITHER


def test_the_deploy_role_publishes_the_site(frontend, policies):
    env = next(e for e, a in ACCOUNTS.items() if a == frontend.account)
    deploy = session(frontend.account, f"webapp-{env}-deploy", "publish")
    for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"):
        assert decide(frontend.deploy_permissions, frontend.site_policy, deploy, action,
                      f"{frontend.site_arn}/index.html", TLS, frontend.account) is ALLOW, action
    assert decide(frontend.deploy_permissions, frontend.site_policy, deploy, "s3:PutObject",
                  f"{frontend.site_arn}/index.html", PLAIN_HTTP, frontend.account) is DENY


def test_s3_delivers_the_sites_access_logs(frontend):
    logging_service = Principal.service("logging.s3.amazonaws.com")
    source = {**TLS, "aws:SourceArn": frontend.site_arn, "aws:SourceAccount": frontend.account}
    target = f"{frontend.log_arn}/s3-access/site/2026-12-06-00-00-00-EXAMPLE"
    assert decide([], frontend.log_policy, logging_service, "s3:PutObject", target, source,
                  frontend.account) is ALLOW
    for attack in ({**source, "aws:SourceArn": "arn:aws:s3:::someone-elses-bucket"},
                   {**source, "aws:SourceAccount": STRANGER}):
        assert decide([], frontend.log_policy, logging_service, "s3:PutObject", target, attack,
                      frontend.account) is NEITHER
    assert decide([], frontend.log_policy, logging_service, "s3:PutObject", f"{frontend.log_arn}/elsewhere/x",
                  source, frontend.account) is NEITHER


# ------------------------------------------------------------------ the API tier's keys and trusts

API_ENVS = sorted(ACCOUNTS)


@pytest.mark.parametrize("env", API_ENVS)
def test_cloudwatch_alarms_publish_to_the_encrypted_alarm_topic(policies, env):
    stack, account = f"{env}-api", ACCOUNTS[env]
    key_policy = policies.key_policy(stack, policies.named(stack, "aws_kms_key", "Api/AlarmKey"))
    cloudwatch = Principal.service("cloudwatch.amazonaws.com")
    alarm = f"arn:aws:cloudwatch:{REGION}:{account}:alarm:webapp-{env}-api-service1-unhealthy"
    source = {**TLS, "aws:SourceAccount": account, "aws:SourceArn": alarm}
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert decide([], key_policy, cloudwatch, action, "*", source, account) is ALLOW, action
    for attack in ({**source, "aws:SourceAccount": STRANGER},
                   {**source, "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{account}:alarm:someone-else"}):
        assert decide([], key_policy, cloudwatch, "kms:GenerateDataKey", "*", attack, account) is NEITHER


@pytest.mark.parametrize("env", API_ENVS)
def test_prometheus_alerts_publish_to_the_encrypted_alert_topic(policies, env):
    """Amazon Managed Service for Prometheus alert manager -> SNS (AMP User Guide, "Set up the SNS
    topic": aps.amazonaws.com with aws:SourceAccount and aws:SourceArn = the workspace)."""
    account, stack, name = ACCOUNTS[env], "shared-cicd", env.title()
    topic = policies.named(stack, "aws_sns_topic", f"Monitoring/{name}/AlertTopic/Topic")
    topic_arn = policies.value(stack, f"aws_sns_topic.{topic}.arn")
    workspace = policies.named(stack, "aws_prometheus_workspace", f"Monitoring/{name}/Workspace")
    source = {**TLS, "aws:SourceAccount": account,
              "aws:SourceArn": policies.value(stack, f"aws_prometheus_workspace.{workspace}.arn")}
    prometheus = Principal.service("aps.amazonaws.com")
    topic_policy = policies.topic_policy(stack, topic)
    key_policy = policies.key_policy(stack, policies.named(stack, "aws_kms_key", f"Monitoring/{name}/AlertTopic/Key"))
    assert decide([], topic_policy, prometheus, "sns:Publish", topic_arn, source, account) is ALLOW
    assert decide([], key_policy, prometheus, "kms:GenerateDataKey", "*", source, account) is ALLOW
    other_workspace = {**source, "aws:SourceArn": f"arn:aws:aps:{REGION}:{account}:workspace/ws-other"}
    assert decide([], topic_policy, prometheus, "sns:Publish", topic_arn, other_workspace, account) is NEITHER
    assert decide([], key_policy, prometheus, "kms:GenerateDataKey", "*", other_workspace, account) is NEITHER
    assert decide([], topic_policy, prometheus, "sns:Publish", topic_arn, {**source, **PLAIN_HTTP}, account) is DENY


@pytest.mark.parametrize("env", API_ENVS)
def test_service_trusts_hold_the_confused_deputy_conditions(policies, env):
    """Each service role is assumable by its service for this account only. What the services send
    (README "First deploy on a real account: checklist"): ECS sends aws:SourceAccount and
    aws:SourceArn, API Gateway aws:SourceAccount; if a service omits a key, the trust refuses it -
    which these vectors show and only a real account can confirm."""
    stack, account = f"{env}-api", ACCOUNTS[env]
    tasks = Principal.service("ecs-tasks.amazonaws.com")
    task_source = {"aws:SourceAccount": account,
                   "aws:SourceArn": f"arn:aws:ecs:{REGION}:{account}:task/webapp-{env}-api/0123456789abcdef"}
    for suffix in ("Service1/ExecutionRole", "Service1/TaskRole", "Migrations/ExecutionRole"):
        role = policies.named(stack, "aws_iam_role", suffix)
        trust, arn = policies.trust_policy(stack, role), policies.value(stack, f"aws_iam_role.{role}.arn")
        assert decide([], trust, tasks, "sts:AssumeRole", arn, task_source, account) is ALLOW, suffix
        assert decide([], trust, tasks, "sts:AssumeRole", arn, {**task_source, "aws:SourceAccount": STRANGER},
                      account) is NEITHER, suffix
        assert decide([], trust, tasks, "sts:AssumeRole", arn, {"aws:SourceAccount": account},
                      account) is NEITHER, suffix  # no aws:SourceArn: refused

    role = policies.named(stack, "aws_iam_role", "Api/Gateway/CloudWatchRole")
    trust, arn = policies.trust_policy(stack, role), policies.value(stack, f"aws_iam_role.{role}.arn")
    gateway = Principal.service("apigateway.amazonaws.com")
    assert decide([], trust, gateway, "sts:AssumeRole", arn, {"aws:SourceAccount": account}, account) is ALLOW
    assert decide([], trust, gateway, "sts:AssumeRole", arn, {"aws:SourceAccount": STRANGER}, account) is NEITHER
    assert decide([], trust, gateway, "sts:AssumeRole", arn, {}, account) is NEITHER  # no aws:SourceAccount


@pytest.mark.parametrize("env", API_ENVS)
def test_vpc_flow_logs_assume_their_role_for_this_account_only(policies, env):
    stack, account = f"{env}-network", ACCOUNTS[env]
    role = policies.named(stack, "aws_iam_role", "Network/FlowLogRole")
    trust, arn = policies.trust_policy(stack, role), policies.value(stack, f"aws_iam_role.{role}.arn")
    flow_logs = Principal.service("vpc-flow-logs.amazonaws.com")
    # Flow logs send the flow log's ARN as aws:SourceArn (Amazon VPC User Guide, flow logs IAM role).
    mine = {"aws:SourceAccount": account, "aws:SourceArn": f"arn:aws:ec2:{REGION}:{account}:vpc-flow-log/fl-0123"}
    assert decide([], trust, flow_logs, "sts:AssumeRole", arn, mine, account) is ALLOW
    theirs = {"aws:SourceAccount": STRANGER, "aws:SourceArn": f"arn:aws:ec2:{REGION}:{STRANGER}:vpc-flow-log/fl-0123"}
    assert decide([], trust, flow_logs, "sts:AssumeRole", arn, theirs, account) is NEITHER
    other_resource = {**mine, "aws:SourceArn": f"arn:aws:ec2:{REGION}:{account}:instance/i-0123"}
    assert decide([], trust, flow_logs, "sts:AssumeRole", arn, other_resource, account) is NEITHER


# ------------------------------------------------------------------ the database's logins and alarm topics

@pytest.mark.parametrize("env", API_ENVS)
def test_each_service_connects_to_the_database_as_its_own_login_only(policies, env):
    """IAM database authentication (AWS RDS user guide, "Creating and using an IAM policy for IAM
    database access"): the token's request is rds-db:connect on
    arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<database user>."""
    stack, account, database = f"{env}-api", ACCOUNTS[env], f"{env}-database"
    instances = [policies.value(database, f"aws_db_instance.{name}.resource_id")
                 for name in database_instances(policies, database)]
    for service, other in (("service1", "service2"), ("service2", "service1")):
        identity = policies.role_policies(stack, policies.named(stack, "aws_iam_role", f"Api/{service.title()}/TaskRole"))
        task = session(account, f"webapp-{env}-{service}-task", "task")

        def connect(user: str, resource_id: str, where: str = account, identity: list[dict[str, Any]] = identity,
                    task: Principal = task) -> Decision:
            return decide(identity, None, task, "rds-db:connect",
                          f"arn:aws:rds-db:{REGION}:{where}:dbuser:{resource_id}/{user}", TLS, account)

        for resource_id in instances:  # the primary and each replica the reader name may send it to
            assert connect(f"svc_{service}", resource_id) is ALLOW, resource_id
            for user in (f"svc_{other}", "app_admin", "rdsadmin", "*"):
                assert connect(user, resource_id) is NEITHER, user
        assert connect(f"svc_{service}", "db-ANOTHERDATABASEINTHEACCOUNT") is NEITHER
        assert connect(f"svc_{service}", instances[0], STRANGER) is NEITHER
    migrations = policies.role_policies(stack, policies.named(stack, "aws_iam_role", "Api/Migrations/TaskRole"))
    flyway = session(account, f"webapp-{env}-migrations-task", "task")
    assert decide(migrations, None, flyway, "rds-db:connect",
                  f"arn:aws:rds-db:{REGION}:{account}:dbuser:{instances[0]}/svc_service1", TLS, account) is NEITHER


def database_instances(policies: Policies, stack: str) -> list[str]:
    return sorted(policies.stacks[stack]["resource"]["aws_db_instance"])


@pytest.mark.parametrize("env", API_ENVS)
@pytest.mark.parametrize("tier, topic_path, alarm_name", [
    ("api", "Api/AlarmTopic", "webapp-{env}-api-service1-5xx"),
    ("database", "Database/AlarmTopic", "webapp-{env}-postgres-CPUUtilization"),
])
def test_alarm_topics_take_their_tiers_alarms_over_tls_only(policies, env, tier, topic_path, alarm_name):
    """CloudWatch alarm actions publish as cloudwatch.amazonaws.com with aws:SourceAccount and
    aws:SourceArn = the alarm (CloudWatch User Guide, "Using Amazon CloudWatch alarms", SNS topic policy)."""
    stack, account = f"{env}-{tier}", ACCOUNTS[env]
    topic = policies.named(stack, "aws_sns_topic", topic_path)
    topic_arn = policies.value(stack, f"aws_sns_topic.{topic}.arn")
    topic_policy = policies.topic_policy(stack, topic)
    cloudwatch = Principal.service("cloudwatch.amazonaws.com")
    alarm = f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{alarm_name.format(env=env)}"
    source = {"aws:SourceAccount": account, "aws:SourceArn": alarm}
    assert decide([], topic_policy, cloudwatch, "sns:Publish", topic_arn, {**TLS, **source}, account) is ALLOW
    assert decide([], topic_policy, cloudwatch, "sns:Publish", topic_arn, {**PLAIN_HTTP, **source}, account) is DENY
    for attack in ({**TLS, **source, "aws:SourceAccount": STRANGER},
                   {**TLS, **source, "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{account}:alarm:someone-else"}):
        assert decide([], topic_policy, cloudwatch, "sns:Publish", topic_arn, attack, account) is NEITHER
    # The account's own principals (through IAM) publish too, but never over plain HTTP.
    operator = session(account, f"webapp-{env}-deploy", "operator")
    publish = [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn}]}]
    assert decide(publish, topic_policy, operator, "sns:Publish", topic_arn, TLS, account) is ALLOW
    assert decide(publish, topic_policy, operator, "sns:Publish", topic_arn, PLAIN_HTTP, account) is DENY


# ------------------------------------------------------------------ the master-password function

@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_master_password_function_writes_its_secret_and_sets_its_writers_password_only(policies, env):
    """The function's role (modules/database/database.py, _master_password_function) against the calls
    the handler makes, and the ones next to them it must not make."""
    stack, account = f"{env}-database", ACCOUNTS[env]
    role = policies.named(stack, "aws_iam_role", "Database/MasterPasswordRole")
    identity = policies.role_policies(stack, role)
    secret = policies.value(stack, "aws_secretsmanager_secret."
                            f"{policies.named(stack, 'aws_secretsmanager_secret', 'Database/MasterSecret')}.arn")
    key = policies.value(stack, f"aws_kms_key.{policies.named(stack, 'aws_kms_key', 'Database/Key')}.arn")
    function = session(account, f"webapp-{env}-database-master-password", f"webapp-{env}-database-master-password")

    def may(action: str, resource: str, context: dict[str, Any] | None = None) -> Decision:
        return decide(identity, None, function, action, resource, context or {}, account)

    for action in ("DescribeSecret", "GetSecretValue", "PutSecretValue", "UpdateSecretVersionStage"):
        assert may(f"secretsmanager:{action}", secret) is ALLOW, action
    assert may("secretsmanager:GetRandomPassword", "*") is ALLOW
    other_secret = f"arn:aws:secretsmanager:{REGION}:{account}:secret:webapp-{env}/api/payments-api-key-AbCdEf"
    primary = f"arn:aws:rds:{REGION}:{account}:db:webapp-{env}-postgres"
    assert may("rds:ModifyDBInstance", primary) is ALLOW and may("rds:DescribeDBInstances", primary) is ALLOW
    # Secrets Manager names the secret in the encryption context (User Guide, "Secret encryption and decryption").
    through_secrets_manager = {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com",
                               "kms:EncryptionContext:SecretARN": secret}
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert may(action, key, through_secrets_manager) is ALLOW
        assert may(action, key) is NEITHER  # not directly: only as Secrets Manager's caller
        assert may(action, key, {**through_secrets_manager, "kms:EncryptionContext:SecretARN": other_secret}) \
            is NEITHER  # nor for another secret under the same key
    # Nothing else: another secret, the secret's deletion or policy, other instances, deleting the database.
    for action in ("GetSecretValue", "PutSecretValue"):
        assert may(f"secretsmanager:{action}", other_secret) is NEITHER
    for action in ("DeleteSecret", "PutResourcePolicy", "RotateSecret"):
        assert may(f"secretsmanager:{action}", secret) is NEITHER
    for instance in (f"webapp-{env}-postgres-replica-0", "webapp-other-postgres"):
        assert may("rds:ModifyDBInstance", f"arn:aws:rds:{REGION}:{account}:db:{instance}") is NEITHER
    for action in ("rds:DeleteDBInstance", "rds:RebootDBInstance", "rds:ModifyDBInstance"):
        assert may(action, primary if action != "rds:ModifyDBInstance" else f"{primary}-x") is NEITHER
    # Only Lambda assumes the role (it sends no source keys for an execution role); no principal of the
    # account, nor another account, does.
    trust = policies.trust_policy(stack, role)
    role_arn = f"arn:aws:iam::{account}:role/webapp-{env}-database-master-password"
    assert decide([], trust, Principal.service("lambda.amazonaws.com"), "sts:AssumeRole", role_arn, {},
                  account) is ALLOW
    for other in (session(account, "webapp-other"), session(STRANGER, "webapp-other"),
                  Principal.service("ecs-tasks.amazonaws.com")):
        assert decide([], trust, other, "sts:AssumeRole", role_arn, {}, account) is not ALLOW
