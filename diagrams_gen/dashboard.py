"""The layout of an environment's CloudWatch dashboard, drawn from the synthesized api stack.

Each widget is a box at its grid place (24 columns; x, y, width, height as the dashboard body
states them), labelled with its title: what on-call sees, in the order they see it.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

CELL_WIDTH = 40  # pixels per grid column
CELL_HEIGHT = 22  # pixels per grid row
COLORS = {"text": "#f2f2f2", "alarm": "#f9d6d5", "metric": "#dce9f7"}


def widgets(synth_dir: Path, environment: str) -> list[dict[str, Any]]:
    stack = json.loads((synth_dir / "stacks" / f"{environment}-api" / "cdk.tf.json").read_text())
    (dashboard,) = stack["resource"]["aws_cloudwatch_dashboard"].values()
    return list(json.loads(dashboard["dashboard_body"])["widgets"])


def title(widget: dict[str, Any]) -> str:
    properties = widget["properties"]
    if widget["type"] == "text":
        return str(properties["markdown"].split("\n")[0].lstrip("# "))
    return str(properties["title"])


def svg(synth_dir: Path, environment: str) -> str:
    items = widgets(synth_dir, environment)
    width = 24 * CELL_WIDTH
    height = max(w["y"] + w["height"] for w in items) * CELL_HEIGHT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">']
    for widget in items:
        x, y = widget["x"] * CELL_WIDTH, widget["y"] * CELL_HEIGHT
        w, h = widget["width"] * CELL_WIDTH, widget["height"] * CELL_HEIGHT
        parts.append(f'<rect x="{x + 1}" y="{y + 1}" width="{w - 2}" height="{h - 2}" rx="3" '
                     f'fill="{COLORS[widget["type"]]}" stroke="#8a8a8a"/>')
        parts.append(f'<text x="{x + 6}" y="{y + 15}">{escape(title(widget))}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
