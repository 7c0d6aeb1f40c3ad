"""Turn parsed HCL (plain dicts and lists) into frozen, typed config dataclasses.

Each tier declares its config as a `@dataclass(frozen=True, kw_only=True,
slots=True)` with typed fields and defaults; `from_data` checks the data against
those annotations (unknown keys with the near miss, missing keys, wrong types,
enum values) and then lets the dataclass's own `__post_init__` check values.
Every error is a `ConfigError` whose key is the full dotted path; all the errors of
one block are reported together (`ConfigError.joined`), each `check` of a
`__post_init__` included.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import types
import typing
from typing import Any, TypeVar

from modules.core.errors import ConfigError, collecting, hcl_value, report, shown

T = TypeVar("T")

_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


def whole(regex: str) -> re.Pattern[str]:
    """A pattern that a config value must match whole, with ASCII classes.

    `^...$` alone lets a value end in a newline (`$` matches before one), and `\\w`, `\\s`, `\\d`
    match any Unicode letter, space or digit, where AWS accepts ASCII only (an ARN, an address).
    """
    return re.compile(rf"(?:{regex})\Z", re.ASCII)


# The largest document a value here can end up in is an ECS task definition (64 KiB, ECS
# service quotas); a longer value can only fail at apply, after other stacks have changed.
TEXT_MAX_CHARACTERS = 65536
# An unescaped `${` or `%{`: Terraform reads strings in its JSON as templates, so a value holding
# one would be evaluated (`${file("/etc/hostname")}` on the pipeline's agent). `$${` and `%%{` are
# the escapes, in HCL and in Terraform's JSON alike, and pass through as written: Terraform's
# template scanner reads a `${` right after a `$` as part of an escape (`$$${x}` is `$` + `$${`).
TEMPLATE_SEQUENCE = re.compile(r"(?<!\$)(\$)\{|(?<!%)(%)\{")
HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_]*)\n")


def check_text(key: str, value: str) -> None:
    """Every string of every file: one line of printable text, no Terraform template, bounded."""
    if HEREDOC.match(value):
        raise ConfigError(key, "is a heredoc (<<EOT ... EOT), which environment files do not support: "
                               "write a quoted string")
    if len(value) > TEXT_MAX_CHARACTERS:
        raise ConfigError(key, f"must be at most {TEXT_MAX_CHARACTERS} characters, got {shown(value)}")
    unprintable = next((c for c in value if not c.isprintable()), None)
    if unprintable is not None:
        raise ConfigError(key, f"must be printable text on one line, got {shown(value)} "
                               f"(holds {unprintable.encode('unicode_escape').decode('ascii')})")
    template = TEMPLATE_SEQUENCE.search(value)
    if template is not None:
        sign = template.group(1) or template.group(2)
        raise ConfigError(key, f"holds {sign}{{, which Terraform would evaluate as a template when it reads "
                               f"the synthesized JSON, got {shown(value)}; for a literal {sign}{{ write "
                               f"{sign}{sign}{{")


def _describe(annotation: Any) -> str:
    if annotation in _TYPE_NAMES:
        return _TYPE_NAMES[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(hcl_value(m.value) for m in annotation)
    if dataclasses.is_dataclass(annotation):
        return "a block { ... }"
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "a map { key = value }"
    return str(annotation)


def _convert(annotation: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        if len(options) == 1:
            return _convert(options[0], value, key)
        raise TypeError(f"unsupported union {annotation} at {key}")
    if value is None:
        raise ConfigError(key, f"must be {_describe(annotation)}, got null")
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {shown(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be a whole number, got {shown(value)}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {shown(value)}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {shown(value)}")
        check_text(key, value)
        return value
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        for member in annotation:
            if member.value == value:
                return member
        raise ConfigError(key, f"must be {_describe(annotation)}, got {shown(value)}")
    if dataclasses.is_dataclass(annotation):
        # A block `name { ... }` parses as a one-element list of its body.
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            value = value[0]
        if isinstance(value, list) and len(value) > 1 and all(isinstance(v, dict) for v in value):
            raise ConfigError(key, f"must be one block {{ ... }}, got {len(value)} of them: merge them into one")
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a block {{ ... }}, got {shown(value)}")
        return from_data(annotation, value, key)  # type: ignore[arg-type]
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(key, f"must be a list, got {shown(value)}")
        return tuple(_each(_convert, [(item_type, _unlabel(item_type, item), f"{key}[{index}]")
                                      for index, item in enumerate(value)]))
    if origin is dict:
        (key_type, item_type) = typing.get_args(annotation)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            value = value[0]
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a map {{ key = value }}, got {shown(value)}")
        keys = _each(_convert, [(key_type, k, key) for k in value])
        items = _each(_convert, [(item_type, v, f"{key}.{k}") for k, v in value.items()])
        return dict(zip(keys, items, strict=True))
    raise TypeError(f"unsupported annotation {annotation!r} at {key}")


def _each(convert: typing.Callable[..., Any], arguments: list[tuple[Any, ...]]) -> list[Any]:
    """`convert(*args)` for each of `arguments`, or one error holding every conversion's errors."""
    results, found = [], []
    for args in arguments:
        try:
            results.append(convert(*args))
        except ConfigError as error:
            found.append(error)
    if found:
        raise ConfigError.joined(found)
    return results


def _unlabel(item_type: Any, item: Any) -> Any:
    """`service "api" { ... }` parses as `{"api": {...}}`: the label becomes `name`."""
    if (
        dataclasses.is_dataclass(item_type)
        and isinstance(item, dict)
        and len(item) == 1
        and "name" in {f.name for f in dataclasses.fields(item_type)}
    ):
        (label, body) = next(iter(item.items()))
        if isinstance(body, dict) and label not in {f.name for f in dataclasses.fields(item_type)}:
            return {"name": label, **body}
    return item


# Keys an older version of the library read, and the key that says the same now.
RENAMED_KEYS = {
    # One word for "this cannot be destroyed by accident" in every tier (Terraform's own).
    "deletion_protection": "prevent_destroy",
}


def from_data(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build `cls` from a dict, or raise `ConfigError` naming the dotted key of every error found.

    Unknown keys and each field's type are all checked; when every field converts, the class's
    `__post_init__` runs with its checks collecting (errors.collecting), so all of them report.
    """

    def path(name: str) -> str:
        return f"{prefix}.{name}" if prefix else name

    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    # A class may name keys it no longer takes (`RETIRED_KEYS = {key: what replaced it}`).
    retired: dict[str, str] = getattr(cls, "RETIRED_KEYS", {})
    unknown: list[ConfigError] = []
    for name in data:
        if name in RENAMED_KEYS and RENAMED_KEYS[name] in fields:
            unknown.append(ConfigError(path(name), f"was renamed: write {RENAMED_KEYS[name]} = ... (same meaning)"))
        elif name in retired and name not in fields:
            unknown.append(ConfigError(path(name), f"is no longer a key: {retired[name]}"))
        elif name not in fields:
            near = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            allowed = ", ".join(sorted(fields))
            unknown.append(ConfigError(path(name), f"is not a known key{hint}; allowed keys: {allowed}"))
    values = {}
    wrong: list[ConfigError] = []
    for name, field in fields.items():
        if name in data:
            try:
                values[name] = _convert(hints[name], data[name], path(name))
            except ConfigError as error:
                wrong.append(error)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            wrong.append(ConfigError(path(name), f"is required ({_describe(hints[name])})"))
    if wrong:  # the class cannot be built without these values: its own checks wait for the next run
        raise ConfigError.joined(unknown + wrong)
    with collecting() as checked:
        try:
            instance = cls(**values)
        except ConfigError as error:
            checked.append(error)
        except Exception:
            # A check that failed lets the next lines run on a value they assume is valid (a region
            # that is not one, a role ARN that does not parse): what breaks then is a consequence.
            if not checked:
                raise
    found = unknown + [error.under(prefix) if prefix else error for error in checked]
    if found:
        raise ConfigError.joined(found)
    return instance


def check(condition: bool, key: str, value: object, allowed: str) -> None:
    """Report `<key> must be <allowed>, got <value>` unless `condition` holds (errors.report: raised,
    or recorded while a config class checks itself, so its next check runs too)."""
    if not condition:
        report(ConfigError(key, f"must be {allowed}, got {shown(value)}"))


def check_range(key: str, value: int | float, low: int | float, high: int | float) -> None:
    check(low <= value <= high, key, value, f"{low}..{high}")
