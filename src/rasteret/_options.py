"""Defaults of the read and build surfaces: ``set_options`` / ``get_options`` / ``options``
(the original system's names).

One option, ``progress``: what ``progress=None`` (the default of every read and build)
means. ``None`` (initially): a line on stderr, on a terminal only, for header indexing
and for reads of many windows; ``True``: a line on a terminal for every read and build;
``False``: never. An explicit ``progress=`` argument always wins. :func:`set_options`
changes the process's default; :func:`options` changes it inside a ``with`` block for
the calling thread's context (threads and tasks started inside inherit it).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

_UNSET: Any = object()
_process: dict[str, Any] = {"progress": None}
_scoped: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "rasteret_options", default=None
)


def get_options() -> dict[str, Any]:
    """The options in force here: ``{"progress": None | True | False}``."""
    scoped = _scoped.get()
    return dict(_process if scoped is None else scoped)


def _checked(progress: Any) -> bool | None:
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None, not {type(progress).__name__}")
    return progress


def set_options(*, progress: Any = _UNSET) -> None:
    """Set the process's defaults (an argument left out keeps its value; ``progress=None``
    restores the built-in default)."""
    if progress is not _UNSET:
        _process["progress"] = _checked(progress)


@contextlib.contextmanager
def options(*, progress: Any = _UNSET) -> Iterator[None]:
    """The options inside a ``with`` block (this context only), restored afterwards."""
    current = get_options()
    if progress is not _UNSET:
        current["progress"] = _checked(progress)
    token = _scoped.set(current)
    try:
        yield
    finally:
        _scoped.reset(token)


def default_progress() -> bool | None:
    """What ``progress=None`` means here (see the module docs)."""
    return get_options()["progress"]


__all__ = ["get_options", "options", "set_options"]
