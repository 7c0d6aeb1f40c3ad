"""The trust boundaries of delivery (issue 17), proven by evaluating the synthesized policies.

The security review found four ways past them. Each is written here as "principal X calls action Y
on resource Z" and must be denied by the policies `shared-cicd` and `bootstrap` synthesize; each
legitimate step of the pipelines must still be allowed. Decisions come from the project's IAM
evaluator (checks/iam.py) on policies whose Terraform references are resolved to example
values (tests/harness/policies.py).

Who calls, as AWS sees it:
- a Jenkins build exchanging its id token: a Federated principal (the account's IAM OIDC provider)
  calling sts:AssumeRoleWithWebIdentity, with the token's claims as `<issuer host>:aud` and
  `<issuer host>:sub` (IAM User Guide, "Available keys for AWS OIDC federation"); the Jenkins
  "OpenID Connect Provider" plugin's default `sub` is the job's URL (its README, "Registering the
  identity provider");
- a role session: `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.pipeline_roles import (
    ACCOUNTS,
    APP_BRANCH,
    APP_MAIN,
    INFRA_MAIN,
    INFRA_PULL_REQUEST,
    ISSUER,
    JOBS,
    LOCK_TABLE,
    REGION,
    REGISTRY,
    STATE_BUCKET,
    World,
)


@pytest.fixture(scope="module")
def world(synth) -> World:
    return World(synth.stacks)


def denied(result: Any) -> bool:
    return not result.allowed


ENVS = sorted(ACCOUNTS)


def migration_task_definition(env: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNTS[env]}:task-definition/webapp-{env}-migrations:7"


def cluster(env: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNTS[env]}:cluster/webapp-{env}-api"


def run_migration_context(env: str, *, exec_enabled: bool = False) -> dict[str, Any]:
    """What ECS puts in a RunTask request of the migration task that `delivery migrate` sends
    (cluster, tags, no ECS Exec)."""
    return {"ecs:cluster": cluster(env), "ecs:enable-execute-command": "true" if exec_enabled else "false",
            "aws:RequestTag/started-by": f"webapp-{env}-deploy", "aws:TagKeys": ["started-by"]}


# ================================================================ attack 1: app-repo code takes prod

@pytest.mark.parametrize("subject", [APP_MAIN, APP_BRANCH, INFRA_PULL_REQUEST, f"{JOBS}/webapp-infra/job/main-x/"])
@pytest.mark.parametrize("env", ENVS)
def test_attack_1_no_token_but_infrastructure_mains_gets_a_deploy_role(world, env, subject):
    """An edited app Jenkinsfile (or a pull request, or a branch named like main) asks STS for a
    deploy role with its build's id token: the trust names only infrastructure main's subject."""
    assert denied(world.token_assumes("deploy", env, subject))


@pytest.mark.parametrize("env", ENVS)
def test_attack_1_the_ci_role_reaches_no_deploy_role(world, env):
    """The application job's own role (the CI role) calls sts:AssumeRole on a deploy role: neither
    its permissions nor the deploy role's trust allow it."""
    target = world.arn("shared-cicd", world.cicd_role("deploy", env))
    assert denied(world.assumes_role("ci", None, target, world.deploy_trust(env), ACCOUNTS[env]))
    # Even a CI role given sts:AssumeRole on everything is refused by the deploy role's trust.
    anything = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}]
    assert denied(world.decide(anything, world.deploy_trust(env), world.session("ci"), "sts:AssumeRole", target,
                               resource_account=ACCOUNTS[env]))


@pytest.mark.parametrize("env", ENVS)
def test_attack_1_a_token_for_another_audience_is_refused(world, env):
    assert denied(world.token_assumes("deploy", env, INFRA_MAIN, audience="https://elsewhere.example.com"))


# ================================================================ attack 2: pull-request code with Terraform power

@pytest.mark.parametrize("env", ENVS)
def test_attack_2_a_pull_request_plans_with_the_plan_role_only(world, env):
    assert world.token_assumes("plan", env, INFRA_PULL_REQUEST).allowed
    assert denied(world.token_assumes("deploy", env, INFRA_PULL_REQUEST))


@pytest.mark.parametrize("env", ENVS)
def test_attack_2_the_plan_role_cannot_reach_the_terraform_role(world, env):
    terraform_role = f"arn:aws:iam::{ACCOUNTS[env]}:role/webapp-terraform-{env}"  # <env>.hcl assume_role_arn
    assert denied(world.assumes_role("plan", env, terraform_role, None, ACCOUNTS[env]))
    deploy_role = world.arn("shared-cicd", world.cicd_role("deploy", env))
    assert denied(world.assumes_role("plan", env, deploy_role, world.deploy_trust(env), ACCOUNTS[env]))
    read_write_state, _, trust = world.state_role(env, "Access")
    assert denied(world.assumes_role("plan", env, read_write_state, trust, REGISTRY))


@pytest.mark.parametrize("action, resource", [
    ("ec2:CreateVpc", "*"), ("iam:PutRolePolicy", "arn:aws:iam::{account}:role/webapp-{env}-deploy"),
    ("ecs:UpdateService", "arn:aws:ecs:eu-west-1:{account}:service/webapp-{env}-api/service1"),
    ("s3:PutObject", "arn:aws:s3:::webapp-{env}-frontend-site/index.html"),
    ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:eu-west-1:{account}:secret:webapp-{env}/database/master-AbCdEf"),
    ("kms:Decrypt", "arn:aws:kms:eu-west-1:{account}:key/example"),
    ("s3:GetObject", "arn:aws:s3:::webapp-{env}-frontend-site/index.html"),
    ("sts:AssumeRoleWithWebIdentity", "*"),
])
@pytest.mark.parametrize("env", ENVS)
def test_attack_2_the_plan_role_writes_nothing_and_reads_no_secret(world, env, action, resource):
    assert denied(world.as_role("plan", env, action, resource.format(account=ACCOUNTS[env], env=env)))


@pytest.mark.parametrize("env", ENVS)
def test_attack_2_the_plan_role_reads_its_environments_functions_only(world, env):
    """Lambda's reads return a function's environment variables: a plan reads the environment's own functions
    (`webapp-<env>-...`, which hold none) and no other function of the account, and runs or changes none."""
    functions = f"arn:aws:lambda:eu-west-1:{ACCOUNTS[env]}:function:"
    own = f"{functions}webapp-{env}-database-master-password"
    for action in ("lambda:GetFunction", "lambda:ListVersionsByFunction", "lambda:GetFunctionCodeSigningConfig"):
        assert world.as_role("plan", env, action, own).allowed, action
    for action in ("lambda:GetFunction", "lambda:GetFunctionConfiguration"):
        assert denied(world.as_role("plan", env, action, f"{functions}payroll-export")), action
    for action in ("lambda:InvokeFunction", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration"):
        assert denied(world.as_role("plan", env, action, own)), action


@pytest.mark.parametrize("env", ENVS)
def test_attack_2_plan_state_access_never_writes_state(world, env):
    """Through its plan-state role, a plan reads the state and takes the lock; it cannot write a
    state object, delete one, or touch the `-md5` digest items (Terraform's S3 backend docs:
    lock ids `<bucket>/<key>` and `<bucket>/<key>-md5`)."""
    from checks.iam import Principal

    _, permissions, _ = world.state_role(env, "PlanAccess")
    me = Principal.aws(f"arn:aws:sts::{REGISTRY}:assumed-role/webapp-{env}-tfstate-plan/plan")
    key = f"{env}/network.tfstate"

    def s3(action: str, object_key: str) -> Any:
        return world.decide(permissions, None, me, action, f"arn:aws:s3:::{STATE_BUCKET}/{object_key}")

    def lock(action: str, lock_id: str) -> Any:
        return world.decide(permissions, None, me, action, f"arn:aws:dynamodb:{REGION}:{REGISTRY}:table/{LOCK_TABLE}",
                            {"dynamodb:LeadingKeys": [lock_id]})

    assert s3("s3:GetObject", key).allowed
    assert s3("s3:PutObject", f"{key}.tflock").allowed and s3("s3:DeleteObject", f"{key}.tflock").allowed
    assert lock("dynamodb:GetItem", f"{STATE_BUCKET}/{key}-md5").allowed
    assert lock("dynamodb:PutItem", f"{STATE_BUCKET}/{key}").allowed
    assert lock("dynamodb:DeleteItem", f"{STATE_BUCKET}/{key}").allowed
    assert denied(s3("s3:PutObject", key)) and denied(s3("s3:DeleteObject", key))
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"):
        assert lock(action, f"{STATE_BUCKET}/{key}-md5").decision is world.Decision.EXPLICIT_DENY
    other = next(e for e in ENVS if e != env)
    assert denied(s3("s3:GetObject", f"{other}/network.tfstate"))
    assert denied(lock("dynamodb:PutItem", f"{STATE_BUCKET}/{other}/network.tfstate"))


# ================================================================ attack 3: a shell on prod's database

@pytest.mark.parametrize("env", ENVS)
def test_attack_3_only_the_deploy_role_runs_the_migration_task(world, env):
    """RunTask of the task that holds the master credentials: IAM cannot see the overrides, so only
    the role infrastructure main holds may call it at all."""
    task = migration_task_definition(env)
    for kind, role_env in (("ci", None), ("plan", env)):
        assert denied(world.as_role(kind, role_env, "ecs:RunTask", task, run_migration_context(env))), kind
    assert world.as_role("deploy", env, "ecs:RunTask", task, run_migration_context(env)).allowed
    # Not with ECS Exec (a shell in the task), not on another cluster, not untagged.
    assert denied(world.as_role("deploy", env, "ecs:RunTask", task, run_migration_context(env, exec_enabled=True)))
    elsewhere = {**run_migration_context(env), "ecs:cluster": f"arn:aws:ecs:{REGION}:{ACCOUNTS[env]}:cluster/other"}
    assert denied(world.as_role("deploy", env, "ecs:RunTask", task, elsewhere))
    untagged = {k: v for k, v in run_migration_context(env).items() if not k.startswith("aws:")}
    assert denied(world.as_role("deploy", env, "ecs:RunTask", task, untagged))


@pytest.mark.parametrize("env", ENVS)
def test_attack_3_no_pipeline_role_runs_another_task_definition(world, env):
    service = f"arn:aws:ecs:{REGION}:{ACCOUNTS[env]}:task-definition/webapp-{env}-service1:3"
    for kind, role_env in (("ci", None), ("plan", env), ("deploy", env)):
        assert denied(world.as_role(kind, role_env, "ecs:RunTask", service, run_migration_context(env))), kind


# ================================================================ attack 4: stopping any task

@pytest.mark.parametrize("env", ENVS)
def test_attack_4_the_deploy_role_stops_only_tasks_it_started(world, env):
    task = f"arn:aws:ecs:{REGION}:{ACCOUNTS[env]}:task/webapp-{env}-api/0123456789abcdef"
    mine = {"aws:ResourceTag/started-by": f"webapp-{env}-deploy", "ecs:cluster": cluster(env)}
    assert world.as_role("deploy", env, "ecs:StopTask", task, mine).allowed
    service_task = {"aws:ResourceTag/aws:ecs:serviceName": "service1", "ecs:cluster": cluster(env)}
    assert denied(world.as_role("deploy", env, "ecs:StopTask", task, service_task))
    someone_elses = {"aws:ResourceTag/started-by": "someone", "ecs:cluster": cluster(env)}
    assert denied(world.as_role("deploy", env, "ecs:StopTask", task, someone_elses))
    for kind, role_env in (("ci", None), ("plan", env)):
        assert denied(world.as_role(kind, role_env, "ecs:StopTask", task, mine)), kind


# ================================================================ the legitimate pipeline still works

def test_the_app_job_pushes_images_and_publishes_reports(world):
    assert world.token_assumes("ci", None, APP_MAIN).allowed
    assert denied(world.token_assumes("ci", None, APP_BRANCH))
    assert denied(world.token_assumes("ci", None, INFRA_PULL_REQUEST))
    repository = f"arn:aws:ecr:{REGION}:{REGISTRY}:repository/webapp/service1"
    for action in ("ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"):
        assert world.as_role("ci", None, action, repository).allowed, action
    assert world.as_role("ci", None, "ecr:GetAuthorizationToken", "*").allowed
    topic = f"arn:aws:sns:{REGION}:{REGISTRY}:webapp-pipeline-reports"
    assert world.as_role("ci", None, "sns:Publish", topic).allowed


@pytest.mark.parametrize("env", ENVS)
def test_infrastructure_main_deploys_every_environment(world, env):
    assert world.token_assumes("deploy", env, INFRA_MAIN).allowed
    terraform_role = f"arn:aws:iam::{ACCOUNTS[env]}:role/webapp-terraform-{env}"
    assert world.assumes_role("deploy", env, terraform_role, None, ACCOUNTS[env]).allowed
    state_role, _, trust = world.state_role(env, "Access")
    assert world.assumes_role("deploy", env, state_role, trust, REGISTRY).allowed
    service = f"arn:aws:ecs:{REGION}:{ACCOUNTS[env]}:service/webapp-{env}-api/service1"
    assert world.as_role("deploy", env, "ecs:UpdateService", service).allowed


@pytest.mark.parametrize("env", ENVS)
def test_the_deploy_role_judges_a_canary_and_the_ci_role_cannot(world, env):
    """`delivery canary judge` (delivery/canary.py) calls GetMetricData, which has no resource-level
    permissions (resource "*"), as the environment's deploy role in the reconciler; the application
    pipeline's CI role reads no environment's metrics."""
    assert world.as_role("deploy", env, "cloudwatch:GetMetricData", "*").allowed
    assert denied(world.as_role("ci", None, "cloudwatch:GetMetricData", "*"))


@pytest.mark.parametrize("env", ENVS)
def test_pull_requests_and_main_plan_every_environment(world, env):
    for subject in (INFRA_PULL_REQUEST, INFRA_MAIN):
        assert world.token_assumes("plan", env, subject).allowed, subject
    plan_state, _, trust = world.state_role(env, "PlanAccess")
    assert world.assumes_role("plan", env, plan_state, trust, REGISTRY).allowed
    for action in ("ec2:DescribeVpcs", "rds:DescribeDBInstances", "iam:GetRole", "ecs:DescribeServices",
                   "secretsmanager:DescribeSecret", "apigateway:GET", "s3:GetBucketPolicy"):
        assert world.as_role("plan", env, action, "*").allowed, action
    # Another environment's plan role is not trusted by this plan-state role.
    other = next(e for e in ENVS if e != env)
    assert denied(world.assumes_role("plan", other, plan_state, trust, REGISTRY))


# ================================================================ properties of the synthesized JSON
# (no evaluator needed: the shape every pipeline role's policies must have)

def pipeline_roles(synth) -> dict[str, dict[str, Any]]:
    """shared-cicd's pipeline roles by name: `webapp-ci`, `webapp-<env>-plan`, `webapp-<env>-deploy`."""
    roles = synth.stack("shared-cicd").resources("aws_iam_role").values()
    return {r["name"]: r for r in roles if r["name"] == "webapp-ci" or r["name"].endswith(("-plan", "-deploy"))}


def document(synth, stack: str, reference: str) -> dict[str, Any]:
    name = reference.removeprefix("${data.aws_iam_policy_document.").removesuffix(".json}")
    return dict(synth.stack(stack).json["data"]["aws_iam_policy_document"][name])


def role_permissions(synth, logical_id: str) -> list[dict[str, Any]]:
    policies = synth.stack("shared-cicd").resources("aws_iam_role_policy").values()
    return [s for p in policies if p["role"] == f"${{aws_iam_role.{logical_id}.id}}"
            for s in document(synth, "shared-cicd", p["policy"])["statement"]]


def logical_id(synth, name: str) -> str:
    (found,) = [k for k, r in synth.stack("shared-cicd").resources("aws_iam_role").items() if r["name"] == name]
    return found


def test_every_pipeline_role_trusts_jenkins_tokens_by_audience_and_subject(synth):
    roles = pipeline_roles(synth)
    assert len(roles) == 1 + 2 * len(ENVS)
    for name, role in roles.items():
        (statement,) = document(synth, "shared-cicd", role["assume_role_policy"])["statement"]
        assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"], name
        ((provider,),) = [p["identifiers"] for p in statement["principals"] if p["type"] == "Federated"]
        assert provider.startswith("${aws_iam_openid_connect_provider."), name
        variables = {c["variable"] for c in statement["condition"]}
        assert variables == {f"{ISSUER}:aud", f"{ISSUER}:sub"}, name


def test_no_deploy_role_trusts_a_subject_outside_infrastructure_main(synth):
    for name, role in pipeline_roles(synth).items():
        if not name.endswith("-deploy"):
            continue
        for statement in document(synth, "shared-cicd", role["assume_role_policy"])["statement"]:
            subjects = [c for c in statement.get("condition", []) if c["variable"].endswith(":sub")]
            assert subjects == [{"test": "StringEquals", "variable": f"{ISSUER}:sub", "values": [INFRA_MAIN]}], name


def test_plan_roles_hold_no_write_action_and_reach_only_their_plan_state_role(synth):
    reads = ("Describe", "List", "Get")
    for env in ENVS:
        statements = role_permissions(synth, logical_id(synth, f"webapp-{env}-plan"))
        for statement in statements:
            if statement.get("effect", "Allow") != "Allow":
                continue
            for action in statement["actions"]:
                if action == "sts:AssumeRole":
                    assert statement["resources"] == [
                        f"arn:aws:iam::{REGISTRY}:role/webapp-{env}-tfstate-plan"], statement["resources"]
                    continue
                service, verb = action.split(":", 1)
                assert service != "sts" and (verb.startswith(reads) or action == "apigateway:GET"), action
        denies = {a for s in statements if s.get("effect") == "Deny" for a in s["actions"]}
        assert {"secretsmanager:GetSecretValue", "kms:Decrypt", "s3:GetObject"} <= denies


def test_only_deploy_roles_may_run_the_migration_task(synth):
    """Across every stack, a statement allowing ecs:RunTask (or a wildcard covering it) is a deploy
    role's, and names the migration task definition family only."""
    for stack_name, stack in synth.stacks.items():
        for doc_name, doc in stack.get("data", {}).get("aws_iam_policy_document", {}).items():
            for statement in doc.get("statement", []):
                if statement.get("effect", "Allow") != "Allow":
                    continue
                if not any(a in ("ecs:RunTask", "ecs:*", "*") or (a.startswith("ecs:Run") and "*" in a)
                           for a in statement["actions"]):
                    continue
                if "KeyPolicy" in doc_name:  # KMS key policies: kms actions on the key itself
                    continue
                assert stack_name == "shared-cicd" and "_DeployPermissions_" in doc_name, (stack_name, doc_name)
                assert all(":task-definition/webapp-" in r and r.endswith("-migrations:*")
                           for r in statement["resources"]), statement["resources"]


def test_the_ci_role_may_assume_no_role(synth):
    statements = role_permissions(synth, logical_id(synth, "webapp-ci"))
    assert statements and not [s for s in statements if any(a.startswith("sts:") for a in s["actions"])]


# ================================================================ plan-only synth: what a plan role can run

def test_a_plan_only_synth_runs_as_the_plan_role_and_reaches_state_read_only(tmp_path, environments_copy):
    """`CDKTF_PLAN_ONLY=true make synth`: providers assume no role (the caller already is the plan
    role, which cannot assume the Terraform role), backends and remote-state reads go through the
    plan-state role."""
    from modules.core.target import Target
    from modules.environment import load_environments
    from tests.harness.synth import synthesize

    synthesized = synthesize(load_environments(environments_copy, ("prod",)), tmp_path / "cdktf.out",
                             Target(plan_only=True))
    plan_state = f"arn:aws:iam::{REGISTRY}:role/webapp-prod-tfstate-plan"
    for name in ("prod-network", "prod-database", "prod-api", "prod-frontend"):
        stack = synthesized.stacks[name]
        assert all("assume_role" not in p for p in stack["provider"]["aws"]), name
        assert stack["terraform"]["backend"]["s3"]["assume_role"] == {"role_arn": plan_state}, name
        for remote in stack.get("data", {}).get("terraform_remote_state", {}).values():
            assert remote["config"]["assume_role"] == {"role_arn": plan_state}, name


def test_plan_only_is_read_from_the_environment(monkeypatch):
    from modules.core.target import Target

    monkeypatch.setenv("CDKTF_PLAN_ONLY", "true")
    assert Target.from_environ() == Target(plan_only=True)
    monkeypatch.setenv("CDKTF_PLAN_ONLY", "yes")
    with pytest.raises(ValueError, match="CDKTF_PLAN_ONLY must be 'true' or 'false'"):
        Target.from_environ()
    monkeypatch.delenv("CDKTF_PLAN_ONLY")
    assert Target.from_environ() == Target()


# ================================================================ service roles: the confused-deputy guard

# Services that assume a role of ours without sending aws:SourceArn (documented where they are
# built): API Gateway's account-level CloudWatch role.
WITHOUT_SOURCE_ARN = {"apigateway.amazonaws.com"}
# ... nor aws:SourceAccount: Lambda, assuming a function's execution role (the Lambda Developer Guide's
# execution-role trust has no condition; only this account's iam:PassRole can give the role to a function).
WITHOUT_SOURCE_KEYS = {"lambda.amazonaws.com"}


def test_every_service_trust_names_the_account_and_the_source_where_the_service_sends_it(synth):
    """Flow logs, RDS Enhanced Monitoring, Grafana and ECS tasks send aws:SourceArn and
    aws:SourceAccount when they assume a role (each service's user guide, confused-deputy section):
    a trust that admits the service names both."""
    seen = set()
    for stack_name, stack in synth.stacks.items():
        documents = stack.get("data", {}).get("aws_iam_policy_document", {})
        for role in stack.get("resource", {}).get("aws_iam_role", {}).values():
            name = role["assume_role_policy"].removeprefix("${data.aws_iam_policy_document.").removesuffix(".json}")
            for statement in documents[name]["statement"]:
                services = [i for p in statement.get("principals", []) if p["type"] == "Service"
                            for i in p["identifiers"]]
                if not services:
                    continue
                seen.update(services)
                variables = {c["variable"] for c in statement.get("condition", [])}
                if set(services) <= WITHOUT_SOURCE_KEYS:
                    assert services == ["lambda.amazonaws.com"] and statement["actions"] == ["sts:AssumeRole"]
                    continue
                assert "aws:SourceAccount" in variables, (stack_name, role["name"])
                if not set(services) & WITHOUT_SOURCE_ARN:
                    assert "aws:SourceArn" in variables, (stack_name, role["name"])
    assert {"vpc-flow-logs.amazonaws.com", "monitoring.rds.amazonaws.com", "grafana.amazonaws.com",
            "ecs-tasks.amazonaws.com"} <= seen


# ================================================================ the documented keys and formats, as literals

# Service Authorization Reference, "Actions, resources, and condition keys for Amazon Elastic Container
# Service" (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html):
# RunTask takes ecs:cluster (type ARN) and ecs:enable-execute-command (type String); ecs:CreateAction is a
# String, "RunTask" when RunTask tags what it creates (Amazon ECS Developer Guide, "Grant permission to tag
# resources on creation", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html).
@pytest.mark.parametrize("env", ENVS)
def test_the_migration_statements_use_the_documented_ecs_condition_keys(world, env):
    statements = {s["Sid"]: s for document in world.policies.role_policies("shared-cicd", world.cicd_role("deploy", env))
                  for s in document["Statement"]}
    run = statements["RunMigrations"]["Condition"]
    assert run["ArnEquals"] == {"ecs:cluster": [f"arn:aws:ecs:eu-west-1:{ACCOUNTS[env]}:cluster/webapp-{env}-api"]}
    assert run["StringEquals"]["ecs:enable-execute-command"] == ["false"]
    assert "Bool" not in run
    assert statements["TagMigrationTasks"]["Condition"] == {"StringEquals": {"ecs:CreateAction": ["RunTask"]}}


def test_delivery_migrate_says_it_runs_without_ecs_exec():
    """RunMigrations admits ecs:enable-execute-command "false" only; `delivery migrate` sends it."""
    import ast
    import inspect

    from delivery import pipeline

    calls = [node for node in ast.walk(ast.parse(inspect.getsource(pipeline)))
             if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "run_task"]
    assert calls, "delivery/pipeline.py calls ecs.run_task"
    for call in calls:
        keywords = {k.arg: k.value for k in call.keywords}
        assert isinstance(keywords.get("enableExecuteCommand"), ast.Constant)
        assert keywords["enableExecuteCommand"].value is False


# Amazon VPC User Guide, "IAM role for publishing flow logs to CloudWatch Logs"
# (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html): the source is the flow log,
# "arn:aws:ec2:region:account_id:vpc-flow-log/flow-log-id", a wildcard for the id not yet known.
# Amazon Managed Grafana User Guide, "Cross-service confused deputy prevention"
# (https://docs.aws.amazon.com/grafana/latest/userguide/cross-service-confused-deputy-prevention.html): the
# source is the workspace, whose ARN is "arn:${Partition}:grafana:${Region}:${Account}:/workspaces/${ResourceId}"
# (Service Authorization Reference, Amazon Managed Grafana, resource types).
@pytest.mark.parametrize("stack, role, service, source_arn, example", [
    *((f"{env}-network", "Network/FlowLogRole", "vpc-flow-logs.amazonaws.com",
       f"arn:aws:ec2:eu-west-1:{ACCOUNTS[env]}:vpc-flow-log/*",
       f"arn:aws:ec2:eu-west-1:{ACCOUNTS[env]}:vpc-flow-log/fl-0123456789abcdef0") for env in ENVS),
    ("shared-cicd", "Monitoring/GrafanaRole", "grafana.amazonaws.com", f"arn:aws:grafana:*:{REGISTRY}:/workspaces/*",
     f"arn:aws:grafana:eu-west-1:{REGISTRY}:/workspaces/g-0123456789"),
])
def test_service_trusts_carry_the_documented_source_arn_format(world, stack, role, service, source_arn, example):
    from checks.iam import Principal

    logical = world.role(stack, role)
    trust = world.policies.trust_policy(stack, logical)
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": [service]}
    assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": [source_arn]}
    account = source_arn.split(":")[4]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": [account]}
    # What the service sends for one of ours (the documented format): allowed; another account's: refused.
    arn, principal = world.arn(stack, logical), Principal.service(service)
    mine = {"aws:SourceAccount": account, "aws:SourceArn": example}
    assert world.decide([], trust, principal, "sts:AssumeRole", arn, mine, account).allowed
    stranger = "999999999999"
    theirs = {"aws:SourceAccount": stranger, "aws:SourceArn": example.replace(account, stranger)}
    assert denied(world.decide([], trust, principal, "sts:AssumeRole", arn, theirs, account))
    elsewhere = {**mine, "aws:SourceArn": f"arn:aws:ec2:eu-west-1:{account}:instance/i-0123456789abcdef0"}
    assert denied(world.decide([], trust, principal, "sts:AssumeRole", arn, elsewhere, account))
