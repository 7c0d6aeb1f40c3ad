"""Configuration errors that name the file, the key, the value and what is allowed."""

from __future__ import annotations


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
        return f"{where}{subject}{self.message}"

    def under(self, prefix: str) -> ConfigError:
        """The same error, with its key nested under `prefix`."""
        key = f"{prefix}.{self.key}" if self.key else prefix
        return ConfigError(key, self.message, file=self.file)

    def in_file(self, file: str) -> ConfigError:
        return ConfigError(self.key, self.message, file=file)


def invalid(key: str, value: object, allowed: str) -> ConfigError:
    """`<key> must be <allowed>, got <value>`."""
    return ConfigError(key, f"must be {allowed}, got {value!r}")
