"""A byte budget for reads: refuse, before fetching, a read that would cost too much.

The budget is ``$RASTERET_MAX_READ_BYTES`` (``"500MB"``, ``"2GiB"``, ``"1e9"``), or what
:func:`set_read_budget` / the :func:`read_budget` context manager set; none by default.
A read surface computes its plan with :func:`rasteret.read.explain.explain` (index only,
no network) and calls :func:`check_read_budget` on it; a plan over the budget raises
:class:`ReadBudgetExceeded`, whose message is the plan itself (objects, requests, bytes),
so ``explain()`` shows the same numbers first. Batches of window reads (``sample_points``,
TorchGeo samples) are checked against the exact plan of their tiles, and the xarray
engine against its whole dataset when it is opened (:mod:`rasteret.store.budget`, where
these names live, so the engine can check too).

    with read_budget("200MB"):
        plan = explain_within_budget(collection, ["B04"], bbox=aoi)  # raises if too big
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rasteret.store.budget import (
    ENV_VAR,
    ReadBudgetExceeded,
    check_read_budget,
    check_windows_budget,
    current_budget,
    parse_bytes,
    read_budget,
    set_read_budget,
)

if TYPE_CHECKING:
    from rasteret.index import CollectionTable
    from rasteret.read.explain import ReadPlan

__all__ = [
    "ENV_VAR",
    "ReadBudgetExceeded",
    "check_read_budget",
    "check_windows_budget",
    "current_budget",
    "enforce_read_budget",
    "explain_within_budget",
    "parse_bytes",
    "read_budget",
    "set_read_budget",
]


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
