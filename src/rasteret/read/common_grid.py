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

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
from rasteret.read.grid_tasks import (
    GridTask,
    Output,
    TaskPlanner,
    copy_target,
    implied_validity,
    overview_sources,
    write_task,
)
from rasteret.read.mosaic import FUSERS, fuse_arrays, group_keys, ordered_groups
from rasteret.read.radiometry import valid_mask
from rasteret.read.result import AOIWindow, ImpliedMask, Validity
from rasteret.read.stacks import BandSource, StoreIndex, read_windows_async
from rasteret.read.window_io import source_requests


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
    single = contiguous and fuse not in FLOAT_FUSERS  # one member fused: itself
    block = _Block.plan(index, bands, windows, groups, fills) if single else None
    # a block whose pixels imply their validity keeps none (its planes stay untouched)
    implied = block.implied(tasks) if block is not None else None
    inside = _inside_masks(geoms, windows, all_touched)  # once per geometry
    warped: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    fed: set[tuple[int, int, int]] = set()
    for gid, row, task in tasks:
        fed.add((gid, row, task.band))
        if (gid, row) in warped:
            continue
        if block is not None:
            warped[(gid, row)] = block.slot(gid, row)
            continue
        dtype = np.result_type(*[s.dtype for s in _sources(index, bands, row)])
        shape = (len(bands), *windows[gid].shape)  # type: ignore[union-attr]
        warped[(gid, row)] = (np.zeros(shape, dtype), np.zeros(shape, bool))
    if block is not None:  # a band no task reads (absent, or outside): fill, invalid
        for gid, row in warped:
            for c in range(len(bands)):
                if (gid, row, c) not in fed:
                    warped[(gid, row)][0][c] = block.fill[c]
    by_grid: dict[int, list[GridTask]] = {}
    for gid, _, task in tasks:
        by_grid.setdefault(gid, []).append(task)
    for gid, planned in by_grid.items():  # warp maps computed while the bytes are in flight
        planners[gid].prepare(planned)
    placed = [
        _Placement(planners[gid], task, *warped[(gid, row)], inside[gid], block, implied)
        for gid, row, task in tasks
    ]
    _read_placed(index, placed)
    out: list[AOIWindow] = []
    for key, members in groups:
        for gid, wgrid in enumerate(windows):
            if wgrid is None:
                continue
            have = [m for m in members if (gid, m) in warped]
            if not have:
                continue
            valid: Validity
            if block is not None:  # one record: its slot of the block, finished in place
                data, valid = warped[(gid, have[0])]
                if implied is not None:
                    valid = implied
            else:  # validity is within the geometry already
                if len(have) == 1:  # views, no copies
                    stack = warped[(gid, have[0])][0][None]
                    ok = warped[(gid, have[0])][1][None]
                else:
                    stack = np.stack([warped[(gid, m)][0] for m in have])
                    ok = np.stack([warped[(gid, m)][1] for m in have])
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


@dataclass(frozen=True, slots=True)
class _Placement:
    """Where one task's pixels go: channel ``task.band`` of its (record, geometry) slot
    (``data`` / ``valid``, ``(C, h, w)``), warped or pasted by its grid's planner."""

    planner: TaskPlanner
    task: GridTask
    data: np.ndarray
    valid: np.ndarray
    inside: np.ndarray  # the geometry's pixels of the window grid
    block: _Block | None
    implied: ImpliedMask | None  # the block's pixels imply validity: ``valid`` is unused

    @property
    def fill(self) -> Any:  # where invalid: the block's fill (else fusing ignores it)
        return 0 if self.block is None else self.block.fill[self.task.band]

    def place(self, values: np.ndarray, mask: np.ndarray | None) -> None:
        """Write the task's source window (``values``, internal ``mask`` or None) into
        the slot's channel and finish it (pool thread)."""
        self._write(values, mask)
        if self.implied is not None:  # invalid pixels hold the fill: the outside gets it
            np.copyto(self.data[self.task.band], self.fill, where=~self.inside, casting="unsafe")
            return
        valid = self.valid[self.task.band]
        np.logical_and(valid, self.inside, out=valid)  # the geometry's outside: invalid
        if self.block is not None and not valid.all():  # a block's slot is final: fills
            np.copyto(self.data[self.task.band], self.fill, where=~valid, casting="unsafe")

    def _write(self, values: np.ndarray, mask: np.ndarray | None) -> None:
        """:func:`~rasteret.read.grid_tasks.write_task` into the slot's channel: a copy
        with its validity (its pixels may already be there, decoded in place), or a
        warp — without an internal mask, a nearest gather applies the nodata rule to the
        pixels it gathers (no validity of the whole source window)."""
        task = self.task
        if self.implied is not None:  # no validity: every pixel of the plane written
            plane = self.data[task.band]
            output = Output(plane, self.valid[task.band], self.fill, unfilled=True, validity=False)
            write_task(self.planner, task, values, None, output)
            return
        ok = None
        if mask is not None or task.paste is not None:
            ok = valid_mask(values, task.source.nodata, mask)
        output = Output(self.data[task.band], self.valid[task.band], self.fill)
        write_task(self.planner, task, values, ok, output)


def _read_placed(index: StoreIndex, placed: Sequence[_Placement]) -> None:
    """Every placement's source window (and internal mask) in one batch through the store
    (tiles shared by several windows fetched and decoded once). A copy decodes straight
    into its slot; each task is placed on the decode thread that completes it, so warps
    overlap the reads still in flight."""
    requests = source_requests([(p.task.source, p.task.window) for p in placed])
    outputs: list[np.ndarray | None] = []
    part_of: list[tuple[int, int]] = []  # request -> (placement, 0 data / 1 mask)
    for k, p in enumerate(placed):
        outputs.append(copy_target(p.task, p.data[p.task.band]))
        part_of.append((k, 0))
        if p.task.source.mask_array is not None:
            outputs.append(None)
            part_of.append((k, 1))
    parts: list[list[np.ndarray | None]] = [[None, None] for _ in placed]
    pending = Counter(k for k, _ in part_of)
    lock = threading.Lock()

    def on_done(i: int, array: np.ndarray) -> None:
        k, part = part_of[i]
        with lock:
            parts[k][part] = array
            pending[k] -= 1
            ready = pending[k] == 0
        if ready:
            values, mask = parts[k]
            assert values is not None
            placed[k].place(values, mask)

    run_sync(read_windows_async(index, requests, outputs, on_done))


class _Block:
    """One ``(windows, C, h, w)`` array (and validity) that every (record, geometry) slot
    is a view of, in output order — so the windows a caller stacks are that array
    (:func:`rasteret.read.result.stack_views`) — when each group is one record, the
    geometries' windows share a shape, the records a dtype, and the fills are values of
    it. Each channel of a slot is finished in place as it is placed
    (:meth:`_Placement.place`): the geometry's outside invalid, fills where invalid (what
    :func:`fuse_arrays` does for one member, without its copy)."""

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

    def implied(self, tasks: Sequence[tuple[int, int, GridTask]]) -> ImpliedMask | None:
        """The validity the block's pixels imply (:func:`implied_validity` of its tasks,
        each in its own slot), so its ``valid`` planes need not be written."""
        slotted = [replace(t, slot=self.at[(gid, row)]) for gid, row, t in tasks]
        return implied_validity(slotted, self.data.dtype, list(self.fill))


def _inside_masks(
    geoms: Geometries, windows: Sequence[GridSpec | None], all_touched: bool
) -> dict[int, np.ndarray]:
    """Each geometry's pixels of its window grid (rasterised once, whatever the records)."""
    local: dict[str, np.ndarray] = {}
    out: dict[int, np.ndarray] = {}
    for gid, wgrid in enumerate(windows):
        if wgrid is None:
            continue
        key = crs_key(wgrid.crs)
        if key not in local:
            local[key] = geoms.in_crs(wgrid.crs)
        out[gid] = geometry_mask(local[key][gid], wgrid, all_touched=all_touched)
    return out


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
        local = geoms.in_crs(grid.crs)
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
    local = geoms.in_crs(crs)
    out: list[GridSpec | None] = []
    for geometry in local:
        out.append(GridSpec.from_bbox(geometry.bounds, crs, resolution))
    return out
