"""The deploy command against the emulator: publish builds to the applied dev-frontend stack.

The command finds the bucket and distribution in the stack's Terraform state (in the
emulator's state bucket), as it does in a pipeline. The tests run in order: a first
deploy, a dry run, a second deploy that replaces and removes files, a deploy whose
upload fails part-way (the previous site keeps serving), then the same deploy again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import boto3
import pytest

from delivery import DeployError
from delivery.frontend import IMMUTABLE, NO_CACHE, Options, deploy
from tests.harness.emulator import emulator_env
from tests.harness.project import ENVIRONMENTS_DIR, PROJECT

STACK = "dev-frontend"
BUCKET = "webapp-dev-frontend-site-222222222222"  # dev.hcl account_id

V1 = {
    "index.html": "<!doctype html><script src=/assets/index-1a2b3c4d.js></script>v1",
    "about.html": "<!doctype html>about v1",
    "robots.txt": "User-agent: *",
    "favicon.ico": "icon",
    "assets/index-1a2b3c4d.js": "console.log('v1')",
    "assets/index-5e6f7a8b.css": "body{color:black}",
    "assets/logo.6ce24c58023cc2f8.svg": "<svg/>",
}
# v2: new JS bundle (new name), index.html changed, about.html removed, CSS and logo unchanged.
V2 = {
    "index.html": "<!doctype html><script src=/assets/index-9c8d7e6f.js></script>v2",
    "robots.txt": "User-agent: *",
    "favicon.ico": "icon",
    "assets/index-9c8d7e6f.js": "console.log('v2')",
    "assets/index-5e6f7a8b.css": "body{color:black}",
    "assets/logo.6ce24c58023cc2f8.svg": "<svg/>",
}
# v3: what a failed deploy tries to publish.
V3 = {**V2, "index.html": "<!doctype html><script src=/assets/index-0f0e0d0c.js></script>v3",
      "assets/index-0f0e0d0c.js": "console.log('v3')", "assets/chart-11aa22bb.js": "chart()"}
FAILING_ASSET = "assets/index-0f0e0d0c.js"


def write(directory, files):
    for key, text in files.items():
        path = directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


@pytest.fixture(scope="module")
def site(deployer, emulator):
    deployer.apply("bootstrap")
    deployer.apply(STACK)
    return deployer.outputs(STACK)


@pytest.fixture(scope="module")
def s3(emulator):
    return emulator.boto3_client("s3")


@pytest.fixture(scope="module")
def cloudfront(emulator):
    return emulator.boto3_client("cloudfront", region="us-east-1")


def cli(emulator, *args, endpoint_from_env=True):
    """The command as a pipeline runs it; the emulator through AWS_ENDPOINT_URL (or a flag in `args`)."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"} | emulator_env()
    env.pop("AWS_PROFILE")  # emulator_env blanks it for terraform; boto3 wants it unset
    if endpoint_from_env:
        env["AWS_ENDPOINT_URL"] = emulator.endpoint
    return subprocess.run([sys.executable, "-m", "delivery", "deploy-frontend", *args], cwd=PROJECT,
                          capture_output=True, text=True, timeout=300, env=env)


def objects(s3):
    return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def body(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def invalidations(cloudfront, distribution_id):
    listed = cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"]
    return [
        sorted(cloudfront.get_invalidation(DistributionId=distribution_id, Id=item["Id"])["Invalidation"][
            "InvalidationBatch"]["Paths"]["Items"])
        for item in listed.get("Items", [])
    ]


def test_first_deploy_publishes_every_file_with_its_headers_and_invalidates_the_entry_points(
        site, emulator, s3, cloudfront, tmp_path):
    result = cli(emulator, "--env", "dev", "--dir", str(write(tmp_path / "v1", V1)), "--wait")
    assert result.returncode == 0, result.stderr
    assert f"(bucket {BUCKET}, distribution {site['distribution_id']})" in result.stdout
    assert "completed" in result.stdout
    assert objects(s3) == set(V1)
    index = s3.head_object(Bucket=BUCKET, Key="index.html")
    assert (index["ContentType"], index["CacheControl"]) == ("text/html; charset=utf-8", NO_CACHE)
    bundle = s3.head_object(Bucket=BUCKET, Key="assets/index-1a2b3c4d.js")
    assert (bundle["ContentType"], bundle["CacheControl"]) == ("text/javascript; charset=utf-8", IMMUTABLE)
    logo = s3.head_object(Bucket=BUCKET, Key="assets/logo.6ce24c58023cc2f8.svg")
    assert (logo["ContentType"], logo["CacheControl"]) == ("image/svg+xml", IMMUTABLE)
    assert s3.head_object(Bucket=BUCKET, Key="favicon.ico")["CacheControl"] == NO_CACHE
    assert index["ServerSideEncryption"] == "aws:kms"  # the bucket's default, not the command's
    assert invalidations(cloudfront, site["distribution_id"]) == [
        ["/", "/about.html", "/favicon.ico", "/index.html", "/robots.txt"]]


def test_dry_run_prints_the_plan_and_changes_nothing(site, emulator, s3, cloudfront, tmp_path):
    before = s3.list_object_versions(Bucket=BUCKET)["Versions"]
    result = cli(emulator, "--env", "dev", "--dir", str(write(tmp_path / "v2", V2)), "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "upload      assets/index-9c8d7e6f.js" in out and "(new)" in out
    assert "upload      index.html" in out and "(changed)" in out
    assert "delete      about.html  (no longer in the build)" in out
    assert "delete      assets/index-1a2b3c4d.js" in out
    assert "unchanged   4 file(s)" in out
    assert "invalidate  / /about.html /index.html" in out
    assert "dry run: nothing was uploaded, deleted or invalidated" in out
    assert s3.list_object_versions(Bucket=BUCKET)["Versions"] == before
    assert len(invalidations(cloudfront, site["distribution_id"])) == 1


def test_second_deploy_switches_index_html_removes_old_files_and_skips_unchanged(
        site, emulator, s3, cloudfront, tmp_path):
    css_version = s3.head_object(Bucket=BUCKET, Key="assets/index-5e6f7a8b.css")["VersionId"]
    result = cli(emulator, "--env", "dev", "--dir", str(write(tmp_path / "v2", V2)),
                 "--endpoint-url", emulator.endpoint, endpoint_from_env=False)
    assert result.returncode == 0, result.stderr
    assert objects(s3) == set(V2)
    assert body(s3, "index.html").endswith("v2")
    assert s3.head_object(Bucket=BUCKET, Key="assets/index-5e6f7a8b.css")["VersionId"] == css_version
    assert invalidations(cloudfront, site["distribution_id"])[-1] == ["/", "/about.html", "/index.html"]
    # Deleted from view, still recoverable: the old bundle is a noncurrent version.
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="assets/index-1a2b3c4d.js")
    assert versions.get("DeleteMarkers") and versions.get("Versions")


def session_failing_on(key):
    """A boto3 session whose S3 PutObject for `key` fails like a dropped connection."""
    from botocore.exceptions import EndpointConnectionError

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-west-1")
    uploaded = []

    def fail(params, **_):  # type: ignore[no-untyped-def]
        if params.get("Key") == key:
            raise EndpointConnectionError(endpoint_url=f"https://s3.amazonaws.com/{BUCKET}/{key}")
        uploaded.append(params.get("Key"))

    session.events.register("provide-client-params.s3.PutObject", fail)
    return session, uploaded


def test_a_failed_upload_stops_before_index_html_and_the_previous_site_keeps_serving(
        site, emulator, s3, cloudfront, tmp_path, capsys):
    served_before = body(s3, "index.html")
    invalidations_before = invalidations(cloudfront, site["distribution_id"])
    session, uploaded = session_failing_on(FAILING_ASSET)
    options = Options(env="dev", directory=write(tmp_path / "v3", V3), environments_dir=ENVIRONMENTS_DIR,
                      endpoint_url=emulator.endpoint, workers=1)
    with pytest.raises(DeployError) as caught:
        deploy(options, session=session)
    message = str(caught.value)
    assert FAILING_ASSET in message and "index.html was not switched" in message
    assert "the previous build is still served" in message
    assert "index.html" not in uploaded
    # The previous build is whole: its index.html, and every asset it references.
    assert body(s3, "index.html") == served_before
    assert set(V2) <= objects(s3)
    assert FAILING_ASSET not in objects(s3)
    assert invalidations(cloudfront, site["distribution_id"]) == invalidations_before


def test_the_same_deploy_run_again_completes(site, emulator, s3, tmp_path):
    result = cli(emulator, "--env", "dev", "--dir", str(write(tmp_path / "v3", V3)))
    assert result.returncode == 0, result.stderr
    assert body(s3, "index.html").endswith("v3")
    assert objects(s3) == set(V3)


def test_keep_old_days_marks_removed_files_instead_of_deleting_them(site, emulator, s3, tmp_path):
    result = cli(emulator, "--env", "dev", "--dir", str(write(tmp_path / "v2", V2)), "--keep-old-days", "7")
    assert result.returncode == 0, result.stderr
    assert "mark stale  assets/chart-11aa22bb.js" in result.stdout
    assert set(V3) <= objects(s3)  # old tabs can still load v3's chunks
    tags = s3.get_object_tagging(Bucket=BUCKET, Key="assets/chart-11aa22bb.js")["TagSet"]
    assert [t["Key"] for t in tags] == ["stale-since"]
    assert body(s3, "index.html").endswith("v2")


def test_explicit_bucket_and_distribution_flags_replace_the_state_lookup(site, emulator, tmp_path):
    # An organisation whose state bucket does not exist: only the flags can name the site.
    environments = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, environments)
    shared = environments / "shared.hcl"
    shared.write_text(shared.read_text().replace('  lock_table', '  bucket     = "no-such-state-bucket"\n  lock_table'))
    build = str(write(tmp_path / "v2", V2))
    without = cli(emulator, "--env", "dev", "--dir", build, "--environments-dir", str(environments))
    assert without.returncode == 1
    assert "no Terraform state at s3://no-such-state-bucket/dev/frontend.tfstate" in without.stderr
    with_flags = cli(emulator, "--env", "dev", "--dir", build, "--environments-dir", str(environments),
                     "--bucket", BUCKET, "--distribution-id", site["distribution_id"], "--dry-run")
    assert with_flags.returncode == 0, with_flags.stderr
    assert f"(bucket {BUCKET}, distribution {site['distribution_id']})" in with_flags.stdout


def test_nothing_private_reaches_the_site(site, emulator, s3, tmp_path):
    """A build folder holding secrets, VCS data and a link out: the link stops the run before
    any upload; without it, only the site and `.well-known/` are published."""
    build = write(tmp_path / "private", {**V2, ".env": "SECRET=1", ".git/config": "[core]",
                                         ".well-known/security.txt": "Contact: mailto:security@example.com"})
    (tmp_path / "creds.txt").write_text("aws_secret_access_key = x")
    (build / "assets" / "creds.txt").symlink_to(tmp_path / "creds.txt")
    before = s3.list_object_versions(Bucket=BUCKET)["Versions"]
    refused = cli(emulator, "--env", "dev", "--dir", str(build))
    assert refused.returncode == 2
    assert f"assets/creds.txt -> {tmp_path / 'creds.txt'}" in refused.stderr
    assert s3.list_object_versions(Bucket=BUCKET)["Versions"] == before

    (build / "assets" / "creds.txt").unlink()
    result = cli(emulator, "--env", "dev", "--dir", str(build))
    assert result.returncode == 0, result.stderr
    assert "skip        2 hidden path(s), not published: .env, .git/" in result.stdout
    assert objects(s3) == set(V2) | {".well-known/security.txt"}
