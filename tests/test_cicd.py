"""The `shared-cicd` stack: ECR, the report topic, pipeline IAM, monitoring, providers and backend."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from modules.contract import promoted_tag
from modules.environment import load_environments
from modules.layout import stack_names
from tests.harness.policies import document_of, documents, resource_named, role_policy, statements
from tests.harness.synth import read_synthesized, synthesize

STACK = "shared-cicd"
ENVS = ("dev", "stage", "prod")
ACCOUNTS = {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}
REPOSITORIES = {"webapp/service1", "webapp/service2", "webapp/migrations", "aws-otel-collector"}
# Actions allowed on Resource "*": calls without resource-level permissions, and reads.
PARTITION = "${data.aws_partition.Partition.partition}"
# A read: Describe/Get/List actions, or a family of them (`ec2:Describe*` expands only to actions
# with that prefix); API Gateway's reads are its `GET` verb (Service Authorization Reference).
READ_ONLY = re.compile(r"^(?:[a-z0-9-]+:(Describe|Get|List)[A-Za-z]*\*?|apigateway:GET)$")


@pytest.fixture(scope="module")
def stack(synth):
    return synth.stack(STACK)


# --- ECR -------------------------------------------------------------------------------


def test_one_repository_per_image_the_environments_run(stack, environments):
    named = {r["name"] for r in stack.resources("aws_ecr_repository").values()}
    assert named == REPOSITORIES
    run = {s.image_repository for e in environments.environments for s in e.api.service}
    run |= {e.api.migrations.image_repository for e in environments.environments}
    run.add(environments.shared.cicd.collector_image_repository)  # every service task's sidecar
    assert named == run


def test_repositories_are_immutable_scanned_encrypted_and_kept(stack):
    for name, repository in stack.resources("aws_ecr_repository").items():
        assert repository["image_tag_mutability"] == "IMMUTABLE", name
        assert repository["image_scanning_configuration"] == {"scan_on_push": True}, name
        (encryption,) = repository["encryption_configuration"]
        assert encryption["encryption_type"] == "KMS" and "aws_kms_key.Registry_Key" in encryption["kms_key"]
        assert repository["lifecycle"]["prevent_destroy"] is True
        assert repository["force_delete"] is False
    (key,) = [k for n, k in stack.resources("aws_kms_key").items() if n.startswith("Registry_")]
    assert key["enable_key_rotation"] is True and key["lifecycle"]["prevent_destroy"] is True


def test_lifecycle_expires_untagged_images_and_keeps_the_newest_releases(stack, environments):
    config = environments.shared.cicd
    policies = stack.resources("aws_ecr_lifecycle_policy")
    assert len(policies) == len(REPOSITORIES)
    for policy in policies.values():
        rules = sorted(json.loads(policy["policy"])["rules"], key=lambda r: r["rulePriority"])
        promoted, untagged, tagged = (r["selection"] for r in rules)
        # Priority 1: a promoted image (what an environment runs) is matched here first, so the
        # newest-tagged-images rule below can never expire it.
        assert promoted == {"tagStatus": "tagged", "tagPatternList": ["release-*"],
                            "countType": "imageCountMoreThan", "countNumber": 1000}
        # README (Delivery): promotion adds the tag release-<env>-<tag>.
        assert promoted_tag("prod", "3f2c1a9") == "release-prod-3f2c1a9"
        assert untagged == {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                            "countNumber": 7}
        assert tagged == {"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan",
                          "countNumber": 100}
        assert (promoted["countNumber"], untagged["countNumber"], tagged["countNumber"]) == (
            config.promoted_images_kept, config.untagged_image_expiry_days, config.release_images_kept)


def test_repository_policy_lets_exactly_the_execution_roles_pull(stack, synth):
    """The roles are named, not referenced: the names must be the API stacks' execution roles."""
    api_roles: dict[str, set[str]] = {}
    for env in ENVS:
        for role in synth.stack(f"{env}-api").resources("aws_iam_role").values():
            if role["name"].endswith("-execution"):
                api_roles.setdefault(env, set()).add(role["name"])
    granted: set[str] = set()
    for policy in stack.resources("aws_ecr_repository_policy").values():
        (statement,) = document_of(stack, policy["policy"])["statement"]
        assert sorted(statement["actions"]) == ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                                                "ecr:GetDownloadUrlForLayer"]
        assert "resources" not in statement
        (principals,) = statement["principals"]
        assert sorted(principals["identifiers"]) == sorted(
            f"arn:${{data.aws_partition.Partition.partition}}:iam::{a}:root" for a in ACCOUNTS.values())
        (condition,) = statement["condition"]
        assert (condition["test"], condition["variable"]) == ("ArnEquals", "aws:PrincipalArn")
        for arn in condition["values"]:
            account, role = re.fullmatch(r"arn:.*:iam::(\d{12}):role/(.+)", arn).groups()
            env = next(e for e, a in ACCOUNTS.items() if a == account)
            assert role in api_roles[env], arn
            granted.add(f"{env}:{role}")
    assert granted == {f"{env}:{role}" for env, roles in api_roles.items() for role in roles}


def test_service_repository_is_pulled_by_its_own_service_only(stack):
    _, repository = resource_named(stack, "aws_ecr_repository", "name", "webapp/service1")
    (policy,) = [p for p in stack.resources("aws_ecr_repository_policy").values()
                 if p["repository"].startswith("${aws_ecr_repository.Registry_WebappService1_")]
    (statement,) = document_of(stack, policy["policy"])["statement"]
    roles = sorted(v.rsplit("/", 1)[1] for v in statement["condition"][0]["values"])
    assert roles == [f"webapp-{env}-service1-execution" for env in ("dev", "prod", "stage")]


def test_enhanced_scanning_is_off_by_default(stack):
    assert not stack.resources("aws_ecr_registry_scanning_configuration")


# --- report topic ------------------------------------------------------------------------


REPORT_TOPIC = "aws_sns_topic.ReportTopic_C00CA4D7"


def subscriptions_of(stack, topic_logical_id: str) -> list[dict]:
    return [s for s in stack.resources("aws_sns_topic_subscription").values()
            if s["topic_arn"] == f"${{aws_sns_topic.{topic_logical_id}.arn}}"]


def test_report_topic_is_encrypted_and_mails_the_configured_addresses(stack, environments):
    logical_id, topic = resource_named(stack, "aws_sns_topic", "name", "webapp-pipeline-reports")
    assert f"aws_sns_topic.{logical_id}" == REPORT_TOPIC and "provider" not in topic
    assert "aws_kms_key.ReportTopic_Key" in topic["kms_master_key_id"]
    assert sorted((s["protocol"], s["endpoint"]) for s in subscriptions_of(stack, logical_id)) == [
        ("email", a) for a in environments.shared.cicd.report_email_addresses]


def test_report_topic_admits_only_its_account_over_tls_when_no_workspace_shares_it(stack):
    """Per-environment workspaces in other accounts alert through topics of their own (AMP
    publishes only within its account): the report topic and its key grant Prometheus nothing."""
    (policy,) = [p for p in stack.resources("aws_sns_topic_policy").values() if p["arn"] == f"${{{REPORT_TOPIC}.arn}}"]
    found = statements(stack, policy["policy"])
    assert set(found) == {"AccountManages", "DenyInsecureTransport"}
    ((root,),) = [p["identifiers"] for p in found["AccountManages"]["principals"]]
    assert re.fullmatch(rf"arn:{re.escape(PARTITION)}:iam::\$\{{data\.aws_caller_identity\.ReportTopic_\w+\.account_id\}}:root",
                        root)
    deny = found["DenyInsecureTransport"]
    assert deny["effect"] == "Deny" and deny["condition"][0]["variable"] == "aws:SecureTransport"
    (key,) = [k for n, k in stack.resources("aws_kms_key").items() if n.startswith("ReportTopic_")]
    assert set(statements(stack, key["policy"])) == {"AccountAdministers"}


# --- IAM ---------------------------------------------------------------------------------


def test_no_policy_grants_a_write_action_on_every_resource(stack):
    """Walk every policy document: `*` resources only for reads and calls AWS cannot scope.

    KMS key policies are the exception AWS defines: their Resource "*" is the key itself."""
    checked = 0
    for name, document in documents(stack).items():
        for statement in document["statement"]:
            actions = statement["actions"]
            assert not any(a == "*" or a.endswith(":*") for a in actions) or "KeyPolicy" in name, (name, actions)
            if statement.get("effect", "Allow") != "Allow" or "*" not in statement.get("resources", []):
                continue
            checked += 1
            if "KeyPolicy" in name:
                assert statement["principals"][0]["type"] in ("AWS", "Service")
                if statement["principals"][0]["type"] == "Service":
                    assert statement["condition"], (name, statement["sid"])
                continue
            writes = [a for a in actions if not READ_ONLY.match(a)]
            assert not writes, f"{name} {statement['sid']}: {writes} on *"
    assert checked >= 3


def test_ecr_login_is_the_only_wildcard_the_ci_role_has(stack):
    policy = role_policy(stack, resource_named(stack, "aws_iam_role", "name", "webapp-ci")[0])
    found = statements(stack, policy["policy"])
    wildcards = [sid for sid, s in found.items() if "*" in s["resources"]]
    assert wildcards == ["EcrLogin"] and found["EcrLogin"]["actions"] == ["ecr:GetAuthorizationToken"]
    assert all("aws_ecr_repository.Registry_" in r for r in found["PushProjectImages"]["resources"])
    assert len(found["PushProjectImages"]["resources"]) == len(REPOSITORIES)
    assert found["PublishReports"]["resources"] == ["${aws_sns_topic.ReportTopic_C00CA4D7.arn}"]


# shared.hcl: the Jenkins plugin's issuer and the job URLs its default `sub` claim carries.
ISSUER = "jenkins.webapp.example.com/oidc"
INFRA_MAIN = "https://jenkins.webapp.example.com/job/webapp-infra/job/main/"


def test_jenkins_issuer_is_registered_once_in_every_pipeline_account(stack):
    providers = stack.resources("aws_iam_openid_connect_provider").values()
    assert sorted(p.get("provider", "registry") for p in providers) == ["aws.dev", "aws.prod", "aws.stage", "registry"]
    for provider in providers:
        assert provider["url"] == f"https://{ISSUER}"
        assert provider["client_id_list"] == ["sts.amazonaws.com"]
        # No thumbprints configured: IAM takes the issuer certificate's itself (aws 5.100.0 docs).
        assert "thumbprint_list" not in provider


def test_ci_role_trusts_only_the_push_subjects(stack):
    _, role = resource_named(stack, "aws_iam_role", "name", "webapp-ci")
    (statement,) = document_of(stack, role["assume_role_policy"])["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["principals"] == [{"type": "Federated", "identifiers": [
        "${aws_iam_openid_connect_provider.Pipeline_JenkinsIssuer_Registry_5A3B5FC0.arn}"]}]
    assert {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]} == {
        f"{ISSUER}:aud": ("StringEquals", ["sts.amazonaws.com"]),
        f"{ISSUER}:sub": ("StringLike", ["https://jenkins.webapp.example.com/job/webapp-service1/job/main/",
                                         INFRA_MAIN]),
    }


def test_ci_role_reaches_no_other_role(stack):
    policy = role_policy(stack, resource_named(stack, "aws_iam_role", "name", "webapp-ci")[0])
    found = statements(stack, policy["policy"])
    assert not [sid for sid, s in found.items() if any(a.startswith("sts:") for a in s["actions"])]


@pytest.mark.parametrize("env", ENVS)
def test_deploy_role_trusts_only_infrastructure_main(stack, env):
    _, role = resource_named(stack, "aws_iam_role", "name", f"webapp-{env}-deploy")
    assert role["provider"] == f"aws.{env}"
    (statement,) = document_of(stack, role["assume_role_policy"])["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["principals"][0]["identifiers"][0].startswith(
        f"${{aws_iam_openid_connect_provider.Pipeline_JenkinsIssuer_{env.title()}_")
    assert {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]} == {
        f"{ISSUER}:aud": ("StringEquals", ["sts.amazonaws.com"]),
        f"{ISSUER}:sub": ("StringEquals", [INFRA_MAIN]),
    }


# prod.hcl in the cicd_variant fixture (tests/conftest.py): MFA instead of an external id.


def test_break_glass_principals_need_mfa_where_an_environment_asks(cicd_variant):
    stack = cicd_variant.stack(STACK)
    _, role = resource_named(stack, "aws_iam_role", "name", "webapp-prod-deploy")
    tokens, people = document_of(stack, role["assume_role_policy"])["statement"]
    assert tokens["sid"] == "InfrastructureMainDeploys"
    assert people["principals"] == [{"type": "AWS", "identifiers": ["arn:aws:iam::444444444444:role/break-glass"]}]
    assert people["condition"] == [{"test": "Bool", "variable": "aws:MultiFactorAuthPresent", "values": ["true"]}]


@pytest.mark.parametrize("env", ENVS)
def test_deploy_role_reaches_only_its_own_environment(stack, env):
    account, prefix = ACCOUNTS[env], f"webapp-{env}"
    logical_id, role = resource_named(stack, "aws_iam_role", "name", f"{prefix}-deploy")
    policy = role_policy(stack, logical_id)
    assert policy["provider"] == f"aws.{env}"
    found = statements(stack, policy["policy"])
    terraform_role = {"dev": "webapp-terraform-dev", "stage": "webapp-terraform-stage", "prod": "webapp-terraform-prod"}
    assert found["RunTerraform"]["resources"] == [f"arn:aws:iam::{account}:role/{terraform_role[env]}"]
    # Its state, through its state-access role in the state account (bootstrap), nothing else there.
    assert found["AssumeStateRole"]["resources"] == [f"arn:aws:iam::111111111111:role/{prefix}-tfstate"]
    assert not any("s3:::webapp-tfstate" in arn for s in found.values() for arn in s["resources"])
    for sid, statement in found.items():
        for arn in statement["resources"]:
            if arn == "*" or sid == "AssumeStateRole":
                continue
            assert f":{account}:" in arn or f":::{prefix}-" in arn, (sid, arn)
            assert prefix in arn or sid in ("RunTerraform", "SiteKey", "InvalidateSite"), (sid, arn)
    # delivery apply/verify read only the version stages of the environment's own secrets.
    assert found["CheckSecrets"]["actions"] == ["secretsmanager:DescribeSecret"]
    assert found["CheckSecrets"]["resources"] == [
        f"arn:${{data.aws_partition.Partition.partition}}:secretsmanager:eu-west-1:{account}:secret:{prefix}/*"]
    assert not any(a.startswith("secretsmanager:") and a != "secretsmanager:DescribeSecret"
                   for st in found.values() for a in st["actions"])
    assert found["RunMigrations"]["resources"] == [
        f"arn:${{data.aws_partition.Partition.partition}}:ecs:eu-west-1:{account}:task-definition/{prefix}-migrations:*"]
    assert {c["variable"]: c["values"] for c in found["InvalidateSite"]["condition"]} == {
        "aws:ResourceTag/project": ["webapp"], "aws:ResourceTag/environment": [env]}


def test_deploy_role_names_match_what_the_api_and_frontend_stacks_create(stack, synth):
    """`modules/contract.py` names other tiers' resources: they must exist under those names."""
    for env in ENVS:
        prefix = f"webapp-{env}"
        api = synth.stack(f"{env}-api")
        assert {c["name"] for c in api.resources("aws_ecs_cluster").values()} == {f"{prefix}-api"}
        families = {t["family"] for t in api.resources("aws_ecs_task_definition").values()}
        assert f"{prefix}-migrations" in families
        roles = {r["name"] for r in api.resources("aws_iam_role").values()}
        assert {f"{prefix}-migrations-execution", f"{prefix}-migrations-task"} <= roles
        groups = {g["name"] for g in api.resources("aws_cloudwatch_log_group").values()}
        assert any(g.startswith(f"/api/{prefix}/") for g in groups)
        buckets = {b["bucket"] for b in synth.stack(f"{env}-frontend").resources("aws_s3_bucket").values()}
        account = {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}[env]  # <env>.hcl
        assert f"{prefix}-frontend-site-{account}" in buckets


# --- monitoring --------------------------------------------------------------------------


@pytest.mark.parametrize("env, protected", [("dev", False), ("stage", True), ("prod", True)])
def test_each_environment_gets_an_encrypted_logged_workspace_in_its_account(stack, env, protected):
    logical_id, workspace = resource_named(stack, "aws_prometheus_workspace", "alias", f"webapp-{env}")
    assert workspace["provider"] == f"aws.{env}"
    assert f"aws_kms_key.Monitoring_{env.title()}_Key" in workspace["kms_key_arn"]
    assert workspace["logging_configuration"]["log_group_arn"].endswith(".arn}:*")
    assert workspace["lifecycle"]["prevent_destroy"] is protected
    _, group = resource_named(stack, "aws_cloudwatch_log_group", "name", f"/aws/vendedlogs/prometheus/webapp-{env}")
    assert group["retention_in_days"] == 365 and group["provider"] == f"aws.{env}"
    assert f"aws_kms_key.Monitoring_{env.title()}_Key" in group["kms_key_id"]


def rules_of(stack, env: str) -> dict[str, dict]:
    logical_id, _ = resource_named(stack, "aws_prometheus_workspace", "alias", f"webapp-{env}")
    (namespace,) = [n for n in stack.resources("aws_prometheus_rule_group_namespace").values()
                    if n["workspace_id"] == f"${{aws_prometheus_workspace.{logical_id}.id}}"]
    (group,) = yaml.safe_load(namespace["data"])["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def test_alert_rules_fire_on_5xx_and_never_on_a_scrape_of_the_health_path(stack):
    rules = rules_of(stack, "prod")
    # A JSON health body is no Prometheus text: `up` of a health scrape read 0 for a healthy
    # service. Health alerts come from the probe metric (tests/test_operations.py).
    assert not [r for r in rules.values() if 'job="health"' in r["expr"]]
    errors = rules["ServiceServerErrorRate"]
    assert 'http_requests_total{code=~"5.."}' in errors["expr"] and errors["expr"].endswith("* 100 > 5")
    assert "by (environment, service)" in errors["expr"] and errors["for"] == "300s"


def alert_receiver(definition: dict) -> dict:
    """The one SNS receiver of an alert manager definition, which every alert is routed to."""
    config = yaml.safe_load(yaml.safe_load(definition["definition"])["alertmanager_config"])
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    (sns,) = receiver["sns_configs"]
    return sns


def topic_of(stack, topic_arn: str) -> tuple[str, dict]:
    """The `aws_sns_topic` a `${aws_sns_topic.X.arn}` reference names."""
    logical_id = re.fullmatch(r"\$\{aws_sns_topic\.(\w+)\.arn\}", topic_arn).group(1)
    return logical_id, stack.resources("aws_sns_topic")[logical_id]


def workspace_of(stack, definition: dict) -> dict:
    logical_id = re.fullmatch(r"\$\{aws_prometheus_workspace\.(\w+)\.id\}", definition["workspace_id"]).group(1)
    return stack.resources("aws_prometheus_workspace")[logical_id]


@pytest.mark.parametrize("shape", ["per_environment", "shared"])
def test_every_alert_manager_publishes_to_a_topic_in_its_own_account(stack, variant, shape):
    """AMP delivers only to SNS topics in the workspace's account: each alert manager's topic
    is created through the same provider (account) as its workspace, in the same region."""
    synthesized = stack if shape == "per_environment" else variant
    definitions = synthesized.resources("aws_prometheus_alert_manager_definition")
    assert len(definitions) == (len(ENVS) if shape == "per_environment" else 1)
    regions = {p.get("alias"): p["region"] for p in synthesized.json["provider"]["aws"]}
    for definition in definitions.values():
        workspace = workspace_of(synthesized, definition)
        sns = alert_receiver(definition)
        _, topic = topic_of(synthesized, sns["topic_arn"])
        assert topic.get("provider") == workspace.get("provider") == definition.get("provider")
        provider = workspace.get("provider")
        assert sns["sigv4"] == {"region": regions[provider.removeprefix("aws.") if provider else None]}


@pytest.mark.parametrize("env", ENVS)
def test_environment_workspace_alerts_through_the_topic_in_its_account(stack, env):
    logical_id, workspace = resource_named(stack, "aws_prometheus_workspace", "alias", f"webapp-{env}")
    (definition,) = [d for d in stack.resources("aws_prometheus_alert_manager_definition").values()
                     if d["workspace_id"] == f"${{aws_prometheus_workspace.{logical_id}.id}}"]
    topic_id, topic = topic_of(stack, alert_receiver(definition)["topic_arn"])
    assert topic["name"] == f"webapp-{env}-prometheus-alerts"
    assert re.fullmatch(rf"Monitoring_{env.title()}_AlertTopic_[0-9A-F]{{8}}", topic_id)  # path ./AlertTopic/Topic
    assert definition["provider"] == workspace["provider"] == topic["provider"] == f"aws.{env}"


@pytest.mark.parametrize("env", ENVS)
def test_environment_alert_topic_is_encrypted_in_its_account_and_admits_only_its_workspace(stack, environments, env):
    account, provider = ACCOUNTS[env], f"aws.{env}"
    workspace_id, _ = resource_named(stack, "aws_prometheus_workspace", "alias", f"webapp-{env}")
    prometheus = {
        ("StringEquals", "aws:SourceAccount"): [account],
        ("ArnEquals", "aws:SourceArn"): [f"${{aws_prometheus_workspace.{workspace_id}.arn}}"],
    }
    aps = [{"type": "Service", "identifiers": ["aps.amazonaws.com"]}]
    root = [{"type": "AWS", "identifiers": [f"arn:{PARTITION}:iam::{account}:root"]}]

    topic_id, topic = resource_named(stack, "aws_sns_topic", "name", f"webapp-{env}-prometheus-alerts")
    assert topic["provider"] == provider
    key_id = re.fullmatch(r"\$\{aws_kms_key\.(\w+)\.arn\}", topic["kms_master_key_id"]).group(1)
    key = stack.resources("aws_kms_key")[key_id]
    assert key["provider"] == provider and key["enable_key_rotation"] is True
    _, alias = resource_named(stack, "aws_kms_alias", "name", f"alias/webapp-{env}-prometheus-alerts")
    assert alias["provider"] == provider and alias["target_key_id"] == f"${{aws_kms_key.{key_id}.key_id}}"

    key_statements = statements(stack, key["policy"])
    assert set(key_statements) == {"AccountAdministers", "PrometheusAlertsEncrypt"}
    assert key_statements["AccountAdministers"]["principals"] == root
    encrypt = key_statements["PrometheusAlertsEncrypt"]
    assert encrypt["principals"] == aps and encrypt["actions"] == ["kms:GenerateDataKey*", "kms:Decrypt"]
    assert {(c["test"], c["variable"]): c["values"] for c in encrypt["condition"]} == prometheus

    (policy,) = [p for p in stack.resources("aws_sns_topic_policy").values()
                 if p["arn"] == f"${{aws_sns_topic.{topic_id}.arn}}"]
    assert policy["provider"] == provider
    found = statements(stack, policy["policy"])
    assert set(found) == {"AccountManages", "PrometheusAlertsPublish", "DenyInsecureTransport"}
    assert found["AccountManages"]["principals"] == root
    publish = found["PrometheusAlertsPublish"]
    assert publish["principals"] == aps and publish["actions"] == ["sns:Publish", "sns:GetTopicAttributes"]
    assert publish["resources"] == [f"${{aws_sns_topic.{topic_id}.arn}}"]
    assert {(c["test"], c["variable"]): c["values"] for c in publish["condition"]} == prometheus
    deny = found["DenyInsecureTransport"]
    assert deny["effect"] == "Deny" and deny["principals"] == [{"type": "*", "identifiers": ["*"]}]
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]

    subscriptions = subscriptions_of(stack, topic_id)
    assert sorted((s["protocol"], s["endpoint"]) for s in subscriptions) == [
        ("email", a) for a in environments.shared.cicd.report_email_addresses]
    assert {s["provider"] for s in subscriptions} == {provider}


def test_workspace_in_the_registry_account_alerts_through_the_report_topic(tmp_path, environments):
    """An environment that lives in the registry account needs no topic of its own: its
    workspace publishes to the report topic, which then admits that account's workspaces only."""
    from dataclasses import replace

    from cdktf import App

    from modules.cicd.stack import CicdStack
    from modules.core.target import Target

    registry = environments.shared.registry
    dev, *others = environments.environments
    dev = replace(dev, account_id=registry.account_id,
                  assume_role_arn=f"arn:aws:iam::{registry.account_id}:role/webapp-terraform-dev")
    app = App(outdir=str(tmp_path))
    CicdStack(app, "shared-cicd", shared=environments.shared, environments=[dev, *others], target=Target())
    app.synth()
    mixed = read_synthesized(tmp_path).stack(STACK)

    names = sorted(t["name"] for t in mixed.resources("aws_sns_topic").values())
    assert names == ["webapp-pipeline-reports", "webapp-prod-prometheus-alerts", "webapp-stage-prometheus-alerts"]
    logical_id, _ = resource_named(mixed, "aws_prometheus_workspace", "alias", "webapp-dev")
    (definition,) = [d for d in mixed.resources("aws_prometheus_alert_manager_definition").values()
                     if d["workspace_id"] == f"${{aws_prometheus_workspace.{logical_id}.id}}"]
    assert alert_receiver(definition)["topic_arn"] == f"${{{REPORT_TOPIC}.arn}}"
    (policy,) = [p for p in mixed.resources("aws_sns_topic_policy").values() if p["arn"] == f"${{{REPORT_TOPIC}.arn}}"]
    publish = statements(mixed, policy["policy"])["PrometheusAlertsPublish"]
    assert {c["variable"]: c["values"] for c in publish["condition"]} == {
        "aws:SourceAccount": [registry.account_id],
        "aws:SourceArn": [f"arn:{PARTITION}:aps:*:{registry.account_id}:workspace/*"],
    }


@pytest.mark.parametrize("env", ENVS)
def test_api_tier_finds_its_workspace_in_ssm(stack, env):
    parameters = {p["name"]: p for p in stack.resources("aws_ssm_parameter").values() if p["provider"] == f"aws.{env}"}
    assert set(parameters) == {f"/webapp-{env}/monitoring/workspace-arn", f"/webapp-{env}/monitoring/remote-write-url"}
    url = parameters[f"/webapp-{env}/monitoring/remote-write-url"]["value"]
    assert url.startswith(f"${{aws_prometheus_workspace.Monitoring_{env.title()}_Workspace_") and url.endswith(
        ".prometheus_endpoint}api/v1/remote_write")


def test_grafana_queries_each_workspace_through_a_role_only_it_may_assume(stack):
    (grafana,) = stack.resources("aws_grafana_workspace").values()
    assert grafana["authentication_providers"] == ["AWS_SSO"]
    assert grafana["permission_type"] == "CUSTOMER_MANAGED" and grafana["data_sources"] == [
        "PROMETHEUS", "CLOUDWATCH"]  # CloudWatch: docs/grafana's API latency panels
    assert grafana["role_arn"] == "${aws_iam_role.Monitoring_GrafanaRole_1D191236.arn}"
    for env in ENVS:
        logical_id, role = resource_named(stack, "aws_iam_role", "name", f"webapp-{env}-grafana-query")
        (statement,) = document_of(stack, role["assume_role_policy"])["statement"]
        assert statement["principals"] == [{"type": "AWS", "identifiers": [grafana["role_arn"]]}]
        found = statements(stack, role_policy(stack, logical_id)["policy"])
        assert found["QueryWorkspace"]["resources"] == [
            f"${{aws_prometheus_workspace.Monitoring_{env.title()}_Workspace_"
            + found["QueryWorkspace"]["resources"][0].split("_Workspace_")[1]]
        assert all(not a.startswith("aps:RemoteWrite") for a in found["QueryWorkspace"]["actions"])
        # Beside the workspace, only CloudWatch metric reads (tests/test_operations.py, the latency panels).
        assert set(found) == {"QueryWorkspace", "ReadCloudWatchMetrics"}


# --- stack, providers, backend -------------------------------------------------------------


def test_stack_has_its_own_state_and_a_provider_per_environment_account(stack):
    # The registry account is the state account here: no role to assume (state.assume_role_arn is unset).
    assert stack.json["terraform"]["backend"]["s3"] == {
        "bucket": "webapp-tfstate-111111111111", "dynamodb_table": "webapp-tfstate-locks",
        "key": "shared/cicd.tfstate", "workspace_key_prefix": "shared", "region": "eu-west-1",
    }
    providers = {p.get("alias", "default"): p for p in stack.json["provider"]["aws"]}
    assert providers["default"]["allowed_account_ids"] == ["111111111111"]
    assert providers["default"]["default_tags"][0]["tags"]["environment"] == "shared"
    for env, account in ACCOUNTS.items():
        assert providers[env]["allowed_account_ids"] == [account]
        assert providers[env]["assume_role"][0]["role_arn"].startswith(f"arn:aws:iam::{account}:role/")
        assert providers[env]["default_tags"][0]["tags"]["tier"] == "cicd"


def test_stack_references_no_environment_stack(stack):
    assert "terraform_remote_state" not in stack.json.get("data", {})


def test_a_partial_synth_leaves_the_shared_stack_out(tmp_path, environments_copy):
    environments = load_environments(environments_copy, ("dev",))
    assert STACK not in stack_names(environments)
    synthesized = synthesize(environments, tmp_path / "cdktf.out")
    assert STACK not in synthesized.stacks and "dev-network" in synthesized.stacks


# --- the other shapes: shared workspace, OIDC, enhanced scanning, SAML ----------------------


@pytest.fixture(scope="module")
def variant(cicd_variant):
    return cicd_variant.stack(STACK)


def test_shared_workspace_lives_in_the_registry_account_with_ingest_roles(variant):
    (workspace,) = variant.resources("aws_prometheus_workspace").values()
    assert workspace["alias"] == "webapp" and "provider" not in workspace
    assert workspace["lifecycle"]["prevent_destroy"] is True
    for env, account in ACCOUNTS.items():
        logical_id, role = resource_named(variant, "aws_iam_role", "name", f"webapp-{env}-prometheus-ingest")
        assert "provider" not in role
        (statement,) = document_of(variant, role["assume_role_policy"])["statement"]
        assert statement["principals"] == [{"type": "AWS", "identifiers": [f"arn:{PARTITION}:iam::{account}:root"]}]
        assert statement["condition"][0]["values"] == [
            f"arn:{PARTITION}:iam::{account}:role/webapp-{env}-{service}-task" for service in ("service1", "service2")]
        found = statements(variant, role_policy(variant, logical_id)["policy"])
        assert found["RemoteWrite"]["actions"] == ["aps:RemoteWrite"]
        parameters = {p["name"]: p["value"] for p in variant.resources("aws_ssm_parameter").values()
                      if p["provider"] == f"aws.{env}"}
        assert parameters[f"/webapp-{env}/monitoring/ingest-role-arn"] == f"${{aws_iam_role.{logical_id}.arn}}"
    # The shared workspace is in the report topic's account: its alerts go there, as before.
    (topic,) = variant.resources("aws_sns_topic").values()
    assert topic["name"] == "webapp-pipeline-reports"
    (policy,) = variant.resources("aws_sns_topic_policy").values()
    conditions = {c["variable"]: c["values"] for c in statements(variant, policy["policy"])["PrometheusAlertsPublish"]["condition"]}
    assert conditions["aws:SourceAccount"] == ["111111111111"]
    (key,) = [k for n, k in variant.resources("aws_kms_key").items() if n.startswith("ReportTopic_")]
    encrypt = statements(variant, key["policy"])["PrometheusAlertsEncrypt"]
    assert {c["variable"]: c["values"] for c in encrypt["condition"]} == conditions


def test_static_keys_fallback_adds_principals_with_the_external_id_to_the_ci_role_only(variant):
    _, role = resource_named(variant, "aws_iam_role", "name", "webapp-ci")
    tokens, keys = document_of(variant, role["assume_role_policy"])["statement"]
    assert {c["variable"]: (c["test"], c["values"]) for c in tokens["condition"]} == {
        "jenkins.example.com/oidc:aud": ("StringEquals", ["jenkins-aws"]),
        "jenkins.example.com/oidc:sub": ("StringLike", ["app:main"]),
    }
    assert keys["principals"] == [{"type": "AWS", "identifiers": ["arn:aws:iam::111111111111:role/webapp-jenkins"]}]
    assert keys["condition"] == [{"test": "StringEquals", "variable": "sts:ExternalId", "values": ["webapp-jenkins-ci"]}]
    for env in ENVS:
        for kind in ("plan", "deploy"):
            _, other = resource_named(variant, "aws_iam_role", "name", f"webapp-{env}-{kind}")
            assert all(s["actions"] == ["sts:AssumeRoleWithWebIdentity"] or "break-glass" in str(s)
                       for s in document_of(variant, other["assume_role_policy"])["statement"])
    for provider in variant.resources("aws_iam_openid_connect_provider").values():
        assert provider["thumbprint_list"] == ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
        assert provider["client_id_list"] == ["jenkins-aws"]


def test_enhanced_scanning_covers_every_project_repository(variant):
    (scanning,) = variant.resources("aws_ecr_registry_scanning_configuration").values()
    assert scanning["scan_type"] == "ENHANCED"
    (rule,) = scanning["rule"]
    assert rule["scan_frequency"] == "CONTINUOUS_SCAN"
    assert {f["filter"] for f in rule["repository_filter"]} == REPOSITORIES | {"webapp/otel-collector"}
    _, extra = resource_named(variant, "aws_ecr_repository", "name", "webapp/otel-collector")
    assert extra["image_tag_mutability"] == "IMMUTABLE"


def test_saml_grafana_gets_its_identity_provider(variant):
    (grafana,) = variant.resources("aws_grafana_workspace").values()
    assert grafana["authentication_providers"] == ["AWS_SSO", "SAML"]
    (saml,) = variant.resources("aws_grafana_workspace_saml_configuration").values()
    assert saml["idp_metadata_url"] == "https://idp.example.com/metadata.xml"
    assert saml["admin_role_values"] == ["grafana-admins"]
    policy = role_policy(variant, "Monitoring_GrafanaRole_1D191236")
    found = statements(variant, policy["policy"])
    assert set(found) == {"QueryWorkspaces"}


def test_repository_ids_come_from_the_names():
    from modules.cicd.registry import repository_id
    assert repository_id("webapp/service-1") == "WebappService1"
    assert repository_id("webapp/migrations") == "WebappMigrations"


def test_subscription_ids_are_readable_and_distinct():
    from modules.core.subscriptions import subscription_id
    assert subscription_id("ops+ci@example.com") == "Email<ops+ci@example.com>"
    # Addresses the earlier schemes gave one id (PascalCase words; spelled-out punctuation and case).
    for first, second in (("a-b@x.io", "a.b@x.io"), ("a.b@x.io", "ab@x.io"), ("a-b@x.io", "aDashB@x.io"),
                          ("a/b@x.io", "a--b@x.io"), ("a/b@x.io", "a%2Fb@x.io")):
        assert subscription_id(first) != subscription_id(second)


@pytest.mark.parametrize("env", ENVS)
def test_delivery_reads_state_through_the_role_the_deploy_role_may_assume(stack, environments, env):
    """`read_state_outputs` (delivery) and the deploy role's AssumeStateRole name the same role;
    on the emulator (an endpoint URL) delivery assumes none, as the emulator target's backends."""
    from delivery.aws import Aws, state_role

    logical_id, _ = resource_named(stack, "aws_iam_role", "name", f"webapp-{env}-deploy")
    found = statements(stack, role_policy(stack, logical_id)["policy"])
    assert state_role(Aws(session=None), environments, env) == found["AssumeStateRole"]["resources"][0]
    assert state_role(Aws(session=None, endpoint_url="http://127.0.0.1:1"), environments, env) is None
