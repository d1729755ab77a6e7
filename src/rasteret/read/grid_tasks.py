"""Reads onto one target grid, as tasks: which source window of each (record, band) feeds
the grid — copied when aligned, else warped — and from which level (full resolution or
the overview GDAL would read). Used by :func:`rasteret.read.window.read_window` and the
AOI reads on a target grid (:mod:`rasteret.read.common_grid`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rasteret._types import Bounds
from rasteret.geo.grid import GridSpec
from rasteret.geo.resampling import POINT_KERNELS, VALUE_PRESERVING
from rasteret.geo.transform import to_crs, transform_bounds
from rasteret.geo.window import Window
from rasteret.read.members import member_window, source_grid
from rasteret.read.radiometry import implied_invalid, invalid_holds_fill, valid_into, valid_mask
from rasteret.read.result import ImpliedMask
from rasteret.read.stacks import BandSource, StoreIndex, group_sources

if TYPE_CHECKING:
    from rasteret.geo.nearest import OffsetBlock

#: Overview sources of a read: ``(band, row) -> [overview level 0, 1, ...]``.
OverviewSources = Mapping[tuple[str, int], list[BandSource]]
#: A cached nearest map: flat index into the source window, inside (``None``: every
#: target pixel is), offset block or None.
_NearestMap = tuple[np.ndarray, "np.ndarray | None", "OffsetBlock | None"]


@dataclass(frozen=True)
class GridTask:
    """Read `window` of `source` into output `slot`, channel `band` (copy or warp)."""

    slot: int
    band: int
    source: BandSource
    window: Window  # in source pixels
    paste: tuple[int, int] | None  # (row, col) in the target for copies; None: warp
    resampling: str


class TaskPlanner:
    """Plans the :class:`GridTask` of each (record, band) for one target grid, and warps
    their results onto it. ``overview_levels`` are the read's overview sources
    (:func:`overview_sources`); ``overviews=False`` always reads full resolution."""

    def __init__(
        self,
        overview_levels: OverviewSources,
        grid: GridSpec,
        grid_key: str,
        overviews: bool,
    ):
        self.overview_levels = overview_levels
        self.grid = grid
        self.grid_key = grid_key
        self.overviews = overviews
        self.full = Window(0, 0, grid.height, grid.width)
        self._bounds_in: dict[str, Bounds | None] = {}
        self._coords: dict[tuple[Any, ...], Any] = {}
        self._index: dict[tuple[Any, ...], _NearestMap] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}

    def _target_bounds_in(self, key: str) -> Bounds | None:
        if key not in self._bounds_in:
            try:
                found = transform_bounds(self.grid.bounds, self.grid.crs, to_crs(key))
            except Exception:
                found = None
            self._bounds_in[key] = found
        return self._bounds_in[key]

    def plan(
        self, src: BandSource, resampling: str
    ) -> tuple[BandSource, Window, tuple[int, int] | None] | None:
        """``(source, window, paste offset or None to warp)`` or ``None`` (no overlap)."""
        if src.crs_key == self.grid_key:
            placed = member_window(self.grid, self.full, src)
            if placed is not None:
                return src, placed[0], placed[1]
            if _aligned(src, self.grid):
                return None  # aligned but outside the window
        if not self._overlaps(src):
            return None
        src = self._level(src, resampling)
        if src.crs_key == self.grid_key:
            placed = member_window(self.grid, self.full, src)
            if placed is not None:
                return src, placed[0], placed[1]
        found = self._source_window(src, resampling)
        if found is None:
            return None
        if resampling == "nearest" and src.crs_key == self.grid_key and src.dtype.kind in "iu":
            pasted = self._offset_paste(src, found)
            if pasted is not None:
                return src, pasted[0], pasted[1]
        return src, found, None

    def _offset_paste(self, src: BandSource, crop: Window) -> tuple[Window, tuple[int, int]] | None:
        """A nearest warp whose map is a plain offset (one CRS and pixel size, the
        origin off the grid by a fraction of a pixel) as a copy: the source pixels it
        takes and where they go — read like any copy (straight into the output), the
        rest of the grid left as fill, as the warp leaves it. Integer sources only (a
        warp also treats a float source's NaN as invalid; a copy keeps it)."""
        from rasteret.geo.nearest import offset_block

        block = offset_block(source_grid(src), self.grid, self.full, crop)
        if block is None:
            return None
        window = Window(
            crop.row_off + block.src_rows.start, crop.col_off + block.src_cols.start, *block.shape
        )
        return window, (block.rows.start, block.cols.start)

    def _source_window(self, src: BandSource, resampling: str) -> Window | None:
        """:func:`~rasteret.geo.coords.source_window` of ``src``, once per (source grid,
        resampling) of this read."""
        from rasteret.geo.coords import source_window

        key = ("window", src.crs_key, src.transform, src.height, src.width, resampling)
        if key not in self._coords:
            self._coords[key] = source_window(source_grid(src), self.grid, resampling=resampling)
        return self._coords[key]

    def _overlaps(self, src: BandSource) -> bool:
        bounds = self._target_bounds_in(src.crs_key)
        if bounds is None:
            return True  # cannot tell cheaply: let source_window decide
        left, bottom, right, top = source_grid(src).bounds
        tl, tb, tr, tt = bounds
        return tl < right and tr > left and tb < top and tt > bottom

    def _level(self, src: BandSource, resampling: str) -> BandSource:
        """The overview of ``src`` GDAL would read for this grid (or ``src``)."""
        levels = self.overview_levels.get((src.band, src.row))
        if not self.overviews or not levels:
            return src
        from rasteret.geo.coords import resolution_scale
        from rasteret.geo.overview import choose_overview

        key = ("scale", src.crs_key, src.transform, src.height, src.width)
        if key not in self._coords:
            self._coords[key] = resolution_scale(source_grid(src), self.grid)
        xs, ys = self._coords[key]  # target px per source px
        factor = 1.0 / max(min(xs, ys), 1e-12)  # source px per target px
        if factor < 2:
            return src
        decimations = [src.width / lvl.width for lvl in levels]
        level = choose_overview(1.0, decimations, factor, resampling=resampling)
        return src if level is None else levels[level]

    def prepare(self, tasks: Sequence[GridTask]) -> None:
        """Start computing the warp maps of ``tasks`` on the decode pool (each once):
        they depend on the grids only, so they run while the reads wait for their first
        bytes, and the warps find them cached (or wait for them)."""
        from rasteret.store.window_read import decode_pool

        seen: set[tuple[Any, ...]] = set()
        for task in tasks:
            src, method = task.source, task.resampling
            key = (src.crs_key, src.transform, src.height, src.width, task.window, method)
            if task.paste is not None or key in seen:
                continue
            seen.add(key)  # both maps are cached: a duplicate submission would only wait
            if method == "nearest":
                decode_pool().submit(self._nearest_index, src, task.window)
            elif method in POINT_KERNELS:
                decode_pool().submit(self._coordinates, src, method)

    def warp(
        self, task: GridTask, data: np.ndarray, valid: np.ndarray, dtype: np.dtype
    ) -> tuple[np.ndarray, np.ndarray]:
        """``data`` (a window of the task's source) on the target grid: (values, valid)."""
        from rasteret.geo.warp import warp_array

        src, method = task.source, task.resampling
        if method == "nearest" and data.ndim == 2 and dtype.kind in "iuf":
            return self._nearest(task, data, valid, dtype)
        sgrid = source_grid(src)
        coordinates = scale = None
        if method in POINT_KERNELS:
            coordinates, scale = self._coordinates(src, method)
        values = warp_array(
            data,  # native dtype: mode picks GDAL's histogram path for 8/16-bit ints
            sgrid,
            self.grid,
            resampling=method,
            valid=valid,
            nodata=np.nan,
            dtype=np.float64,
            source_offset=(task.window.row_off, task.window.col_off),
            coordinates=coordinates,
            scale=scale,
        )
        ok = ~np.isnan(values)
        if dtype.kind in "iu":
            if method not in VALUE_PRESERVING:
                info = np.iinfo(dtype)
                values = np.clip(np.floor(values + 0.5), info.min, info.max)
            values = np.where(ok, values, 0)
        return values.astype(dtype), ok

    def _coordinates(
        self, src: BandSource, method: str
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[float, float]]:
        """Source pixel coordinates of the target pixel centres and the kernel scale, once
        per (source grid, kernel) of this read."""
        from rasteret.geo.coords import kernel_scale, source_coordinates

        key = (src.crs_key, src.transform, src.height, src.width, method)
        cached = self._coords.get(key)
        if cached is not None:
            return cached
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._coords.get(key)
            if cached is None:
                sgrid = source_grid(src)
                coords = source_coordinates(sgrid, self.grid)
                sc = kernel_scale(sgrid, self.grid) if method != "nearest" else (1.0, 1.0)
                cached = self._coords[key] = (coords, sc)
        return cached

    def _nearest_index(self, src: BandSource, window: Window) -> _NearestMap:
        """``(flat index into the window, inside or None, offset block or None)`` of each
        target pixel's nearest source pixel, once per (source grid, source window) of this
        read: every record of a source grid reuses it (``warp_array``'s ``centre_pixel`` on
        the same coordinates)."""
        key = (src.crs_key, src.transform, src.height, src.width, window)
        cached = self._index.get(key)
        if cached is not None:
            return cached
        with self._lock:  # warps run on several threads: compute each map once
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._index.get(key)
            if cached is None:
                from rasteret.geo.nearest import nearest_flat_index, separable_nearest_index

                whole = Window(0, 0, *self.grid.shape)
                nearest = separable_nearest_index(source_grid(src), self.grid, whole, window)
                if nearest is not None:
                    cached = self._index[key] = (nearest.index, nearest.inside, nearest.block)
                    return cached
                flat, inside = nearest_flat_index(source_grid(src), self.grid, whole, window)
                # every target pixel inside the source window: no mask to apply
                cached = self._index[key] = (flat, None if inside.all() else inside, None)
        return cached

    def warp_nearest_into(
        self,
        task: GridTask,
        data: np.ndarray,
        valid: np.ndarray | None,
        out: np.ndarray,
        out_valid: np.ndarray | None,
        fill: Any,
    ) -> bool:
        """The nearest-neighbour warp gathered straight into ``out`` / ``out_valid`` (the
        whole target grid, C-contiguous, ``out`` of ``data``'s dtype), ``fill`` where
        invalid: no intermediate arrays. ``valid`` ``None``: validity is the source's
        nodata rule (no internal mask) applied to the gathered values, not gathered.
        ``out_valid`` ``None``: the pixels only, for a task that :func:`holds_fill` (its
        invalid pixels hold the fill as gathered: only the outside is filled; the
        caller's :meth:`warp` writes ``Output.valid`` regardless).
        ``False`` (nothing written) when that does not apply; the caller then uses
        :meth:`warp`."""
        if (
            task.resampling != "nearest"
            or data.ndim != 2
            or data.dtype != out.dtype
            or out.dtype.kind not in "iuf"
            or not out.flags.c_contiguous
            or (out_valid is not None and not out_valid.flags.c_contiguous)
        ):
            return False
        flat, inside, block = self._nearest_index(task.source, task.window)
        if flat.shape != out.shape:
            return False
        if out_valid is None:  # the pixels only: invalid ones hold nodata, the fill
            if block is not None:
                return False  # (integer offsets are copies: see ``plan``)
            assert valid is None and out.dtype.kind in "iu"
            np.take(np.ascontiguousarray(data).reshape(-1), flat, out=out, mode="clip")
            if inside is not None:
                np.copyto(out, fill, where=~inside, casting="unsafe")
            return True
        if block is not None:
            _copy_block(block, data, valid, out, out_valid, fill, task.source.nodata)
            return True
        nodata = task.source.nodata
        np.take(np.ascontiguousarray(data).reshape(-1), flat, out=out, mode="clip")
        if valid is None:  # the nodata rule of the gathered values, not a gathered mask
            valid_into(out_valid, out, nodata)
        else:
            np.take(np.ascontiguousarray(valid).reshape(-1), flat, out=out_valid, mode="clip")
        if out.dtype.kind == "f":
            out_valid &= ~np.isnan(out)
        if inside is not None:
            out_valid &= inside
        elif (
            valid is None
            and out.dtype.kind in "iu"
            and invalid_holds_fill(out.dtype, nodata, fill, out.dtype)
        ):
            return True  # the only invalid pixels hold nodata, which is the fill
        np.copyto(out, fill, where=~out_valid, casting="unsafe")
        return True

    def _nearest(
        self, task: GridTask, data: np.ndarray, valid: np.ndarray, dtype: np.dtype
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest-neighbour warp as a gather through the cached index map; equal to the
        ``warp_array`` path (invalid pixels 0 for integers, NaN for floats)."""
        flat, inside, _ = self._nearest_index(task.source, task.window)
        values = np.take(np.ascontiguousarray(data).reshape(-1), flat)
        ok = np.take(np.ascontiguousarray(valid).reshape(-1), flat)
        if inside is not None:
            ok &= inside
        if values.dtype.kind == "f":
            ok &= ~np.isnan(values)
        values = values.astype(dtype, copy=False)
        np.putmask(values, ~ok, np.nan if dtype.kind == "f" else 0)
        return values, ok


@dataclass(frozen=True, slots=True)
class Output:
    """Where one task's pixels go: its whole target plane, validity and fill value.
    ``unfilled``: the plane was not filled before the read (its validity starts all
    false): the task that writes it fills every pixel it does not set — so no pixel of
    the output is touched before the first request is sent. ``validity=False``: the
    caller wants the pixels only, and the task is a copy whose invalid pixels already
    hold ``fill``: nothing is written to ``valid``."""

    data: np.ndarray
    valid: np.ndarray
    fill: Any
    unfilled: bool = False
    validity: bool = True


def holds_fill(task: GridTask, dtype: np.dtype, fill: Any) -> bool:
    """Whether ``task``'s invalid pixels already hold ``fill`` in ``dtype`` once written
    (no internal mask, nodata equal to the fill): a copy, or a nearest warp gathered in
    the source's integer dtype (the pixels outside the source get the fill). Written into
    an :class:`Output` without ``validity``, its pixels are the same."""
    src = task.source
    if src.mask_array is not None or not invalid_holds_fill(src.dtype, src.nodata, fill, dtype):
        return False
    if task.paste is not None:
        return True
    return task.resampling == "nearest" and dtype.kind in "iu" and src.dtype == dtype


def implied_validity(
    tasks: Sequence[GridTask], dtype: np.dtype, fills: Sequence[Any]
) -> ImpliedMask | None:
    """The validity the pixels of a read imply — an integer ``dtype``, no plane fed by two
    tasks (a mosaic merges through its mask), every task one that :func:`holds_fill`
    with a nodata no valid pixel can equal — so none needs writing; ``None`` otherwise."""
    if dtype.kind not in "iu" or len({(t.slot, t.band) for t in tasks}) != len(tasks):
        return None
    for task in tasks:
        src, fill = task.source, fills[task.band]
        if not holds_fill(task, dtype, fill):
            return None
        if implied_invalid(src.dtype, src.nodata, fill, dtype) is None:
            return None  # e.g. no nodata: a valid pixel may equal the fill
    return ImpliedMask(tuple(int(np.asarray(f).astype(dtype)) for f in fills))


def write_task(
    planner: TaskPlanner,
    task: GridTask,
    values: np.ndarray,
    ok: np.ndarray | None,
    output: Output,
) -> None:
    """Write one task's source window (``values``, validity ``ok``) into its output plane
    (a decode-pool thread): a copy at its paste offset — nothing to copy when ``values``
    were decoded there already —, else a warp gathered straight into the plane, with the
    fill where invalid. ``ok`` may be ``None`` for a warp of a source without an internal
    mask (the nodata rule is applied to the pixels gathered); a copy needs it. A copy
    decoded in place gets the fill where invalid, as a copy into a filled plane leaves it;
    into an ``unfilled`` plane, a copy also fills the plane around its box. A copy into
    an output without ``validity`` takes ``ok`` ``None``: its invalid pixels hold the
    fill already."""
    if task.paste is not None:
        r, c = task.paste
        h, w = values.shape
        data = output.data[r : r + h, c : c + w]
        if output.unfilled:
            fill_around(output.data, (r, c, h, w), output.fill)
        in_place = _same_memory(values, data)
        if not output.validity:
            if not in_place:
                np.copyto(data, values, casting="unsafe")
            return
        assert ok is not None
        if not in_place and output.unfilled:
            np.copyto(data, values, casting="unsafe")  # then the fill where invalid
        elif not in_place:
            np.copyto(data, values, where=ok, casting="unsafe")
        if (in_place or output.unfilled) and not ok.all():
            np.copyto(data, output.fill, where=~ok, casting="unsafe")
        output.valid[r : r + h, c : c + w] = ok
        return
    out_valid = output.valid if output.validity else None
    if planner.warp_nearest_into(task, values, ok, output.data, out_valid, output.fill):
        return
    if ok is None:
        ok = valid_mask(values, task.source.nodata)
    warped, inside = planner.warp(task, values, ok, output.data.dtype)
    np.copyto(output.data, warped, casting="unsafe")
    np.copyto(output.data, output.fill, where=~inside, casting="unsafe")
    output.valid[...] = inside


def fill_around(plane: np.ndarray, box: tuple[int, int, int, int], fill: Any) -> None:
    """``fill`` in every pixel of ``plane`` outside ``box`` ``(row, col, height, width)``."""
    r, c, h, w = box
    plane[:r] = fill
    plane[r + h :] = fill
    plane[r : r + h, :c] = fill
    plane[r : r + h, c + w :] = fill


def copy_target(task: GridTask, plane: np.ndarray) -> np.ndarray | None:
    """The pixels of ``plane`` (the task's whole target plane) a copy task fills, to
    decode straight into; ``None`` for a warp, or a source of another dtype than the
    plane."""
    if task.paste is None or task.source.dtype != plane.dtype:
        return None
    r, c = task.paste
    h, w = task.window.shape
    return plane[r : r + h, c : c + w]


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are the same pixels (views of one buffer, same layout)."""
    ai, bi = a.__array_interface__, b.__array_interface__
    same_layout = a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
    return same_layout and ai["data"] == bi["data"]


def _copy_block(
    block: OffsetBlock,
    data: np.ndarray,
    valid: np.ndarray | None,
    out: np.ndarray,
    out_valid: np.ndarray,
    fill: Any,
    nodata: Any,
) -> None:
    """:meth:`TaskPlanner.warp_nearest_into` for a map that is a plain offset: the block
    copied, the same validity and fill as the gather, the rest of ``out`` filled."""
    inner = (block.rows, block.cols)
    if block.shape != out.shape:
        out.fill(fill)  # outside the source crop: nothing to gather
        out_valid.fill(False)
    values, ok = out[inner], out_valid[inner]
    np.copyto(values, data[block.src_rows, block.src_cols])
    if valid is None:  # the nodata rule of the copied values
        np.copyto(ok, valid_mask(values, nodata))
    else:
        np.copyto(ok, valid[block.src_rows, block.src_cols])
    if values.dtype.kind == "f":
        ok &= ~np.isnan(values)
    np.copyto(values, fill, where=~ok, casting="unsafe")


def _aligned(src: BandSource, grid: GridSpec) -> bool:
    a, b, c, d, e, f = src.transform
    ga, gb, gc, gd, ge, gf = grid.transform
    if b or d or gb or gd:
        return False
    if not (math.isclose(a, ga, rel_tol=1e-9) and math.isclose(e, ge, rel_tol=1e-9)):
        return False
    col, row = (gc - c) / a, (gf - f) / e
    return abs(col - round(col)) <= 1e-6 and abs(row - round(row)) <= 1e-6


def overview_sources(index: StoreIndex) -> dict[tuple[str, int], list[BandSource]]:
    """``(band, row) -> [overview level 0, 1, ...]`` sources from the store's overview groups."""
    out: dict[tuple[str, int], dict[int, BandSource]] = {}
    for name, group in index.layout.groups.items():
        if group.overview is None:
            continue
        for source in group_sources(name, group):
            out.setdefault((source.band, source.row), {})[group.overview] = source
    return {k: [v[i] for i in sorted(v)] for k, v in out.items()}
