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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rasteret.fetch import RangeReader, default_reader, merge_ranges
from rasteret.geo.window import Window
from rasteret.store.layout import ArrayLayout, GroupLayout, build_layout

if TYPE_CHECKING:
    from rasteret.index import CollectionTable

#: A pixel window as rasterio's ranges: ``((row0, row1), (col0, col1))``.
PixelRanges = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class ObjectPlan:
    """The requests one object gets: merged ``(start, end)`` byte ranges (end exclusive)."""

    href: str
    ranges: tuple[tuple[int, int], ...]
    tiles: int
    tile_bytes: int

    @property
    def requests(self) -> int:
        return len(self.ranges)

    @property
    def bytes(self) -> int:
        return sum(end - start for start, end in self.ranges)


@dataclass(frozen=True)
class ReadPlan:
    """The dry run of a read: per object, the range requests it will cost."""

    objects: tuple[ObjectPlan, ...]
    groups: tuple[str, ...]
    sparse_tiles: int = 0  # tiles in the read that are absent (filled, never fetched)
    window: Window | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def requests(self) -> int:
        """Range requests (after coalescing)."""
        return sum(o.requests for o in self.objects)

    @property
    def bytes(self) -> int:
        """Bytes requested, gaps merged into requests included."""
        return sum(o.bytes for o in self.objects)

    @property
    def tile_bytes(self) -> int:
        """Bytes of the tiles themselves (the lower bound of :attr:`bytes`)."""
        return sum(o.tile_bytes for o in self.objects)

    @property
    def tiles(self) -> int:
        """Tiles fetched (also the request count without any coalescing)."""
        return sum(o.tiles for o in self.objects)

    def __str__(self) -> str:
        where = ""
        if self.window is not None:
            rows, cols = self.window.ranges
            where = f" window rows {rows} cols {cols}"
        lines = [
            f"read plan{where}: {len(self.objects)} object(s), {self.requests} request(s), "
            f"{self.bytes:,} bytes ({self.tile_bytes:,} in {self.tiles} tile(s)); "
            f"{self.sparse_tiles} sparse tile(s) filled; 0 header reads",
        ]
        for plan in self.objects[:10]:
            lines.append(
                f"  {plan.href}: {plan.requests} request(s), {plan.bytes:,} bytes, "
                f"{plan.tiles} tile(s)"
            )
        if len(self.objects) > 10:
            lines.append(f"  ... {len(self.objects) - 10} more object(s)")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


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
    per_object: dict[str, list[tuple[int, int]]] = {}
    sparse = 0
    used_window: Window | None = None
    for g in groups:
        group_bbox = _bbox_in_grid_crs(g, bbox, bbox_crs)
        if bbox is not None and group_bbox is None:
            continue  # the box does not reach this grid's CRS domain
        used_window = _pixel_window(g, window, group_bbox)
        for array in g.arrays.values():
            if array.kind == "mask" and not include_masks:
                continue
            sparse += _collect(array, used_window, per_object)
    objects = []
    for href, ranges in per_object.items():
        merged = merge_ranges(ranges, reader.coalesce_gap(href))
        objects.append(
            ObjectPlan(
                href,
                tuple((start, end) for start, end, _ in merged),
                len(ranges),
                sum(end - start for start, end in ranges),
            )
        )
    notes = ()
    if window is None and bbox is None:
        used_window = None
    return ReadPlan(tuple(objects), tuple(g.name for g in groups), sparse, used_window, notes)


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


def _collect(
    array: ArrayLayout, window: Window, per_object: dict[str, list[tuple[int, int]]]
) -> int:
    """Add the byte ranges of the window's tiles per href; return the sparse tile count."""
    if window.is_empty:
        return 0
    bh, bw = array.block_shape
    i0, i1 = window.row_off // bh, min(array.tiles_down, -(-window.row_stop // bh))
    j0, j1 = window.col_off // bw, min(array.tiles_across, -(-window.col_stop // bw))
    sparse = 0
    for source in array.sources:
        if source is None:
            continue
        ranges = per_object.setdefault(source.href, [])
        for i in range(i0, i1):
            for j in range(j0, j1):
                n = i * array.tiles_across + j
                count = int(source.byte_counts[n])
                if count <= 0:
                    sparse += 1
                    continue
                start = int(source.offsets[n])
                ranges.append((start, start + count))
        if not ranges:
            del per_object[source.href]
    return sparse
