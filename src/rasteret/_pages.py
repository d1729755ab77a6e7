"""Reads allocate small pages: numpy's transparent-huge-page advice is off while one runs.

numpy advises the kernel to back every allocation of 4 MiB or more with 2 MiB transparent
huge pages (``madvise(MADV_HUGEPAGE)``). A read's arrays are written once, front to back;
on hosts that hand free memory back to the hypervisor (virtio-balloon free page
reporting, as on the benchmark VM) or whose free memory is fragmented (the kernel then
compacts memory inside the page fault), a huge-page fault costs far more than the 512
small faults it replaces. Measured on the benchmark VM: a fresh 700 MB array filled in
4.4-5.1 s with huge pages and 0.34 s without; the single-AOI cold start took 2.2-2.8 s
against 1.6-1.7 s. GDAL's own buffers never ask for huge pages.

So while any rasteret read runs in the process, numpy's advice is off: a read decorated
with :func:`small_pages` turns it off when the first read starts and restores
numpy's setting when the last one ends. numpy's switch is process-wide, so arrays other
threads allocate meanwhile get small pages too (a speed difference only, never a
different value). Setting ``NUMPY_MADVISE_HUGEPAGE`` (either value) leaves numpy's choice
alone. Arrays allocated after the read (dask's copy of computed chunks, user code) keep
numpy's default.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_depth = 0
_restore: bool | None = None  # numpy's setting before the outermost read, while one runs


def _numpy_switch() -> Callable[[bool], bool] | None:
    """numpy's huge-page switch (returns the previous setting), or None where the user
    chose through ``NUMPY_MADVISE_HUGEPAGE`` or this numpy has none."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return None
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # pragma: no cover - numpy < 2 or a build without the switch
        return None
    return _set_madvise_hugepage  # type: ignore[no-any-return]


_SWITCH = _numpy_switch()


def _enter() -> None:
    global _depth, _restore
    if _SWITCH is None:
        return
    with _lock:
        if _depth == 0:
            _restore = _SWITCH(False)
        _depth += 1


def _exit() -> None:
    global _depth, _restore
    if _SWITCH is None:
        return
    with _lock:
        _depth -= 1
        if _depth == 0 and _restore is not None:
            _SWITCH(_restore)
            _restore = None


def small_pages[F: Callable[..., Any]](function: F) -> F:
    """Decorate a read: numpy allocates without huge-page advice while it runs."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _enter()
        try:
            return function(*args, **kwargs)
        finally:
            _exit()

    return wrapper  # type: ignore[return-value]


def huge_pages_advised() -> bool | None:
    """numpy's current setting (None where it has no switch or the user set it)."""
    if _SWITCH is None:
        return None
    with _lock:
        current = _SWITCH(False)
        _SWITCH(current)
        return current


def _after_fork_in_child() -> None:
    """A fork taken while another thread read: the child runs no read, so it gets
    numpy's setting back and a fresh lock."""
    global _lock, _depth, _restore
    _lock = threading.Lock()
    if _depth and _restore is not None and _SWITCH is not None:
        _SWITCH(_restore)
    _depth = 0
    _restore = None


os.register_at_fork(after_in_child=_after_fork_in_child)
