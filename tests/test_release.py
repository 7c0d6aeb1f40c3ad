"""GitOps release files: loading, validation with line numbers, atomic writes, and the API running them."""

from __future__ import annotations

import json
import os

import pytest

from modules.core.errors import ConfigError
from modules.environment import load_environments
from modules.release import Release, ReleasedImage, load_release, release_path, render_release, write_release
from tests.harness.synth import synthesize

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def pinned(name="service1", repository="webapp/service1", tag="c0ffee1", digest=DIGEST):
    return ReleasedImage(name=name, image_repository=repository, image_tag=tag, image_digest=digest)


def test_rendered_release_loads_back_identically(tmp_path):
    release = Release().with_image(pinned()).with_image(
        ReleasedImage(image_repository="webapp/migrations", image_tag="10.20.1", image_digest=OTHER))
    path = tmp_path / "dev.release.hcl"
    write_release(path, release)
    assert load_release(path) == release
    assert render_release(load_release(path)) == path.read_text()


def test_api_stack_runs_the_pinned_digest(tmp_path, environments_copy):
    write_release(release_path(environments_copy, "dev"), Release().with_image(pinned()))
    synthesized = synthesize(load_environments(environments_copy, ("dev",)), tmp_path / "cdktf.out")
    definitions = synthesized.stack("dev-api").resources("aws_ecs_task_definition")
    images = [c["image"] for d in definitions.values() for c in json.loads(d["container_definitions"])]
    assert any(i.endswith(f"/webapp/service1@{DIGEST}") for i in images), images
    assert not any("webapp/service1:" in i for i in images)


def test_rejects_release_of_a_service_the_environment_does_not_run_with_its_line(environments_copy):
    write_release(release_path(environments_copy, "dev"), Release().with_image(pinned(name="service9")))
    with pytest.raises(ConfigError) as caught:
        load_environments(environments_copy, ("dev",))
    assert 'dev.release.hcl:4: service[0] "service9" is not a service of this environment' in str(caught.value)


def test_rejects_release_whose_repository_is_not_the_services(environments_copy):
    write_release(release_path(environments_copy, "dev"), Release().with_image(pinned(repository="webapp/other")))
    with pytest.raises(ConfigError) as caught:
        load_environments(environments_copy, ("dev",))
    assert "dev.release.hcl:5: service[0].image_repository must be the service's repository" in str(caught.value)


def test_rejects_a_digest_that_is_not_sha256(environments_copy):
    path = release_path(environments_copy, "dev")
    write_release(path, Release().with_image(pinned()))
    path.write_text(path.read_text().replace(DIGEST, "sha256:short"))
    with pytest.raises(ConfigError) as caught:
        load_environments(environments_copy, ("dev",))
    assert "dev.release.hcl:7: service[0].image_digest must be 'sha256:' and 64 lowercase hex digits" in str(
        caught.value)


def test_a_failed_write_leaves_the_release_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "dev.release.hcl"
    write_release(path, Release().with_image(pinned()))
    before = path.read_text()

    def broken_replace(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_release(path, Release().with_image(pinned(digest=OTHER)))
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.release.hcl"]
