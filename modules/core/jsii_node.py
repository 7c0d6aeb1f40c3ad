"""Node options for jsii's kernel: preload the lazy provider index.

jsii starts its Node kernel the first time a jsii package (constructs, cdktf) is
imported and passes it this process's environment. A synth entry point (`main.py`
through modules/synth.py, the test harness) calls `prepare()` before anything imports
cdktf, which adds `--require modules/core/lazy_provider_index.js` to `NODE_OPTIONS`,
and `restore()` once the kernel runs, which puts `NODE_OPTIONS` back: only the kernel
sees the hook, never a program started later (terraform, npm, node). `start_kernel()`
does the three in a row. Importing this library changes no environment variable: the
delivery commands, which never synthesize, run terraform with the user's environment.

See lazy_provider_index.js for what the hook changes (only @cdktf/provider-aws's
index) and why (~4 s of compiling every resource type's JavaScript). It also loads
lazy_creation_stacks.js (cdktf's token creation stacks, formatted when read).

A program that imports cdktf without `prepare()` gets a kernel without the hook: the
synth is the same, only slower. `CDKTF_PLAIN_PROVIDER_IMPORT=1` (the benchmark's
baseline) leaves the kernel alone too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HOOK = Path(__file__).resolve().parent / "lazy_provider_index.js"


def _kernel_started() -> bool:
    # Every jsii package registers its assembly in `<package>._jsii`; constructs
    # is the first one cdktf loads. A snapshot of the names (one step under the GIL): the synth
    # loads the bindings on another thread meanwhile (modules/synth.py), and iterating
    # `sys.modules` while an import adds to it raises RuntimeError.
    return any(name.endswith("._jsii") for name in tuple(sys.modules))


def _require_hook() -> str:
    # Node reads NODE_OPTIONS with double quotes (and backslash escapes) around
    # values that contain spaces; single quotes are not special to it.
    quoted = str(HOOK).replace("\\", "\\\\").replace('"', '\\"')
    return f'--require "{quoted}"'


def node_options(current: str) -> str:
    """`current` NODE_OPTIONS with the hook preloaded once."""
    if str(HOOK) in current:
        return current
    return f"{current} {_require_hook()}".strip()


def without_hook(current: str) -> str:
    hook = _require_hook()
    return current.replace(f" {hook}", "").replace(f"{hook} ", "").replace(hook, "").strip()


def plain_provider_import() -> bool:
    """`CDKTF_PLAIN_PROVIDER_IMPORT=1`, the benchmark's baseline: every synth optimization off
    (this hook, modules/aws.py's lazy import and caches, cli.py's early kernel start)."""
    return os.environ.get("CDKTF_PLAIN_PROVIDER_IMPORT") == "1"


# NODE_OPTIONS as it was before prepare() changed it (None: unset), until restore() puts it back.
_saved: list[str | None] = []


def prepare() -> None:
    if _kernel_started() or _saved:
        return
    original = os.environ.get("NODE_OPTIONS")
    current = original or ""
    if plain_provider_import():
        # The baseline: a hook inherited from a parent process is taken out too.
        updated = without_hook(current)
    else:
        updated = node_options(current)
    if updated == current:
        return
    _saved.append(original)
    if updated:
        os.environ["NODE_OPTIONS"] = updated
    else:
        os.environ.pop("NODE_OPTIONS", None)


def restore() -> None:
    """Put NODE_OPTIONS back once the kernel runs (it read its environment when it started).

    The hook is for jsii's kernel only: programs this process starts later (terraform,
    npm, node, another synth) get the environment the user gave it. A no-op before the
    kernel runs (the hook would come too late for it) or when prepare() changed nothing.
    """
    if not _saved or not _kernel_started():
        return
    original = _saved.pop()
    if original is None:
        os.environ.pop("NODE_OPTIONS", None)
    else:
        os.environ["NODE_OPTIONS"] = original


def start_kernel() -> None:
    """Start jsii's Node kernel with the hook, and put NODE_OPTIONS back: what a synth entry
    point calls before it builds stacks (modules/synth.py overlaps the same steps with reading
    the environment files)."""
    prepare()
    try:
        import constructs  # noqa: F401 - the first jsii package: starts the kernel
    finally:
        restore()
