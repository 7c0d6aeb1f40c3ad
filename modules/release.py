"""GitOps release files: `environments/<env>.release.hcl` pins what runs, by image digest.

Git is the source of truth for what runs. `python -m delivery release` and `promote`
write these files (never the human-edited `<env>.hcl`); a deploy is a commit to a
release file and a rollback is its revert. When an environment has a release file,
its API stack runs exactly the images it names (`repo@sha256:...`), overriding the
tag in `<env>.hcl`.

    service "service1" {
      image_repository = "webapp/service1"
      image_tag        = "3f2c1a9"
      image_digest     = "sha256:..."
    }
    migrations {
      ...
    }
    canary "service1" {
      image_repository = "webapp/service1"
      image_tag        = "4d5e6f7"
      image_digest     = "sha256:..."
      percent          = 10
    }

A `canary` block runs a candidate of that service beside the pinned (stable) one and sends
`percent` of the stage's requests to the stage's canary, where that service's routes reach the
candidate (`python -m delivery canary start|step|promote|abort`; modules/api/README.md, "Canary").

A file edited by hand into an invalid state stops synthesis with the line and key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.api.config import ApiConfig, Canary
from modules.core.errors import ConfigError, collecting, shown
from modules.core.hcl import display, parse_hcl
from modules.core.naming import NameKind, check_name
from modules.core.schema import check, from_data
from modules.core.values import IMAGE_DIGEST, IMAGE_TAG

RELEASE_SUFFIX = ".release.hcl"
HEADER = (
    "# Written by `python -m delivery release` / `promote` / `canary`: do not edit by hand.\n"
    "# A deploy is a commit to this file; a rollback is its revert.\n"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReleasedImage:
    """One image, pinned: the repository, the tag it was pushed as, and its digest."""

    name: str = "migrations"
    image_repository: str
    image_tag: str
    image_digest: str

    def __post_init__(self) -> None:
        check_name(NameKind.ECR_REPOSITORY, "image_repository", self.image_repository)
        check(bool(IMAGE_TAG.match(self.image_tag)), "image_tag", self.image_tag, "a Docker tag")
        check(bool(IMAGE_DIGEST.match(self.image_digest)), "image_digest", self.image_digest,
              "'sha256:' and 64 lowercase hex digits")


@dataclass(frozen=True, kw_only=True, slots=True)
class ReleasedCanary:
    """A service's candidate, pinned like an image, and the share of requests it takes."""

    name: str
    image_repository: str
    image_tag: str
    image_digest: str
    percent: float

    def __post_init__(self) -> None:
        check_name(NameKind.ECR_REPOSITORY, "image_repository", self.image_repository)
        Canary(image_tag=self.image_tag, image_digest=self.image_digest, percent=self.percent)

    @property
    def image(self) -> ReleasedImage:
        return ReleasedImage(name=self.name, image_repository=self.image_repository, image_tag=self.image_tag,
                             image_digest=self.image_digest)


@dataclass(frozen=True, kw_only=True, slots=True)
class Release:
    """The whole release file of one environment."""

    service: tuple[ReleasedImage, ...] = ()
    migrations: ReleasedImage | None = None
    canary: tuple[ReleasedCanary, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.service]
        for index, name in enumerate(names):
            check(name not in names[:index], f"service[{index}]", name, "a service named once")
        canaries = [c.name for c in self.canary]
        for index, name in enumerate(canaries):
            check(name not in canaries[:index], f"canary[{index}]", name,
                  "at most one canary per service (promote or abort the running one first)")

    def running_canary(self, name: str) -> ReleasedCanary | None:
        return next((c for c in self.canary if c.name == name), None)

    def with_canary(self, canary: ReleasedCanary) -> Release:
        """This release with `canary` running (replacing that service's, if any)."""
        others = tuple(c for c in self.canary if c.name != canary.name)
        return dataclasses.replace(self, canary=tuple(sorted(others + (canary,), key=lambda c: c.name)))

    def without_canary(self, name: str) -> Release:
        return dataclasses.replace(self, canary=tuple(c for c in self.canary if c.name != name))

    def image(self, name: str) -> ReleasedImage | None:
        return next((s for s in self.service if s.name == name), None)

    def with_image(self, image: ReleasedImage) -> Release:
        """This release with `image` pinned (a service by name, or the migrations image)."""
        if image.name == "migrations" and not any(s.name == "migrations" for s in self.service):
            return dataclasses.replace(self, migrations=image)
        others = tuple(s for s in self.service if s.name != image.name)
        return dataclasses.replace(self, service=tuple(sorted(others + (image,), key=lambda s: s.name)))


def release_path(directory: Path, environment: str) -> Path:
    return directory / f"{environment}{RELEASE_SUFFIX}"


def _line_of(text: str, key: str) -> int | None:
    """The line a dotted key (`service[1].image_digest`) sits on, for error messages."""
    lines = text.splitlines()
    start, block_end = 0, len(lines)
    parts = key.split(".")
    head = parts[0]
    match = re.fullmatch(r"(\w+)(?:\[(\d+)\])?", head)
    if not match:
        return None
    block, index = match.group(1), int(match.group(2) or 0)
    found = [i for i, line in enumerate(lines) if re.match(rf"\s*{block}\b", line)]
    if len(found) <= index:
        return None
    start = found[index]
    following = [i for i in found if i > start]
    block_end = following[0] if following else len(lines)
    if len(parts) == 1:
        return start + 1
    for number in range(start, block_end):
        if re.match(rf"\s*{re.escape(parts[1])}\s*=", lines[number]):
            return number + 1
    return start + 1


def _error(path: Path, error: ConfigError) -> ConfigError:
    """The error (each of them), located at `file:line` when the file exists (a release not yet
    written has no lines)."""
    text = path.read_text(encoding="utf-8") if path.exists() else None

    def located(one: ConfigError) -> ConfigError:
        line = _line_of(text, one.key) if text is not None else None
        return ConfigError(one.key, one.message, file=f"{display(path)}:{line}" if line else display(path))

    return ConfigError.joined([located(one) for one in error.errors])


def load_release(path: Path) -> Release | None:
    """The release file at `path`, or None when the environment has none yet."""
    if not path.exists():
        return None
    try:
        return from_data(Release, parse_hcl(path))
    except ConfigError as error:
        if error.file:  # a syntax error already names the file and line
            raise
        raise _error(path, error) from None


def apply_release(api: ApiConfig, release: Release, path: Path) -> ApiConfig:
    """The API config running the release's images; errors name the release file's line."""
    known = {s.name: s for s in api.service}
    # A pinned image and a canary's candidate both name a service of this environment and its repository.
    blocks: tuple[tuple[str, tuple[ReleasedImage | ReleasedCanary, ...]], ...] = (
        ("service", release.service), ("canary", release.canary))
    for block, images in blocks:
        for index, image in enumerate(images):
            if image.name not in known:
                raise _error(path, ConfigError(
                    f"{block}[{index}]", f"{shown(image.name)} is not a service of this environment "
                    f"(its api block has {', '.join(sorted(known))})"))
            if image.image_repository != known[image.name].image_repository:
                raise _error(path, ConfigError(
                    f"{block}[{index}].image_repository", f"must be the service's repository "
                    f"{shown(known[image.name].image_repository)}, got {shown(image.image_repository)}"))

    def pinned(service: Any) -> Any:
        found = release.image(service.name)
        if found is not None:
            service = dataclasses.replace(service, image_tag=found.image_tag, image_digest=found.image_digest)
        candidate = release.running_canary(service.name)
        if candidate is not None:
            service = dataclasses.replace(service, canary=Canary(
                image_tag=candidate.image_tag, image_digest=candidate.image_digest, percent=candidate.percent))
        return service

    services = tuple(pinned(s) for s in api.service)
    migrations = api.migrations
    if release.migrations is not None:
        if release.migrations.image_repository != migrations.image_repository:
            raise _error(path, ConfigError(
                "migrations.image_repository", f"must be the migrations repository "
                f"{shown(migrations.image_repository)}, got {shown(release.migrations.image_repository)}"))
        migrations = dataclasses.replace(migrations, image_tag=release.migrations.image_tag,
                                         image_digest=release.migrations.image_digest)
    # The API's own checks across services (two canaries with different shares): reported from here, with
    # the release file's place, also while the loader collects every error.
    with collecting() as checked:
        try:
            pinned_api = dataclasses.replace(api, service=services, migrations=migrations)
        except ConfigError as error:
            checked.append(error)
    if checked:
        raise _error(path, checked[0])
    return pinned_api


def _block(label: str, image: ReleasedImage) -> str:
    return (
        f"{label} {{\n"
        f'  image_repository = "{image.image_repository}"\n'
        f'  image_tag        = "{image.image_tag}"\n'
        f'  image_digest     = "{image.image_digest}"\n'
        "}\n"
    )


def _percent(value: float) -> str:
    return f"{value:g}"


def render_release(release: Release) -> str:
    """The file's text: deterministic, so a diff shows exactly what moved."""
    blocks = [_block(f'service "{s.name}"', s) for s in sorted(release.service, key=lambda s: s.name)]
    if release.migrations is not None:
        blocks.append(_block("migrations", release.migrations))
    for canary in sorted(release.canary, key=lambda c: c.name):
        block = _block(f'canary "{canary.name}"', canary.image)
        blocks.append(block[:-2] + f"  percent          = {_percent(canary.percent)}\n}}\n")
    return HEADER + "\n" + "\n".join(blocks)


def write_release(path: Path, release: Release) -> None:
    """Write atomically (temporary file, then rename): a failure leaves the old file as it was."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(render_release(release))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
