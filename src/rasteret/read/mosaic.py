"""Mosaics: group records (``groupby``) and fuse each group's windows into one.

``groupby``: ``"time"`` (equal datetimes), ``"solar_day"`` (local solar date at the
record's footprint centre: UTC + longitude / 15 h — same-day passes over adjacent
tiles merge), ``"id"`` (no fusion), an ISO 8601 period (``"P1M"``: calendar months), a
column name (equal values), or a callable taking the record as a dict (non-band
columns) and returning its key (:mod:`rasteret.index.grouping`, shared with the xarray
engine's composites).

Fuse order is deterministic: members sorted by (datetime, id); groups ordered by their
first member. Fusers: ``first`` (default: first valid pixel), ``last``, ``min``,
``max`` (native dtype), ``mean``, ``median`` (float64). ``first``/``last`` read in
rounds: round *k* reads the *k*-th member of every group whose window is not yet fully
valid, so a member is never read when earlier ones already cover the geometry; records
that do not intersect a geometry are never read.

Records of a group must share a pixel grid frame (same CRS, pixel size, aligned
origins — adjacent tiles of one UTM zone do); otherwise pass ``target_crs=`` /
``resolution=`` / ``grid=`` to mosaic on a common grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rasteret.geo.composite import FUSERS, fuse_stack
from rasteret.geo.window import Window
from rasteret.index import CollectionTable
from rasteret.index.columns import datetimes, record_ids
from rasteret.index.grouping import group_keys, ordered_groups
from rasteret.read.fills import band_fills
from rasteret.read.geometry import Geometries
from rasteret.read.geometry_windows import geometry_mask, geometry_windows, window_grid
from rasteret.read.members import (
    MemberRead,
    build_frames,
    clip_to_inside,
    member_requests,
    member_window,
    read_members,
)
from rasteret.read.result import AOIWindow, RaggedShapesError
from rasteret.read.stacks import StoreIndex, plan_progress

__all__ = ["FUSERS", "fuse_arrays", "group_keys", "ordered_groups", "read_mosaic"]


def read_mosaic(
    collection: CollectionTable,
    index: StoreIndex,
    rows: np.ndarray,
    geoms: Geometries,
    bands: Sequence[str],
    groupby: Any,
    fuse: str,
    all_touched: bool,
    fill_value: float | None,
    *,
    contiguous: bool = False,
) -> list[AOIWindow]:
    """One fused window per (group, geometry) on the records' common frame.
    ``contiguous`` (``first`` / ``last``): the first round is read into one array, so the
    windows its reads cover whole are, in order, views of it (for a caller that stacks
    them: :func:`rasteret.read.result.stack_windows`)."""
    if fuse not in FUSERS:
        raise ValueError(f"fuse={fuse!r}: use one of {FUSERS}")
    ids = record_ids(collection.table)
    times = datetimes(collection.table["datetime"])
    fills = band_fills(index, bands, rows, fill_value)
    ref_band = bands[0]
    present = [int(r) for r in rows if index.source(ref_band, int(r)) is not None]
    sources = [index.source(ref_band, r) for r in present]
    frames = build_frames(sources)  # type: ignore[arg-type]
    if len(frames) > 1:
        raise RaggedShapesError(
            f"the records are on {len(frames)} pixel grids that do not line up "
            f"({', '.join(repr(f[0]) for f in frames[:3])}): pass target_crs= and resolution= "
            "(or grid=GridSpec(...)) to mosaic them on a common grid"
        )
    frame = frames[0][0]
    local = geoms.in_crs(frame.crs)
    windows = geometry_windows(local, frame.transform, frame.shape)
    keys = group_keys(collection, np.asarray(present), groupby)
    out: list[AOIWindow] = []
    jobs: list[_Job] = []
    for key, members in ordered_groups(keys, np.asarray(present)):
        for gid, window in enumerate(windows):
            if window is None:
                continue
            wgrid = window_grid(frame, window)
            job = _Job(key, gid, window, wgrid)
            for row in members:
                srcs = tuple(index.source(b, row) for b in bands)
                placed = member_window(frame, window, srcs[0])  # type: ignore[arg-type]
                if placed is not None:
                    job.members.append((row, MemberRead(srcs, placed[0]), placed[1]))
            if job.members:
                jobs.append(job)
    inside_cache: dict[int, np.ndarray] = {}
    for job in jobs:
        inside = inside_cache.get(job.gid)
        if inside is None:
            inside = inside_cache[job.gid] = geometry_mask(
                local[job.gid], job.grid, all_touched=all_touched
            )
        job.inside = inside
    if fuse in ("first", "last"):
        _fuse_in_rounds(index, jobs, bands, fills, reverse=fuse == "last", contiguous=contiguous)
    else:
        _fuse_all(index, jobs, bands, fills, fuse)
    for job in jobs:
        first = job.members[0][0]
        out.append(
            AOIWindow(
                None,
                times[first],
                int(geoms.ids[job.gid]),
                job.grid,
                tuple(bands),
                job.data,
                job.valid,
                group=job.key,
                record_ids=tuple(ids[m[0]] for m in job.members),
            )
        )
    return out


class _Job:
    def __init__(self, key: str, gid: int, window: Window, grid: Any) -> None:
        self.key, self.gid, self.window, self.grid = key, gid, window, grid
        self.members: list[tuple[int, MemberRead, tuple[int, int]]] = []
        self.inside: np.ndarray = np.zeros(0, bool)
        self.data: np.ndarray = np.zeros(0)
        self.valid: np.ndarray = np.zeros(0, bool)
        self.read: list[int] = []  # rows actually read

    @property
    def window_shape(self) -> tuple[int, int]:
        return (self.window.height, self.window.width)


def _empty(job: _Job, bands: Sequence[str], fills: Sequence[Any], dtype: np.dtype) -> None:
    h, w = job.window.height, job.window.width
    job.data = np.empty((len(bands), h, w), dtype=dtype)
    for c in range(len(bands)):
        job.data[c] = fills[c]
    job.valid = np.zeros((len(bands), h, w), dtype=bool)


def _adopt(job: _Job, data: np.ndarray, valid: np.ndarray, fills: Sequence[Any]) -> None:
    """``data`` / ``valid`` (a read of the job's whole window, invalid pixels already
    ``fills``) as the job's own arrays, the pixels outside the geometry made fill and
    invalid — what :func:`_empty` + :func:`_paste` + taking every valid pixel give, without
    three more passes over fresh memory."""
    clip_to_inside(data, valid, job.inside, fills)
    job.data, job.valid = data, valid


def _paste(data: np.ndarray, valid: np.ndarray, placed: tuple[int, int], shape: tuple[int, int]):
    h, w = data.shape[-2:]
    r, c = placed
    full_d = np.zeros((data.shape[0], *shape), dtype=data.dtype)
    full_v = np.zeros((data.shape[0], *shape), dtype=bool)
    full_d[:, r : r + h, c : c + w] = data
    full_v[:, r : r + h, c : c + w] = valid
    return full_d, full_v


def _fuse_in_rounds(
    index: StoreIndex,
    jobs: list[_Job],
    bands: Sequence[str],
    fills: Sequence[Any],
    reverse: bool,
    contiguous: bool = False,
) -> None:
    order = {id(j): (j.members[::-1] if reverse else j.members) for j in jobs}
    everything = member_requests([m[1] for j in jobs for m in j.members])
    plan_progress(index.layout, everything)  # read in rounds: the total is every member
    started = False
    k = 0
    while True:
        todo = [j for j in jobs if k < len(order[id(j)]) and (not started or not _complete(j))]
        if not todo:
            break
        reads = [order[id(j)][k][1] for j in todo]
        results = read_members(index, reads, fills, contiguous=contiguous and not started)
        for job, (data, valid) in zip(todo, results, strict=True):
            row, _, placed = order[id(job)][k]
            job.read.append(row)
            if job.data.size == 0 and placed == (0, 0) and data.shape[-2:] == job.window_shape:
                _adopt(job, data, valid, fills)  # the first member covers the window
                continue
            if not started or job.data.size == 0:
                _empty(job, bands, fills, data.dtype)
            data, valid = _paste(data, valid, placed, job.window_shape)
            valid &= job.inside
            take = valid & ~job.valid
            job.data[take] = data[take]
            job.valid |= take
        started = True
        k += 1


def _complete(job: _Job) -> bool:
    return bool(job.valid[:, job.inside].all())


def _fuse_all(
    index: StoreIndex, jobs: list[_Job], bands: Sequence[str], fills: Sequence[Any], fuse: str
) -> None:
    reads = [(j, m) for j in jobs for m in j.members]
    results = read_members(index, [m[1] for _, m in reads], fills)
    per_job: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for (job, member), (data, valid) in zip(reads, results, strict=True):
        job.read.append(member[0])
        data, valid = _paste(data, valid, member[2], job.window_shape)
        per_job.setdefault(id(job), []).append((data, valid & job.inside))
    for job in jobs:
        stack = np.stack([d for d, _ in per_job[id(job)]])
        ok = np.stack([v for _, v in per_job[id(job)]])
        job.data, job.valid = fuse_arrays(stack, ok, fuse, fills)


def fuse_arrays(
    stack: np.ndarray, ok: np.ndarray, fuse: str, fills: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse ``stack`` ``[M, C, h, w]`` (members in fuse order) with validity ``ok``
    (:func:`rasteret.geo.composite.fuse_stack`, per-band ``fills``)."""
    try:  # exact in the stack's dtype (a NaN fill of an integer stack stays float)
        fill = np.array(fills, dtype=stack.dtype)
    except (ValueError, OverflowError):
        fill = np.array(fills, dtype=np.float64)
    return fuse_stack(stack, ok, fuse, fill.reshape(-1, *([1] * (stack.ndim - 2))))
