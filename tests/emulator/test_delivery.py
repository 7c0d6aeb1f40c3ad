"""The delivery commands end to end on the emulator: release, promote, migrate."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import threading
import time
import urllib.request

import boto3
import pytest

from delivery import DeployError, UsageError
from delivery.aws import Aws
from delivery.pipeline import Context, migrate, promote, release
from modules.core.errors import ConfigError
from modules.environment import load_environments
from modules.release import load_release, release_path
from tests.harness.project import ENVIRONMENTS_DIR

EMULATOR_ACCOUNT_ID = "123456789012"  # moto's default account (moto docs: the default account id of its backends)

REPOSITORIES = ("webapp/service1", "webapp/service2", "webapp/migrations")


@pytest.fixture
def environments_dir(tmp_path):
    """The project's environments, with the registry in the emulator's account."""
    target = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, target, ignore=shutil.ignore_patterns("*.release.hcl"))
    shared = target / "shared.hcl"
    shared.write_text(shared.read_text().replace('account_id = "111111111111"', f'account_id = "{EMULATOR_ACCOUNT_ID}"')
                      .replace("arn:aws:iam::111111111111:", f"arn:aws:iam::{EMULATOR_ACCOUNT_ID}:")
                      # the state bucket bootstrap created from the project's files (its default name
                      # follows the state account, which the line above moved)
                      .replace("  lock_table", '  bucket     = "webapp-tfstate-111111111111"\n  lock_table'))
    return target


@pytest.fixture
def context(emulator, environments_dir):
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-west-1")
    return Context(environments_dir, Aws(session, emulator.endpoint), out=io.StringIO())


@pytest.fixture
def ecr(emulator, deployer):
    """The registry as shared-cicd creates it (applied through the session deployer, as a real
    account has it before any release): this module runs alone and in any order with test_cicd."""
    deployer.apply("shared-cicd")
    client = emulator.boto3_client("ecr")
    names = {r["repositoryName"] for r in client.describe_repositories()["repositories"]}
    assert set(REPOSITORIES) <= names, f"shared-cicd created {sorted(names)}"
    # The collector sidecar every service runs (shared.hcl cicd defaults), mirrored with both platforms.
    push_index(client, COLLECTOR_REPOSITORY, COLLECTOR_TAG, ("amd64", "arm64"))
    return client


COLLECTOR_REPOSITORY, COLLECTOR_TAG = "aws-otel-collector", "v0.40.0"  # modules/cicd/config.py defaults


def push_index(ecr, repository: str, tag: str, architectures: tuple[str, ...]) -> None:
    """An OCI image index naming one image per architecture (as `crane copy` or `skopeo copy --all` leave it)."""
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
         "digest": "sha256:" + hashlib.sha256(f"{repository}:{tag}:{arch}".encode()).hexdigest(),
         "platform": {"architecture": arch, "os": "linux"}} for arch in architectures]})
    try:
        ecr.put_image(repositoryName=repository, imageManifest=index, imageTag=tag,
                      imageManifestMediaType="application/vnd.oci.image.index.v1+json")
    except ecr.exceptions.ImageAlreadyExistsException:
        pass


def push(ecr, repository: str, tag: str) -> str:
    """An image manifest pushed as `tag`; its digest (moto derives it from the layers: one of its own)."""
    layer = "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": layer, "size": 1,
                                      "mediaType": "application/vnd.docker.container.image.v1+json"},
                           "layers": [{"digest": layer, "size": 1,
                                       "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"}]})
    result = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    return result["image"]["imageId"]["imageDigest"]


def test_release_pins_the_digest_in_the_dev_release_file_and_the_api_runs_it(context, ecr, environments_dir):
    digest = push(ecr, "webapp/service1", "c0ffee1")
    assert release(context, service="service1", tag="c0ffee1") == digest
    text = (environments_dir / "dev.release.hcl").read_text()
    assert f'image_digest     = "{digest}"' in text and "do not edit by hand" in text
    dev = load_environments(environments_dir, ("dev",)).get("dev")
    service1 = next(s for s in dev.api.service if s.name == "service1")
    assert (service1.image_tag, service1.image_digest) == ("c0ffee1", digest)
    assert "+  image_digest" in context.out.getvalue()  # the diff was printed


def test_release_refuses_a_tag_that_does_not_exist(context, ecr, environments_dir):
    with pytest.raises(DeployError, match="does not exist in ECR"):
        release(context, service="service2", tag="never-pushed")
    assert not (environments_dir / "dev.release.hcl").exists()


def test_release_refuses_an_image_with_critical_findings(context, ecr, emulator, environments_dir):
    digest = push(ecr, "webapp/service2", "badbad1")
    ecr.start_image_scan(repositoryName="webapp/service2", imageId={"imageDigest": digest})
    findings = {"results": [{
        "imageScanFindings": {"findingSeverityCounts": {"CRITICAL": 2, "HIGH": 1}},
        "registryId": EMULATOR_ACCOUNT_ID, "repositoryName": "webapp/service2",
        "imageId": {"imageDigest": digest},
        "imageScanStatus": {"status": "COMPLETE", "description": "done"},
    }], "region": "eu-west-1"}
    request = urllib.request.Request(f"{emulator.endpoint}/moto-api/static/ecr/scan-finding-results",
                                     data=json.dumps(findings).encode(), method="POST")
    urllib.request.urlopen(request).close()
    try:
        with pytest.raises(DeployError, match="2 CRITICAL scan findings"):
            release(context, service="service2", tag="badbad1")
    finally:
        request = urllib.request.Request(f"{emulator.endpoint}/moto-api/static/ecr/scan-finding-results",
                                         data=json.dumps({"results": [], "region": "eu-west-1"}).encode(),
                                         method="POST")
        urllib.request.urlopen(request).close()
    assert not (environments_dir / "dev.release.hcl").exists()


def test_release_refuses_a_collector_sidecar_without_the_arm64_image_service2_needs(context, ecr, environments_dir):
    # moto's ECR stores a manifest list and serves it back through BatchGetImage in its media type.
    push_index(ecr, COLLECTOR_REPOSITORY, "amd64-only", ("amd64",))
    shared = environments_dir / "shared.hcl"
    shared.write_text(shared.read_text().replace("cicd {\n", 'cicd {\n  collector_image_tag = "amd64-only"\n', 1))
    push(ecr, "webapp/service1", "a11a11a")
    with pytest.raises(DeployError, match="aws-otel-collector:amd64-only has no arm64 image"):
        release(context, service="service1", tag="a11a11a")
    assert not (environments_dir / "dev.release.hcl").exists()


def test_release_rejects_unknown_environment_and_service(context, ecr):
    with pytest.raises(UsageError, match="not a service of dev"):
        release(context, service="service9", tag="x")
    with pytest.raises(UsageError, match="use promote for prod"):
        release(context, service="service1", tag="x", environment="prod")


def test_promote_copies_digests_one_step_and_never_skips(context, ecr, environments_dir):
    first = push(ecr, "webapp/service1", "feed001")
    second = push(ecr, "webapp/service2", "feed002")
    release(context, service="service1", tag="feed001")
    release(context, service="service2", tag="feed002")
    with pytest.raises(UsageError, match="dev promotes to stage, not prod"):
        promote(context, "dev", "prod")
    assert not (environments_dir / "prod.release.hcl").exists()
    promote(context, "dev", "stage")
    stage = load_environments(environments_dir, ("stage",)).get("stage")
    assert {s.name: s.image_digest for s in stage.api.service} == {"service1": first, "service2": second}
    # The artifact is the same bytes: digests, not tags, move.
    assert (environments_dir / "stage.release.hcl").read_text() == (environments_dir / "dev.release.hcl").read_text()


def test_promote_carries_only_the_approved_service(context, ecr, environments_dir):
    first = push(ecr, "webapp/service1", "only001")
    push(ecr, "webapp/service2", "only002")
    release(context, service="service1", tag="only001")
    release(context, service="service2", tag="only002")
    promote(context, "dev", "stage", service="service1", tag="only001")
    stage = load_release(release_path(environments_dir, "stage"))
    assert [(s.name, s.image_digest) for s in stage.service] == [("service1", first)]
    assert stage.migrations is None


def test_promote_tags_the_digest_it_promotes_so_the_lifecycle_policy_keeps_it(context, ecr, environments_dir):
    digest = push(ecr, "webapp/service1", "keep001")
    release(context, service="service1", tag="keep001")
    promote(context, "dev", "stage", service="service1", tag="keep001")
    (found,) = ecr.describe_images(repositoryName="webapp/service1",
                                   imageIds=[{"imageTag": "release-stage-keep001"}])["imageDetails"]
    assert found["imageDigest"] == digest and "keep001" in found["imageTags"]
    promote(context, "dev", "stage", service="service1", tag="keep001")  # again: the tag is already there
    assert "tagged webapp/service1@" in context.out.getvalue()


def test_promote_refuses_a_tag_the_source_no_longer_runs(context, ecr, environments_dir):
    push(ecr, "webapp/service1", "appr001")
    push(ecr, "webapp/service1", "later02")
    release(context, service="service1", tag="appr001")
    release(context, service="service1", tag="later02")  # another build released after the approval was asked
    with pytest.raises(DeployError, match="dev runs service1:later02, not the approved service1:appr001"):
        promote(context, "dev", "stage", service="service1", tag="appr001")
    assert not (environments_dir / "stage.release.hcl").exists()
    with pytest.raises(UsageError, match="pins no service2"):
        promote(context, "dev", "stage", service="service2")
    with pytest.raises(UsageError, match="--tag needs --service"):
        promote(context, "dev", "stage", tag="appr001")


def test_promote_refuses_a_digest_gone_from_ecr_and_changes_nothing(context, ecr, environments_dir):
    push(ecr, "webapp/service1", "gone001")
    release(context, service="service1", tag="gone001")
    promote(context, "dev", "stage")
    before = (environments_dir / "stage.release.hcl").read_text()
    push(ecr, "webapp/service1", "gone002")
    release(context, service="service1", tag="gone002")
    ecr.batch_delete_image(repositoryName="webapp/service1", imageIds=[{"imageTag": "gone002"}])
    with pytest.raises(DeployError, match="no longer in ECR"):
        promote(context, "dev", "stage")
    assert (environments_dir / "stage.release.hcl").read_text() == before
    assert [p.name for p in environments_dir.iterdir() if p.name.startswith(".")] == []


def test_release_file_edited_by_hand_into_an_invalid_state_names_line_and_key(context, ecr, environments_dir):
    push(ecr, "webapp/service1", "hand001")
    release(context, service="service1", tag="hand001")
    path = environments_dir / "dev.release.hcl"
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if "image_digest" in line)
    lines[number] = '  image_digest     = "sha256:not-a-digest"'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_environments(environments_dir, ("dev",))
    assert f"dev.release.hcl:{number + 1}: service[0].image_digest must be 'sha256:'" in str(caught.value)


def test_migrate_runs_the_flyway_task_and_returns_its_exit_code(context, deployer, emulator):
    for stack in ("bootstrap", "shared-cicd", "dev-network", "dev-database", "dev-api"):
        deployer.apply(stack)
    ecs = emulator.boto3_client("ecs")
    result: dict[str, int] = {}
    runner = threading.Thread(target=lambda: result.setdefault("code", migrate(
        context, "dev", timeout_seconds=120, poll_seconds=0.5)))
    runner.start()
    # moto never stops a task by itself: stop it once it is running, as Fargate would when Flyway exits.
    deadline = time.monotonic() + 60
    task_arn = None
    while task_arn is None and time.monotonic() < deadline:
        for cluster in ecs.list_clusters()["clusterArns"]:
            for arn in ecs.list_tasks(cluster=cluster, startedBy="delivery-migrate")["taskArns"]:
                task_arn = arn
                ecs.stop_task(cluster=cluster, task=arn, reason="flyway finished")
        time.sleep(0.5)
    runner.join(timeout=120)
    assert task_arn is not None, context.out.getvalue()
    assert result.get("code") == 0, context.out.getvalue()
    output = context.out.getvalue()
    assert "migrations succeeded" in output and "logs: " in output

# verify: tests/test_delivery_verify.py (ECS rollouts need a scripted stand-in: moto completes them at once).


# --- a secret without a value stops apply and verify before anything rolls ----------------------

PAYMENTS_SECRET = "webapp-dev/api/payments-api-key"  # dev.hcl api.secrets, created without a value


def deployments(ecs) -> dict[str, list[tuple[str, str]]]:
    """Each service of the dev API's cluster: its deployments (id, task definition)."""
    (cluster,) = [c for c in ecs.list_clusters()["clusterArns"] if c.endswith("/webapp-dev-api")]
    services = ecs.list_services(cluster=cluster)["serviceArns"]
    return {s["serviceName"]: sorted((d["id"], d["taskDefinition"]) for d in s["deployments"])
            for s in ecs.describe_services(cluster=cluster, services=services)["services"]}


def test_apply_and_verify_stop_on_a_secret_without_a_value_and_roll_nothing(
        deployer, emulator, environments_dir, tmp_path, monkeypatch, capsys):
    from delivery.__main__ import main

    for stack in ("bootstrap", "dev-network", "dev-database", "dev-api"):
        deployer.apply(stack)
    secretsmanager = emulator.boto3_client("secretsmanager")
    assert "AWSCURRENT" not in str(secretsmanager.describe_secret(SecretId=PAYMENTS_SECRET).get("VersionIdsToStages"))
    ecs = emulator.boto3_client("ecs")
    rolled_before = deployments(ecs)
    # apply works in copies of the emulator's stacks (same backend and state): dev-network and
    # dev-database plan with no changes (dev-frontend, which needs neither, goes with dev-network),
    # then the check stops before dev-api is planned.
    stacks = tmp_path / "stacks"
    for stack in ("dev-network", "dev-database", "dev-api", "dev-frontend"):
        (stacks / stack).mkdir(parents=True)
        shutil.copy(deployer.directory(stack) / "cdk.tf.json", stacks / stack / "cdk.tf.json")
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "eu-west-1")):
        monkeypatch.setenv(name, value)
    common = ["--environments-dir", str(environments_dir), "--endpoint-url", emulator.endpoint]

    assert main(["apply", "dev", "--stacks-dir", str(stacks), *common]) == 2
    out, err = capsys.readouterr()
    assert err == (f"error: secret {PAYMENTS_SECRET} has no value; set it with aws secretsmanager put-secret-value "
                   f"--secret-id {PAYMENTS_SECRET} --secret-string '...', then run this command again "
                   "(no service was rolled)\n")
    assert "dev-network: no changes" in out and "dev-database: no changes" in out and "dev-api" not in out
    # apply keeps its plans next to the stacks (cdktf.out/plans/<env>): none of dev-api was made.
    assert not list((tmp_path / "plans").rglob("dev-api*")) and not list(stacks.rglob("*.tfplan"))

    assert main(["verify", "dev", *common]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"error: secret arn:aws:secretsmanager:eu-west-1:{EMULATOR_ACCOUNT_ID}:secret:"
                          f"{PAYMENTS_SECRET}-") and err.count("\n") == 1
    assert "put-secret-value --secret-id arn:aws:secretsmanager:" in err
    assert deployments(ecs) == rolled_before
