"""Every stack of every environment applied on the emulator, each after what it depends on, then
planned again: the plan right after each apply must show no changes.

The session deployer starts all of them when the emulator is up (conftest.py MODULE_STACKS), side by
side, and plans each at once after its apply; these tests wait for those results. Environments with
a `dns` block have their public zone created first (conftest.py `create_public_zones`), as a real
account has it. stage and prod are where the API cache and per-method settings, WAF, custom domains,
Origin Shield, replicas and alarms differ from dev.
"""

from __future__ import annotations

import pytest

from modules.environment import load_environments
from modules.layout import stack_names
from tests.harness.project import ENVIRONMENTS_DIR

STACKS = stack_names(load_environments(ENVIRONMENTS_DIR))


def test_every_stack_of_every_environment_is_here():
    """bootstrap, shared-cicd and four tiers of dev, stage and prod (design: one stack per tier per
    environment), so a new environment or tier is applied here without editing this file."""
    assert len(STACKS) == 2 + 3 * 4
    assert {"bootstrap", "shared-cicd", "prod-api", "stage-frontend"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_applies_and_its_second_plan_is_clean(deployer, stack):
    changes = deployer.second_plan(stack)
    assert changes is None, changes


def test_prod_api_caches_get_under_the_escaped_method_paths(deployer, emulator):
    """The stage echoes the per-method cache settings under `~1service1~1{proxy+}/GET`, the path the
    provider wrote (terraform-provider-aws #9738: get-stage answers `~1some~1api~1endpoint/POST`)."""
    deployer.apply("prod-api")
    gateway = emulator.boto3_client("apigateway")
    (api,) = [a for a in gateway.get_rest_apis()["items"] if a["name"] == "webapp-prod-api"]
    settings = gateway.get_stage(restApiId=api["id"], stageName="v1")["methodSettings"]
    for path in ("~1service1/GET", "~1service1~1{proxy+}/GET"):
        assert settings[path]["cachingEnabled"] is True, settings
        assert settings[path]["cacheTtlInSeconds"] == 300
    assert "~1service2/GET" not in settings  # service2 sets caching = false (environments/prod.hcl)

