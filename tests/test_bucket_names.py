"""S3 bucket names are one namespace across all of AWS: every name this project makes ends with
a part only its owner uses, or is a name the owner kept on purpose (README, "Upgrade notes")."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from modules.core.errors import ConfigError
from modules.environment import load_environments
from tests.harness.project import ENVIRONMENTS_DIR
from tests.harness.synth import synthesize

# The account ids in environments/*.hcl (literals: the uniqueness part is the owning account's id).
STATE_ACCOUNT = "111111111111"  # shared.hcl state.account_id
ACCOUNTS = {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}
# S3 user guide, "General purpose bucket naming rules": 3..63 characters, lowercase letters,
# digits, dots and hyphens, beginning and ending with a letter or digit (no dots here: TLS).
S3_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def bucket_names(stack) -> list[str]:
    return [bucket["bucket"] for bucket in stack.resources("aws_s3_bucket").values()]


def test_every_bucket_of_every_stack_carries_its_owners_account_id(synth):
    seen = 0
    for name in sorted(synth.stacks):
        owner = ACCOUNTS.get(name.split("-")[0], STATE_ACCOUNT)
        for bucket in bucket_names(synth.stack(name)):
            assert bucket.endswith(f"-{owner}"), (name, bucket)
            assert S3_BUCKET_NAME.match(bucket), (name, bucket)
            seen += 1
    assert seen == 1 + 2 * len(ACCOUNTS)  # the state bucket, each environment's site and log buckets


def test_state_backends_name_the_bucket_bootstrap_creates(synth):
    (bucket,) = bucket_names(synth.stack("bootstrap"))
    assert bucket == f"webapp-tfstate-{STATE_ACCOUNT}"
    for name in synth.stacks:
        backend = synth.stack(name).json["terraform"]["backend"]
        if "s3" in backend:
            assert backend["s3"]["bucket"] == bucket, name


def write(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def load_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_environments(directory)
    return caught.value


@pytest.fixture(scope="module")
def kept_names(tmp_path_factory):
    """Every stack, with dev keeping its buckets' names of before and stage choosing a suffix."""
    directory = tmp_path_factory.mktemp("kept-names") / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, directory)
    write(directory, "dev.hcl", "frontend {\n", 'frontend {\n  site_bucket_name = "webapp-dev-frontend-site"\n'
          '  log_bucket_name  = "webapp-dev-frontend-cloudfront-logs"\n')
    write(directory, "stage.hcl", 'region', 'bucket_suffix = "acme-eu"\nregion')
    write(directory, "shared.hcl", "  lock_table", '  bucket     = "webapp-tfstate-111111111111"\n  lock_table')
    return synthesize(load_environments(directory), tmp_path_factory.mktemp("kept-names-out") / "cdktf.out")


def test_an_environment_keeps_the_bucket_names_it_was_given(kept_names):
    frontend = kept_names.stack("dev-frontend")
    assert sorted(bucket_names(frontend)) == ["webapp-dev-frontend-cloudfront-logs", "webapp-dev-frontend-site"]
    cicd = kept_names.stack("shared-cicd")
    granted = {arn for document in cicd.data("aws_iam_policy_document").values()
               for statement in document.get("statement", []) for arn in statement.get("resources", [])}
    assert any(arn.endswith(":::webapp-dev-frontend-site") for arn in granted)
    assert not any("webapp-dev-frontend-site-" in arn for arn in granted)


def test_a_bucket_suffix_replaces_the_account_id(kept_names):
    assert sorted(bucket_names(kept_names.stack("stage-frontend"))) == [
        "webapp-stage-frontend-cloudfront-logs-acme-eu", "webapp-stage-frontend-site-acme-eu"]
    assert bucket_names(kept_names.stack("bootstrap")) == ["webapp-tfstate-111111111111"]


def test_rejects_a_prefix_that_makes_a_bucket_name_over_63_characters(environments_copy):
    # 26 + "-frontend-cloudfront-logs" (25) + "-222222222222" (13) = 64 characters.
    write(environments_copy, "dev.hcl", "region", 'name_prefix = "abcdefghij-klmnopqrst-uvwx"\nregion')
    error = load_error(environments_copy)
    assert error.file.endswith("dev.hcl") and error.key == "name_prefix"
    message = str(error)
    assert '"abcdefghij-klmnopqrst-uvwx-frontend-cloudfront-logs-222222222222" (64 characters)' in message
    assert "3..63" in message and "frontend.log_bucket_name" in message


def test_rejects_a_long_bucket_suffix_naming_the_suffix(environments_copy):
    # 19 + 25 + "-" + 20 = 65 characters.
    write(environments_copy, "dev.hcl", "region", 'bucket_suffix = "aaaaaaaaaaaaaaaaaaaa"\nregion')
    write(environments_copy, "dev.hcl", "region", 'name_prefix = "abcdefghij-klmnopqr"\nregion')
    error = load_error(environments_copy)
    assert error.key == "bucket_suffix" and "(65 characters); AWS allows 3..63" in str(error)


def test_a_suffix_that_makes_exactly_63_characters_fits(environments_copy):
    write(environments_copy, "dev.hcl", "region", 'bucket_suffix = "aaaaaaaaaaaaaaaaaa"\nregion')
    write(environments_copy, "dev.hcl", "region", 'name_prefix = "abcdefghij-klmnopqr"\nregion')
    load_environments(environments_copy)


def test_an_explicit_log_bucket_name_lifts_the_limit_for_that_bucket_only(environments_copy):
    write(environments_copy, "dev.hcl", "region", 'bucket_suffix = "aaaaaaaaaaaaaaaaaaaa"\nregion')
    write(environments_copy, "dev.hcl", "region", 'name_prefix = "abcdefghij-klmnopqr"\nregion')
    write(environments_copy, "dev.hcl", "frontend {\n", 'frontend {\n  log_bucket_name = "dev-cf-logs-1"\n')
    load_environments(environments_copy)


def test_rejects_a_bucket_suffix_s3_would_refuse(environments_copy):
    write(environments_copy, "dev.hcl", "region", 'bucket_suffix = "Acme_EU"\nregion')
    error = load_error(environments_copy)
    assert error.key == "bucket_suffix" and '"Acme_EU"' in str(error)


def test_rejects_a_kept_bucket_name_s3_would_refuse(environments_copy):
    write(environments_copy, "dev.hcl", "frontend {\n", 'frontend {\n  site_bucket_name = "Site_Bucket"\n')
    error = load_error(environments_copy)
    assert error.key == "frontend.site_bucket_name" and "S3 bucket name" in str(error)


def test_rejects_the_same_kept_name_for_both_buckets(environments_copy):
    write(environments_copy, "dev.hcl", "frontend {\n",
          'frontend {\n  site_bucket_name = "webapp-dev-site"\n  log_bucket_name = "webapp-dev-site"\n')
    error = load_error(environments_copy)
    assert error.key == "frontend.log_bucket_name"
