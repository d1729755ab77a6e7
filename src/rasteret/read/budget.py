"""A byte budget for reads: refuse, before fetching, a read that would cost too much.

The budget is ``$RASTERET_MAX_READ_BYTES`` (``"500MB"``, ``"2GiB"``, ``"1e9"``), or what
:func:`set_read_budget` / the :func:`read_budget` context manager set; none by default.
A read surface computes its plan with :func:`rasteret.read.explain.explain` (index only,
no network) and calls :func:`check_read_budget` on it; a plan over the budget raises
:class:`ReadBudgetExceeded`, whose message is the plan itself (objects, requests, bytes),
so ``explain()`` shows the same numbers first.

    with read_budget("200MB"):
        plan = explain_within_budget(collection, ["B04"], bbox=aoi)  # raises if too big
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rasteret.errors import RasteretError

if TYPE_CHECKING:
    from rasteret.index import CollectionTable
    from rasteret.read.explain import ReadPlan

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

    def __init__(self, plan: ReadPlan, budget: int) -> None:
        self.plan = plan
        self.budget = budget
        super().__init__(
            f"read refused: it would fetch {plan.bytes:,} bytes, over the read budget of "
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


def check_read_budget(plan: ReadPlan, budget: int | float | str | None = None) -> ReadPlan:
    """Return ``plan`` if it fits ``budget`` (default: :func:`current_budget`), else raise."""
    limit = current_budget() if budget is None else parse_bytes(budget)
    if limit is not None and plan.bytes > limit:
        raise ReadBudgetExceeded(plan, limit)
    return plan


def explain_within_budget(
    collection: CollectionTable, *args: Any, budget: int | float | str | None = None, **kwargs: Any
) -> ReadPlan:
    """:func:`~rasteret.read.explain.explain` followed by :func:`check_read_budget`."""
    from rasteret.read.explain import explain

    return check_read_budget(explain(collection, *args, **kwargs), budget)


def enforce_read_budget(
    collection: CollectionTable,
    bands: Any,
    bbox: tuple[float, float, float, float],
    bbox_crs: Any,
) -> None:
    """Refuse, before anything is fetched, a read of ``bbox`` over the budget (if one is
    set). The plan is an upper bound: full resolution, every record, every band."""
    if current_budget() is None:
        return
    from rasteret.read.explain import explain

    check_read_budget(explain(collection, bands, bbox=bbox, bbox_crs=bbox_crs))
