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


SHARED_CICD = """cicd {
  ci_principal_arns = ["arn:aws:iam::111111111111:role/webapp-jenkins"]
  ci_external_id    = "webapp-jenkins-ci"
%s
}"""


def shared_with(directory: Path, lines: str) -> None:
    replace_block(directory, "shared.hcl", SHARED_CICD % lines)


# MFA on prod's deploy role (replaces its external id): part of conftest.py's `cicd_variant`.
PROD_MFA = ('  deploy_external_id    = "webapp-prod-deploy"\n', "  deploy_require_mfa    = true\n")

# The pipeline's other shapes (OIDC CI role, one shared Prometheus workspace, enhanced scanning,
# SAML Grafana): conftest.py's `cicd_variant` synthesizes it once for the cicd tests.
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
