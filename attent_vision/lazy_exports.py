"""Package attributes imported on first use (PEP 562).

The command line answers ``--help``, ``--cfg job`` and every config error before torch is imported (it takes
longer to import than everything else those paths do together). A package whose public names live in torch-heavy
submodules lists them here instead of importing them, so that importing one light module of the package (a
settings dataclass, a registry's names and traits) does not pull in its heavy siblings.
"""

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps each public name to the submodule that defines
    it (relative, e.g. ``".factory"``); the submodule is imported when the name is first used."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
