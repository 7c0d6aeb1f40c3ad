"""`python -m checks cdktf.out`: the rule pack over every synthesized stack (README: "What the checks guarantee").

Exit status: 0 no unexplained finding, 1 findings, 2 bad input (no stacks, a broken
suppressions file, unreadable environment files).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from checks.rules import RULES, SUPPRESSIONS_FILE, Context, SuppressionError, load_suppressions, run
from checks.rules.stack import read_stacks

PROJECT = Path(__file__).resolve().parent.parent


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m checks",
        description="Check synthesized stacks against the design's rules; one line per finding: "
                    "rule id, stack, address, what is wrong, and the rule's rationale.",
        epilog="exit status: 0 no unexplained finding, 1 findings, 2 bad input")
    root.add_argument("outdir", type=Path, help="what `make synth` wrote (cdktf.out)")
    root.add_argument("--emulator", type=Path, metavar="OUTDIR",
                      help="the emulator target's synthesis of the same environments, for WEBAPP-TARGET-1 "
                           "(CDKTF_TARGET=local EMULATOR_ENDPOINT=http://127.0.0.1:1 CDKTF_OUTDIR=OUTDIR python main.py)")
    root.add_argument("--environments-dir", type=Path, default=PROJECT / "environments",
                      help="the environment files that say which environments are production (default: environments/)")
    root.add_argument("--suppressions", type=Path, default=SUPPRESSIONS_FILE,
                      help="reviewed exceptions, each with its reason (default: checks/rules/suppressions.toml)")
    root.add_argument("--list", action="store_true", help="print every rule id and rationale, and exit")
    return root


def _environments(directory: Path) -> tuple[frozenset[str], frozenset[str]]:
    from modules.environment import load_environments

    loaded = load_environments(directory)
    return (frozenset(e.name for e in loaded.environments),
            frozenset(e.name for e in loaded.environments if e.production))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for rule in RULES:
            print(f"{rule.id}  {rule.rationale}")
        return 0
    from modules.core.errors import ConfigError

    try:
        stacks = read_stacks(args.outdir)
        emulator = read_stacks(args.emulator) if args.emulator else {}
        if not stacks or (args.emulator and not emulator):
            raise FileNotFoundError(f"no stacks under {args.outdir}/stacks (run `make synth` first)"
                                    if not stacks else f"no stacks under {args.emulator}/stacks")
        environments, production = _environments(args.environments_dir)
        suppressions = load_suppressions(args.suppressions)
    except (OSError, ValueError, ConfigError, SuppressionError) as error:
        for line in str(error).splitlines() or [""]:
            print(f"error: {line}", file=sys.stderr)
        return 2
    context = Context(environments=environments, production=production, emulator=emulator)
    unexplained, suppressed = run(stacks.values(), context, suppressions)
    for finding in unexplained:
        print(finding)
    print(f"checks: {len(RULES)} rules over {len(stacks)} stacks: {len(unexplained)} findings, "
          f"{len(suppressed)} suppressed with a reason" + ("" if emulator else
                                                           "; WEBAPP-TARGET-1 not run (no --emulator)"),
          file=sys.stderr)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
