"""delivery/images.py: the platforms of a manifest document, and the collector sidecar check `release` runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from delivery import DeployError
from delivery.images import (
    ACCEPTED_MEDIA_TYPES,
    DOCKER_MANIFEST,
    MANIFEST_LIST,
    OCI_INDEX,
    check_sidecar,
    platforms,
)

# Manifest documents in the shapes the specs give: Docker "Image Manifest V2, Schema 2" (its
# manifest list example names ppc64le and amd64 images), the OCI image index as `docker buildx`
# pushes it (each platform, plus attestation manifests with platform unknown/unknown), and a
# single image manifest as a plain `docker push` of one platform leaves it.
DOCKER_LIST = json.dumps({
    "schemaVersion": 2, "mediaType": MANIFEST_LIST,
    "manifests": [
        {"mediaType": DOCKER_MANIFEST, "size": 7143, "digest": "sha256:" + "e" * 64,
         "platform": {"architecture": "ppc64le", "os": "linux"}},
        {"mediaType": DOCKER_MANIFEST, "size": 7682, "digest": "sha256:" + "5" * 64,
         "platform": {"architecture": "amd64", "os": "linux", "features": ["sse4"]}},
    ],
})
BUILDX_INDEX = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_INDEX,
    "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:" + "1" * 64,
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:" + "2" * 64,
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:" + "3" * 64,
         "platform": {"architecture": "unknown", "os": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
    ],
})
SINGLE = json.dumps({
    "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
               "digest": "sha256:" + "b" * 64},
    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                "digest": "sha256:" + "c" * 64}],
})


def test_a_docker_manifest_list_names_its_platforms():
    assert platforms(DOCKER_LIST).architectures == {"ppc64le", "amd64"}


def test_a_buildx_index_names_its_platforms_but_not_its_attestations():
    assert platforms(BUILDX_INDEX).architectures == {"amd64", "arm64"}


def test_a_single_manifest_cannot_tell():
    found = platforms(SINGLE)
    assert found.architectures is None and found.media_type == DOCKER_MANIFEST


class FakeEcr:
    """BatchGetImage answering one recorded manifest for one tag (ECR API reference: images[].imageManifest,
    imageManifestMediaType; an unknown tag is a failure, not an error)."""

    def __init__(self, manifest: str | None, media_type: str | None = None):
        self.manifest, self.media_type = manifest, media_type
        self.asked: dict = {}

    def batch_get_image(self, **request):
        self.asked = request
        if self.manifest is None:
            return {"images": [], "failures": [{"imageId": request["imageIds"][0], "failureCode": "ImageNotFound"}]}
        image = {"imageId": request["imageIds"][0], "imageManifest": self.manifest}
        if self.media_type:
            image["imageManifestMediaType"] = self.media_type
        return {"images": [image], "failures": []}


def test_release_refuses_a_sidecar_without_an_architecture_a_service_runs_on():
    ecr = FakeEcr(DOCKER_LIST, MANIFEST_LIST)
    with pytest.raises(DeployError) as caught:
        check_sidecar(ecr, "111111111111", "aws-otel-collector", "v0.40.0", {"X86_64", "ARM64"})
    message = str(caught.value)
    assert "aws-otel-collector:v0.40.0 has no arm64 image (it has amd64, ppc64le)" in message
    assert "make mirror-collector" in message
    assert ecr.asked["acceptedMediaTypes"] == ACCEPTED_MEDIA_TYPES
    assert ecr.asked["imageIds"] == [{"imageTag": "v0.40.0"}] and ecr.asked["registryId"] == "111111111111"


def test_release_accepts_a_sidecar_with_every_architecture():
    assert check_sidecar(FakeEcr(BUILDX_INDEX, OCI_INDEX), "111111111111", "aws-otel-collector", "v1",
                         {"X86_64", "ARM64"}) is None
    assert check_sidecar(FakeEcr(DOCKER_LIST), "111111111111", "aws-otel-collector", "v1", {"X86_64"}) is None


def test_release_warns_where_the_registry_cannot_tell():
    warning = check_sidecar(FakeEcr(SINGLE, DOCKER_MANIFEST), "111111111111", "aws-otel-collector", "v1",
                            {"ARM64"})
    assert warning is not None and "single-platform image" in warning and "arm64" in warning


def test_release_refuses_a_sidecar_that_is_not_there():
    with pytest.raises(DeployError, match="does not exist in ECR 111111111111: mirror it first"):
        check_sidecar(FakeEcr(None), "111111111111", "aws-otel-collector", "v1", {"X86_64"})


def test_collector_image_prints_source_target_and_region_from_shared_hcl(capsys):
    from delivery.__main__ import main

    assert main(["collector-image"]) == 0
    # shared.hcl: registry 111111111111 in eu-west-1; cicd defaults aws-otel-collector:v0.40.0.
    assert capsys.readouterr().out == (
        "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0 "
        "111111111111.dkr.ecr.eu-west-1.amazonaws.com/aws-otel-collector:v0.40.0 eu-west-1\n")


MIRROR = Path(__file__).resolve().parents[1] / "ci" / "mirror-image.sh"


def fake_tools(directory: Path, *names: str) -> Path:
    """Executables that record their arguments in calls.log (and `aws` prints a password)."""
    directory.mkdir()
    for name in ("aws", *names):
        tool = directory / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{directory}/calls.log"\n'
                        + ('echo secret\n' if name == "aws" else "cat >/dev/null 2>&1 || true\n"))
        tool.chmod(0o755)
    return directory


@pytest.mark.parametrize("tool, copy", [
    ("crane", "crane copy SRC 1.dkr.ecr.eu-west-1.amazonaws.com/r:t"),
    ("skopeo", "skopeo copy --all docker://SRC docker://1.dkr.ecr.eu-west-1.amazonaws.com/r:t"),
])
def test_mirror_script_copies_every_platform_with_the_tool_it_finds(tmp_path, tool, copy):
    bin_dir = fake_tools(tmp_path / "bin", tool)
    result = subprocess.run(["/bin/sh", str(MIRROR), "SRC", "1.dkr.ecr.eu-west-1.amazonaws.com/r:t", "eu-west-1"],
                            capture_output=True, text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=30)
    assert result.returncode == 0, result.stderr
    calls = (bin_dir / "calls.log").read_text().splitlines()
    assert "aws ecr get-login-password --region eu-west-1" in calls  # piped into the login: order varies
    assert copy in calls


def test_mirror_script_refuses_without_a_multi_platform_tool(tmp_path):
    bin_dir = fake_tools(tmp_path / "bin")
    result = subprocess.run(["/bin/sh", str(MIRROR), "SRC", "1.dkr.ecr.eu-west-1.amazonaws.com/r:t", "eu-west-1"],
                            capture_output=True, text=True, env={"PATH": str(bin_dir)}, timeout=30)
    assert result.returncode == 2 and "install crane, skopeo or docker buildx" in result.stderr
