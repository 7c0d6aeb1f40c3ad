"""The deploy command's planning rules (no AWS): content types, cache control, order, deletes, invalidation.

The command itself runs against the emulator in tests/emulator/test_frontend_deploy.py.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from delivery import DeployError, UsageError
from delivery.frontend import (
    IMMUTABLE,
    NO_CACHE,
    Plan,
    RemoteObject,
    Site,
    content_type,
    invalidation_path,
    is_entry_point,
    is_fingerprinted,
    plan_deploy,
    publish,
    scan_build,
)
from tests.harness.project import PROJECT

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def write_build(root: Path, files: dict[str, str]) -> Path:
    for key, text in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def build(tmp_path):
    return write_build(tmp_path / "dist", {
        "index.html": "<script src=/assets/index-3f2a1b9c.js></script>",
        "about.html": "about",
        "robots.txt": "User-agent: *",
        "assets/index-3f2a1b9c.js": "console.log(1)",
        "assets/index-7e8f9a0b.css": "body{}",
        "assets/logo.6ce24c58023cc2f8.svg": "<svg/>",
    })


def remote_of(files, **overrides):
    """What the bucket would hold after uploading `files` (as the command stores them)."""
    return {f.key: RemoteObject(f.key, f.sha256, f.content_type, f.cache_control) for f in files} | overrides


@pytest.mark.parametrize("key, expected", [
    ("index.html", "text/html; charset=utf-8"),
    ("assets/app.3f2a1b9c.js", "text/javascript; charset=utf-8"),
    ("assets/chunk.mjs", "text/javascript; charset=utf-8"),
    ("assets/app.3f2a1b9c.css", "text/css; charset=utf-8"),
    ("logo.svg", "image/svg+xml"),
    ("fonts/inter.woff2", "font/woff2"),
    ("manifest.webmanifest", "application/manifest+json"),
    ("data.json", "application/json"),
    ("app.wasm", "application/wasm"),
    ("PHOTO.PNG", "image/png"),
    ("favicon.ico", "image/x-icon"),
    ("robots.txt", "text/plain; charset=utf-8"),
    ("LICENSE", "application/octet-stream"),
    ("archive.unknownext", "application/octet-stream"),
])
def test_content_type_by_extension(key, expected):
    assert content_type(key) == expected


@pytest.mark.parametrize("key", [
    "assets/index-3f2a1b9c.js",  # vite/rollup [name]-[hash]
    "static/js/main.3f2a1b9c.js",  # create-react-app [name].[hash]
    "static/media/logo.6ce24c58023cc2f8fd88fe9d219db6c6.svg",
    "main.1a2b3c4d5e6f7a8b.js",  # angular
    "assets/Inter-D3xk9aBc.woff2",
    "_next/static/chunks/pages/index-abc123def456.js",
])
def test_fingerprinted_names_are_recognised(key):
    assert is_fingerprinted(key)
    assert not is_entry_point(key)


@pytest.mark.parametrize("key", [
    "index.html", "robots.txt", "favicon.ico", "manifest.json", "sw.js",
    "logo-2024.png",  # a year is not a hash
    "report-20240101.pdf",  # nor a date
    "vendor/jquery-3.7.1.min.js",  # nor a version
    "fonts/OpenSans-SemiBold.woff2",  # nor a word
    "main.bundle.js",
    "3f2a1b9c",  # no extension
])
def test_names_without_a_hash_are_entry_points(key):
    assert not is_fingerprinted(key)
    assert is_entry_point(key)


def test_html_is_an_entry_point_even_when_its_name_looks_hashed():
    assert is_entry_point("page.3f2a1b9c.html")
    assert is_entry_point("page.3f2a1b9c.html", immutable_patterns=("*",))


def test_immutable_patterns_replace_the_name_heuristic():
    patterns = ("assets/*",)
    assert not is_entry_point("assets/logo.png", patterns)
    assert is_entry_point("static/js/main.3f2a1b9c.js", patterns)


def test_scan_gives_each_file_its_cache_control(build):
    files = {f.key: f for f in scan_build(build).files}
    assert set(files) == {"index.html", "about.html", "robots.txt", "assets/index-3f2a1b9c.js",
                          "assets/index-7e8f9a0b.css", "assets/logo.6ce24c58023cc2f8.svg"}
    assert files["index.html"].cache_control == NO_CACHE
    assert files["robots.txt"].cache_control == NO_CACHE
    assert files["assets/index-3f2a1b9c.js"].cache_control == IMMUTABLE == "public, max-age=31536000, immutable"
    assert len(files["index.html"].sha256) == 64


def test_first_deploy_uploads_assets_then_entry_points_then_index_html_last(build):
    plan = plan_deploy(scan_build(build).files, {}, now=NOW)
    keys = [u.file.key for u in plan.uploads]
    assert keys == [
        "assets/index-3f2a1b9c.js", "assets/index-7e8f9a0b.css", "assets/logo.6ce24c58023cc2f8.svg",
        "about.html", "robots.txt",
        "index.html",
    ]
    assert [u.file.key for u in plan.root] == ["index.html"]
    assert {u.reason for u in plan.uploads} == {"new"}
    assert plan.deletes == [] and plan.marks == []


def test_unchanged_files_are_not_uploaded_again(build):
    files = scan_build(build).files
    plan = plan_deploy(files, remote_of(files), now=NOW)
    assert plan.uploads == []
    assert len(plan.unchanged) == len(files)
    assert plan.invalidation_paths == []


def test_a_changed_entry_point_is_uploaded_and_invalidated_with_its_directory_path(build):
    files = scan_build(build).files
    remote = remote_of(files, **{"index.html": RemoteObject("index.html", "0" * 64, "text/html; charset=utf-8",
                                                            NO_CACHE)})
    plan = plan_deploy(files, remote, now=NOW)
    assert [(u.file.key, u.reason) for u in plan.uploads] == [("index.html", "changed")]
    assert plan.invalidation_paths == ["/", "/index.html"]


def test_wrong_headers_on_an_unchanged_file_are_fixed(build):
    files = scan_build(build).files
    key = "assets/index-3f2a1b9c.js"
    sha = next(f.sha256 for f in files if f.key == key)
    plan = plan_deploy(files, remote_of(files, **{key: RemoteObject(key, sha, "application/octet-stream", IMMUTABLE)}),
                       now=NOW)
    assert [(u.file.key, u.reason) for u in plan.uploads] == [(key, "changed")]
    assert plan.invalidation_paths == []  # an immutable asset's URL changes with its content


def test_objects_no_longer_in_the_build_are_deleted_and_removed_pages_invalidated(build):
    files = scan_build(build).files
    remote = remote_of(files) | {
        "assets/index-00aa11bb.js": RemoteObject("assets/index-00aa11bb.js"),
        "old-page.html": RemoteObject("old-page.html"),
    }
    plan = plan_deploy(files, remote, now=NOW)
    assert plan.deletes == ["assets/index-00aa11bb.js", "old-page.html"]
    assert plan.invalidation_paths == ["/old-page.html"]


def test_keep_old_days_marks_then_keeps_then_deletes(build):
    files = scan_build(build).files
    remote = remote_of(files) | {
        "assets/new-stale-11aa22bb.js": RemoteObject("assets/new-stale-11aa22bb.js"),
        "assets/young-33cc44dd.js": RemoteObject("assets/young-33cc44dd.js", stale_since=NOW - timedelta(days=2)),
        "assets/old-55ee66ff.js": RemoteObject("assets/old-55ee66ff.js", stale_since=NOW - timedelta(days=7)),
    }
    plan = plan_deploy(files, remote, keep_old_days=7, now=NOW)
    assert plan.marks == ["assets/new-stale-11aa22bb.js"]
    assert plan.kept == ["assets/young-33cc44dd.js"]
    assert plan.deletes == ["assets/old-55ee66ff.js"]


def test_an_object_marked_stale_that_returns_to_the_build_is_uploaded_to_drop_the_mark(build):
    files = scan_build(build).files
    key = "assets/index-3f2a1b9c.js"
    remote = remote_of(files)
    remote[key] = RemoteObject(key, remote[key].sha256, remote[key].content_type, remote[key].cache_control,
                               stale_since=NOW - timedelta(days=1))
    plan = plan_deploy(files, remote, keep_old_days=7, now=NOW)
    assert [(u.file.key, u.reason) for u in plan.uploads] == [(key, "was marked stale")]


def test_invalidate_all_asks_for_everything_only_when_something_changed(build):
    files = scan_build(build).files
    assert plan_deploy(files, {}, invalidate_all=True, now=NOW).invalidation_paths == ["/*"]
    assert plan_deploy(files, remote_of(files), invalidate_all=True, now=NOW).invalidation_paths == []


def test_invalidation_paths_cover_directory_indexes_and_are_url_encoded():
    assert invalidation_path("index.html") == ["/index.html", "/"]
    assert invalidation_path("docs/index.html") == ["/docs/index.html", "/docs/"]
    assert invalidation_path("my page.html") == ["/my%20page.html"]


def test_rejects_a_missing_directory(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        scan_build(tmp_path / "nope")


def test_rejects_a_file_instead_of_a_directory(tmp_path):
    (tmp_path / "dist").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        scan_build(tmp_path / "dist")


def test_rejects_a_directory_without_index_html(tmp_path):
    write_build(tmp_path / "src", {"main.js": "x"})
    with pytest.raises(UsageError, match="has no index.html at its top"):
        scan_build(tmp_path / "src")


def private_build(root):
    """A build folder as a careless build leaves it: secrets, VCS data, OS litter, a link out."""
    build = write_build(root / "dist", {
        "index.html": "<!doctype html>", ".env": "SECRET=1", ".git/config": "[core]",
        "assets/.DS_Store": "x", "assets/app-1a2b3c4d.js": "app()", ".well-known/security.txt": "Contact: x",
        ".well-known/.secret": "x",
    })
    (root / "creds.txt").write_text("aws_secret_access_key = x")
    return build


def test_hidden_files_and_folders_are_skipped_but_well_known_is_published(tmp_path):
    build = scan_build(private_build(tmp_path))
    assert [f.key for f in build.files] == [".well-known/security.txt", "assets/app-1a2b3c4d.js", "index.html"]
    assert build.skipped == [".env", ".git/", ".well-known/.secret", "assets/.DS_Store"]


def test_include_hidden_publishes_dot_names(tmp_path):
    build = scan_build(private_build(tmp_path), include_hidden=True)
    assert {".env", ".git/config", "assets/.DS_Store"} <= {f.key for f in build.files}
    assert build.skipped == []


def test_rejects_a_symlink_out_of_the_build_folder_by_name(tmp_path):
    build = private_build(tmp_path)
    (build / "assets" / "creds.txt").symlink_to(tmp_path / "creds.txt")
    with pytest.raises(UsageError) as raised:
        scan_build(build)
    assert str(raised.value) == (
        f"--dir {build}: refusing symbolic links that leave the build folder (their targets would be published): "
        f"assets/creds.txt -> {tmp_path / 'creds.txt'}. Copy what the site needs into the folder instead."
    )


def test_rejects_a_symlinked_folder_out_of_the_build_and_a_dangling_link(tmp_path):
    build = private_build(tmp_path)
    (tmp_path / "home").mkdir()
    (build / "docs").symlink_to(tmp_path / "home", target_is_directory=True)
    (build / "gone.js").symlink_to(tmp_path / "nothing-here.js")
    with pytest.raises(UsageError, match=r"docs -> .*home, gone.js -> .*nothing-here.js \(points nowhere\)"):
        scan_build(build)


def test_rejects_a_link_that_publishes_a_hidden_file_under_another_name(tmp_path):
    build = private_build(tmp_path)
    (build / "env.txt").symlink_to(build / ".env")
    with pytest.raises(UsageError, match=r"env.txt -> .*\.env \(a hidden file under another name\)"):
        scan_build(build)


def test_links_inside_the_build_folder_are_published_under_their_own_key(tmp_path):
    build = private_build(tmp_path)
    (build / "latest.js").symlink_to(build / "assets" / "app-1a2b3c4d.js")
    (build / "static").symlink_to(build / "assets", target_is_directory=True)
    (build / "assets" / "loop").symlink_to(build, target_is_directory=True)  # a cycle is not walked again
    keys = [f.key for f in scan_build(build).files]
    assert keys == [".well-known/security.txt", "assets/app-1a2b3c4d.js", "index.html", "latest.js",
                    "static/app-1a2b3c4d.js"]


def test_dry_run_lists_what_it_skipped(tmp_path, capsys):
    from delivery.frontend import describe_skipped

    describe_skipped(scan_build(private_build(tmp_path)), sys.stdout)
    assert capsys.readouterr().out == (
        "  skip        4 hidden path(s), not published: .env, .git/, .well-known/.secret, assets/.DS_Store "
        "(--include-hidden publishes them)\n"
    )


class RecordingS3:
    """Records calls in order; fails `put_object` for one key (no AWS behaviour is imitated)."""

    def __init__(self, fail_key: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_key = fail_key

    def put_object(self, **kwargs):
        if kwargs["Key"] == self.fail_key:
            raise OSError("connection reset")
        self.calls.append(("put", kwargs["Key"]))

    def delete_objects(self, **kwargs):
        self.calls.extend(("delete", o["Key"]) for o in kwargs["Delete"]["Objects"])
        return {}

    def put_object_tagging(self, **kwargs):
        self.calls.append(("tag", kwargs["Key"]))

    def create_invalidation(self, **kwargs):
        self.calls.append(("invalidate", " ".join(kwargs["InvalidationBatch"]["Paths"]["Items"])))
        return {"Invalidation": {"Id": "I1"}}


def test_publish_switches_index_html_after_every_upload_then_invalidates_then_deletes(build, capsys):
    files = scan_build(build).files
    plan = plan_deploy(files, {"gone-12ab34cd.js": RemoteObject("gone-12ab34cd.js")}, now=NOW)
    client = RecordingS3()
    publish(client, client, Site("b", "D", "eu-west-1"), plan, wait_for_invalidation=False, workers=4,
            out=sys.stdout)
    kinds = [kind for kind, _ in client.calls]
    puts = [key for kind, key in client.calls if kind == "put"]
    assert puts[-1] == "index.html"
    assert set(puts[:3]) == {"assets/index-3f2a1b9c.js", "assets/index-7e8f9a0b.css", "assets/logo.6ce24c58023cc2f8.svg"}
    assert kinds.index("invalidate") == len(puts)
    assert client.calls[-1] == ("delete", "gone-12ab34cd.js")


def test_publish_stops_before_index_html_when_an_asset_upload_fails(build):
    files = scan_build(build).files
    plan = plan_deploy(files, {"gone-12ab34cd.js": RemoteObject("gone-12ab34cd.js")}, now=NOW)
    client = RecordingS3(fail_key="assets/index-7e8f9a0b.css")
    with pytest.raises(DeployError, match="index.html was not switched") as caught:
        publish(client, client, Site("b", "D", "eu-west-1"), plan, wait_for_invalidation=False, workers=1,
                out=sys.stdout)
    assert "assets/index-7e8f9a0b.css" in str(caught.value)
    kinds_and_keys = set(client.calls)
    assert ("put", "index.html") not in kinds_and_keys
    assert not any(kind in ("invalidate", "delete", "tag") for kind, _ in client.calls)
    assert ("put", "about.html") not in kinds_and_keys


def test_describe_lists_the_plan(build, capsys):
    from delivery.frontend import describe

    describe(plan_deploy(scan_build(build).files, {"old.html": RemoteObject("old.html")}, now=NOW), sys.stdout)
    out = capsys.readouterr().out
    assert "upload      index.html" in out and "text/html; charset=utf-8" in out and "(new)" in out
    assert "delete      old.html" in out
    assert "invalidate  / /about.html /index.html /old.html /robots.txt" in out


def test_an_empty_plan_publishes_nothing(capsys):
    client = RecordingS3()
    result = publish(client, client, Site("b", "D", "eu-west-1"), Plan(), wait_for_invalidation=False, workers=2,
                     out=sys.stdout)
    assert client.calls == [] and result.invalidation_id is None


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "delivery", *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=120, env=env)


def test_cli_help_names_the_command_and_its_flags():
    result = run_cli("deploy-frontend", "--help")
    assert result.returncode == 0
    for flag in ("--env", "--dir", "--dry-run", "--wait", "--bucket", "--distribution-id", "--endpoint-url",
                 "--keep-old-days", "--invalidate-all"):
        assert flag in result.stdout
    assert "deploy-frontend" in run_cli("--help").stdout


def test_cli_rejects_an_unknown_environment(build):
    result = run_cli("deploy-frontend", "--env", "qa", "--dir", str(build))
    assert result.returncode == 2
    assert "error: unknown environment 'qa'" in result.stderr and "dev, prod, stage" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_rejects_a_missing_directory_before_touching_aws(tmp_path):
    result = run_cli("deploy-frontend", "--env", "dev", "--dir", str(tmp_path / "dist"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: --dir {tmp_path / 'dist'}: no such directory"


def test_cli_rejects_missing_credentials(build, tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_EC2_METADATA_DISABLED": "true"})
    result = run_cli("deploy-frontend", "--env", "dev", "--dir", str(build), env=env)
    assert result.returncode == 2
    assert "error: no AWS credentials: set AWS_PROFILE" in result.stderr
    assert "Traceback" not in result.stderr
