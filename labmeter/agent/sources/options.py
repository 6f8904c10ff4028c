"""Typed access to a source's ``[agent.options]`` table; every error names its key."""

from __future__ import annotations

from typing import Any

from labmeter.errors import ConfigError


class Options:
    """Reads the raw options table once, checking each key as it is asked for."""

    def __init__(self, raw: dict[str, Any], prefix: str = "agent.options") -> None:
        self.raw = raw
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def string(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self.raw.get(name, default)
        if value is None:
            raise ConfigError(self.key(name), "is required")
        if not isinstance(value, str) or not value:
            raise ConfigError(self.key(name), f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise ConfigError(self.key(name), f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(
        self,
        name: str,
        default: float | None = None,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self.raw.get(name, default)
        if value is None:
            raise ConfigError(self.key(name), "is required")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.key(name), f"must be a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(self.key(name), f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(self.key(name), f"must be <= {maximum}, got {value}")
        return float(value)

    def integer(
        self, name: str, default: int | None = None, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self.raw.get(name, default)
        if value is None:
            raise ConfigError(self.key(name), "is required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.key(name), f"must be an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            raise ConfigError(self.key(name), f"must be within {minimum}..{maximum}, got {value}")
        return value

    def table(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(self.key(name), "must be a table")
        return value

    def sub(self, name: str) -> Options:
        return Options(self.table(name), self.key(name))

    def reject_unknown(self, known: set[str]) -> None:
        """Typos in a source's settings are errors, not silently ignored defaults."""
        for name in self.raw:
            if name not in known:
                raise ConfigError(
                    self.key(name), f"unknown option (known: {', '.join(sorted(known))})"
                )
