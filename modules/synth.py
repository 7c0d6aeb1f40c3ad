"""`python main.py`: load the environments, build every stack, synthesize, report."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import threading
from pathlib import Path

from modules.core import jsii_node
from modules.core.errors import ConfigError
from modules.core.jsii_node import plain_provider_import
from modules.environment import load_environments, outside_promotion


def _selected() -> tuple[str, ...] | None:
    value = os.environ.get("ENVIRONMENTS", "").strip()
    return tuple(n.strip() for n in value.split(",") if n.strip()) or None


def fast_exit(status: int) -> None:
    """Exit without interpreter teardown (~3.5 s of freeing jsii objects).

    Safe: the registered exit handlers run first (jsii's stops the node kernel
    and deletes its temp folder), then the streams are flushed. Only a successful
    synth exits this way; errors exit normally. `CDKTF_FAST_EXIT=0` turns it off.
    """
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _load_bindings() -> None:
    try:
        import cdktf  # noqa: F401 - starts the Node kernel, loads constructs and cdktf

        import modules.aws  # noqa: F401 - loads the provider assembly
    except BaseException:  # noqa: BLE001 - the main thread's own import reports it
        pass


def load_bindings_in_background() -> threading.Thread | None:
    """Start jsii's Node kernel while the environment files are parsed and checked.

    Importing cdktf starts the kernel and loads the constructs, cdktf and provider
    assemblies: ~1.3 s, much of it waiting for Node, which the ~0.3 s of reading and
    checking the environment files overlaps. The thread imports only third-party
    packages and `modules.aws`, nothing the config loader imports, so neither thread
    waits on the other's modules. Not in the benchmark's baseline.
    """
    if plain_provider_import():
        return None
    thread = threading.Thread(target=_load_bindings, name="load-bindings", daemon=True)
    thread.start()
    return thread


def remove_stale_stacks(stacks_dir: Path, written: list[str]) -> list[str]:
    """Delete the stack folders this synth did not write, and name them.

    A partial synth (`ENVIRONMENTS=dev`) would otherwise leave an earlier run's prod
    stacks beside today's dev ones, and whoever runs terraform there next applies stale
    JSON. manifest.json already lists only this run's stacks. Terraform state is never in
    these folders (it is remote; bootstrap's local state file lives in the project folder).
    """
    stale = sorted(p.name for p in stacks_dir.iterdir() if p.is_dir() and p.name not in written)
    for name in stale:
        shutil.rmtree(stacks_dir / name)
    return stale


def synth_main(project_dir: Path) -> int:
    """Synthesize into `$CDKTF_OUTDIR` (set by `cdktf synth`) or `cdktf.out/`.

    `ENVIRONMENTS=dev,stage` limits the run to some environments;
    `CDKTF_ENVIRONMENTS_DIR` reads environment files from another folder.
    """
    # The lazy provider index, for the kernel the background thread starts (core/jsii_node.py).
    jsii_node.prepare()
    loading = load_bindings_in_background()
    try:
        directory = Path(os.environ.get("CDKTF_ENVIRONMENTS_DIR") or project_dir / "environments")
        environments = load_environments(directory, _selected())
    except ConfigError as error:
        if loading is not None:
            loading.join()  # a kernel half started would miss jsii's exit handler stopping it
        jsii_node.restore()
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        print("nothing was written", file=sys.stderr)
        return 2
    for warning in outside_promotion(environments):
        print(f"warning: {warning}", file=sys.stderr)

    from cdktf import TerraformStack

    from modules.app import build_app
    from modules.core.target import Target

    jsii_node.restore()

    if os.environ.get("CDKTF_GC_FREEZE") == "1":
        import gc

        gc.freeze()

    try:
        target = Target.from_environ()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    outdir = Path(os.environ.get("CDKTF_OUTDIR") or project_dir / "cdktf.out")
    app = build_app(environments, target=target, outdir=outdir)
    app.synth()
    stacks = sorted(stack.node.id for stack in app.node.children if isinstance(stack, TerraformStack))
    stale = remove_stale_stacks(outdir / "stacks", stacks)
    where = "the local emulator" if target.is_emulator else "AWS"
    print(f"Synthesized {len(stacks)} stacks for {where} into {outdir}/stacks:")
    for name in stacks:
        print(f"  {name}")
    if stale:
        print(f"Removed {len(stale)} stack folder(s) an earlier synth left there, which this run did not write "
              f"(synthesize them again to get them back): {', '.join(stale)}")
    if os.environ.get("CDKTF_FAST_EXIT", "1") != "0":
        fast_exit(0)
    return 0
