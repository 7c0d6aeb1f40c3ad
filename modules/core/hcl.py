"""Reading HCL files (`environments/*.hcl`) into plain Python values.

python-hcl2 parses; this module adds what Terraform users expect of a configuration
file: an error with the file and line, and a key given twice refused rather than the
last one silently winning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions
from lark.exceptions import LarkError, UnexpectedInput

from modules.core.errors import ConfigError, excerpt


def display(path: Path) -> str:
    """`environments/dev.hcl` rather than an absolute path, where possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# Far deeper than any environment file needs (blocks in blocks in maps: about five), and shallow
# enough that the parser's recursion never reaches Python's limit.
MAX_NESTING = 32


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a byte-order mark is allowed and dropped), or ConfigError with the place."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError("", f"cannot be read: {error.strerror}", file=display(path)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = data[:error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError("", f"is not UTF-8 text: byte 0x{data[error.start]:02x} at line {line}, column {column}; "
                              "save the file as UTF-8", file=display(path)) from None


def too_deep(text: str, limit: int = MAX_NESTING) -> tuple[int, int] | None:
    """Line and column where `{`/`[` nesting first exceeds `limit` (strings and comments skipped)."""
    depth, line, column, index = 0, 1, 0, 0
    in_string = False
    while index < len(text):
        char = text[index]
        column += 1
        if char == "\n":
            line, column = line + 1, 0
            in_string = False  # a quoted string ends at the line's end (an HCL syntax error otherwise)
        elif in_string:
            if char == "\\":
                index += 1
                column += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "#" or text.startswith("//", index):
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            end = len(text) if end < 0 else end + 2
            skipped = text[index:end]
            if "\n" in skipped:
                line += skipped.count("\n")
                column = len(skipped) - skipped.rfind("\n") - 1
            else:
                column += len(skipped) - 1
            index = end
            continue
        elif char in "{[":
            depth += 1
            if depth > limit:
                return line, column
        elif char in "}]":
            depth -= 1
        index += 1
    return None


def parse_hcl(path: Path) -> dict[str, Any]:
    """Parse one HCL file into plain Python values, or raise ConfigError with the line."""
    text = read_text(path)
    deep = too_deep(text)
    if deep is not None:
        raise ConfigError("", f"nests blocks, lists or maps more than {MAX_NESTING} deep at line {deep[0]}, "
                              f"column {deep[1]}", file=display(path))
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    try:
        tree = hcl2.parses(text)
    except UnexpectedInput as error:
        line = getattr(error, "line", "?")
        column = getattr(error, "column", "?")
        lines = text.splitlines()
        if isinstance(line, int) and 1 <= line <= len(lines):
            where = f"at line {line}, column {column}: {excerpt(lines[line - 1].strip())}"
        else:  # lark reports an unfinished last statement one line past the end
            last = lines[-1] if lines else ""
            where = (f"at line {max(len(lines), 1)}, column {len(last) + 1}, the end of the file: "
                     "a statement, string or bracket is left open")
        raise ConfigError("", f"HCL syntax error {where}", file=display(path)) from None
    except LarkError as error:
        raise ConfigError("", f"HCL syntax error: {str(error).splitlines()[0]}", file=display(path)) from None
    except RecursionError:
        raise ConfigError("", "nests too deeply to read", file=display(path)) from None
    try:
        reject_repeated_keys(tree, options)
    except ConfigError as error:
        raise error.in_file(display(path)) from None
    return hcl2.serialize(tree, serialization_options=options)


def reject_repeated_keys(rule: Any, options: SerializationOptions, where: str = "") -> None:
    """An attribute or object key given twice is an error, as in Terraform.

    python-hcl2 keeps the last value silently, so `replica_count = 2` ... `replica_count = 0`
    further down would quietly win. Repeated *blocks* are kept (they become a list, and the
    schema says whether a block may repeat).
    """
    seen: dict[str, int] = {}
    kind = type(rule).__name__
    for child in getattr(rule, "children", None) or ():
        if child is None or not hasattr(child, "children"):
            continue
        child_kind = type(child).__name__
        name = None
        if kind == "BodyRule" and child_kind == "AttributeRule":
            name = str(child.identifier.serialize(options))
        elif kind == "ObjectRule" and child_kind == "ObjectElemRule":
            name = str(child.children[0].serialize(options))
        if name is not None:
            line = child._meta.line
            key = f"{where}.{name}" if where else name
            if name in seen:
                raise ConfigError(key, f"is set twice (lines {seen[name]} and {line}); give it once")
            seen[name] = line
            reject_repeated_keys(child, options, key)
        elif child_kind == "BlockRule":
            block = str(child.children[0].serialize(options))
            reject_repeated_keys(child, options, f"{where}.{block}" if where else block)
        else:
            reject_repeated_keys(child, options, where)
