"""A Lambda function's code as a zip whose bytes depend only on the source files.

CDKTF's own ARCHIVE assets store each file's modification time, and a fresh clone sets that to
the checkout time: the zip, and so the function's `source_code_hash`, would differ on every CI
run, and every plan would update the function. `function_code` zips a folder with fixed times
and modes, in name order, so the same source gives the same zip on every machine.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cdktf import App, AssetType, TerraformAsset
from constructs import Construct

# The earliest time a zip entry can carry (its DOS date field starts in 1980).
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# -rw-r--r--: Lambda needs the files readable, nothing more.
FILE_MODE = 0o100644 << 16


@dataclass(frozen=True)
class FunctionCode:
    """`filename` (a path Terraform reads, relative to the stack) and `source_code_hash`
    (base64 SHA-256 of the zip), the two arguments of `aws_lambda_function` that name its code."""

    filename: str
    source_code_hash: str


def deterministic_zip(source_dir: Path) -> bytes:
    """Every file below `source_dir` (no caches), by relative name, with fixed times and modes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in source_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            entry = zipfile.ZipInfo(path.relative_to(source_dir).as_posix(), date_time=FIXED_TIME)
            entry.external_attr = FILE_MODE
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()


def function_code(scope: Construct, construct_id: str, source_dir: Path) -> FunctionCode:
    """The zip of `source_dir` as an asset of the stack of `scope` (copied into the stack's folder
    under `assets/`, so a plan or apply reads it there)."""
    content = deterministic_zip(source_dir)
    digest = hashlib.sha256(content)
    # Staged in the synth's output folder (the asset is copied from there when the app synthesizes),
    # content-addressed, so a synth of the same source writes the same file.
    staged = Path(App.of(scope).outdir) / "function-code" / f"{digest.hexdigest()}.zip"
    if not staged.exists():
        staged.parent.mkdir(parents=True, exist_ok=True)
        partial = staged.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(content)
        partial.replace(staged)
    asset = TerraformAsset(scope, construct_id, path=str(staged), type=AssetType.FILE)
    return FunctionCode(filename=asset.path, source_code_hash=base64.b64encode(digest.digest()).decode())
