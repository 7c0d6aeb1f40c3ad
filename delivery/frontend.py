"""`deploy-frontend`: publish a built site to an environment's bucket, then invalidate CloudFront.

The order keeps every page whole while it runs:

1. fingerprinted assets (`main.3f2a1b9c.js`: `Cache-Control: public, max-age=31536000, immutable`);
2. the other entry points (`no-cache`: other HTML pages, `robots.txt`, anything not fingerprinted);
3. the root `index.html` (`no-cache`), the switch to the new build;
4. one CloudFront invalidation for the entry points that changed (`/*` only on request);
5. objects no longer in the build are deleted, or marked and kept `--keep-old-days` days
   so tabs still running the old build can load its lazy chunks.

A failed upload stops the run before step 3: the previous `index.html` still
references the previous assets, which are all still there, and nothing is
invalidated or deleted. Files whose content (SHA-256, stored as object metadata),
Content-Type and Cache-Control are unchanged are not uploaded again.

The bucket and distribution come from the `<env>-frontend` stack's outputs, read from
its Terraform state object (`s3://<state bucket>/<env>/frontend.tfstate`), or from
`--bucket` / `--distribution-id`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from delivery import DeployError, UsageError
from delivery.aws import (
    NO_CREDENTIALS,
    Aws,
    aws_error,
    credentials_session,
    load_environments,
    read_state_outputs,
    state_role,
)

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
ROOT_ENTRY_POINT = "index.html"
HASH_METADATA = "sha256"  # stored as x-amz-meta-sha256
STALE_TAG = "stale-since"  # set on objects that left the build, when --keep-old-days > 0
GLOBAL_REGION = "us-east-1"  # CloudFront's API
# The frontend stack's outputs (modules/frontend/frontend.py names them).
OUTPUT_BUCKET_NAME = "bucket_name"
OUTPUT_DISTRIBUTION_ID = "distribution_id"

# Explicit, so the result never depends on the machine's /etc/mime.types.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".cjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".xml": "application/xml",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".bmp": "image/bmp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".zip": "application/zip",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"

# A content hash in a file name: the last `.`- or `-`-separated part before the
# extension, 8+ letters/digits with at least one of each (`main.3f2a1b9c.js`,
# `index-D3xk9aBc.js`, `logo.6ce24c58023cc2f8.svg`). Dates and versions
# (`logo-2024.png`, `jquery-3.7.1.min.js`) do not match. A file that does not
# match is treated as an entry point: `no-cache` is always safe, `immutable` on a
# file that later changes under the same name is not.
FINGERPRINT = re.compile(r"[.-](?=[A-Za-z0-9_]*[0-9])(?=[A-Za-z0-9_]*[A-Za-z])[A-Za-z0-9_]{8,64}$")


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(Path(key).suffix.lower(), DEFAULT_CONTENT_TYPE)


def is_fingerprinted(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    stem, dot, _extension = name.rpartition(".")
    return bool(dot and stem and FINGERPRINT.search(stem))


def is_entry_point(key: str, immutable_patterns: Sequence[str] = ()) -> bool:
    """HTML is always an entry point; other files unless fingerprinted (or matching a pattern)."""
    if Path(key).suffix.lower() in (".html", ".htm"):
        return True
    if immutable_patterns:
        return not any(fnmatch.fnmatchcase(key, pattern) for pattern in immutable_patterns)
    return not is_fingerprinted(key)


@dataclass(frozen=True)
class LocalFile:
    key: str
    path: Path
    size: int
    sha256: str
    entry_point: bool

    @property
    def content_type(self) -> str:
        return content_type(self.key)

    @property
    def cache_control(self) -> str:
        return NO_CACHE if self.entry_point else IMMUTABLE


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# The one hidden folder a site publishes: RFC 8615's well-known URIs (`/.well-known/security.txt`,
# `apple-app-site-association`, ACME challenges) live there. Every other name starting with a dot
# (`.env`, `.git/`, `.DS_Store`, `.npmrc`) is a build's private matter, never the site's.
PUBLISHED_HIDDEN_FOLDER = ".well-known"


@dataclass(frozen=True)
class Build:
    """What a build folder publishes (`files`) and the hidden paths it leaves out (`skipped`,
    a folder once as `name/`)."""

    files: list[LocalFile]
    skipped: list[str] = field(default_factory=list)


def _hidden(key: str) -> bool:
    """A dot-name anywhere in the key, `.well-known/` at the top excepted."""
    parts = key.split("/")
    if parts[0] == PUBLISHED_HIDDEN_FOLDER:
        parts = parts[1:]
    return any(part.startswith(".") for part in parts)


def _walk(directory: Path, *, include_hidden: bool) -> tuple[list[tuple[str, Path]], list[str], list[str]]:
    """(key, path) of every file to publish, the hidden keys skipped, and the links refused.

    Symbolic links are followed only while they stay inside the build folder: a link to
    `~/.aws/credentials` or `../.env` would otherwise publish that file to everyone.
    """
    root = directory.resolve()
    found: list[tuple[str, Path]] = []
    skipped: list[str] = []
    refused: list[str] = []

    def inside(path: Path) -> bool:
        return path == root or root in path.parents

    def visit(folder: Path, prefix: str, ancestors: frozenset[Path]) -> None:
        real = folder.resolve()
        if real in ancestors:  # a link back up the tree: its files are published under their own path
            return
        ancestors = ancestors | {real}
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            key = f"{prefix}{entry.name}"
            if not include_hidden and _hidden(key):
                skipped.append(key + "/" if entry.is_dir() else key)
                continue
            if entry.is_symlink():
                target = entry.resolve()
                if not target.exists():
                    refused.append(f"{key} -> {os.readlink(entry)} (points nowhere)")
                    continue
                if not inside(target):
                    refused.append(f"{key} -> {target}")
                    continue
                relative = target.relative_to(root).as_posix()
                if not include_hidden and relative != "." and _hidden(relative):
                    refused.append(f"{key} -> {target} (a hidden file under another name)")
                    continue
            if entry.is_dir():
                visit(entry, key + "/", ancestors)
            elif entry.is_file():
                found.append((key, entry))

    visit(directory, "", frozenset())
    return found, skipped, refused


def scan_build(directory: Path, immutable_patterns: Sequence[str] = (), *, include_hidden: bool = False) -> Build:
    """Every file under `directory` to publish (keys are POSIX paths relative to it), or UsageError.

    Hidden names are left out (and listed) unless `include_hidden`; `.well-known/` is always
    published. A symbolic link that leaves the folder stops the run before anything is read.
    """
    if not directory.exists():
        raise UsageError(f"--dir {directory}: no such directory")
    if not directory.is_dir():
        raise UsageError(f"--dir {directory}: not a directory")
    if not (directory / ROOT_ENTRY_POINT).is_file():
        raise UsageError(
            f"--dir {directory} has no {ROOT_ENTRY_POINT} at its top: point it at the build output "
            "(the folder your build writes, e.g. dist/ or build/)"
        )
    found, skipped, refused = _walk(directory, include_hidden=include_hidden)
    if refused:
        raise UsageError(
            f"--dir {directory}: refusing symbolic links that leave the build folder (their targets would be "
            f"published): {', '.join(refused)}. Copy what the site needs into the folder instead."
        )
    files = []
    for key, path in found:
        try:
            files.append(LocalFile(key, path, path.stat().st_size, _sha256(path),
                                   is_entry_point(key, immutable_patterns)))
        except OSError as error:
            raise UsageError(f"{path}: cannot be read ({error.strerror})") from None
    return Build(files, skipped)


def describe_skipped(build: Build, out: TextIO) -> None:
    if build.skipped:
        print(f"  skip        {len(build.skipped)} hidden path(s), not published: {', '.join(build.skipped)} "
              "(--include-hidden publishes them)", file=out)


@dataclass(frozen=True)
class RemoteObject:
    """What the bucket holds under one key (what the planner needs to know about it)."""

    key: str
    sha256: str | None = None
    content_type: str | None = None
    cache_control: str | None = None
    stale_since: datetime | None = None


@dataclass(frozen=True)
class Upload:
    file: LocalFile
    reason: str  # "new", "changed", "was marked stale"


@dataclass
class Plan:
    """What a deploy will do, in order. `uploads` ends with the root index.html when it changed."""

    uploads: list[Upload] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)  # to tag stale now (kept --keep-old-days)
    kept: list[str] = field(default_factory=list)  # tagged stale earlier, not old enough to delete
    invalidation_paths: list[str] = field(default_factory=list)

    @property
    def assets(self) -> list[Upload]:
        return [u for u in self.uploads if not u.file.entry_point]

    @property
    def entry_points(self) -> list[Upload]:
        """Entry points other than the root index.html, uploaded after every asset."""
        return [u for u in self.uploads if u.file.entry_point and u.file.key != ROOT_ENTRY_POINT]

    @property
    def root(self) -> list[Upload]:
        return [u for u in self.uploads if u.file.key == ROOT_ENTRY_POINT]


def invalidation_path(key: str) -> list[str]:
    """CloudFront paths that serve `key`: `/docs/index.html` is also `/docs/`, `/index.html` also `/`."""
    path = "/" + quote(key, safe="/")
    if key == ROOT_ENTRY_POINT:
        return [path, "/"]
    if key.endswith("/" + ROOT_ENTRY_POINT):
        return [path, path[: -len(ROOT_ENTRY_POINT)]]
    return [path]


def plan_deploy(
    files: Sequence[LocalFile],
    remote: dict[str, RemoteObject],
    *,
    keep_old_days: int = 0,
    now: datetime | None = None,
    invalidate_all: bool = False,
    immutable_patterns: Sequence[str] = (),
) -> Plan:
    """Decide uploads, deletes and the invalidation; pure, so every rule is unit-tested."""
    now = now or datetime.now(UTC)
    plan = Plan()
    changed_entry_points: list[str] = []
    for file in files:
        existing = remote.get(file.key)
        if existing is None:
            reason = "new"
        elif (existing.sha256, existing.content_type, existing.cache_control) != (
            file.sha256, file.content_type, file.cache_control
        ):
            reason = "changed"
        elif existing.stale_since is not None:
            reason = "was marked stale"  # uploading again drops the mark
        else:
            plan.unchanged.append(file.key)
            continue
        plan.uploads.append(Upload(file, reason))
        # New ones too: CloudFront may hold the SPA fallback (index.html) for that path.
        if file.entry_point and reason != "was marked stale":
            changed_entry_points.append(file.key)
    # Assets, then the other entry points, then the root index.html: the switch comes last.
    plan.uploads.sort(key=lambda u: (u.file.entry_point, u.file.key == ROOT_ENTRY_POINT, u.file.key))

    in_build = {file.key for file in files}
    for key in sorted(set(remote) - in_build):
        stale = remote[key]
        if keep_old_days <= 0:
            plan.deletes.append(key)
        elif stale.stale_since is None:
            plan.marks.append(key)
        elif now - stale.stale_since >= timedelta(days=keep_old_days):
            plan.deletes.append(key)
        else:
            plan.kept.append(key)
    removed_entry_points = [key for key in plan.deletes if is_entry_point(key, immutable_patterns)]

    if invalidate_all:
        plan.invalidation_paths = ["/*"] if plan.uploads or plan.deletes or plan.marks else []
    else:
        paths = [p for key in changed_entry_points + removed_entry_points for p in invalidation_path(key)]
        plan.invalidation_paths = sorted(set(paths))
    return plan


def describe(plan: Plan, out: TextIO) -> None:
    """The plan as a table a person reads in a pipeline log."""
    width = max((len(u.file.key) for u in plan.uploads), default=0)
    type_width = max((len(u.file.content_type) for u in plan.uploads), default=0)
    for upload in plan.uploads:
        file = upload.file
        print(f"  upload      {file.key:<{width}}  {file.content_type:<{type_width}}  {file.cache_control:<35}  "
              f"({upload.reason})", file=out)
    for key in plan.deletes:
        print(f"  delete      {key}  (no longer in the build)", file=out)
    for key in plan.marks:
        print(f"  mark stale  {key}  (no longer in the build; kept for old tabs)", file=out)
    for key in plan.kept:
        print(f"  keep stale  {key}  (marked earlier; not old enough to delete)", file=out)
    print(f"  unchanged   {len(plan.unchanged)} file(s)", file=out)
    paths = " ".join(plan.invalidation_paths) or "nothing (no entry point changed)"
    print(f"  invalidate  {paths}", file=out)


# -- AWS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    bucket: str
    distribution_id: str
    region: str


def list_remote(s3: Any, bucket: str, keys_in_build: set[str], *, with_tags: bool, workers: int) -> dict[str, RemoteObject]:
    """Every object in the bucket; metadata for those in the build, stale tags when asked."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", []))

    def describe_object(key: str) -> RemoteObject:
        sha256 = content = cache = None
        stale_since = None
        if key in keys_in_build:
            head = s3.head_object(Bucket=bucket, Key=key)
            sha256 = head.get("Metadata", {}).get(HASH_METADATA)
            content, cache = head.get("ContentType"), head.get("CacheControl")
        if with_tags:
            tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
            if STALE_TAG in tags:
                try:
                    stale_since = datetime.fromisoformat(tags[STALE_TAG])
                except ValueError:
                    stale_since = datetime.fromtimestamp(0, UTC)  # unreadable mark: old enough
        return RemoteObject(key, sha256, content, cache, stale_since)

    with ThreadPoolExecutor(workers) as pool:
        return {obj.key: obj for obj in pool.map(describe_object, keys)}


class UploadFailed(DeployError):
    pass


def _run_all(action: Callable[[Any], None], items: Iterable[Any], workers: int, name: Callable[[Any], str]) -> None:
    """Run `action` on every item in parallel; on the first failure cancel the rest and raise."""
    pool = ThreadPoolExecutor(workers)
    futures = {pool.submit(action, item): item for item in items}
    done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
    failed = [f for f in done if f.exception() is not None]
    pool.shutdown(wait=True, cancel_futures=bool(failed))
    if failed:
        first = failed[0]
        raise UploadFailed(f"{name(futures[first])}: {aws_error(first.exception())}")  # type: ignore[arg-type]


@dataclass
class Result:
    plan: Plan
    invalidation_id: str | None = None
    uploaded: int = 0
    deleted: int = 0


def publish(s3: Any, cloudfront: Any, site: Site, plan: Plan, *, wait_for_invalidation: bool, workers: int,
            out: TextIO, now: datetime | None = None) -> Result:
    """Carry out `plan`: assets, entry points, index.html, invalidation, then deletes."""
    result = Result(plan)

    def upload(item: Upload) -> None:
        file = item.file
        with file.path.open("rb") as body:
            s3.put_object(
                Bucket=site.bucket, Key=file.key, Body=body, ContentType=file.content_type,
                CacheControl=file.cache_control, Metadata={HASH_METADATA: file.sha256},
            )

    for phase, uploads in (("asset(s)", plan.assets), ("entry point(s)", plan.entry_points),
                           (ROOT_ENTRY_POINT, plan.root)):
        if not uploads:
            continue
        try:
            _run_all(upload, uploads, workers, lambda u: u.file.key)
        except UploadFailed as error:
            switched = "" if phase != ROOT_ENTRY_POINT else " (its upload failed, so it was not replaced)"
            raise UploadFailed(
                f"upload failed, {error}. {ROOT_ENTRY_POINT} was not switched{switched}: the previous build "
                f"is still served, and nothing was invalidated or deleted. Fix the cause and run again."
            ) from None
        result.uploaded += len(uploads)
        print(f"uploaded {len(uploads)} {phase}", file=out)

    if plan.invalidation_paths:
        paths = plan.invalidation_paths
        try:
            invalidation = cloudfront.create_invalidation(
                DistributionId=site.distribution_id,
                InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths},
                                   "CallerReference": f"deploy-frontend-{uuid.uuid4()}"},
            )["Invalidation"]
        except Exception as error:
            raise DeployError(
                f"the new build is live, but the CloudFront invalidation failed ({aws_error(error)}): "
                f"cached entry points may stay old for up to their TTL; nothing was deleted. Run again."
            ) from None
        result.invalidation_id = invalidation["Id"]
        print(f"invalidation {invalidation['Id']} for {' '.join(paths)}", file=out)
        if wait_for_invalidation:
            cloudfront.get_waiter("invalidation_completed").wait(
                DistributionId=site.distribution_id, Id=invalidation["Id"],
                WaiterConfig={"Delay": 10, "MaxAttempts": 90},
            )
            print(f"invalidation {invalidation['Id']} completed", file=out)

    stamp = (now or datetime.now(UTC)).replace(microsecond=0).isoformat()
    for key in plan.marks:
        s3.put_object_tagging(Bucket=site.bucket, Key=key, Tagging={"TagSet": [{"Key": STALE_TAG, "Value": stamp}]})
    for start in range(0, len(plan.deletes), 1000):
        batch = plan.deletes[start:start + 1000]
        response = s3.delete_objects(Bucket=site.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            raise DeployError("the new build is live, but some old objects could not be deleted: "
                              + ", ".join(f"{e['Key']} ({e.get('Code')})" for e in errors))
        result.deleted += len(batch)
    if plan.deletes:
        print(f"deleted {len(plan.deletes)} object(s) no longer in the build", file=out)
    if plan.marks:
        print(f"marked {len(plan.marks)} object(s) stale (deleted by a deploy after the keep period)", file=out)
    return result


# -- the command -------------------------------------------------------------------------------


@dataclass
class Options:
    env: str
    directory: Path
    environments_dir: Path = Path("environments")
    bucket: str | None = None
    distribution_id: str | None = None
    endpoint_url: str | None = None
    role_arn: str | None = None
    dry_run: bool = False
    wait: bool = False
    invalidate_all: bool = False
    keep_old_days: int = 0
    immutable_patterns: tuple[str, ...] = ()
    include_hidden: bool = False
    workers: int = 8


def load_environment(options: Options) -> Any:
    """The environment's config (`Environments`, with `shared`), or UsageError naming the known ones."""
    return load_environments(options.environments_dir, options.env)


def resolve_site(options: Options, environments: Any, aws: Aws) -> Site:
    """Bucket and distribution: the flags, else the `<env>-frontend` stack's state outputs."""
    from modules.core.settings import BackendType

    environment = environments.get(options.env)
    bucket, distribution_id = options.bucket, options.distribution_id
    if not (bucket and distribution_id):
        if environment.backend.type is BackendType.CLOUD:
            raise UsageError(
                f"{options.env} keeps its state in Terraform Cloud: pass --bucket and --distribution-id "
                f"(`terraform output -raw {OUTPUT_BUCKET_NAME}` / `{OUTPUT_DISTRIBUTION_ID}` in the "
                f"{options.env}-frontend workspace)"
            )
        state = environments.shared.state
        key = f"{options.env}/frontend.tfstate"
        outputs = read_state_outputs(aws, state.bucket, key, state.region, state_role(aws, environments, options.env))
        for name in (OUTPUT_BUCKET_NAME, OUTPUT_DISTRIBUTION_ID):
            if not outputs.get(name):
                raise DeployError(f"s3://{state.bucket}/{key} has no output {name!r}: apply {options.env}-frontend")
        bucket = bucket or outputs[OUTPUT_BUCKET_NAME]
        distribution_id = distribution_id or outputs[OUTPUT_DISTRIBUTION_ID]
    return Site(str(bucket), str(distribution_id), environment.region)


def deploy(options: Options, *, session: Any = None, out: TextIO = sys.stdout) -> Result:
    """Plan, print, and (unless a dry run) publish. `session` is a boto3 Session (tests inject one)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if options.keep_old_days < 0:
        raise UsageError(f"--keep-old-days must be 0 or more, got {options.keep_old_days}")
    if options.workers < 1:
        raise UsageError(f"--workers must be 1 or more, got {options.workers}")
    build = scan_build(options.directory, options.immutable_patterns, include_hidden=options.include_hidden)
    files = build.files
    environments = load_environment(options)
    aws = Aws(credentials_session(session), options.endpoint_url)
    started = time.monotonic()
    try:
        site = resolve_site(options, environments, aws)
        s3 = aws.client("s3", site.region, aws.assumed(options.role_arn, site.region))
        remote = list_remote(s3, site.bucket, {f.key for f in files}, with_tags=options.keep_old_days > 0,
                             workers=options.workers)
        plan = plan_deploy(files, remote, keep_old_days=options.keep_old_days,
                           invalidate_all=options.invalidate_all, immutable_patterns=options.immutable_patterns)
        mode = "dry run: " if options.dry_run else ""
        print(f"{mode}deploy {options.directory} to {options.env} "
              f"(bucket {site.bucket}, distribution {site.distribution_id}):", file=out)
        describe_skipped(build, out)
        describe(plan, out)
        if options.dry_run:
            print("dry run: nothing was uploaded, deleted or invalidated", file=out)
            return Result(plan)
        cloudfront = aws.client("cloudfront", GLOBAL_REGION, aws.assumed(options.role_arn, GLOBAL_REGION))
        result = publish(s3, cloudfront, site, plan, wait_for_invalidation=options.wait,
                         workers=options.workers, out=out)
    except NoCredentialsError:
        raise UsageError(NO_CREDENTIALS) from None
    except ClientError as error:
        raise DeployError(aws_error(error)) from None
    except BotoCoreError as error:
        raise DeployError(str(error)) from None
    print(f"done in {time.monotonic() - started:.1f} s: {result.uploaded} uploaded, "
          f"{len(plan.unchanged)} unchanged, {result.deleted} deleted", file=out)
    return result
