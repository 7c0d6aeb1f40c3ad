"""Benchmark: wall time and peak memory of synthesizing every environment.

    python -m bench.synth            # 5 runs after a warm-up, at 1x, 3x and 10x the environments
    python -m bench.synth --runs 3 --scales 1

For each scale it synthesizes a generated copy of `environments/` with that many
copies of every environment (distinct names and CIDRs), running `main.py` in a
fresh process, and reports the median of the runs for two paths side by side:

- baseline:  the provider package imported whole (`CDKTF_PLAIN_PROVIDER_IMPORT=1`)
             and a normal interpreter exit (`CDKTF_FAST_EXIT=0`);
- optimized: the lazy provider import (modules/aws.py) and the fast, safe exit.

Peak memory is each process's own high-water mark (VmHWM from /proc), sampled
while it runs: the Python process and the node kernel (jsii) separately, since a
whole-process tool reports only the largest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PATHS = {
    "baseline": {"CDKTF_PLAIN_PROVIDER_IMPORT": "1", "CDKTF_FAST_EXIT": "0"},
    "optimized": {"CDKTF_PLAIN_PROVIDER_IMPORT": "0", "CDKTF_FAST_EXIT": "1"},
    # Not a default path: the optimized path plus gc.freeze() after the imports.
    "gc-freeze": {"CDKTF_PLAIN_PROVIDER_IMPORT": "0", "CDKTF_FAST_EXIT": "1", "CDKTF_GC_FREEZE": "1"},
}


@dataclass
class Run:
    seconds: float
    python_mib: float
    node_mib: float
    resources: int


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(c) for c in children.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found.append(child)
        found.extend(_descendants(child))
    return found


def _is_node(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip() == "node"
    except (FileNotFoundError, ProcessLookupError):
        return False


def generate_environments(scale: int, target: Path) -> Path:
    """`environments/` with `scale` copies of each environment: dev, dev2, ..., distinct CIDRs."""
    source = PROJECT / "environments"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.*.hcl"))
    if scale == 1:
        return target
    octet = 100
    accounts = []
    for path in sorted(source.glob("*.hcl")):
        if path.name == "shared.hcl" or "." in path.stem:
            continue
        text = path.read_text()
        accounts += re.findall(r'^account_id\s*=\s*"([0-9]{12})"', text, flags=re.M)
        for copy in range(2, scale + 1):
            octet += 1
            if octet > 250:
                raise ValueError("scale too large for the generated CIDR plan")
            renamed = re.sub(r'cidr(\s*)=(\s*)"10\.\d+\.0\.0/16"', rf'cidr\1=\2"10.{octet}.0.0/16"', text)
            # A copy shares its original's account and region, where the original owns API
            # Gateway's CloudWatch role setting (load_environments checks there is one owner).
            renamed = renamed.replace("\napi {\n", "\napi {\n  account_cloudwatch_role = false\n", 1)
            (target / f"{path.stem}{copy}.hcl").write_text(renamed)
    # The copies share their originals' accounts, which shared.hcl must say is intended.
    shared = target / "shared.hcl"
    listed = ", ".join(f'"{account}"' for account in sorted(set(accounts)))
    shared.write_text(shared.read_text() + f"\nshared_accounts = [{listed}]\n")
    return target


def synth_once(environments_dir: Path, path: str) -> Run:
    outdir = Path(tempfile.mkdtemp(prefix="bench-out-"))
    env = {
        **os.environ,
        **PATHS[path],
        "CDKTF_ENVIRONMENTS_DIR": str(environments_dir),
        "CDKTF_OUTDIR": str(outdir),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(PROJECT / "main.py")], cwd=PROJECT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    python_kib = node_kib = 0
    while process.poll() is None:
        python_kib = max(python_kib, _hwm_kib(process.pid))
        # jsii starts node (jsii-runtime.js), which starts the kernel (program.js): the largest is the kernel.
        for child in _descendants(process.pid):
            if _is_node(child):
                node_kib = max(node_kib, _hwm_kib(child))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"synth failed ({process.returncode}):\n{stderr.decode()[-3000:]}")
    resources = sum(
        len(by_name)
        for stack in (outdir / "stacks").iterdir()
        for by_name in json.loads((stack / "cdk.tf.json").read_text()).get("resource", {}).values()
    )
    shutil.rmtree(outdir, ignore_errors=True)
    return Run(seconds, python_kib / 1024, node_kib / 1024, resources)


def measure(environments_dir: Path, path: str, runs: int) -> tuple[Run, list[Run]]:
    synth_once(environments_dir, path)  # warm-up: file caches, .pyc
    samples = [synth_once(environments_dir, path) for _ in range(runs)]
    median = Run(
        statistics.median(s.seconds for s in samples),
        statistics.median(s.python_mib for s in samples),
        statistics.median(s.node_mib for s in samples),
        samples[0].resources,
    )
    return median, samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark synthesizing every environment.")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per path and scale (default 5)")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 3, 10], help="environment multipliers")
    parser.add_argument("--paths", nargs="+", default=["baseline", "optimized"], choices=list(PATHS))
    args = parser.parse_args(argv)

    print(f"synth benchmark: median of {args.runs} runs after a warm-up; {os.cpu_count()} cores")
    header = f"{'scale':>5} {'envs':>6} {'resources':>9} {'path':>9} {'wall s':>7} {'python MiB':>10} {'node MiB':>8}"
    print(header)
    results: dict[tuple[int, str], Run] = {}
    with tempfile.TemporaryDirectory(prefix="bench-env-") as scratch:
        for scale in args.scales:
            environments_dir = generate_environments(scale, Path(scratch) / f"x{scale}")
            environments = len([p for p in environments_dir.glob("*.hcl") if p.name != "shared.hcl"])
            for path in args.paths:
                median, _ = measure(environments_dir, path, args.runs)
                results[(scale, path)] = median
                print(f"{scale:>4}x {environments:>6} {median.resources:>9} {path:>9} {median.seconds:>7.2f} "
                      f"{median.python_mib:>10.0f} {median.node_mib:>8.0f}", flush=True)
            if {"baseline", "optimized"} <= set(args.paths):
                base, fast = results[(scale, "baseline")], results[(scale, "optimized")]
                print(f"{'':>5} ratio optimized/baseline: wall {fast.seconds / base.seconds:.2f}, "
                      f"python memory {fast.python_mib / base.python_mib:.2f}", flush=True)
    if len(args.scales) > 1 and "optimized" in args.paths:
        points = sorted((results[(s, "optimized")].resources, results[(s, "optimized")].seconds) for s in args.scales)
        (r0, t0), (r1, t1) = points[0], points[-1]
        if r1 > r0:
            print(f"optimized slope: {1000 * (t1 - t0) / (r1 - r0):.2f} ms per resource "
                  f"(intercept {t0 - (t1 - t0) / (r1 - r0) * r0:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
