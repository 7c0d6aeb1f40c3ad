"""Editing copies of `environments/` in tests, and the variants several test files share."""

from __future__ import annotations

from pathlib import Path

import pytest

from modules.core.errors import ConfigError
from modules.environment import load_environments


def edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def append(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(path.read_text() + "\n" + text + "\n")


def load_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_environments(directory)
    return caught.value


def replace_block(directory: Path, name: str, block: str) -> None:
    """Swap the file's `cicd { ... }` block for `block`."""
    path = directory / name
    text = path.read_text()
    start = text.index("\ncicd {")
    end = text.index("\n}\n", start) + 3
    path.write_text(text[:start] + "\n" + block + "\n" + text[end:])


OIDC = """  jenkins_oidc {
    issuer_url      = "https://jenkins.example.com/oidc"
    deploy_subjects = ["https://jenkins.example.com/job/infra/job/main/"]
    plan_subjects   = ["https://jenkins.example.com/job/infra/*"]
    push_subjects   = ["https://jenkins.example.com/job/app/job/main/"]
  }
"""
SHARED_CICD = "cicd {\n" + OIDC + "%s\n}"


def oidc_with(directory: Path, **settings: str | None) -> None:
    """shared.hcl's cicd block with `jenkins_oidc` settings replaced (value None: left out)."""
    lines = {"issuer_url": '"https://jenkins.example.com/oidc"',
             "deploy_subjects": '["https://jenkins.example.com/job/infra/job/main/"]',
             "plan_subjects": '["https://jenkins.example.com/job/infra/*"]',
             "push_subjects": '["https://jenkins.example.com/job/app/job/main/"]', **settings}
    body = "".join(f"    {key} = {value}\n" for key, value in lines.items() if value is not None)
    replace_block(directory, "shared.hcl", "cicd {\n  jenkins_oidc {\n" + body + "  }\n}")


def shared_with(directory: Path, lines: str) -> None:
    replace_block(directory, "shared.hcl", SHARED_CICD % lines)


# prod.hcl in conftest.py's `cicd_variant`: break-glass principals with MFA.
PROD_MFA = ("  prevent_destroy = true\n", "  prevent_destroy = true\n"
            '  deploy_principal_arns = ["arn:aws:iam::444444444444:role/break-glass"]\n  deploy_require_mfa = true\n')

# The pipeline's other shapes (OIDC CI role, one shared Prometheus workspace, enhanced scanning,
# SAML Grafana): conftest.py's `cicd_variant` synthesizes it once for the cicd tests.
VARIANT = """cicd {
  jenkins_oidc {
    issuer_url      = "https://jenkins.example.com/oidc"
    audience        = "jenkins-aws"
    thumbprints     = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
    deploy_subjects = ["infra:main"]
    plan_subjects   = ["infra:*"]
    push_subjects   = ["app:main"]
  }
  static_credentials_fallback = true
  ci_principal_arns           = ["arn:aws:iam::111111111111:role/webapp-jenkins"]
  ci_external_id              = "webapp-jenkins-ci"
  extra_repositories   = ["webapp/otel-collector"]
  enhanced_scanning    = true
  prometheus_workspaces = "shared"
  grafana {
    authentication_providers = ["AWS_SSO", "SAML"]
    saml_metadata_url        = "https://idp.example.com/metadata.xml"
    saml_admin_role_values   = ["grafana-admins"]
  }
}"""
