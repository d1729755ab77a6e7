"""Lazy package exports: a package's public names imported on first access.

``__getattr__, __dir__ = lazy_exports(__name__, {"name": "module.path"}, __all__)`` in a
package ``__init__`` keeps ``import package`` cheap: each name's module is imported when
the name is first used, then cached in the package's namespace.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, names: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` exporting ``names`` (name → module)."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__


def keep_exports_over_submodules(package: str, names: Sequence[str]) -> None:
    """Keep the lazily exported ``names`` of ``package`` that are also the names of its
    submodules (``rasteret.geo.warp`` the function, ``rasteret.geo.warp`` the module):
    importing such a submodule binds it on the package, which would hide the export. The
    package's module class drops that binding, so the name keeps resolving to the export
    (``from package.name import x`` and ``sys.modules`` still give the submodule)."""
    module = sys.modules[package]
    protected = frozenset(names)

    class _Package(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if (
                name in protected
                and isinstance(value, types.ModuleType)
                and value.__name__ == f"{package}.{name}"
            ):
                return  # the submodule being bound: the export stays
            super().__setattr__(name, value)

    module.__class__ = _Package
