"""AOI reads on each record's own grid (no ``grid=`` / ``target_crs=`` / ``groupby``).

One window per (record, geometry), as ``rasterio.mask.mask(src, [geometry],
crop=True)``: the window is rasterio's ``geometry_window`` cut to the raster, pixels
outside the geometry (GDAL's rasterisation rule, ``all_touched`` as rasterio) or
invalid (nodata, internal mask) hold the band's fill. All bands of a record must share
its grid.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from rasteret.geo.grid import GridSpec
from rasteret.geo.window import Window
from rasteret.index import CollectionTable
from rasteret.index.columns import datetimes, record_ids
from rasteret.read.fills import band_fills
from rasteret.read.geometry import Geometries
from rasteret.read.geometry_windows import geometry_mask, geometry_windows, window_grid
from rasteret.read.members import (
    MemberRead,
    clip_to_inside,
    common_dtype,
    read_members,
    source_grid,
)
from rasteret.read.radiometry import implied_invalid
from rasteret.read.result import AOIWindow, ImpliedMask
from rasteret.read.stacks import BandSource, StoreIndex


def read_native(
    collection: CollectionTable,
    index: StoreIndex,
    rows: np.ndarray,
    geoms: Geometries,
    bands: Sequence[str],
    all_touched: bool,
    fill_value: float | None,
    *,
    contiguous: bool = False,
) -> list[AOIWindow]:
    """One window per (record, geometry) on the record's own grid (rasterio semantics).
    ``contiguous``: windows of one shape are views of one array, in order (for a caller
    that stacks them: :func:`~rasteret.read.members.read_members`)."""
    ids = record_ids(collection.table)
    times = datetimes(collection.table["datetime"])
    fills = band_fills(index, bands, rows, fill_value)
    pending: list[tuple[int, int, GridSpec, MemberRead]] = []
    cache: dict[tuple[Any, ...], list[Window | None]] = {}
    for row in rows:
        sources = tuple(index.source(b, int(row)) for b in bands)
        ref = _reference_source(sources, bands, ids[row])
        if ref is None:
            continue
        key = (ref.crs_key, ref.transform, ref.height, ref.width)
        windows = cache.get(key)
        if windows is None:
            local = geoms.in_crs(index.crs(ref))
            windows = cache[key] = geometry_windows(local, ref.transform, (ref.height, ref.width))
        grid = source_grid(ref)
        for gid, window in enumerate(windows):
            if window is not None:
                pending.append(
                    (int(row), gid, window_grid(grid, window), MemberRead(sources, window))
                )
    masks: dict[tuple[Any, ...], np.ndarray] = {}
    lock = threading.Lock()

    def inside_of(wgrid: GridSpec, gid: int) -> np.ndarray:
        """The geometry's pixels in ``wgrid`` (rasterised once per window grid)."""
        key = (wgrid, gid)
        with lock:
            found = masks.get(key)
        if found is None:
            local = geoms.in_crs(wgrid.crs)[gid]
            found = geometry_mask(local, wgrid, all_touched=all_touched)
            with lock:
                found = masks.setdefault(key, found)
        return found

    def clip_to_geometry(k: int, data: np.ndarray, valid: np.ndarray | None) -> None:
        _, gid, wgrid, _ = pending[k]
        clip_to_inside(data, valid, inside_of(wgrid, gid), fills)

    reads = [p[3] for p in pending]
    implied = implied_mask(reads, fills)
    # each window is clipped on the decode pool as soon as it is read
    results = read_members(
        index,
        reads,
        fills,
        finish=clip_to_geometry,
        contiguous=contiguous,
        validity=implied is None,
    )
    out = []
    for (row, gid, wgrid, _), (data, valid) in zip(pending, results, strict=True):
        validity = implied if valid is None else valid
        assert validity is not None
        out.append(
            AOIWindow(
                ids[row], times[row], int(geoms.ids[gid]), wgrid, tuple(bands), data, validity
            )
        )
    return out


def implied_mask(reads: Sequence[MemberRead], fills: Sequence[Any]) -> ImpliedMask | None:
    """The :class:`ImpliedMask` of ``reads`` when every source of a band has no internal
    mask and its invalid pixels hold one value of the read's dtype once filled (its
    nodata is the band's fill); ``None`` otherwise (validity kept as arrays)."""
    if not reads:
        return None
    values: list[set[Any]] = [set() for _ in fills]
    for read in reads:
        dtype = common_dtype(read.sources)
        for c, src in enumerate(read.sources):
            if src is None:
                continue  # the band reads as fill
            if src.mask_array is not None:
                return None
            value = implied_invalid(src.dtype, src.nodata, fills[c], dtype)
            if value is None:
                return None
            values[c].add(math.nan if value != value else value)  # one NaN object: one entry
    if any(len(found) != 1 for found in values):
        return None  # a band no record has, or records that disagree
    return ImpliedMask(tuple(found.pop() for found in values))


def _reference_source(
    sources: Sequence[BandSource | None], bands: Sequence[str], record_id: str
) -> BandSource | None:
    present = [s for s in sources if s is not None]
    if not present:
        return None
    ref = present[0]
    for src in present[1:]:
        if (src.crs_key, src.transform, src.height, src.width) != (
            ref.crs_key,
            ref.transform,
            ref.height,
            ref.width,
        ):
            raise ValueError(
                f"record {record_id!r}: bands {ref.band!r} ({ref.width}x{ref.height} px) and "
                f"{src.band!r} ({src.width}x{src.height} px) are on different grids; read them "
                "in separate calls or pass resolution= / grid= to put them on one grid"
            )
    return ref
