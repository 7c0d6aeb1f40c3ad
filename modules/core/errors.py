"""Configuration errors that name the file, the key, the value and what is allowed."""

from __future__ import annotations

# Long enough to recognise a value, short enough that a message stays one readable line.
SHOWN_MAX_CHARACTERS = 60


def shown(value: object) -> str:
    """A value as messages show it: its repr (quotes, control characters escaped), cut when long."""
    text = repr(value)
    if len(text) <= SHOWN_MAX_CHARACTERS:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters as written"
    return f"{text[:SHOWN_MAX_CHARACTERS]}... ({size})"


def one_line(text: str) -> str:
    """`text` with every unprintable character (newline, tab, escape, ...) written as its escape,
    so a message never spans lines or moves the terminal's cursor."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class ConfigError(Exception):
    """An environment file is wrong; raised before anything is synthesized.

    `key` is a dotted path (`database.backup_retention_days`); the loader adds the
    file name, so a message reads
    `environments/prod.hcl: database.backup_retention_days must be 1..35, got 0`.
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

    def under(self, prefix: str) -> ConfigError:
        """The same error, with its key nested under `prefix`."""
        key = f"{prefix}.{self.key}" if self.key else prefix
        return ConfigError(key, self.message, file=self.file)

    def in_file(self, file: str) -> ConfigError:
        return ConfigError(self.key, self.message, file=file)
