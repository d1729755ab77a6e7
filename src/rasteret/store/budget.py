"""The read byte budget: refuse, before fetching, a read whose plan costs too much.

The budget is ``$RASTERET_MAX_READ_BYTES`` (``"500MB"``, ``"2GiB"``, ``"1e9"``), or what
:func:`set_read_budget` / the :func:`read_budget` context manager set in the calling
thread's context; none by default. Every read surface checks it in the caller's thread,
before its first fetch, against a :class:`~rasteret.store.plan.ReadPlan` (index only, no
network):

* AOI reads (``get_numpy``, ``get_xarray``, ``read_aoi_windows``) and ``read_window``:
  ``explain()`` of their box (an upper bound: full resolution, every record);
* every batch of window reads (``sample_points``, each TorchGeo sample, ``read_window``):
  exactly its tiles (:func:`check_windows_budget`);
* the xarray engine: everything the opened dataset would read, when it is opened
  (:func:`check_arrays_budget`) — its reads run later, in dask tasks, where the caller's
  context (and so a ``read_budget`` block) is not in force.

A plan over the budget raises :class:`ReadBudgetExceeded`, whose message is the plan
itself (objects, requests, bytes). :mod:`rasteret.read.budget` re-exports these names.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from rasteret.errors import RasteretError

if TYPE_CHECKING:
    from rasteret.fetch import RangeReader
    from rasteret.geo.window import Window
    from rasteret.store.layout import ArrayLayout, StoreLayout
    from rasteret.store.plan import ReadPlan
    from rasteret.store.window_read import ArrayWindow

ENV_VAR = "RASTERET_MAX_READ_BYTES"
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_budget: contextvars.ContextVar[int | str | None] = contextvars.ContextVar(
    "rasteret_read_budget", default="env"
)


class ReadBudgetExceeded(RasteretError):
    """A read would fetch more bytes than the configured budget allows."""

    def __init__(self, plan: ReadPlan, budget: int, what: str = "read") -> None:
        self.plan = plan
        self.budget = budget
        super().__init__(
            f"{what} refused: it would fetch {plan.bytes:,} bytes, over the read budget of "
            f"{budget:,} bytes ({ENV_VAR} / rasteret.read.budget.set_read_budget). Narrow the "
            f"read (bands, bbox / window, records, an overview level) or raise the budget.\n"
            f"{plan}"
        )


def parse_bytes(value: int | float | str) -> int:
    """``1000``, ``"1e9"``, ``"500MB"``, ``"2 GiB"`` → bytes (non-negative int)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        if match is None or match.group(2).lower() not in _UNITS:
            raise ValueError(f"not a byte size: {value!r} (e.g. 1000000, '500MB', '2GiB')")
        number, unit = float(match.group(1)), match.group(2).lower()
    result = number * _UNITS[unit]
    if not result >= 0 or result == float("inf"):
        raise ValueError(f"not a byte size: {value!r}")
    return int(result)


def current_budget() -> int | None:
    """The budget in force (bytes), or ``None`` for no limit."""
    value = _budget.get()
    if value != "env":
        return value  # type: ignore[return-value]
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    try:
        return parse_bytes(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_VAR}={raw!r}: {exc}") from None


def set_read_budget(limit: int | float | str | None) -> None:
    """Set the budget for this context (``None``: no limit; overrides the environment)."""
    _budget.set(None if limit is None else parse_bytes(limit))


@contextlib.contextmanager
def read_budget(limit: int | float | str | None) -> Iterator[None]:
    """Apply a budget inside a ``with`` block (``None``: no limit)."""
    token = _budget.set(None if limit is None else parse_bytes(limit))
    try:
        yield
    finally:
        _budget.reset(token)


def check_read_budget(
    plan: ReadPlan, budget: int | float | str | None = None, what: str = "read"
) -> ReadPlan:
    """Return ``plan`` if it fits ``budget`` (default: :func:`current_budget`), else raise
    :class:`ReadBudgetExceeded` (``what`` names the refused operation)."""
    limit = current_budget() if budget is None else parse_bytes(budget)
    if limit is not None and plan.bytes > limit:
        raise ReadBudgetExceeded(plan, limit, what)
    return plan


def check_windows_budget(
    layout: StoreLayout, reader: RangeReader, requests: Iterable[ArrayWindow]
) -> None:
    """Refuse a batch of window reads over the budget (if one is set), before anything
    is fetched: the plan is exactly the batch's tiles
    (:func:`~rasteret.store.plan.plan_windows`)."""
    if current_budget() is None:
        return
    from rasteret.store.plan import plan_windows

    check_read_budget(plan_windows(layout, reader, requests))


def check_arrays_budget(
    reader: RangeReader,
    reads: Iterable[tuple[str, ArrayLayout, Window | None]],
    *,
    what: str = "read",
    notes: tuple[str, ...] = (),
) -> None:
    """Refuse (if a budget is set) reading every record's tiles of each ``(group, array,
    window)`` (:func:`~rasteret.store.plan.plan_arrays`): what a lazy surface checks
    when it is opened, since its reads run later (dask tasks) outside the caller's
    context."""
    if current_budget() is None:
        return
    from rasteret.store.plan import plan_arrays

    check_read_budget(plan_arrays(reader, reads, notes=notes), what=what)
