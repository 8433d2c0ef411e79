"""Named extension points: score functions, selection strategies, pretraining datasets, downstream datasets and
downstream task kinds each keep one :class:`Registry`.

An entry registers itself in its own module, with a decorator on its class (``@STRATEGIES.register()``, the name
taken from the class's ``name``) or one call for any other object (``DATASETS.add("name", entry)``), and carries
whatever the rest of the code asks of it as attributes (a description, whether it needs a reference model, ...).
So adding a built-in is one new file in the registry's package (every module there is imported on first lookup)
and adding one from outside the package is one module that registers on import (``extensions=[my.module]`` on the
command line imports it before the config is checked). Nothing outside a registry compares against entry names:
code asks the entry.

Lookups by an unknown name raise :class:`ConfigError` with one line that names the config key, the value and every
registered name. Registries import nothing heavy themselves: the command line's config checks read names and traits
without importing torch (the entries' modules import torch inside the functions that compute).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class UnknownName(ConfigError, ValueError):
    """A config value that names no registered entry (a ValueError too, for the library API's callers)."""


class RegistrationError(ConfigError, ValueError):
    """An entry that cannot be registered: no name, or a name another entry holds."""


class Registry(Generic[T]):
    """Entries by name for one extension point.

    kind: what an entry is, for messages ("score function"); config_key: the key whose value names an entry
    ("teaching.score"), for messages; package: the built-ins' package, whose modules are all imported before the
    first lookup (None: the built-ins register where the registry is defined)."""

    def __init__(self, kind: str, config_key: str, package: str | None = None):
        self.kind, self.config_key, self.package = kind, config_key, package
        self._entries: dict[str, T] = {}
        self._discovered = package is None
        self._discovering = False

    # ---------------------------------------------------------------------------------------- registering
    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a second entry under a taken name is refused (two extensions would
        otherwise silently replace each other, depending on import order)."""
        if not name or not isinstance(name, str):
            raise RegistrationError(f"a {self.kind} needs a non-empty name, got {name!r} (from {_origin(entry)})")
        # The built-ins first, so that an extension taking a built-in's name fails here, at its own import
        self._discover()
        if name in self._entries and self._entries[name] is not entry:
            raise RegistrationError(f"{self.kind} '{name}' of {_origin(entry)} is already registered (by "
                                    f"{_origin(self._entries[name])}); give yours another name")
        self._entries[name] = entry
        return entry

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Class decorator: register the class under ``name``, or under its ``name`` attribute."""

        def decorate(entry: T) -> T:
            return self.add(name or getattr(entry, "name", ""), entry)

        return decorate

    # ---------------------------------------------------------------------------------------------- lookup
    def _discover(self) -> None:
        """Import every module of the built-ins' package once (each registers what it defines)."""
        if self._discovered or self._discovering:  # the built-ins' own registrations arrive while it imports them
            return
        self._discovering = True
        try:
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{self.package}.{module.name}")
            self._discovered = True  # only once every built-in is in: a failed import is retried, not half-kept
        finally:
            self._discovering = False

    def get(self, name: str) -> T:
        """The entry registered as ``name``; ConfigError (one line listing the registered names) if none is."""
        self._discover()
        if name not in self._entries:
            raise UnknownName(f"config key {self.config_key}={name!r}: unknown {self.kind}; choose one of "
                              f"{self.names()} (or register your own: docs/architecture.md, 'Where a new piece goes')")
        return self._entries[name]

    def names(self) -> list[str]:
        self._discover()
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        self._discover()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.get(name)


def _origin(entry: object) -> str:
    return f"{getattr(entry, '__module__', '?')}.{getattr(entry, '__qualname__', type(entry).__name__)}"


def import_extensions(modules: list[str] | tuple[str, ...]) -> None:
    """Import the user's extension modules (config key ``extensions``), which register their entries; a module that
    cannot be imported is one line naming it."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            if e.name is not None and (name == e.name or name.startswith(e.name + ".")):  # the module is not there
                raise ConfigError(f"config key extensions: module '{name}' cannot be imported ({e}); put its folder "
                                  "on PYTHONPATH or install its package") from None
            raise ConfigError(f"config key extensions: module '{name}' failed while importing: {e}; install what "
                              "it needs") from None
        except RegistrationError as e:
            raise ConfigError(f"config key extensions: module '{name}': {e}") from None
