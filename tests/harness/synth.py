"""Synthesize the app in-process and read the stacks' JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.core.target import Target
from modules.environment import Environments


@dataclass
class Synthesized:
    """`cdktf.out/` of one synth: each stack's JSON by stack name."""

    outdir: Path
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def stack(self, name: str) -> Stack:
        return Stack(name, self.stacks[name], self.outdir / "stacks" / name)


@dataclass
class Stack:
    name: str
    json: dict[str, Any]
    directory: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """`{logical id: config}` of every resource of one type."""
        return self.json.get("resource", {}).get(resource_type, {})

    def data(self, data_type: str) -> dict[str, dict[str, Any]]:
        return self.json.get("data", {}).get(data_type, {})

    def resource(self, resource_type: str, path_suffix: str) -> dict[str, Any]:
        """The one resource of `resource_type` whose construct path ends with `path_suffix`."""
        matches = [
            config for config in self.resources(resource_type).values()
            if config["//"]["metadata"]["path"].endswith(path_suffix)
        ]
        assert len(matches) == 1, f"{self.name}: {len(matches)} {resource_type} at */{path_suffix}"
        return matches[0]

    def all_resources(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (resource_type, name, config)
            for resource_type, by_name in self.json.get("resource", {}).items()
            for name, config in by_name.items()
        ]


def synthesize(environments: Environments, outdir: Path, target: Target | None = None) -> Synthesized:
    from modules.app import build_app

    app = build_app(environments, target=target or Target(), outdir=outdir)
    app.synth()
    return read_synthesized(outdir)


def read_synthesized(outdir: Path) -> Synthesized:
    """The stacks a synth wrote into `outdir` (in this process or another)."""
    result = Synthesized(outdir)
    for directory in sorted((outdir / "stacks").iterdir()):
        result.stacks[directory.name] = json.loads((directory / "cdk.tf.json").read_text())
    return result
