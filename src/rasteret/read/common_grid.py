"""AOI reads onto one target grid (``grid=`` or ``target_crs=`` / ``resolution=``).

For each geometry a window grid of the target is built (rasterio's ``geometry_window``
on ``grid``; or, without ``grid``, the geometry's bounds in ``target_crs`` snapped
outward to multiples of ``resolution``, as ``gdalwarp -tap``). Each (record, band) is
planned exactly as :func:`rasteret.read.window.read_window` plans it (its
:class:`~rasteret.read.grid_tasks.TaskPlanner`): an aligned source is copied; otherwise
the level GDAL would read (full resolution, or the overview
:func:`rasteret.geo.overview.choose_overview` picks when the target is coarser) is read
through the store on the source window that feeds the target and warped with
:func:`rasteret.geo.warp.warp_array` (no GDAL). Nodata and the internal mask never bleed
into valid pixels. All windows of one geometry share one shape, so records in different
UTM zones stack into one aligned cube. ``groupby`` fuses records per group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from rasteret._async import run_sync
from rasteret.geo.composite import FLOAT_FUSERS
from rasteret.geo.grid import GridSpec
from rasteret.geo.resampling import check_resampling
from rasteret.geo.transform import crs_key, to_crs
from rasteret.index import CollectionTable
from rasteret.index.columns import datetimes, record_ids
from rasteret.read.fills import band_fills
from rasteret.read.geometry import Geometries
from rasteret.read.geometry_windows import geometry_mask, geometry_windows, window_grid
from rasteret.read.grid_tasks import GridTask, TaskPlanner, overview_sources
from rasteret.read.mosaic import FUSERS, fuse_arrays, group_keys, ordered_groups
from rasteret.read.result import AOIWindow
from rasteret.read.stacks import BandSource, StoreIndex
from rasteret.read.window_io import read_sources


def read_on_grid(
    collection: CollectionTable,
    index: StoreIndex,
    rows: np.ndarray,
    geoms: Geometries,
    bands: Sequence[str],
    *,
    grid: GridSpec | None,
    target_crs: Any,
    resolution: Any,
    resampling: str | None,
    all_touched: bool,
    groupby: Any,
    fuse: str,
    fill_value: float | None,
    overviews: bool = True,
    contiguous: bool = False,
) -> list[AOIWindow]:
    """One :class:`AOIWindow` per (record or group, geometry) on the target grid.

    ``overviews=False`` always reads full resolution (by default a coarser target reads
    the overview GDAL would choose, as :func:`rasteret.read.window.read_window` does).
    ``contiguous``: when each group is one record, the windows are, in order, views of
    one array (for a caller that stacks them: :class:`_Block`).
    """
    if fuse not in FUSERS:
        raise ValueError(f"fuse={fuse!r}: use one of {FUSERS}")
    resampling = check_resampling(resampling or "nearest")
    ids = record_ids(collection.table)
    times = datetimes(collection.table["datetime"])
    fills = band_fills(index, bands, rows, fill_value)
    present = [int(r) for r in rows if any(index.source(b, int(r)) for b in bands)]
    windows = _target_windows(index, present, geoms, bands, grid, target_crs, resolution)
    keys = (
        group_keys(collection, np.asarray(present), groupby)
        if groupby is not None
        else [ids[r] for r in present]
    )
    groups = ordered_groups(keys, np.asarray(present))
    levels = overview_sources(index) if overviews else {}
    # one read per (record, geometry, band) that feeds the target window, from the level
    # (full resolution or overview) read_window would read
    tasks: list[tuple[int, int, GridTask]] = []
    planners: dict[int, TaskPlanner] = {}
    for gid, wgrid in enumerate(windows):
        if wgrid is None:
            continue
        planner = planners[gid] = TaskPlanner(levels, wgrid, crs_key(wgrid.crs), overviews)
        for row in present:
            for c, band in enumerate(bands):
                src = index.source(band, row)
                if src is None:
                    continue
                plan = planner.plan(src, resampling)
                if plan is not None:
                    tasks.append((gid, row, GridTask(0, c, *plan, resampling)))
    results = run_sync(read_sources(index, [(t.source, t.window) for _, _, t in tasks]))
    warped: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    single = contiguous and fuse not in FLOAT_FUSERS  # one member fused: itself
    block = _Block.plan(index, bands, windows, groups, fills) if single else None
    for (gid, row, task), (data, valid) in zip(tasks, results, strict=True):
        wgrid = windows[gid]
        assert wgrid is not None
        slot = warped.get((gid, row))
        if slot is None and block is not None:
            slot = warped[(gid, row)] = block.slot(gid, row)
        if slot is None:
            dtype = np.result_type(*[s.dtype for s in _sources(index, bands, row)])
            shape = (len(bands), *wgrid.shape)
            slot = warped[(gid, row)] = (np.zeros(shape, dtype), np.zeros(shape, bool))
        if task.paste is None:
            data_c, ok_c = planners[gid].warp(task, data[0], valid[0], slot[0].dtype)
            slot[0][task.band] = data_c
            slot[1][task.band] = ok_c
        else:  # aligned: a copy of the source pixels
            r, c = task.paste
            h, w = data.shape[-2:]
            slot[0][task.band, r : r + h, c : c + w] = np.where(valid[0], data[0], 0)
            slot[1][task.band, r : r + h, c : c + w] = valid[0]
    out: list[AOIWindow] = []
    local_geoms: dict[str, np.ndarray] = {}
    for key, members in groups:
        for gid, wgrid in enumerate(windows):
            if wgrid is None:
                continue
            have = [m for m in members if (gid, m) in warped]
            if not have:
                continue
            ckey = crs_key(wgrid.crs)
            if ckey not in local_geoms:
                local_geoms[ckey] = geoms.to_crs(wgrid.crs)
            inside = geometry_mask(local_geoms[ckey][gid], wgrid, all_touched=all_touched)
            if block is not None:  # one record: its slot of the block, finished in place
                data, valid = block.finish(warped[(gid, have[0])], inside)
            else:
                if len(have) == 1:  # views, no copies
                    stack = warped[(gid, have[0])][0][None]
                    ok = (warped[(gid, have[0])][1] & inside)[None]
                else:
                    stack = np.stack([warped[(gid, m)][0] for m in have])
                    ok = np.stack([warped[(gid, m)][1] for m in have]) & inside
                data, valid = fuse_arrays(stack, ok, fuse, fills)
            out.append(
                AOIWindow(
                    ids[have[0]] if groupby is None else None,
                    times[have[0]],
                    int(geoms.ids[gid]),
                    wgrid,
                    tuple(bands),
                    data,
                    valid,
                    group=None if groupby is None else key,
                    record_ids=tuple(ids[m] for m in have),
                )
            )
    return out


class _Block:
    """One ``(windows, C, h, w)`` array (and validity) that every (record, geometry) slot
    is a view of, in output order — so the windows a caller stacks are that array
    (:func:`rasteret.read.result.stack_views`) — when each group is one record, the
    geometries' windows share a shape, the records a dtype, and the fills are values of
    it. A slot is finished in place: the geometry's outside invalid, fills where
    invalid (what :func:`fuse_arrays` does for one member, without its copy)."""

    def __init__(
        self, data: np.ndarray, valid: np.ndarray, at: dict[tuple[int, int], int], fill: np.ndarray
    ) -> None:
        self.data, self.valid, self.at, self.fill = data, valid, at, fill

    @classmethod
    def plan(
        cls,
        index: StoreIndex,
        bands: Sequence[str],
        windows: Sequence[GridSpec | None],
        groups: Sequence[tuple[str, list[int]]],
        fills: Sequence[Any],
    ) -> _Block | None:
        shapes = {w.shape for w in windows if w is not None}
        if len(shapes) != 1 or any(len(members) != 1 for _, members in groups):
            return None
        rows = [members[0] for _, members in groups]
        present = (_sources(index, bands, row) for row in rows)
        dtypes = {np.result_type(*[s.dtype for s in found]) for found in present if found}
        if len(dtypes) != 1:
            return None
        dtype = dtypes.pop()
        try:
            fill = np.array(fills, dtype=dtype)
        except (ValueError, OverflowError):
            return None
        if not np.array_equal(
            fill.astype(np.float64), np.asarray(fills, np.float64), equal_nan=True
        ):
            return None  # a fill that is no value of the dtype: fuse_arrays' float path
        gids = [g for g, w in enumerate(windows) if w is not None]
        at = {(g, row): k * len(gids) + j for k, row in enumerate(rows) for j, g in enumerate(gids)}
        shape = (len(at), len(bands), *shapes.pop())
        return cls(np.zeros(shape, dtype), np.zeros(shape, bool), at, fill)

    def slot(self, gid: int, row: int) -> tuple[np.ndarray, np.ndarray]:
        k = self.at[(gid, row)]
        return self.data[k], self.valid[k]

    def finish(
        self, slot: tuple[np.ndarray, np.ndarray], inside: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        data, valid = slot
        valid &= inside
        if not valid.all():
            for c in range(data.shape[0]):
                np.copyto(data[c], self.fill[c], where=~valid[c])
        return data, valid


def _sources(index: StoreIndex, bands: Sequence[str], row: int) -> list[BandSource]:
    return [s for s in (index.source(b, row) for b in bands) if s is not None]


def _target_windows(
    index: StoreIndex,
    rows: Sequence[int],
    geoms: Geometries,
    bands: Sequence[str],
    grid: GridSpec | None,
    target_crs: Any,
    resolution: Any,
) -> list[GridSpec | None]:
    if grid is not None:
        if target_crs is not None or resolution is not None:
            raise ValueError("pass either grid= or target_crs= / resolution=, not both")
        local = geoms.to_crs(grid.crs)
        found = geometry_windows(local, grid.transform, grid.shape)
        return [None if w is None else window_grid(grid, w) for w in found]
    sources = [s for r in rows for s in _sources(index, bands, r)]
    if target_crs is None:
        counts = Counter(s.crs_key for s in sources)
        if not counts:
            return [None] * len(geoms)
        target_crs = counts.most_common(1)[0][0]
    crs = to_crs(target_crs, what="target_crs")
    if resolution is None:
        same = [s for s in sources if crs_key(index.crs(s)) == crs_key(crs)]
        if not same:
            raise ValueError(
                f"no record is in {crs_key(crs)[:40]}: pass resolution= (in its units)"
            )
        resolution = min(abs(s.transform[0]) for s in same)
    local = geoms.to_crs(crs)
    out: list[GridSpec | None] = []
    for geometry in local:
        out.append(GridSpec.from_bbox(geometry.bounds, crs, resolution))
    return out
