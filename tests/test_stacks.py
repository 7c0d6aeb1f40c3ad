"""Stack layout, providers and backends of every synthesized stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from modules.environment import load_environments
from modules.layout import stack_names
from tests.harness.synth import synthesize


def test_synthesizes_exactly_the_stacks_of_the_layout(synth, expected_stacks, environments):
    assert sorted(synth.stacks) == sorted(expected_stacks)
    assert sorted(stack_names(environments)) == sorted(expected_stacks)
    # Bootstrap first (it holds every other stack's state), then shared-cicd, then the tiers in order.
    assert stack_names(environments)[:3] == ["bootstrap", "shared-cicd", "dev-network"]
    assert "bootstrap" in synth.stacks and "prod-network" in synth.stacks


@pytest.mark.parametrize("env, account", [("dev", "222222222222"), ("stage", "333333333333"), ("prod", "444444444444")])
def test_provider_may_touch_only_its_own_account(synth, env, account):
    (provider,) = synth.stack(f"{env}-network").json["provider"]["aws"]
    assert provider["allowed_account_ids"] == [account]
    assert provider["region"] == "eu-west-1"


def test_provider_sets_default_tags(synth):
    (provider,) = synth.stack("stage-network").json["provider"]["aws"]
    assert provider["default_tags"] == [{"tags": {
        "project": "webapp", "environment": "stage", "tier": "network", "managed-by": "cdktf",
    }}]


@pytest.mark.parametrize("env,account", [("dev", "222222222222"), ("stage", "333333333333"),
                                         ("prod", "444444444444")])
def test_every_environment_provider_runs_as_its_terraform_role(synth, env, account):
    """The pipeline runs `make apply-env` with deploy-role credentials, which may do nothing but
    assume this role: a provider without assume_role would apply as the deploy role and fail."""
    role = f"arn:aws:iam::{account}:role/webapp-terraform-{env}"
    for tier in ("network", "database", "api", "frontend"):
        for provider in synth.stack(f"{env}-{tier}").json["provider"]["aws"]:
            assert provider["assume_role"][0]["role_arn"] == role, (tier, provider.get("alias"))
    cicd = {p.get("alias"): p for p in synth.stack("shared-cicd").json["provider"]["aws"]}
    assert cicd[env]["assume_role"][0]["role_arn"] == role, "shared-cicd reaches the account the same way"


def test_a_provider_assumes_no_role_when_none_is_configured(tmp_path, environments_copy):
    path = environments_copy / "dev.hcl"
    text = path.read_text()
    text = text.replace('assume_role_arn = "arn:aws:iam::222222222222:role/webapp-terraform-dev"\n', "")
    path.write_text(text.replace("cicd {\n", 'cicd {\n  terraform_role_arn = "arn:aws:iam::222222222222:role/webapp-terraform-dev"\n'))
    synthesized = synthesize(load_environments(environments_copy, ("dev",)), tmp_path / "cdktf.out")
    (dev,) = synthesized.stack("dev-network").json["provider"]["aws"]
    assert "assume_role" not in dev


def test_provider_is_the_pinned_aws_version(synth):
    for name, stack in synth.stacks.items():
        assert stack["terraform"]["required_providers"]["aws"]["version"] == "5.100.0", name


def test_every_tier_stack_uses_the_s3_backend_with_its_own_key(synth, expected_stacks):
    keys = set()
    for name in expected_stacks[1:]:
        backend = synth.stack(name).json["terraform"]["backend"]["s3"]
        assert backend["bucket"] == "webapp-tfstate-111111111111"
        env, tier = name.split("-", 1)
        assert backend["key"] == f"{env}/{tier}.tfstate"
        keys.add(backend["key"])
    assert len(keys) == len(expected_stacks) - 1


ACCOUNTS = {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}


@pytest.mark.parametrize("env", sorted(ACCOUNTS))
def test_every_environment_stack_reaches_its_state_through_its_state_access_role(synth, env):
    """The state is in the state account (111...); the stacks run with their own account's
    credentials, so the backend assumes the role bootstrap creates for this environment."""
    from modules.layout import tier_names

    for tier in tier_names():
        backend = synth.stack(f"{env}-{tier}").json["terraform"]["backend"]["s3"]
        assert backend["assume_role"] == {"role_arn": f"arn:aws:iam::111111111111:role/webapp-{env}-tfstate"}
        # Other workspaces' state stays inside the prefix the role may use.
        assert backend["workspace_key_prefix"] == env


def test_state_is_encrypted_with_the_bucket_default_state_key_not_sse_s3(synth, expected_stacks):
    """`encrypt = true` without `kms_key_id` makes Terraform send `AES256` (SSE-S3) on every
    upload, overriding the bucket's SSE-KMS default: no stack may set it."""
    for name in expected_stacks[1:]:
        backend = synth.stack(name).json["terraform"]["backend"]["s3"]
        assert "encrypt" not in backend and "kms_key_id" not in backend, name


def test_dynamodb_locking_by_default_and_both_locks_where_configured(synth):
    dev = synth.stack("dev-network").json["terraform"]["backend"]["s3"]
    stage = synth.stack("stage-network").json["terraform"]["backend"]["s3"]
    assert dev["dynamodb_table"] == "webapp-tfstate-locks" and "use_lockfile" not in dev
    assert stage["dynamodb_table"] == "webapp-tfstate-locks" and stage["use_lockfile"] is True


def test_bootstrap_keeps_local_state_beside_the_project(synth):
    backend = synth.stack("bootstrap").json["terraform"]["backend"]
    assert backend == {"local": {"path": "../../../terraform.bootstrap.tfstate"}}


def _synth_variant(tmp_path: Path, environments_copy: Path, text: str):
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text() + "\n" + text + "\n")
    environments = load_environments(environments_copy, ("dev",))
    return synthesize(environments, tmp_path / "cdktf.out")


def test_terraform_cloud_backend_replaces_s3(tmp_path, environments_copy):
    synthesized = _synth_variant(tmp_path, environments_copy, (
        'backend {\n  type = "cloud"\n  organization = "acme"\n  workspace_prefix = "webapp-"\n}'
    ))
    terraform = synthesized.stack("dev-network").json["terraform"]
    assert "backend" not in terraform
    assert terraform["cloud"] == {"organization": "acme", "workspaces": {"name": "webapp-dev-network"}}


def test_lockfile_only_locking_drops_the_table(tmp_path, environments_copy):
    synthesized = _synth_variant(tmp_path, environments_copy, 'backend {\n  locking = "lockfile"\n}')
    backend = synthesized.stack("dev-network").json["terraform"]["backend"]["s3"]
    assert backend["use_lockfile"] is True and "dynamodb_table" not in backend


def test_dependency_graph_covers_every_stack_and_every_cross_stack_reference(synth, environments, expected_stacks):
    """What tools apply in parallel (tests/harness/deployer.py) must respect what cdktf links."""
    import json

    from modules.layout import BOOTSTRAP, stack_dependencies

    graph = stack_dependencies(environments)
    assert sorted(graph) == sorted(expected_stacks)
    manifest = json.loads((synth.outdir / "manifest.json").read_text())["stacks"]
    for name, entry in manifest.items():
        assert set(entry["dependencies"]) <= set(graph[name]), name
        if name != BOOTSTRAP:
            assert BOOTSTRAP in graph[name], f"{name} keeps its state in bootstrap's bucket"
    assert "shared-cicd" in graph["dev-api"], "the API reads shared-cicd's SSM parameters"
    # Acyclic, and in an order that applies every stack after what it needs.
    done: set[str] = set()
    while len(done) < len(graph):
        ready = {name for name, needs in graph.items() if name not in done and set(needs) <= done}
        assert ready, f"cycle among {sorted(set(graph) - done)}"
        done |= ready
