"""delivery/secrets.py: no service rolls onto a Secrets Manager secret without a value."""

from __future__ import annotations

import pytest

from delivery.secrets import (
    SecretMissing,
    check,
    gate,
    referenced_secrets,
    saved_plan_check,
    task_definition_secrets,
)

# DescribeSecret responses shaped as in the Secrets Manager API reference (DescribeSecret,
# "Response Syntax": VersionIdsToStages maps version ids to staging labels).
WITH_VALUE = {"Name": "x", "VersionIdsToStages": {"a1b2c3d4-5678-90ab-cdef-EXAMPLE11111": ["AWSCURRENT"]}}
WITHOUT_VALUE = {"Name": "x"}  # CreateSecret without SecretString/SecretBinary: no version yet
ONLY_PENDING = {"Name": "x", "VersionIdsToStages": {"a1b2c3d4-5678-90ab-cdef-EXAMPLE22222": ["AWSPENDING"]}}


class NotFound(Exception):
    pass


class FakeSecretsManager:
    """DescribeSecret answers by secret id; an absent id raises ResourceNotFoundException."""

    class exceptions:  # noqa: N801 - boto3's attribute name
        ResourceNotFoundException = NotFound

    def __init__(self, secrets: dict[str, dict]):
        self.secrets = secrets
        self.asked: list[str] = []

    def describe_secret(self, SecretId: str) -> dict:  # noqa: N803 - boto3's keyword
        self.asked.append(SecretId)
        if SecretId not in self.secrets:
            raise NotFound(SecretId)
        return self.secrets[SecretId]


DATABASE = "webapp-dev/database/master"  # modules/database: <prefix>/database/master
PAYMENTS = "webapp-dev/api/payments-api-key"  # dev.hcl api.secrets, <prefix>/api/<name>


def stacks_dir(synth):
    return synth.outdir / "stacks"


def test_finds_every_secret_the_api_tasks_read_from_the_synthesized_stacks(synth):
    found = referenced_secrets(stacks_dir(synth), "dev-api")
    assert sorted(s.secret_id for s in found) == sorted([DATABASE, PAYMENTS])
    owned = {s.secret_id: s.resource for s in found}
    assert owned[DATABASE] is None  # made by dev-database
    assert owned[PAYMENTS].startswith("aws_secretsmanager_secret.Api_SecretPaymentsApiKey_")


def test_each_environment_reads_its_own_secrets(synth):
    assert sorted(s.secret_id for s in referenced_secrets(stacks_dir(synth), "prod-api")) == [
        "webapp-prod/api/payments-api-key", "webapp-prod/database/master"]


def test_a_secret_without_a_value_stops_with_one_line_naming_it_and_the_command(synth):
    client = FakeSecretsManager({DATABASE: WITH_VALUE, PAYMENTS: WITHOUT_VALUE})
    with pytest.raises(SecretMissing) as caught:
        check(client, referenced_secrets(stacks_dir(synth), "dev-api"))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"secret {PAYMENTS} has no value; set it with ")
    assert f"aws secretsmanager put-secret-value --secret-id {PAYMENTS} --secret-string '...'" in message


def test_a_pending_version_is_not_a_value(synth):
    client = FakeSecretsManager({DATABASE: WITH_VALUE, PAYMENTS: ONLY_PENDING})
    with pytest.raises(SecretMissing, match=PAYMENTS):
        check(client, referenced_secrets(stacks_dir(synth), "dev-api"))


def test_every_secret_with_a_current_value_passes(synth):
    client = FakeSecretsManager({DATABASE: WITH_VALUE, PAYMENTS: WITH_VALUE})
    check(client, referenced_secrets(stacks_dir(synth), "dev-api"))
    assert sorted(client.asked) == sorted([DATABASE, PAYMENTS])


def test_first_deploy_creates_the_api_secrets_alone_then_stops_before_the_services(synth):
    client = FakeSecretsManager({DATABASE: WITH_VALUE})
    applied: list[list[str]] = []

    def apply_secrets(targets: list[str]) -> None:
        applied.append(targets)
        client.secrets[PAYMENTS] = WITHOUT_VALUE  # created by the targeted apply, still without a value

    before = gate(stacks_dir(synth), "dev-api", client, apply_secrets)
    before("dev-network")
    before("dev-database")
    assert applied == [] and client.asked == []
    with pytest.raises(SecretMissing, match=f"secret {PAYMENTS} has no value"):
        before("dev-api")
    (targets,) = applied
    assert len(targets) == 1 and targets[0].startswith("aws_secretsmanager_secret.Api_SecretPaymentsApiKey_")


def test_a_database_secret_that_does_not_exist_is_not_applied_from_the_api_stack(synth):
    client = FakeSecretsManager({PAYMENTS: WITH_VALUE})
    before = gate(stacks_dir(synth), "dev-api", client, lambda targets: pytest.fail(f"applied {targets}"))
    with pytest.raises(SecretMissing, match=f"secret {DATABASE} does not exist; apply the stack that creates it"):
        before("dev-api")


def test_the_next_apply_after_the_values_are_set_goes_on(synth):
    client = FakeSecretsManager({DATABASE: WITH_VALUE, PAYMENTS: WITH_VALUE})
    gate(stacks_dir(synth), "dev-api", client, lambda targets: pytest.fail("nothing to create"))("dev-api")


def test_a_saved_plan_that_would_create_the_api_secrets_with_the_services_is_refused(synth):
    # A saved plan cannot be split into "secrets first": the first deploy goes through plain apply.
    client = FakeSecretsManager({DATABASE: WITH_VALUE})
    before = saved_plan_check(stacks_dir(synth), "dev-api", "dev", client)
    before("dev-network")
    assert client.asked == []
    with pytest.raises(SecretMissing) as refused:
        before("dev-api")
    message = str(refused.value)
    assert message.startswith(f"secret {PAYMENTS} does not exist yet: the saved plan of dev-api would create it")
    assert "run `python -m delivery apply dev` (without --plans) once for the first deploy" in message
    assert "\n" not in message and message.endswith("(no service was rolled)")


def test_a_saved_plan_stops_on_a_secret_without_a_value_with_the_usual_line(synth):
    client = FakeSecretsManager({DATABASE: WITH_VALUE, PAYMENTS: WITHOUT_VALUE})
    with pytest.raises(SecretMissing, match=f"secret {PAYMENTS} has no value; set it with aws secretsmanager "
                                            f"put-secret-value --secret-id {PAYMENTS} "):
        saved_plan_check(stacks_dir(synth), "dev-api", "dev", client)("dev-api")
    client.secrets[PAYMENTS] = WITH_VALUE
    saved_plan_check(stacks_dir(synth), "dev-api", "dev", client)("dev-api")


class FakeEcs:
    def __init__(self, definitions: dict[str, dict]):
        self.definitions = definitions

    def describe_task_definition(self, taskDefinition: str) -> dict:  # noqa: N803
        return {"taskDefinition": self.definitions[taskDefinition]}


def test_verify_reads_the_secrets_of_the_registered_task_definitions():
    # containerDefinitions[].secrets[].valueFrom as ECS returns them: full ARNs, with a JSON key
    # (`:password::`) or without, and SSM parameters, which are not secrets.
    arn = "arn:aws:secretsmanager:eu-west-1:222222222222:secret:webapp-dev/database/master-AbCdEf"
    payments = "arn:aws:secretsmanager:eu-west-1:222222222222:secret:webapp-dev/api/payments-api-key-GhIjKl"
    ecs = FakeEcs({
        "td/service1:3": {"containerDefinitions": [{"secrets": [
            {"name": "DB_PASSWORD", "valueFrom": f"{arn}:password::"},
            {"name": "DB_USERNAME", "valueFrom": f"{arn}:username::"}]}]},
        "td/service2:7": {"containerDefinitions": [{"secrets": [
            {"name": "PAYMENTS_API_KEY", "valueFrom": payments},
            {"name": "FLAG", "valueFrom": "arn:aws:ssm:eu-west-1:222222222222:parameter/flag"}]}]},
    })
    assert [s.secret_id for s in task_definition_secrets(ecs, ["td/service1:3", "td/service2:7"])] == [arn, payments]
