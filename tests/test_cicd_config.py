"""The CI/CD tier's config: `cicd { ... }` in shared.hcl and in each <env>.hcl, and every bad input."""

from __future__ import annotations

import pytest

from modules.cicd.config import GrafanaAuthentication, PrometheusWorkspaces
from modules.environment import load_environments
from tests.harness.edits import append, edit, load_error, oidc_with, replace_block, shared_with


def test_loads_the_cicd_blocks_into_typed_config(environments):
    cicd = environments.shared.cicd
    assert cicd.jenkins_oidc is not None
    assert cicd.jenkins_oidc.issuer_url == "https://jenkins.webapp.example.com/oidc"
    assert cicd.jenkins_oidc.host == "jenkins.webapp.example.com/oidc"
    assert cicd.jenkins_oidc.audience == "sts.amazonaws.com"  # the plugin's AWS example
    assert cicd.jenkins_oidc.deploy_subjects == ("https://jenkins.webapp.example.com/job/webapp-infra/job/main/",)
    assert cicd.static_credentials_fallback is False and cicd.ci_principal_arns == ()
    assert cicd.prometheus_workspaces is PrometheusWorkspaces.PER_ENVIRONMENT
    assert cicd.grafana is not None and cicd.grafana.authentication_providers == (GrafanaAuthentication.AWS_SSO,)
    assert cicd.server_error_alert_percent == 5.0
    prod = environments.get("prod").cicd
    assert prod.deploy_principal_arns == () and prod.deploy_external_id is None
    # cicd.terraform_role_arn defaults to assume_role_arn: the role every provider of dev assumes.
    assert environments.get("dev").cicd.terraform_role_arn is None
    assert environments.get("dev").assume_role_arn == "arn:aws:iam::222222222222:role/webapp-terraform-dev"
    assert environments.complete


def test_a_partial_load_is_marked_incomplete(environments_copy):
    assert load_environments(environments_copy, ("dev",)).complete is False
    assert load_environments(environments_copy, ("dev", "prod", "stage")).complete is True


def test_rejects_a_shared_file_without_a_cicd_block(environments_copy):
    path = environments_copy / "shared.hcl"
    text = path.read_text()
    path.write_text(text[:text.index("\ncicd {")])
    error = load_error(environments_copy)
    assert error.file.endswith("shared.hcl") and error.key == "cicd" and "is required" in str(error)


def test_rejects_unknown_cicd_key_with_the_near_miss(environments_copy):
    edit(environments_copy, "shared.hcl", "release_images_kept", "release_images_kep")
    error = load_error(environments_copy)
    assert error.key == "cicd.release_images_kep" and "did you mean 'release_images_kept'?" in str(error)


def test_rejects_a_cicd_block_without_jenkins_oidc(environments_copy):
    replace_block(environments_copy, "shared.hcl", "cicd {\n}")
    error = load_error(environments_copy)
    assert error.key == "cicd.jenkins_oidc" and "OIDC plugin" in str(error)


FALLBACK = ('  static_credentials_fallback = true\n  ci_principal_arns = ["arn:aws:iam::111111111111:role/webapp-jenkins"]\n'
            '  ci_external_id = "webapp-jenkins-ci"')


def test_static_credentials_are_an_explicit_fallback(environments_copy):
    shared_with(environments_copy, FALLBACK)
    shared = load_environments(environments_copy).shared.cicd
    assert shared.static_credentials_fallback and shared.ci_external_id == "webapp-jenkins-ci"
    shared_with(environments_copy, FALLBACK.replace("  static_credentials_fallback = true\n", ""))
    error = load_error(environments_copy)
    assert error.key == "cicd.ci_principal_arns" and "unless static_credentials_fallback = true" in str(error)


def test_rejects_fallback_principals_without_an_external_id(environments_copy):
    shared_with(environments_copy, FALLBACK.replace('\n  ci_external_id = "webapp-jenkins-ci"', ""))
    error = load_error(environments_copy)
    assert error.key == "cicd.ci_external_id" and "set when static_credentials_fallback = true" in str(error)


def test_rejects_an_account_root_as_ci_principal(environments_copy):
    shared_with(environments_copy, FALLBACK.replace(':role/webapp-jenkins"]', ':root"]'))
    error = load_error(environments_copy)
    assert error.key == "cicd.ci_principal_arns" and "never an account root" in str(error)


def test_rejects_a_short_external_id_without_echoing_it(environments_copy):
    shared_with(environments_copy, FALLBACK.replace('"webapp-jenkins-ci"', '"short"'))
    error = load_error(environments_copy)
    assert error.key == "cicd.ci_external_id" and "short" not in str(error).split("got")[1]


@pytest.mark.parametrize("settings, key, allowed", [
    # IAM CreateOpenIDConnectProvider: the URL begins with https:// and has no query; no port.
    ({"issuer_url": '"http://jenkins.example.com/oidc"'}, "issuer_url", "https:// issuer URL"),
    ({"issuer_url": '"https://jenkins.example.com:8443/oidc"'}, "issuer_url", "without port"),
    ({"issuer_url": '"https://jenkins.example.com/oidc?x=1"'}, "issuer_url", "query"),
    ({"thumbprints": '["not-hex"]'}, "thumbprints", "40 hex digits"),
    ({"audience": '""'}, "audience", "1..255"),
    ({"deploy_subjects": None}, "deploy_subjects", "at least one subject"),
    ({"deploy_subjects": '["https://jenkins.example.com/job/infra/*"]'}, "deploy_subjects", "without * or ?"),
    ({"plan_subjects": '["*"]'}, "plan_subjects", "not a bare wildcard"),
    ({"push_subjects": "[]"}, "push_subjects", "at least one subject"),
    ({"plan_subjects": '["a", "a"]'}, "plan_subjects", "distinct"),
])
def test_rejects_bad_jenkins_oidc_settings(environments_copy, settings, key, allowed):
    oidc_with(environments_copy, **settings)
    error = load_error(environments_copy)
    assert error.file.endswith("shared.hcl")
    assert error.key == f"cicd.jenkins_oidc.{key}" and allowed in str(error), str(error)


def test_accepts_thumbprints_and_another_audience(environments_copy):
    oidc_with(environments_copy, thumbprints='["9E99A48A9960B14926BB7F3B02E22DA2B0AB7280"]', audience='"jenkins-aws"')
    oidc = load_environments(environments_copy).shared.cicd.jenkins_oidc
    assert oidc is not None and oidc.thumbprints == ("9E99A48A9960B14926BB7F3B02E22DA2B0AB7280",)
    assert oidc.audience == "jenkins-aws"


@pytest.mark.parametrize("line, key, allowed", [
    ('  extra_repositories = ["Webapp/Collector"]', "cicd.extra_repositories[0]", "ECR repository name"),
    ("  untagged_image_expiry_days = 0", "cicd.untagged_image_expiry_days", "1..365"),
    ("  release_images_kept = 0", "cicd.release_images_kept", "1..10000"),
    ('  report_email_addresses = ["platform-team"]', "cicd.report_email_addresses", "e-mail addresses"),
    ("  monitoring_log_retention_days = 10", "cicd.monitoring_log_retention_days", "retention periods"),
    ("  server_error_alert_percent = 0", "cicd.server_error_alert_percent", "above 0 and at most 100"),
    ("  server_error_alert_percent = 150", "cicd.server_error_alert_percent", "above 0 and at most 100"),
    ('  metrics_requests_total = "http-requests"', "cicd.metrics_requests_total", "Prometheus metric name"),
    ('  prometheus_workspaces = "everywhere"', "cicd.prometheus_workspaces", '"per_environment", "shared"'),
    ("  ci_max_session_seconds = 60", "cicd.ci_max_session_seconds", "3600..43200"),
    ('  report_topic_name = "pipeline reports"', "cicd.report_topic_name", "SNS topic name"),
])
def test_rejects_bad_shared_cicd_values(environments_copy, line, key, allowed):
    shared_with(environments_copy, line)
    error = load_error(environments_copy)
    assert error.file.endswith("shared.hcl")
    assert error.key == key and allowed in str(error), str(error)


def test_rejects_saml_grafana_without_its_metadata(environments_copy):
    shared_with(environments_copy, '  grafana {\n    authentication_providers = ["SAML"]\n  }')
    error = load_error(environments_copy)
    assert error.key == "cicd.grafana.saml_metadata_url" and "https:// metadata URL" in str(error)


def test_rejects_saml_settings_without_saml(environments_copy):
    shared_with(environments_copy, '  grafana {\n    saml_admin_role_values = ["admins"]\n  }')
    error = load_error(environments_copy)
    assert error.key == "cicd.grafana.saml_admin_role_values" and "unset unless" in str(error)


def test_rejects_a_registry_role_in_another_account(environments_copy):
    shared_with(environments_copy, '  terraform_role_arn = "arn:aws:iam::222222222222:role/terraform"')
    error = load_error(environments_copy)
    assert error.key == "cicd.terraform_role_arn" and "registry account 111111111111" in str(error)


def test_rejects_an_environment_the_pipeline_cannot_reach(environments_copy):
    edit(environments_copy, "dev.hcl", 'assume_role_arn = "arn:aws:iam::222222222222:role/webapp-terraform-dev"\n', "")
    error = load_error(environments_copy)
    assert error.file.endswith("dev.hcl") and error.key == "cicd.terraform_role_arn"
    assert "when assume_role_arn is unset" in str(error)


def test_rejects_a_terraform_role_in_another_account(environments_copy):
    edit(environments_copy, "stage.hcl", "333333333333:role/webapp-terraform-stage", "222222222222:role/webapp-terraform-stage")
    error = load_error(environments_copy)
    assert error.file.endswith("stage.hcl") and "account 333333333333" in str(error)
    assert error.key == "assume_role_arn", "the key the file sets, not the default it feeds"


BREAK_GLASS = '  deploy_principal_arns = ["arn:aws:iam::444444444444:role/break-glass"]\n'


def test_rejects_break_glass_prod_principals_without_mfa_or_external_id(environments_copy):
    edit(environments_copy, "prod.hcl", "  prevent_destroy = true\n", "  prevent_destroy = true\n" + BREAK_GLASS)
    error = load_error(environments_copy)
    assert error.key == "cicd.deploy_require_mfa" and "cicd.deploy_external_id set" in str(error)
    edit(environments_copy, "prod.hcl", BREAK_GLASS, BREAK_GLASS + "  deploy_require_mfa = true\n")
    assert load_environments(environments_copy).get("prod").cicd.deploy_require_mfa


def test_rejects_an_unprotected_prod_workspace(environments_copy):
    edit(environments_copy, "prod.hcl", "  prevent_destroy = true\n}", "  prevent_destroy = false\n}")
    error = load_error(environments_copy)
    assert error.key == "cicd.prevent_destroy" and "true when production = true" in str(error)


def test_rejects_mfa_without_break_glass_principals(environments_copy):
    edit(environments_copy, "stage.hcl", "  prevent_destroy = true\n", "  prevent_destroy = true\n  deploy_require_mfa = true\n")
    error = load_error(environments_copy)
    assert error.key == "cicd.deploy_principal_arns" and "id tokens carry neither" in str(error)


def test_rejects_a_bad_deploy_session_length(environments_copy):
    edit(environments_copy, "stage.hcl", "  prevent_destroy = true\n", "  prevent_destroy = true\n  deploy_max_session_seconds = 50000\n")
    error = load_error(environments_copy)
    assert error.key == "cicd.deploy_max_session_seconds" and "3600..43200" in str(error)


def test_rejects_two_cicd_blocks_in_one_file(environments_copy):
    append(environments_copy, "stage.hcl", "cicd {\n  prevent_destroy = true\n}")
    error = load_error(environments_copy)
    assert error.file.endswith("stage.hcl") and error.key == "cicd" and "must be one block { ... }, got 2 of them" in str(error)
