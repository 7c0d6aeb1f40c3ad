"""Which CPU architectures an image in ECR offers, and the collector sidecar's check at release.

An image copied with a plain `docker pull`, `tag` and `push` on an x86 host keeps only the
host's platform: the manifest list (several platforms) becomes one amd64 manifest. A service
on ARM64 (service2) then cannot start its collector sidecar, and the health alert never fires
because the series is absent. The repositories' tags are immutable, so such a tag cannot be
fixed in place: mirror it with all platforms (`make mirror-collector`, README) under a new tag.

ECR's BatchGetImage returns the manifest document in the media type asked for. A manifest
list (Docker) or image index (OCI) names each platform; a single image manifest does not (its
architecture is in its config blob, which this check does not download), so for one the
answer is "cannot tell" and `release` warns instead of refusing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from delivery import DeployError

# Docker Registry HTTP API V2 / OCI image spec media types ECR serves (ECR user guide,
# "Container image manifest format support").
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPTED_MEDIA_TYPES = [MANIFEST_LIST, OCI_INDEX, DOCKER_MANIFEST, OCI_MANIFEST]
# Where the ADOT collector image is published (modules/cicd/README.md: mirror it into the registry).
COLLECTOR_SOURCE = "public.ecr.aws/aws-observability/aws-otel-collector"
# ECS runtimePlatform.cpuArchitecture -> the OCI platform architecture of the same CPUs.
OCI_ARCHITECTURE = {"X86_64": "amd64", "ARM64": "arm64"}


@dataclass(frozen=True)
class Platforms:
    """The `linux` architectures a manifest list names, or None for a single-platform manifest."""

    architectures: frozenset[str] | None
    media_type: str


def platforms(manifest: str, media_type: str | None = None) -> Platforms:
    """The platforms of one manifest document (as ECR BatchGetImage returns it)."""
    document = json.loads(manifest)
    kind = document.get("mediaType") or media_type or ""
    if kind in (MANIFEST_LIST, OCI_INDEX) or "manifests" in document:
        # Attestation manifests (buildx provenance) carry the platform unknown/unknown: not a platform.
        found = frozenset(entry["platform"]["architecture"] for entry in document.get("manifests", [])
                          if entry.get("platform", {}).get("os") == "linux"
                          and entry["platform"].get("architecture") not in (None, "unknown"))
        return Platforms(found, kind or OCI_INDEX)
    return Platforms(None, kind or DOCKER_MANIFEST)


def image_platforms(ecr: Any, registry_id: str, repository: str, tag: str) -> Platforms | None:
    """The platforms of `repository:tag` in ECR, or None when the tag does not exist."""
    from botocore.exceptions import ClientError

    try:
        result = ecr.batch_get_image(registryId=registry_id, repositoryName=repository,
                                     imageIds=[{"imageTag": tag}], acceptedMediaTypes=ACCEPTED_MEDIA_TYPES)
    except ClientError as error:
        raise DeployError(f"cannot read ECR {repository}:{tag}: {error}") from None
    images = result.get("images", [])
    if not images:
        return None
    image = images[0]
    return platforms(image["imageManifest"], image.get("imageManifestMediaType"))


def check_sidecar(ecr: Any, registry_id: str, repository: str, tag: str, cpu_architectures: set[str]) -> str | None:
    """DeployError when the image is a manifest list without a platform a service needs (ECS
    `cpu_architecture` values), or missing; a warning when the registry cannot tell (one manifest);
    None when every architecture is there."""
    needed = {OCI_ARCHITECTURE[a] for a in cpu_architectures}
    found = image_platforms(ecr, registry_id, repository, tag)
    if found is None:
        raise DeployError(f"the collector sidecar {repository}:{tag} does not exist in ECR {registry_id}: "
                          "mirror it first (make mirror-collector)")
    if found.architectures is None:
        return (f"the collector sidecar {repository}:{tag} is a single-platform image ({found.media_type}), so ECR "
                f"cannot tell whether it runs on {', '.join(sorted(needed))}; mirror it with every platform "
                "(make mirror-collector) under a new tag")
    missing = needed - found.architectures
    if missing:
        raise DeployError(f"the collector sidecar {repository}:{tag} has no {', '.join(sorted(missing))} image "
                          f"(it has {', '.join(sorted(found.architectures)) or 'none'}), which services of this "
                          "environment run on: mirror it with every platform (make mirror-collector) under a new "
                          "tag and set cicd.collector_image_tag")
    return None


def collector_image(environments: Any, source: str | None = None) -> tuple[str, str, str]:
    """(source, target, registry region) of the collector mirror: the public image at the configured
    tag, copied to `<registry>.dkr.ecr.<region>.amazonaws.com/<collector_image_repository>:<tag>`."""
    registry, cicd = environments.shared.registry, environments.shared.cicd
    host = f"{registry.account_id}.dkr.ecr.{registry.region}.amazonaws.com"
    target = f"{host}/{cicd.collector_image_repository}:{cicd.collector_image_tag}"
    return source or f"{COLLECTOR_SOURCE}:{cicd.collector_image_tag}", target, registry.region


def architectures_in_use(environments: Any) -> set[str]:
    """The ECS CPU architectures of every service of every environment (each runs the sidecar)."""
    return {s.cpu_architecture.value for e in environments.environments for s in e.api.service}
