"""``explain``: what a read will fetch — objects, range requests, bytes, tiles — before
fetching anything (no network; only the collection's tile tables).

    plan = explain(collection, bands=["B04"], bbox=(500000, 4190000, 510000, 4200000))
    plan.requests, plan.bytes, plan.tiles
    print(plan)

Requests are counted as the fetch layer makes them: every tile of one object in the read
is merged with its neighbours when they are at most the coalescing gap apart
(:meth:`RangeReader.coalesce_gap`: ``FetchConfig.coalesce_gap`` for remote objects,
``local_coalesce_gap`` for files). That is exact when the tiles of an object are
requested together (one dask chunk / one ``.values``); reads split into many dask chunks
can only make more, smaller requests. No header is ever read (the index has them).
:class:`ReadPlan` / :class:`ObjectPlan` live in :mod:`rasteret.store.plan` (the xarray
engine and the read budget plan with them too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rasteret.fetch import RangeReader, default_reader
from rasteret.geo.window import Window
from rasteret.store.layout import ArrayLayout, GroupLayout, build_layout
from rasteret.store.plan import ObjectPlan, ReadPlan, plan_arrays

if TYPE_CHECKING:
    from rasteret.index import CollectionTable

#: A pixel window as rasterio's ranges: ``((row0, row1), (col0, col1))``.
PixelRanges = tuple[tuple[int, int], tuple[int, int]]

__all__ = ["ObjectPlan", "PixelRanges", "ReadPlan", "explain"]


def explain(
    collection: CollectionTable,
    bands: str | Sequence[str] | None = None,
    *,
    window: Window | PixelRanges | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    bbox_crs: Any = None,
    group: str | None = None,
    overview_level: int | None = None,
    include_masks: bool = False,
    reader: RangeReader | None = None,
) -> ReadPlan:
    """The requests a read of ``collection`` would make, computed from the index only.

    Without ``window`` / ``bbox`` the read is every tile of ``bands`` (default: all) in the
    selected groups (default: every full-resolution grid, or overview ``overview_level``).
    ``window`` is a pixel window (a :class:`rasteret.geo.Window`, or rasterio's ranges
    ``((row0, row1), (col0, col1))``) and ``bbox=(minx, miny, maxx, maxy)`` a box in the
    grid's CRS — or in ``bbox_crs``, transformed (densified) into each group's CRS — both
    applied to every selected group (use ``group=`` to pick one grid when the collection
    has several). ``ReadPlan.window`` is the :class:`~rasteret.geo.Window` read.
    """
    selected = (bands,) if isinstance(bands, str) else (None if bands is None else tuple(bands))
    layout = build_layout(collection.table, selected)
    reader = reader or default_reader()
    groups = _groups(layout.groups, group, overview_level)
    reads: list[tuple[str, ArrayLayout, Window]] = []
    used_window: Window | None = None
    for g in groups:
        group_bbox = _bbox_in_grid_crs(g, bbox, bbox_crs)
        if bbox is not None and group_bbox is None:
            continue  # the box does not reach this grid's CRS domain
        used_window = _pixel_window(g, window, group_bbox)
        reads += [
            (g.name, array, used_window)
            for array in g.arrays.values()
            if include_masks or array.kind != "mask"
        ]
    if window is None and bbox is None:
        used_window = None
    plan = plan_arrays(reader, reads, window=used_window)
    return replace(plan, groups=tuple(g.name for g in groups))


def _bbox_in_grid_crs(
    g: GroupLayout, bbox: tuple[float, float, float, float] | None, bbox_crs: Any
) -> tuple[float, float, float, float] | None:
    if bbox is None or bbox_crs is None:
        return bbox
    grid_crs = g.grid.crs_wkt or (f"EPSG:{g.grid.epsg}" if g.grid.epsg else None)
    if grid_crs is None:
        raise ValueError(f"group {g.name} has no CRS: bbox_crs= cannot be applied")
    from rasteret.geo import CRSError, transform_bounds

    try:
        return tuple(transform_bounds(bbox, bbox_crs, grid_crs))  # type: ignore[return-value]
    except CRSError:
        return None


def _groups(
    groups: dict[str, GroupLayout], name: str | None, overview_level: int | None
) -> list[GroupLayout]:
    if name is not None:
        if name not in groups:
            raise KeyError(f"no group {name!r}; groups: {list(groups)}")
        return [groups[name]]
    chosen = [g for g in groups.values() if g.overview == overview_level]
    if not chosen:
        raise ValueError(f"no group at overview_level={overview_level}; groups: {list(groups)}")
    return chosen


def _pixel_window(
    g: GroupLayout,
    window: Window | PixelRanges | None,
    bbox: tuple[float, float, float, float] | None,
) -> Window:
    """The window of the read in group ``g``'s pixels, cut to the grid."""
    full = Window(0, 0, g.grid.height, g.grid.width)
    if window is not None and bbox is not None:
        raise ValueError("pass window= or bbox=, not both")
    if bbox is not None:
        if g.grid.transform is None:
            raise ValueError(f"group {g.name} has no geotransform: use window= (pixels)")
        window = _bbox_window(g.grid.transform, bbox)
    if window is None:
        return full
    if not isinstance(window, Window):
        window = Window.from_ranges(*window)
    return window.intersection(full)


def _bbox_window(transform: Any, bbox: tuple[float, float, float, float]) -> Window:
    """The pixels ``bbox`` touches (floor / ceil of its corners in pixel space)."""
    a, b, c, d, e, f = transform
    det = a * e - b * d
    if det == 0:
        raise ValueError("the grid's geotransform is singular")
    minx, miny, maxx, maxy = bbox
    cols, rows = [], []
    for x, y in ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy)):
        col = (e * (x - c) - b * (y - f)) / det
        row = (-d * (x - c) + a * (y - f)) / det
        cols.append(col)
        rows.append(row)
    return Window.from_ranges(
        (math.floor(min(rows)), math.ceil(max(rows))),
        (math.floor(min(cols)), math.ceil(max(cols))),
    )
