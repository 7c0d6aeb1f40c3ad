"""End to end on the emulator: `shared-cicd` applies through the S3 backend, then plans clean.

moto has no API for Amazon Managed Grafana (`aws_grafana_workspace`: the provider
retries HTTP 500 forever) or for the Prometheus alert manager
(`aws_prometheus_alert_manager_definition`: CreateAlertManagerDefinition answers
404); the emulator target leaves those resources out (modules/core/target.py) and
`test_emulator_leaves_out_only_what_moto_lacks` checks it. Everything else is
applied and read back: ECR (repositories, lifecycle, repository policies), SNS
(the report topic and each environment's alert topic, policies, e-mail
subscriptions), IAM, KMS, Prometheus workspaces and rule group namespaces, SSM
parameters. That each alert manager names its environment's alert topic is shown by
putting the applied topic's ARN into the definition the real target synthesizes.

In the emulator every environment is moto's one account, so the stack's provider
aliases all land in it; the resources keep their per-environment names.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

STACK = "shared-cicd"
REPOSITORIES = ("webapp/migrations", "webapp/service1", "webapp/service2")


@pytest.fixture(scope="module")
def applied(deployer):
    deployer.apply("bootstrap")
    deployer.apply(STACK)
    return deployer


def test_emulator_leaves_out_only_what_moto_lacks(emulator_synth, synth):
    emulated = emulator_synth.stack(STACK).json["resource"]
    real = synth.stack(STACK).json["resource"]
    assert set(real) - set(emulated) == {"aws_grafana_workspace", "aws_prometheus_alert_manager_definition"}
    # The Jenkins issuer is registered once per account: four accounts on AWS (registry 111111111111,
    # dev, stage, prod in environments/*.hcl), one in moto (123456789012 stands for all of them).
    per_account = {"aws_iam_openid_connect_provider": (4, 1)}
    for resource_type in emulated:
        expected = per_account.get(resource_type)
        counts = (len(real[resource_type]), len(emulated[resource_type]))
        assert counts == expected if expected else counts[0] == counts[1], resource_type


def test_shared_cicd_state_lives_in_the_state_bucket(applied, emulator):
    state = emulator.boto3_client("s3").head_object(Bucket="webapp-tfstate-111111111111", Key="shared/cicd.tfstate")
    assert state["ContentLength"] > 1000


def test_second_plan_of_shared_cicd_is_clean(applied):
    assert applied.plan_changes(STACK) is None


def test_repositories_are_immutable_scanned_encrypted_and_expire_images(applied, emulator):
    ecr = emulator.boto3_client("ecr")
    found = {r["repositoryName"]: r for r in ecr.describe_repositories(repositoryNames=list(REPOSITORIES))["repositories"]}
    assert set(found) == set(REPOSITORIES)
    for name, repository in found.items():
        assert repository["imageTagMutability"] == "IMMUTABLE", name
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}, name
        assert repository["encryptionConfiguration"]["encryptionType"] == "KMS", name
        rules = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])["rules"]
        # Promoted images (release-<env>-<tag>) first, so the count of other tags never expires them.
        assert [(r["rulePriority"], r["selection"]["tagStatus"], r["selection"].get("tagPatternList"))
                for r in rules] == [(1, "tagged", ["release-*"]), (2, "untagged", None), (3, "tagged", ["*"])]
        statement = json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"])["Statement"][0]
        assert statement["Sid"] == "ExecutionRolesPull"
        assert "ecr:PutImage" not in statement["Action"]


def test_report_topic_is_encrypted_and_mails_the_platform_team(applied, emulator):
    sns = emulator.boto3_client("sns")
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":webapp-pipeline-reports")]
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"].startswith("arn:aws:kms:")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "platform-team@webapp.example.com")]


def test_pipeline_roles_exist_with_their_trust(applied, emulator):
    """The Jenkins issuer is an IAM OIDC provider (one: moto has one account), and every pipeline
    role trusts its tokens by aud and sub (environments/shared.hcl jenkins_oidc)."""
    iam = emulator.boto3_client("iam")
    (provider,) = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert provider["Arn"].endswith(":oidc-provider/jenkins.webapp.example.com/oidc")
    described = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider["Arn"])
    assert described["ClientIDList"] == ["sts.amazonaws.com"]
    host = "jenkins.webapp.example.com/oidc"
    main = "https://jenkins.webapp.example.com/job/webapp-infra/job/main/"
    ci = iam.get_role(RoleName="webapp-ci")["Role"]
    (statement,) = ci["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": provider["Arn"]}
    for env in ("dev", "stage", "prod"):
        (deploy,) = iam.get_role(RoleName=f"webapp-{env}-deploy")["Role"]["AssumeRolePolicyDocument"]["Statement"]
        assert deploy["Condition"] == {"StringEquals": {f"{host}:aud": "sts.amazonaws.com", f"{host}:sub": main}}
        (plan,) = iam.get_role(RoleName=f"webapp-{env}-plan")["Role"]["AssumeRolePolicyDocument"]["Statement"]
        assert plan["Principal"] == {"Federated": provider["Arn"]}
        assert plan["Condition"]["StringEquals"] == {f"{host}:aud": "sts.amazonaws.com"}


def test_each_environment_has_a_workspace_with_rules_and_parameters(applied, emulator):
    amp = emulator.boto3_client("amp")
    ssm = emulator.boto3_client("ssm")
    workspaces = {w["alias"]: w for w in amp.list_workspaces()["workspaces"]}
    for env in ("dev", "stage", "prod"):
        workspace = workspaces[f"webapp-{env}"]
        namespaces = amp.list_rule_groups_namespaces(workspaceId=workspace["workspaceId"])["ruleGroupsNamespaces"]
        assert [n["name"] for n in namespaces] == ["service-health"]
        arn = ssm.get_parameter(Name=f"/webapp-{env}/monitoring/workspace-arn")["Parameter"]["Value"]
        assert arn == workspace["arn"]
        url = ssm.get_parameter(Name=f"/webapp-{env}/monitoring/remote-write-url")["Parameter"]["Value"]
        assert url.endswith("/api/v1/remote_write") and workspace["workspaceId"] in url


ENVS = ("dev", "stage", "prod")


def alert_topic_output(synthesized, env: str) -> tuple[str, str]:
    """The stack output of `env`'s alert topic ARN: its name and the topic's logical id."""
    outputs = synthesized.stack(STACK).json["output"]
    (name,) = [n for n in outputs if n.startswith(f"Monitoring_{env.title()}_AlertTopic_TopicArn")]
    logical_id = re.fullmatch(r"\$\{aws_sns_topic\.(\w+)\.arn\}", outputs[name]["value"]).group(1)
    return name, logical_id


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_workspace_alerts_through_its_own_topic(applied, emulator, emulator_synth, synth, env):
    """The topic exists (encrypted, mailing the platform team), admits only its workspace's
    Prometheus, and is what the alert manager definition (not in moto) names."""
    amp, sns = emulator.boto3_client("amp"), emulator.boto3_client("sns")
    output, logical_id = alert_topic_output(emulator_synth, env)
    topic_arn = applied.outputs(STACK)[output]
    assert topic_arn.endswith(f":webapp-{env}-prometheus-alerts")
    attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    assert attributes["KmsMasterKeyId"].startswith("arn:aws:kms:")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "platform-team@webapp.example.com")]

    (workspace,) = [w for w in amp.list_workspaces()["workspaces"] if w["alias"] == f"webapp-{env}"]
    publish = {s["Sid"]: s for s in json.loads(attributes["Policy"])["Statement"]}["PrometheusAlertsPublish"]
    assert publish["Principal"] == {"Service": "aps.amazonaws.com"}
    assert publish["Condition"]["ArnEquals"] == {"aws:SourceArn": workspace["arn"]}

    # The same construct is the same logical id in both targets: the real target's alert manager
    # definition of this workspace, with the applied ARN in place of the reference, names this topic.
    real = synth.stack(STACK)
    (definition,) = [d for d in real.resources("aws_prometheus_alert_manager_definition").values()
                     if d["provider"] == f"aws.{env}"]
    reference = f"${{aws_sns_topic.{logical_id}.arn}}"
    assert reference in definition["definition"]
    config = yaml.safe_load(yaml.safe_load(definition["definition"].replace(reference, topic_arn))["alertmanager_config"])
    (receiver,) = config["receivers"]
    assert [c["topic_arn"] for c in receiver["sns_configs"]] == [topic_arn]
