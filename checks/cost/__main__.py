"""`python -m checks.cost cdktf.out`: each environment's estimated monthly cost (README: "What it costs").

Exit status: 0 printed, 2 bad input (no stacks, a broken price table, a resource type the estimate
does not know: add it to FIXED, USAGE or FREE in checks/cost/__init__.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from checks.cost import (
    PRICES_FILE,
    Assumptions,
    CostError,
    Estimate,
    Line,
    estimate,
    knob,
    load_prices,
    total,
)
from checks.rules.stack import read_stacks


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m checks.cost",
        description="Estimate each environment's monthly AWS cost from the synthesized stacks and a dated "
                    "price table. An estimate, not a quote.",
        epilog="exit status: 0 printed, 2 bad input")
    root.add_argument("outdir", type=Path, help="what `make synth` wrote (cdktf.out)")
    root.add_argument("--prices", type=Path, default=PRICES_FILE, help="the price table (default: checks/cost/prices.toml)")
    root.add_argument("--assume", action="append", default=[], metavar="NAME=VALUE",
                      help="a usage volume per environment and month, one of: " + ", ".join(
                          f"{name} (default {getattr(Assumptions(), name):g})" for name in Assumptions.fields()))
    root.add_argument("--environment", action="append", default=[], metavar="ENV",
                      help="only this environment (repeatable; default: all, and the shared stacks)")
    root.add_argument("--sources", action="store_true", help="also print each price's basis and source")
    return root


def _assumptions(pairs: Sequence[str]) -> Assumptions:
    assumptions = Assumptions()
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in Assumptions.fields():
            raise ValueError(f"--assume {pair}: unknown volume {name!r}; one of {', '.join(Assumptions.fields())}")
        try:
            amount = float(value)
        except ValueError:
            raise ValueError(f"--assume {pair}: {value!r} is not a number") from None
        if amount < 0:
            raise ValueError(f"--assume {pair}: a volume cannot be negative")
        assumptions = replace(assumptions, **{name: amount})
    return assumptions


def _money(amount: float | None) -> str:
    return "       ?" if amount is None else f"{amount:8.2f}"


def _line(line: Line) -> str:
    return f"  {_money(line.monthly)}  {line.stack:<15} {line.address}: {line.formula()}"


def render(result: Estimate, environments: Sequence[str], sources: bool) -> str:
    table = result.table
    out = [f"Estimated monthly cost (an ESTIMATE, not a quote): on-demand list prices in USD from "
           f"checks/cost/prices.toml of {table.date}, {table.hours_per_month:g} hours a month, no free tier, "
           f"no discounts, no tax. '?' marks a line the table has no price for; '~' an inferred price.", ""]
    for environment in environments:
        fixed, usage = result.fixed(environment), result.usage(environment)
        fixed_sum, fixed_missing = total(fixed)
        usage_sum, usage_missing = total(usage)
        out.append(f"{environment}: fixed ${fixed_sum:,.2f}" + (f" + {fixed_missing} unpriced" if fixed_missing else "")
                   + f"; usage at the assumed volumes ${usage_sum:,.2f}"
                   + (f" + {usage_missing} unpriced" if usage_missing else "")
                   + f"; total at least ${fixed_sum + usage_sum:,.2f}")
        out.extend(_line(line) for line in sorted(fixed, key=lambda item: -(item.monthly or 0)))
        if usage:
            out.append("  usage-driven (formula x price):")
            out.extend(_line(line) for line in usage)
        others = sorted(result.usage_types.get(environment, set()) - {line.address.split(".")[0] for line in usage})
        if others:
            out.append(f"  also billed by use, not estimated: {', '.join(others)}")
        knobs = sorted({text for line in fixed + usage if (text := knob(line.item))})
        if knobs:
            out.append("  knobs that lower it:")
            out.extend(f"    - {text}" for text in knobs)
        out.append("")
    if sources:
        used = {(line.item, line.region) for line in result.lines if line.environment in environments}
        out.append("Prices used (basis, source):")
        for (item, region), price in sorted(table.prices.items()):
            if (item, region) in used or (item, "global") in used:
                where = f"{price.basis}: {price.seen}" if price.usd is not None else f"missing: {price.missing}"
                out.append(f"  {item} {region}: {where} <{price.source}>")
    return "\n".join(out).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        assumptions = _assumptions(args.assume)
        table = load_prices(args.prices)
        stacks = list(read_stacks(args.outdir).values())
        if not stacks:
            raise FileNotFoundError(f"no stacks under {args.outdir}/stacks (run `make synth` first)")
        result = estimate(stacks, table, assumptions)
    except (OSError, ValueError, CostError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    known = result.environments()
    wanted = args.environment or known
    unknown = [name for name in wanted if name not in known]
    if unknown:
        print(f"error: --environment {', '.join(unknown)}: not in the stacks; one of {', '.join(known)}", file=sys.stderr)
        return 2
    sys.stdout.write(render(result, wanted, args.sources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
