"""The plan summary an approver sees, read from recorded `terraform show -json` documents.

The fixtures in tests/fixtures/plans/ come from real terraform 1.11 runs with the aws provider
5.100.0 against the emulator (`python -m tests.fixtures.plans.record`): version 1 of a small stack
applied, then the plan to version 2, which creates a parameter and a DynamoDB table, updates a KMS
key's description and a topic's tags in place, replaces a log group (new name) and deletes a bucket.
"""

from __future__ import annotations

import json
from pathlib import Path

from delivery.summary import STATEFUL_TYPES, StackChanges, Summary, action_of

FIXTURES = Path(__file__).parent / "fixtures" / "plans"


def recorded(name: str, stack: str = "prod-database") -> StackChanges:
    return StackChanges.from_plan_json(stack, json.loads((FIXTURES / name).read_text()))


def test_counts_each_kind_of_change_of_a_recorded_plan():
    changes = recorded("create-update-replace-delete.json")
    assert changes.counts == {"create": 2, "update": 2, "replace": 1, "delete": 1}
    assert {c.address: c.action for c in changes.changes} == {
        "aws_ssm_parameter.flag": "create",
        "aws_dynamodb_table.locks": "create",
        "aws_kms_key.key": "update",
        "aws_sns_topic.events": "update",
        "aws_cloudwatch_log_group.logs": "replace",
        "aws_s3_bucket.old": "delete",
    }


def test_flags_only_stateful_resources_that_are_replaced_or_deleted():
    changes = recorded("create-update-replace-delete.json")
    # A created lock table and an updated key are stateful types, but nothing is lost: not flagged.
    assert [(c.address, c.stateful) for c in changes.stateful()] == [
        ("aws_cloudwatch_log_group.logs", "log group"), ("aws_s3_bucket.old", "bucket")]


def test_refresh_noise_is_not_reported_as_changed_outside_terraform():
    # The recorded refresh reports `tags` going from null to {} on three resources: the provider's
    # normalisation, which terraform itself does not show (no relevant attribute, no change).
    document = json.loads((FIXTURES / "no-changes.json").read_text())
    assert {entry["address"] for entry in document["resource_drift"]} and not recorded("no-changes.json").drift


def test_a_clean_plan_has_no_changes():
    changes = recorded("no-changes.json")
    assert not changes.has_changes and changes.counts == {"create": 0, "update": 0, "replace": 0, "delete": 0}


def test_replacement_in_either_order_and_reads_are_not_changes():
    # https://developer.hashicorp.com/terraform/internals/json-format#change-representation
    assert action_of(["delete", "create"]) == action_of(["create", "delete"]) == "replace"
    assert action_of(["no-op"]) is None and action_of(["read"]) is None and action_of(["forget"]) is None


def test_the_stateful_list_names_what_the_issue_protects():
    # databases, buckets, KMS keys, lock tables, log groups, ECR repositories, secrets (issue 16)
    for resource_type in ("aws_db_instance", "aws_s3_bucket", "aws_kms_key", "aws_dynamodb_table",
                          "aws_cloudwatch_log_group", "aws_ecr_repository", "aws_secretsmanager_secret"):
        assert resource_type in STATEFUL_TYPES


def test_the_summary_shows_counts_per_stack_and_every_flagged_address():
    summary = Summary(
        environment="prod", production=True,
        stacks=(recorded("create-update-replace-delete.json"), recorded("no-changes.json", "prod-api")),
        commit="3f2c1a9", synth_hash="sha256:" + "ab" * 32, stack_hashes={}, terraform_version="1.11.4",
        provider_versions={"registry.terraform.io/hashicorp/aws": "5.100.0"}, created_at="2026-12-06T05:00:00Z")
    text = summary.to_markdown()
    assert "prod: 2 to create, 2 to update, 1 to replace, 1 to delete; 2 STATEFUL replaced or deleted" in text
    assert "| prod-database | 2 | 2 | 1 | 1 |" in text and "| prod-api | 0 | 0 | 0 | 0 |" in text
    assert "- prod-database: `aws_cloudwatch_log_group.logs` (replace) **STATEFUL: log group**" in text
    assert "- prod-database: `aws_s3_bucket.old` (delete) **STATEFUL: bucket**" in text
    assert "commit 3f2c1a9" in text and "terraform 1.11.4" in text and "hashicorp/aws 5.100.0" in text
    document = summary.to_json()
    assert document["stacks"][0]["replaced"] == ["aws_cloudwatch_log_group.logs"]
    assert document["stacks"][0]["deleted"] == ["aws_s3_bucket.old"]
    assert [s["kind"] for s in document["stacks"][0]["stateful"]] == ["log group", "bucket"]
    json.dumps(document)


def test_the_state_backend_is_named_as_such():
    changes = recorded("create-update-replace-delete.json", stack="bootstrap")
    assert [s["kind"] for s in changes.to_json()["stateful"]] == ["state backend log group", "state backend bucket"]
