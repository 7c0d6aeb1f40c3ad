"""The `shared-cicd` stack: ECR, the report topic, pipeline IAM, monitoring, providers and backend."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from modules.cicd.names import PROMOTED_TAG_PREFIX, promoted_tag
from modules.core.environment import load_environments
from modules.layout import stack_names
from tests.harness.synth import synthesize

STACK = "shared-cicd"
ENVS = ("dev", "stage", "prod")
ACCOUNTS = {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}
REPOSITORIES = {"webapp/service1", "webapp/service2", "webapp/migrations", "aws-otel-collector"}
# Actions allowed on Resource "*": calls without resource-level permissions, and reads.
PARTITION = "${data.aws_partition.Partition.partition}"
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]*$")


@pytest.fixture(scope="module")
def stack(synth):
    return synth.stack(STACK)


def documents(stack) -> dict[str, dict]:
    return stack.data("aws_iam_policy_document")


def document_of(stack, reference: str) -> dict:
    """The policy document a `${data.aws_iam_policy_document.X.json}` reference names."""
    name = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", reference).group(1)
    return documents(stack)[name]


def statements(stack, reference: str) -> dict[str, dict]:
    return {s["sid"]: s for s in document_of(stack, reference)["statement"]}


def resource_named(stack, resource_type: str, name_key: str, name: str) -> tuple[str, dict]:
    (found,) = [(k, v) for k, v in stack.resources(resource_type).items() if v.get(name_key) == name]
    return found


def role_policy(stack, role_logical_id: str) -> dict:
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values()
                 if p["role"] == f"${{aws_iam_role.{role_logical_id}.id}}"]
    return policy


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
        assert promoted == {"tagStatus": "tagged", "tagPatternList": [f"{PROMOTED_TAG_PREFIX}*"],
                            "countType": "imageCountMoreThan", "countNumber": 1000}
        assert promoted_tag("prod", "3f2c1a9").startswith(PROMOTED_TAG_PREFIX)
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


def test_report_topic_is_encrypted_and_mails_the_configured_addresses(stack, environments):
    (topic,) = stack.resources("aws_sns_topic").values()
    assert topic["name"] == "webapp-pipeline-reports"
    assert "aws_kms_key.ReportTopic_Key" in topic["kms_master_key_id"]
    subscriptions = stack.resources("aws_sns_topic_subscription").values()
    assert sorted((s["protocol"], s["endpoint"]) for s in subscriptions) == [
        ("email", a) for a in environments.shared.cicd.report_email_addresses]


def test_report_topic_admits_prometheus_of_the_environment_accounts_only_over_tls(stack):
    (policy,) = stack.resources("aws_sns_topic_policy").values()
    found = statements(stack, policy["policy"])
    publish = found["PrometheusAlertsPublish"]
    assert publish["principals"] == [{"type": "Service", "identifiers": ["aps.amazonaws.com"]}]
    conditions = {c["variable"]: c["values"] for c in publish["condition"]}
    assert sorted(conditions["aws:SourceAccount"]) == sorted(ACCOUNTS.values())
    deny = found["DenyInsecureTransport"]
    assert deny["effect"] == "Deny" and deny["condition"][0]["variable"] == "aws:SecureTransport"


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


def test_ci_role_trusts_jenkins_with_the_external_id(stack):
    _, role = resource_named(stack, "aws_iam_role", "name", "webapp-ci")
    (statement,) = document_of(stack, role["assume_role_policy"])["statement"]
    assert statement["principals"] == [{"type": "AWS", "identifiers": ["arn:aws:iam::111111111111:role/webapp-jenkins"]}]
    assert statement["condition"] == [{"test": "StringEquals", "variable": "sts:ExternalId",
                                       "values": ["webapp-jenkins-ci"]}]


def test_ci_role_may_assume_the_dev_and_stage_deploy_roles_but_not_prod(stack):
    policy = role_policy(stack, resource_named(stack, "aws_iam_role", "name", "webapp-ci")[0])
    assumable = statements(stack, policy["policy"])["AssumeDeployRoles"]["resources"]
    assert assumable == ["${aws_iam_role.Pipeline_Dev_DeployRole_BAC1E872.arn}",
                         "${aws_iam_role.Pipeline_Stage_DeployRole_ADB6803A.arn}"]


def test_prod_deploy_role_trusts_only_the_prod_approvers_with_an_external_id(stack):
    _, role = resource_named(stack, "aws_iam_role", "name", "webapp-prod-deploy")
    assert role["provider"] == "aws.prod"
    (statement,) = document_of(stack, role["assume_role_policy"])["statement"]
    assert statement["principals"] == [{
        "type": "AWS", "identifiers": ["arn:aws:iam::111111111111:role/webapp-jenkins-prod-approvals"]}]
    assert statement["condition"] == [{"test": "StringEquals", "variable": "sts:ExternalId",
                                       "values": ["webapp-prod-deploy"]}]


@pytest.mark.parametrize("env", ["dev", "stage"])
def test_other_deploy_roles_trust_the_ci_role(stack, env):
    _, role = resource_named(stack, "aws_iam_role", "name", f"webapp-{env}-deploy")
    assert role["provider"] == f"aws.{env}"
    (statement,) = document_of(stack, role["assume_role_policy"])["statement"]
    assert statement["principals"] == [{"type": "AWS", "identifiers": ["${aws_iam_role.Pipeline_CiRole_8ED178D5.arn}"]}]


# prod.hcl in the cicd_variant fixture (tests/conftest.py): MFA instead of an external id.
PROD_MFA = ('  deploy_external_id    = "webapp-prod-deploy"\n', "  deploy_require_mfa    = true\n")


def test_mfa_is_required_where_an_environment_asks(cicd_variant):
    stack = cicd_variant.stack(STACK)
    _, role = resource_named(stack, "aws_iam_role", "name", "webapp-prod-deploy")
    (statement,) = document_of(stack, role["assume_role_policy"])["statement"]
    assert statement["condition"] == [{"test": "Bool", "variable": "aws:MultiFactorAuthPresent", "values": ["true"]}]


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
    assert found["RunMigrations"]["resources"] == [
        f"arn:${{data.aws_partition.Partition.partition}}:ecs:eu-west-1:{account}:task-definition/{prefix}-migrations:*"]
    assert {c["variable"]: c["values"] for c in found["InvalidateSite"]["condition"]} == {
        "aws:ResourceTag/project": ["webapp"], "aws:ResourceTag/environment": [env]}


def test_deploy_role_names_match_what_the_api_and_frontend_stacks_create(stack, synth):
    """`modules/cicd/names.py` names other tiers' resources: they must exist under those names."""
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
        assert f"{prefix}-frontend-site" in buckets


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


def test_alert_rules_fire_on_a_failing_health_probe_and_on_5xx(stack):
    rules = rules_of(stack, "prod")
    health = rules["ServiceHealthProbeFailing"]
    assert health["expr"] == 'up{job="health"} == 0' and health["for"] == "120s"
    errors = rules["ServiceServerErrorRate"]
    assert 'http_requests_total{code=~"5.."}' in errors["expr"] and errors["expr"].endswith("* 100 > 5")
    assert "by (environment, service)" in errors["expr"] and errors["for"] == "300s"


def test_alert_manager_routes_every_alert_to_the_report_topic(stack):
    definitions = stack.resources("aws_prometheus_alert_manager_definition")
    assert len(definitions) == len(ENVS)
    for definition in definitions.values():
        config = yaml.safe_load(yaml.safe_load(definition["definition"])["alertmanager_config"])
        assert config["route"]["receiver"] == "report-topic"
        (receiver,) = config["receivers"]
        (sns,) = receiver["sns_configs"]
        assert sns["topic_arn"] == "${aws_sns_topic.ReportTopic_C00CA4D7.arn}"
        assert sns["sigv4"] == {"region": "eu-west-1"}


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
    assert grafana["permission_type"] == "CUSTOMER_MANAGED" and grafana["data_sources"] == ["PROMETHEUS"]
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


VARIANT = """cicd {
  ci_oidc_provider_arn = "arn:aws:iam::111111111111:oidc-provider/jenkins.example.com"
  ci_oidc_subjects     = ["repo:acme/webapp:ref:refs/heads/main"]
  extra_repositories   = ["webapp/otel-collector"]
  enhanced_scanning    = true
  prometheus_workspaces = "shared"
  grafana {
    authentication_providers = ["AWS_SSO", "SAML"]
    saml_metadata_url        = "https://idp.example.com/metadata.xml"
    saml_admin_role_values   = ["grafana-admins"]
  }
}"""


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
    (policy,) = variant.resources("aws_sns_topic_policy").values()
    conditions = {c["variable"]: c["values"] for c in statements(variant, policy["policy"])["PrometheusAlertsPublish"]["condition"]}
    assert conditions["aws:SourceAccount"] == ["111111111111"]


def test_oidc_ci_role_trusts_only_the_listed_subjects(variant):
    _, role = resource_named(variant, "aws_iam_role", "name", "webapp-ci")
    (statement,) = document_of(variant, role["assume_role_policy"])["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]} == {
        "jenkins.example.com:aud": ("StringEquals", ["sts.amazonaws.com"]),
        "jenkins.example.com:sub": ("StringLike", ["repo:acme/webapp:ref:refs/heads/main"]),
    }


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
    from modules.cicd.pipeline import subscription_id
    assert subscription_id("ops+ci@example.com") == "EmailOpsPlusCiAtExampleDotCom"
    assert subscription_id("a.b@x.io") != subscription_id("ab@x.io")


@pytest.mark.parametrize("env", ENVS)
def test_delivery_reads_state_through_the_role_the_deploy_role_may_assume(stack, environments, env):
    """`read_state_outputs` (delivery) and the deploy role's AssumeStateRole name the same role;
    on the emulator (an endpoint URL) delivery assumes none, as the emulator target's backends."""
    from delivery.aws import Aws, state_role

    logical_id, _ = resource_named(stack, "aws_iam_role", "name", f"webapp-{env}-deploy")
    found = statements(stack, role_policy(stack, logical_id)["policy"])
    assert state_role(Aws(session=None), environments, env) == found["AssumeStateRole"]["resources"][0]
    assert state_role(Aws(session=None, endpoint_url="http://127.0.0.1:1"), environments, env) is None
