"""`python -m diagrams_gen --out docs/architecture [--synth-dir cdktf.out] [--env prod ...]`

Writes, per environment, `<env>.png/.svg` (the whole environment), `<env>-<tier>.png/.svg` and
`<env>-dashboard.svg` (the CloudWatch dashboard's layout).
Exits 2 when Graphviz's `dot` is missing, saying how to install it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diagrams_gen.graph import build, environments, picture_tiers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diagrams_gen", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder the pictures are written to")
    parser.add_argument("--synth-dir", type=Path, default=Path("cdktf.out"), help="synthesized output (default: cdktf.out)")
    parser.add_argument("--env", action="append", default=[], help="only these environments (repeatable; default: all)")
    args = parser.parse_args(argv)

    from diagrams_gen.render import INSTALL_HINT, dot_available, render

    if not dot_available():
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        return 2
    try:
        names = args.env or environments(args.synth_dir)
        graphs = {name: build(args.synth_dir, name) for name in names}
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written: list[Path] = []
    for name, graph in graphs.items():
        written += render(graph, f"{name}: whole environment", args.out / name)
        for tier in picture_tiers():
            view = graph.tier_view(tier)
            if any(node.tier == tier for node in view.nodes.values()):
                written += render(view, f"{name}: {tier} tier", args.out / f"{name}-{tier}")
    from diagrams_gen.dashboard import svg

    for name in graphs:
        path = args.out / f"{name}-dashboard.svg"
        path.write_text(svg(args.synth_dir, name))
        written.append(path)
    print(f"wrote {len(written)} files to {args.out}/ for {', '.join(graphs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
