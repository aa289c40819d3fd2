"""User-facing errors. The CLI prints these as one clear message (no traceback) and exits 2."""

from __future__ import annotations


class SynthgenError(Exception):
    """An error the user can fix: says what is wrong, where, and how to fix it."""

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what, self.where, self.fix = what, where, fix
        parts = [what if where is None else f"{where}: {what}"]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__("\n".join(parts))


class ConfigError(SynthgenError):
    """params.yaml (or a CLI override) holds a value that cannot be used."""


class DataError(SynthgenError):
    """An input data set, shard or image cannot be read or does not follow the row contract."""


class ModelUnavailableError(SynthgenError):
    """Model weights are missing locally and cannot be fetched (offline, or not found)."""
