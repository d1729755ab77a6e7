"""One band on the engine's target grid as a lazily indexed backend array.

``xr.open_dataset(..., engine="rasteret", crs= / resolution= / bbox= / grid=)`` gives each
band as a :class:`GridBandArray`: ``(time, y, x)`` on the target grid, records in the
dataset's order. One indexing call reads, in **one batch** across every native grid and
record it selects, the source windows under the requested target window (only the tiles
there, decoded in the decode pool), then places each record on the target — a copy when
its grid shares the target's pixel lattice, else the warp of :mod:`rasteret.geo.warp`
(the nearest-neighbour index map derived once per grid and window, shared by the
records). xarray chunks the array along ``encoding["preferred_chunks"]``
(:func:`grid_chunks`: the whole target up to :data:`~rasteret.geo.lazy.SLICED_CHUNK`
pixels a side, runs of records of about 128 MiB), so every dask task is one batched read:
no nested dask graph, no copy between pieces.

A record whose grid does not reach the window reads as its own nodata (its array's fill);
a record without the band as the band's fill. Never a fill where a record has data: a
failed read raises, naming the object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from rasteret.geo.grid import GridSpec
from rasteret.geo.lazy import SLICED_CHUNK, SLICED_TASK_BYTES, lattice_offset
from rasteret.geo.warp import (
    NearestIndex,
    gather_nearest,
    kernel_scale,
    nearest_index,
    output_nodata,
    source_window,
    valid_mask,
    warp_array,
)
from rasteret.geo.window import Window
from rasteret.store.window_read import ArrayWindow, read_array_windows_sync

if TYPE_CHECKING:
    from rasteret.store.tiles import TileStore


@dataclass(frozen=True)
class GridMember:
    """The records of one store array (``path``) in a band on the target grid: store time
    ``steps`` and the dataset time index (``positions``) of each; read on ``grid`` with
    ``resampling``, its pixels equal to ``nodata`` invalid (``None``: all valid)."""

    path: str
    grid: GridSpec
    resampling: str
    nodata: float | None
    dtype: str
    steps: tuple[int, ...]
    positions: tuple[int, ...]


class GridBandArray(BackendArray):
    """A band ``(time, y, x)`` on ``target``: indexing reads the selected records' source
    windows in one batch and warps (or copies) them onto the target window."""

    def __init__(
        self,
        store: TileStore,
        target: GridSpec,
        members: Sequence[GridMember],
        times: int,
        dtype: np.dtype,
        fill: Any,
    ) -> None:
        self.store = store  # pickles by reference
        self.target = target
        self.members = tuple(members)
        self.shape = (times, *target.shape)
        self.dtype = np.dtype(dtype)
        self.fill = fill

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        t_key, y_key, x_key = key
        times = list(range(self.shape[0]))
        times = times[t_key] if isinstance(t_key, slice) else [times[int(t_key)]]
        y0, y1, y_step = _span(y_key, self.shape[1])
        x0, x1, x_step = _span(x_key, self.shape[2])
        window = Window(y0, x0, max(0, y1 - y0), max(0, x1 - x0))
        # not pre-filled: every row is filled or entirely written below (a fill pass over
        # a large fresh buffer costs as much as the copy it saves)
        out = np.empty((len(times), window.height, window.width), self.dtype)
        painted = (
            self._place(out, {t: k for k, t in enumerate(times)}, window)
            if not window.is_empty and times
            else set()
        )
        rest = [k for k in range(len(times)) if k not in painted]
        if rest:
            out[rest] = self.fill
        if (y_step, x_step) != (1, 1):
            out = out[:, ::y_step, ::x_step]
        squeeze = tuple(axis for axis, k in enumerate(key) if not isinstance(k, slice))
        return out.squeeze(axis=squeeze) if squeeze else out

    def _place(self, out: np.ndarray, where: dict[int, int], window: Window) -> set[int]:
        """Read every selected record's source window in one batch and put each on
        ``out`` (``where``: dataset time index → row of ``out``) as soon as it is decoded,
        from the decode thread: same-lattice records are decoded straight into ``out``.
        Returns the rows it fills entirely (the others are the band's fill)."""
        painted: set[int] = set()
        requests: list[ArrayWindow] = []
        outputs: list[np.ndarray] = []
        owners: list[tuple[_Job, int] | None] = []
        shared: dict[tuple[Any, ...], NearestIndex] = {}
        for member in self.members:
            picks = [
                (where[p], s)
                for p, s in zip(member.positions, member.steps, strict=True)
                if p in where
            ]
            if not picks:
                continue
            rows = [k for k, _ in picks]
            fill = output_nodata(self.dtype, member.nodata, member.nodata)
            job = _Job.plan(member, self.target, window, rows, fill)
            if job is None or not job.paints(window):
                out[rows] = fill  # the record's own nodata where its grid does not reach
            painted.update(rows)
            if job is None:
                continue
            requests += [ArrayWindow(member.path, step, job.needed) for _, step in picks]
            direct = job.direct_views(out, window, self.dtype)
            if direct is not None:  # decoded in place: nothing left to do per record
                outputs += direct
                owners += [None] * len(direct)
                continue
            job.prepare(self.target, window, shared)
            outputs += list(job.stack)
            owners += [(job, n) for n in range(len(rows))]

        def place(index: int, _: np.ndarray) -> None:
            owner = owners[index]
            if owner is not None:
                owner[0].put(owner[1], out, self.target, window, self.dtype)

        if requests:
            read_array_windows_sync(
                self.store.layout, self.store.reader, requests, outputs=outputs, on_done=place
            )
        return painted


class _Job:
    """One member's part of a read: the source window ``needed`` under the target window,
    the same-lattice ``shift`` (a copy) or ``None`` (a warp), the rows of ``out``, and the
    decoded windows (``stack``) with the shared nearest index map when warped."""

    __slots__ = ("coordinates", "fill", "member", "needed", "rows", "shift", "stack")

    def __init__(
        self,
        member: GridMember,
        needed: Window,
        shift: tuple[int, int] | None,
        rows: list[int],
        fill: Any,
    ) -> None:
        self.member, self.needed, self.shift, self.rows, self.fill = (
            member,
            needed,
            shift,
            rows,
            fill,
        )
        self.stack = np.empty((len(rows), *needed.shape), np.dtype(member.dtype))
        self.coordinates: NearestIndex | None = None

    @classmethod
    def plan(
        cls, member: GridMember, target: GridSpec, window: Window, rows: list[int], fill: Any
    ) -> _Job | None:
        shift = lattice_offset(member.grid, target) if member.resampling == "nearest" else None
        if shift is not None:
            needed = window.shifted(*shift).intersection(Window(0, 0, *member.grid.shape))
            found = None if needed.is_empty else needed
        else:
            found = source_window(member.grid, target, window, resampling=member.resampling)
        return None if found is None else cls(member, found, shift, rows, fill)

    def _paste(self, window: Window) -> tuple[slice, slice]:
        assert self.shift is not None
        r0 = self.needed.row_off - self.shift[0] - window.row_off
        c0 = self.needed.col_off - self.shift[1] - window.col_off
        return slice(r0, r0 + self.needed.height), slice(c0, c0 + self.needed.width)

    def paints(self, window: Window) -> bool:
        """Whether placing a record writes every pixel of its row: a warp always does
        (fill where invalid); a copy when the source covers the whole window."""
        return self.shift is None or self.needed.shape == window.shape

    def direct_views(
        self, out: np.ndarray, window: Window, dtype: np.dtype
    ) -> list[np.ndarray] | None:
        """Views of ``out`` to decode into, when the records land there as read (same
        lattice, same dtype, nodata already the fill): no copy at all."""
        nodata = self.member.nodata
        same_fill = nodata is None or _same_value(
            np.asarray(nodata).astype(dtype).item(), self.fill
        )
        if self.shift is None or np.dtype(self.member.dtype) != dtype or not same_fill:
            return None
        rows, cols = self._paste(window)
        return [out[k, rows, cols] for k in self.rows]

    def prepare(
        self, target: GridSpec, window: Window, shared: dict[tuple[Any, ...], NearestIndex]
    ) -> None:
        """The nearest index map, derived before the read (shared by the members on one
        grid), so the decode threads only gather."""
        if self.shift is None and self.member.resampling == "nearest":
            key = (self.member.grid, window, self.needed)
            found = shared.get(key)
            if found is None:
                found = shared[key] = nearest_index(self.member.grid, target, window, self.needed)
            self.coordinates = found

    def put(
        self, n: int, out: np.ndarray, target: GridSpec, window: Window, dtype: np.dtype
    ) -> None:
        """Record ``n`` of the stack (decoded) onto its row of ``out``."""
        member, needed, k = self.member, self.needed, self.rows[n]
        data = self.stack[n : n + 1]
        if self.shift is not None:  # same lattice, but nodata or dtype differ: masked copy
            rows, cols = self._paste(window)
            dst = out[k, rows, cols]
            np.copyto(dst, data[0], casting="unsafe")
            valid = valid_mask(data[0], member.nodata)
            if valid is not None:  # the record's nodata becomes its fill in the output
                np.copyto(dst, self.fill, where=~valid, casting="unsafe")
            return
        if self.coordinates is not None and data.dtype == dtype:  # gathered into ``out``
            gather_nearest(data, self.coordinates, member.nodata, self.fill, out[k : k + 1])
            return
        scale = None if member.resampling == "nearest" else kernel_scale(member.grid, target)
        out[k] = warp_array(
            data, member.grid, target, resampling=member.resampling, src_nodata=member.nodata,
            nodata=self.fill, dtype=dtype, window=window,
            source_offset=(needed.row_off, needed.col_off), scale=scale,
            coordinates=self.coordinates,
        )[0]  # fmt: skip


def grid_chunks(target: GridSpec, times: int, dtype: np.dtype) -> dict[str, int]:
    """Preferred dask chunks of a target-grid band: the whole target up to
    :data:`SLICED_CHUNK` pixels a side (a tile under a chunk edge is fetched by each chunk
    it feeds), and runs of records of about :data:`SLICED_TASK_BYTES` of output."""
    cy, cx = (min(n, SLICED_CHUNK) for n in target.shape)
    run = max(1, SLICED_TASK_BYTES // max(1, cy * cx * np.dtype(dtype).itemsize))
    return {"time": max(1, min(run, times)), "y": max(1, cy), "x": max(1, cx)}


def _same_value(a: Any, b: Any) -> bool:
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return both_nan or a == b


def _span(key: Any, size: int) -> tuple[int, int, int]:
    """``(start, stop, step)`` of the rows an index reads (``stop`` exclusive, step > 0)."""
    if isinstance(key, slice):
        start, stop, step = key.indices(size)
        if step < 0:
            raise NotImplementedError("negative steps are applied by xarray, not the backend")
        if stop <= start:
            return start, start, 1
        last = start + ((stop - start - 1) // step) * step
        return start, last + 1, step
    index = int(key)
    return index, index + 1, 1
