"""Mosaics: group records (``groupby``) and fuse each group's windows into one.

``groupby``: ``"time"`` (equal datetimes), ``"solar_day"`` (local solar date at the
record's footprint centre: UTC + longitude / 15 h — same-day passes over adjacent
tiles merge), ``"id"`` (no fusion), a column name (equal values), or a callable taking
the record as a dict (non-band columns) and returning its key.

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
import pyarrow as pa
import pyarrow.compute as pc

from rasteret.geo.window import Window
from rasteret.index import CollectionTable
from rasteret.index.columns import datetimes, record_ids
from rasteret.read.fills import band_fills
from rasteret.read.geometry import Geometries
from rasteret.read.geometry_windows import geometry_mask, geometry_windows, window_grid
from rasteret.read.members import MemberRead, build_frames, member_window, read_members
from rasteret.read.result import AOIWindow, RaggedShapesError
from rasteret.read.stacks import StoreIndex

FUSERS = ("first", "last", "min", "max", "mean", "median")


def group_keys(collection: CollectionTable, rows: np.ndarray, groupby: Any) -> list[str]:
    """The group key (as text) of each row in ``rows``."""
    table = collection.table
    if callable(groupby):
        keep = [n for n in table.column_names if not n.endswith(("_metadata", "_error"))]
        records = table.select(keep).take(pa.array(rows)).to_pylist()
        return [str(groupby(r)) for r in records]
    if groupby == "id":
        values = record_ids(table)
        return [values[r] for r in rows]
    times = datetimes(table["datetime"])
    if groupby == "time":
        return [str(times[r]) for r in rows]
    if groupby == "solar_day":
        lon = _centre_longitudes(table)
        local = times + (lon * 3600 / 15 * 1e6).astype("timedelta64[us]")
        return [str(local[r].astype("datetime64[D]")) for r in rows]
    if isinstance(groupby, str) and groupby in table.column_names:
        values = table[groupby].to_pylist()
        return [str(values[r]) for r in rows]
    raise ValueError(
        f"groupby={groupby!r}: use 'time', 'solar_day', 'id', a column name "
        f"({[n for n in table.column_names if not n.endswith(('_metadata', '_error'))]}) "
        "or a callable"
    )


def _centre_longitudes(table: pa.Table) -> np.ndarray:
    if "bbox" not in table.column_names:
        raise ValueError("groupby='solar_day' needs the records' 'bbox' column (CRS84)")
    bbox = table["bbox"].combine_chunks()
    xmin = pc.struct_field(bbox, "xmin").to_numpy(zero_copy_only=False)
    xmax = pc.struct_field(bbox, "xmax").to_numpy(zero_copy_only=False)
    centre = (xmin + xmax) / 2
    wraps = xmin > xmax  # crosses the antimeridian
    centre = np.where(wraps, ((xmin + xmax + 360) / 2 + 180) % 360 - 180, centre)
    return np.nan_to_num(centre.astype(np.float64))


def ordered_groups(keys: Sequence[str], rows: np.ndarray) -> list[tuple[str, list[int]]]:
    """``(key, member rows)`` in first-member order (rows are already time-ordered)."""
    groups: dict[str, list[int]] = {}
    for key, row in zip(keys, rows, strict=True):
        groups.setdefault(key, []).append(int(row))
    return list(groups.items())


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
) -> list[AOIWindow]:
    """One fused window per (group, geometry) on the records' common frame."""
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
    local = geoms.to_crs(frame.crs)
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
        _fuse_in_rounds(index, jobs, bands, fills, reverse=fuse == "last")
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


def _paste(data: np.ndarray, valid: np.ndarray, placed: tuple[int, int], shape: tuple[int, int]):
    h, w = data.shape[-2:]
    r, c = placed
    full_d = np.zeros((data.shape[0], *shape), dtype=data.dtype)
    full_v = np.zeros((data.shape[0], *shape), dtype=bool)
    full_d[:, r : r + h, c : c + w] = data
    full_v[:, r : r + h, c : c + w] = valid
    return full_d, full_v


def _fuse_in_rounds(
    index: StoreIndex, jobs: list[_Job], bands: Sequence[str], fills: Sequence[Any], reverse: bool
) -> None:
    order = {id(j): (j.members[::-1] if reverse else j.members) for j in jobs}
    started = False
    k = 0
    while True:
        todo = [j for j in jobs if k < len(order[id(j)]) and (not started or not _complete(j))]
        if not todo:
            break
        results = read_members(index, [order[id(j)][k][1] for j in todo], fills)
        for job, (data, valid) in zip(todo, results, strict=True):
            row, _, placed = order[id(job)][k]
            if not started or job.data.size == 0:
                _empty(job, bands, fills, data.dtype)
            job.read.append(row)
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
    """Fuse ``stack`` ``[M, C, h, w]`` (members in fuse order) with validity ``ok``."""
    if len(stack) == 1 and fuse in ("first", "last", "min", "max"):
        # one member: its valid pixels as they are, fills elsewhere (no masked-array pass)
        data = stack[0]
        valid = ok[0]
        if not valid.all():
            data = data.copy()
            for c in range(stack.shape[1]):
                data[c][~valid[c]] = fills[c]
        return data, valid
    if fuse in ("first", "last"):
        members = range(len(stack)) if fuse == "first" else range(len(stack) - 1, -1, -1)
        data = np.empty(stack.shape[1:], stack.dtype)
        for c in range(stack.shape[1]):
            data[c] = fills[c]
        valid = np.zeros(stack.shape[1:], bool)
        for m in members:
            take = ok[m] & ~valid
            data[take] = stack[m][take]
            valid |= take
        return data, valid
    masked = np.ma.MaskedArray(stack, mask=~ok)
    if fuse == "min":
        fused = masked.min(axis=0)
    elif fuse == "max":
        fused = masked.max(axis=0)
    elif fuse == "mean":
        fused = masked.astype(np.float64).mean(axis=0)
    else:
        fused = np.ma.median(masked.astype(np.float64), axis=0)
    valid = ok.any(axis=0)
    data = np.ma.getdata(fused).copy()
    for c in range(stack.shape[1]):
        data[c][~valid[c]] = np.nan if fuse in ("mean", "median") else fills[c]
    return data, valid
