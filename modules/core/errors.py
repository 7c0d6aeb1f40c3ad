"""Configuration errors that name the file, the key, the value and what is allowed.

A load reports every error it finds, one line each (`ConfigError.joined`): a check inside a
config class's `__post_init__` records its error and lets the next check run while
`collecting()` is active, which `schema.from_data` arranges for each class it builds.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

# Long enough to recognise a value, short enough that a message stays one readable line.
SHOWN_MAX_CHARACTERS = 60
# Enough to fix a copied environment in one pass (turning one into production breaks about
# ten rules), few enough that the first lines stay on the screen.
REPORTED_MAX_ERRORS = 20

_HCL_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
# HCL's string escapes (hclsyntax spec, "Template Literals"); any other unprintable
# character is written \uNNNN or \UNNNNNNNN, which HCL reads back.
_HCL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _hcl_string(text: str) -> str:
    def escape(char: str) -> str:
        if char in _HCL_ESCAPES:
            return _HCL_ESCAPES[char]
        if char.isprintable():
            return char
        return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"

    return '"' + "".join(escape(c) for c in text) + '"'


class Described(str):
    """What a message says about a value too large to show (`"20 variables of 40050 bytes"`):
    written as it is, not as an HCL string."""


def hcl_value(value: object) -> str:
    """`value` written as an environment file would write it: `false`, `null`, `"text"`,
    `["a", "b"]`, `{ key = "value" }`; an enum member as its value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return hcl_value(value.value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Described):
        return str(value)
    if isinstance(value, str):
        return _hcl_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hcl_value(item) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = (f"{k if isinstance(k, str) and _HCL_IDENTIFIER.match(k) else hcl_value(k)} = {hcl_value(v)}"
                 for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    return _hcl_string(str(value))


def shown(value: object) -> str:
    """A value as messages show it: in HCL (quotes and control characters escaped), cut when long."""
    text = hcl_value(value)
    if len(text) <= SHOWN_MAX_CHARACTERS:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters as written"
    return f"{text[:SHOWN_MAX_CHARACTERS]}... ({size})"


def excerpt(text: str) -> str:
    """A piece of a file as messages quote it: as written, between backticks, on one line, cut when long
    (not as an HCL string: a line of a file is not a value, and its quotes stay readable)."""
    cut = text if len(text) <= SHOWN_MAX_CHARACTERS else f"{text[:SHOWN_MAX_CHARACTERS]}..."
    return f"`{one_line(cut)}`"


def one_line(text: str) -> str:
    """`text` with every unprintable character (newline, tab, escape, ...) written as its escape,
    so a message never spans lines or moves the terminal's cursor."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class ConfigError(Exception):
    """An environment file is wrong; raised before anything is synthesized.

    `key` is a dotted path (`database.backup_retention_days`); the loader adds the
    file name, so a message reads
    `environments/prod.hcl: database.backup_retention_days must be 1..35, got 0`.
    Several errors found in one load are one `ConfigErrors` (`ConfigError.joined`).
    """

    def __init__(self, key: str, message: str, *, file: str | None = None) -> None:
        self.key = key
        self.message = message
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        subject = f"{self.key} " if self.key else ""
        return one_line(f"{where}{subject}{self.message}")

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """Each error this one stands for, one line each."""
        return (self,)

    def under(self, prefix: str) -> ConfigError:
        """The same error, with its key nested under `prefix`."""
        key = f"{prefix}.{self.key}" if self.key else prefix
        return ConfigError(key, self.message, file=self.file)

    def in_file(self, file: str) -> ConfigError:
        return ConfigError(self.key, self.message, file=file)

    @staticmethod
    def joined(errors: Sequence[ConfigError]) -> ConfigError:
        """One error for all of `errors` (each may itself be several): the error itself when there is one."""
        unique: dict[str, ConfigError] = {}
        for error in (e for item in errors for e in item.errors):
            unique.setdefault(str(error), error)  # a consequence reported twice is one line
        if not unique:
            raise ValueError("no errors to join")
        found = tuple(unique.values())
        return found[0] if len(found) == 1 else ConfigErrors(found)


class ConfigErrors(ConfigError):
    """Several configuration errors: `str()` is one line each, the first `REPORTED_MAX_ERRORS` of them.

    `key`, `message` and `file` are the first error's, so code that reads one error still can.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self._errors = tuple(errors)
        first = self._errors[0]
        super().__init__(first.key, first.message, file=first.file)

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return self._errors

    def __str__(self) -> str:
        lines = [str(error) for error in self._errors[:REPORTED_MAX_ERRORS]]
        left = len(self._errors) - REPORTED_MAX_ERRORS
        if left > 0:
            lines.append(f"... and {left} more error{'s' if left > 1 else ''} (the first {REPORTED_MAX_ERRORS} "
                         "are shown: fix them and run again)")
        return "\n".join(lines)

    def under(self, prefix: str) -> ConfigError:
        return ConfigErrors([error.under(prefix) for error in self._errors])

    def in_file(self, file: str) -> ConfigError:
        return ConfigErrors([error.in_file(file) for error in self._errors])


_found: ContextVar[list[ConfigError] | None] = ContextVar("config_errors_found", default=None)


@contextmanager
def collecting() -> Iterator[list[ConfigError]]:
    """While active, `report` records errors here instead of raising them (innermost wins)."""
    found: list[ConfigError] = []
    token = _found.set(found)
    try:
        yield found
    finally:
        _found.reset(token)


def report(error: ConfigError) -> None:
    """Raise `error`, or record it and return when `collecting()` is active, so the next check runs too."""
    found = _found.get()
    if found is None:
        raise error
    found.append(error)
