"""Read one synthesized stack's JSON the way the rules need it: resources by type, the policy
documents they point at, and the region and account each resource's provider is in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# `${aws_s3_bucket.Name.arn}`, `${data.aws_iam_policy_document.Name.json}`: a reference's type and name.
REFERENCE = re.compile(r"\$\{(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_-]+)")
CALLER_ACCOUNT = re.compile(r"\$\{data\.aws_caller_identity\.([A-Za-z0-9_-]+)\.account_id\}")


def references(value: Any) -> set[tuple[str, str]]:
    """Every `(type, name)` a value refers to (data sources as `data.<type>`)."""
    found: set[tuple[str, str]] = set()
    for text in strings(value):
        for data, kind, name in REFERENCE.findall(text):
            found.add((f"data.{kind}" if data else kind, name))
    return found


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Provider:
    region: str | None
    accounts: tuple[str, ...]
    environment: str | None


@dataclass
class Stack:
    """One stack of `cdktf.out/stacks/<name>/cdk.tf.json`."""

    name: str
    json: dict[str, Any]
    _providers: dict[str, Provider] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for config in as_list(self.json.get("provider", {}).get("aws")):
            alias = config.get("alias")
            default_tags: list[dict[str, Any]] = as_list(config.get("default_tags"))
            tags = default_tags[0].get("tags", {}) if default_tags else {}
            self._providers["aws" if alias is None else f"aws.{alias}"] = Provider(
                region=config.get("region"),
                accounts=tuple(config.get("allowed_account_ids") or ()),
                environment=tags.get("environment"),
            )

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return self.json.get("resource", {}).get(resource_type, {}) or {}

    def data(self, data_type: str) -> dict[str, dict[str, Any]]:
        return self.json.get("data", {}).get(data_type, {}) or {}

    def all_resources(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for resource_type, by_name in (self.json.get("resource") or {}).items():
            for name, config in by_name.items():
                yield resource_type, name, config

    def provider(self, config: dict[str, Any]) -> Provider:
        return self._providers.get(config.get("provider", "aws"), Provider(None, (), None))

    def region(self, config: dict[str, Any]) -> str | None:
        return self.provider(config).region

    def own_accounts(self, config: dict[str, Any]) -> set[str]:
        """How the account of `config`'s provider may be written: its allowed account id, or a
        caller-identity data source read through the same provider."""
        key, accounts = config.get("provider", "aws"), self.provider(config).accounts
        own = {f"${{data.aws_caller_identity.{name}.account_id}}"
               for name, identity in self.data("aws_caller_identity").items()
               if identity.get("provider", "aws") == key
               or (accounts and self.provider(identity).accounts == accounts)}
        own.update(accounts)
        return own

    def policy_document(self, value: Any) -> tuple[str, dict[str, Any]] | None:
        """The `aws_iam_policy_document` a `policy` argument names, with its name."""
        for kind, name in references(value):
            if kind == "data.aws_iam_policy_document" and name in self.data("aws_iam_policy_document"):
                return name, self.data("aws_iam_policy_document")[name]
        return None

    def referrers(self, resource_type: str, argument: str) -> dict[str, set[str]]:
        """`{name of a resource_type resource: names of the resources its argument points at}`."""
        return {name: {n for _, n in references(config.get(argument))} for name, config in
                self.resources(resource_type).items()}


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(document.get("statement"))


def principals(statement: dict[str, Any], kind: str) -> list[str]:
    return [identifier for block in as_list(statement.get("principals")) if block.get("type") == kind
            for identifier in as_list(block.get("identifiers"))]


def conditions(statement: dict[str, Any]) -> dict[str, list[str]]:
    """`{condition key (lower case): values}` of a statement's conditions."""
    found: dict[str, list[str]] = {}
    for block in as_list(statement.get("condition")):
        found.setdefault(str(block.get("variable", "")).lower(), []).extend(as_list(block.get("values")))
    return found


def address(resource_type: str, name: str) -> str:
    return f"{resource_type}.{name}"


def read_stacks(outdir: Path) -> dict[str, Stack]:
    """The stacks `cdktf synth` wrote into `outdir` (`cdktf.out`), by name."""
    return {path.parent.name: Stack(path.parent.name, json.loads(path.read_text()))
            for path in sorted((outdir / "stacks").glob("*/cdk.tf.json"))}
