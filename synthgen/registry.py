"""One registry per kind of backend (generators, labellers, filters, metrics, ...), found by name.

Backends register a factory with a decorator; config names the backend and the factory gets the
backend's config section. Modelled on timm's ``create_model``/``list_models``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from synthgen.errors import ConfigError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[T]):
    """Name -> factory. ``lazy`` maps names to modules imported on first use, so that heavy
    backends (torch, diffusers) cost nothing until chosen."""

    def __init__(self, kind: str, lazy: dict[str, str] | None = None, sections: dict[str, str] | None = None,
                 versions: dict[str, str] | None = None) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._lazy = dict(lazy or {})
        # name -> "module:Class" of the backend's own params.yaml section (light: pydantic only), so
        # params validate a backend's section without importing the backend itself.
        self._sections = dict(sections or {})
        # name -> "module:CONSTANT", the backend's code version (bumped whenever its output for the
        # same input changes), so work products can be keyed by it without building the backend.
        self._versions = dict(versions or {})

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: register a factory (a class or a function) under ``name``. What it builds is
        checked against the protocol by the registry contract tests, for every registered name."""

        def deco(factory: F) -> F:
            if name in self._factories and self._factories[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._factories[name] = factory
            return factory

        return deco

    def names(self) -> list[str]:
        return sorted(set(self._factories) | set(self._lazy))

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._factories and name in self._lazy:
            importlib.import_module(self._lazy[name])
        if name not in self._factories:
            raise ConfigError(
                f"unknown {self.kind} {name!r}",
                fix=f"choose one of: {', '.join(self.names()) or '(none registered)'}",
            )
        return self._factories[name]

    def section(self, name: str) -> type[Any] | None:
        """The config class a backend declared for its params.yaml section, or None."""
        ref = self._sections.get(name)
        if ref is None:
            return None
        section: type[Any] = _resolve(ref)
        return section

    def code_version(self, name: str) -> str:
        """The code version a backend declared in its registry line (what keys its work products)."""
        ref = self._versions.get(name)
        if ref is None:
            raise ConfigError(f"{self.kind} {name!r} declares no code version",
                              fix=f"name its version constant in the `versions` line of the {self.kind} registry")
        version = _resolve(ref)
        if not isinstance(version, str) or not version:
            raise TypeError(f"{self.kind} {name!r}: {ref} must be a non-empty string")
        return version

    def sections(self) -> list[str]:
        return sorted(self._sections)

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)


def _resolve(ref: str) -> Any:
    """The attribute a ``"module:NAME"`` reference names (its module imported on first use)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
