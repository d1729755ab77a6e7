"""One band on the engine's target grid as a lazily indexed backend array.

``xr.open_dataset(..., engine="rasteret", crs= / resolution= / bbox= / grid=)`` gives each
band as a :class:`GridBandArray`: ``(time, y, x)`` on the target grid, records in the
dataset's order. One indexing call reads, in **one batch** across every native grid and
record it selects, the source windows under the requested target window (only the tiles
there, decoded in the decode pool), then places each record on the target — a copy when
its grid shares the target's pixel lattice, else the warp of :mod:`rasteret.geo.warp`
(the nearest-neighbour index map derived once per grid and window, shared by the
records and by the dataset's bands: :class:`~rasteret.backend.warp_maps.WarpMaps`).
xarray chunks the array along ``encoding["preferred_chunks"]``
(:func:`grid_chunks`: the whole target up to :data:`~rasteret.geo.lazy.SLICED_CHUNK`
pixels a side, runs of records of about 128 MiB), so every dask task is one batched read:
no nested dask graph, no copy between pieces.

A record whose grid does not reach the window reads as its own nodata (its array's fill);
a record without the band as the band's fill; a pixel its record's internal mask (a GDAL
mask band) clears, as the record's nodata, as GDAL's warp (the mask window is read in the
same batch as the data). Never a fill where a record has data: a failed read raises,
naming the object.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from rasteret._pages import small_pages
from rasteret.backend.variables import index_span
from rasteret.backend.warp_maps import WarpMaps
from rasteret.geo.coords import kernel_scale, source_window
from rasteret.geo.grid import GridSpec
from rasteret.geo.lazy import SLICED_CHUNK, SLICED_TASK_BYTES, lattice_offset
from rasteret.geo.nearest import NearestIndex
from rasteret.geo.warp import (
    gather_nearest,
    output_nodata,
    valid_mask,
    warp_array,
)
from rasteret.geo.window import Window
from rasteret.store.window_read import ArrayWindow, read_array_windows, read_array_windows_sync

if TYPE_CHECKING:
    from rasteret.store.tiles import TileStore


@dataclass(frozen=True)
class GridMember:
    """The records of one store array (``path``) in a band on the target grid: store time
    ``steps`` and the dataset time index (``positions``) of each; read on ``grid`` with
    ``resampling``, its pixels equal to ``nodata`` invalid (``None``: all valid), and
    those its internal mask clears: ``masks`` gives each step's mask array path (``None``:
    no mask; empty: no step has one)."""

    path: str
    grid: GridSpec
    resampling: str
    nodata: float | None
    dtype: str
    steps: tuple[int, ...]
    positions: tuple[int, ...]
    masks: tuple[str | None, ...] = ()


class GridBandArray(BackendArray):
    """A band ``(time, y, x)`` on ``target``: indexing reads the selected records' source
    windows in one batch and warps (or copies) them onto the target window. ``maps``: the
    index maps shared with the dataset's other bands (default: this band's own)."""

    def __init__(
        self,
        store: TileStore,
        target: GridSpec,
        members: Sequence[GridMember],
        times: int,
        dtype: np.dtype,
        fill: Any,
        maps: WarpMaps | None = None,
    ) -> None:
        self.store = store  # pickles by reference
        self.target = target
        self.members = tuple(members)
        self.shape = (times, *target.shape)
        self.dtype = np.dtype(dtype)
        self.fill = fill
        self.maps = maps if maps is not None else WarpMaps()

    @small_pages
    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    async def async_getitem(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        """``__getitem__`` on the caller's event loop (xarray's ``load_async``)."""
        return await indexing.async_explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read_async
        )

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        read = _GridRead(self, key)
        if read.requests:
            read_array_windows_sync(
                self.store.layout, self.store.reader, read.requests, outputs=read.outputs,
                on_done=read.place,
            )  # fmt: skip
        return read.result()

    async def _read_async(self, key: tuple[Any, ...]) -> np.ndarray:
        read = _GridRead(self, key)
        if read.requests:
            await read_array_windows(
                self.store.layout, self.store.reader, read.requests, outputs=read.outputs,
                on_done=read.place,
            )  # fmt: skip
        return read.result()


class _GridRead:
    """One indexing call of a :class:`GridBandArray`: the output, and the requests of
    every selected record's source window (one batch). ``place`` puts each record on the
    output as soon as it is decoded (from the decode thread) — with its internal mask
    window, when it has one, once both are; same-lattice records without a mask are
    decoded straight into it. The output is not pre-filled: a fill pass over a large fresh
    buffer costs as much as the copy it saves, so rows no read paints entirely are filled
    here instead."""

    def __init__(self, array: GridBandArray, key: tuple[Any, ...]) -> None:
        t_key, y_key, x_key = key
        times = list(range(array.shape[0]))
        times = times[t_key] if isinstance(t_key, slice) else [times[int(t_key)]]
        y0, y1, self.y_step = index_span(y_key, array.shape[1])
        x0, x1, self.x_step = index_span(x_key, array.shape[2])
        window = Window(y0, x0, max(0, y1 - y0), max(0, x1 - x0))
        self.key, self.array, self.window = key, array, window
        self.out = np.empty((len(times), window.height, window.width), array.dtype)
        self.requests: list[ArrayWindow] = []
        self.outputs: list[np.ndarray] = []
        self.owners: list[tuple[_Job, int] | None] = []
        self.lock = threading.Lock()
        painted: set[int] = set()
        if not window.is_empty:
            painted = self._plan({t: k for k, t in enumerate(times)})
        rest = [k for k in range(len(times)) if k not in painted]
        if rest:
            self.out[rest] = array.fill

    def _plan(self, where: dict[int, int]) -> set[int]:
        """The requests of each member's selected records (``where``: dataset time index →
        row of the output); the rows a read will paint entirely."""
        array, window, out = self.array, self.window, self.out
        painted: set[int] = set()
        for member in array.members:
            masks = member.masks or (None,) * len(member.steps)
            picks = [
                (where[p], s, m)
                for p, s, m in zip(member.positions, member.steps, masks, strict=True)
                if p in where
            ]
            if not picks:
                continue
            rows = [k for k, _, _ in picks]
            fill = output_nodata(array.dtype, member.nodata, member.nodata)
            job = _Job.plan(member, array.target, window, rows, fill)
            if job is None or not job.paints(window):
                out[rows] = fill  # the record's own nodata where its grid does not reach
            painted.update(rows)
            if job is None:
                continue
            self.requests += [ArrayWindow(member.path, step, job.needed) for _, step, _ in picks]
            masked = any(mask is not None for _, _, mask in picks)
            direct = None if masked else job.direct_views(out, window, array.dtype)
            if direct is not None:  # decoded in place: nothing left to do per record
                self.outputs += direct
                self.owners += [None] * len(direct)
                continue
            job.prepare(array.target, window, array.maps)
            self.outputs += list(job.stack)
            self.owners += [(job, n) for n in range(len(rows))]
            for n, (_, step, mask) in enumerate(picks):
                if mask is not None:  # placed once the data and the mask are both decoded
                    self.requests.append(ArrayWindow(mask, step, job.needed))
                    self.outputs.append(job.mask_window(n))
                    self.owners.append((job, n))
        return painted

    def place(self, index: int, _: np.ndarray) -> None:
        owner = self.owners[index]
        if owner is None:
            return
        job, n = owner
        if job.masks is not None:
            with self.lock:
                job.pending[n] -= 1
                if job.pending[n]:
                    return  # the other of data / mask is still being decoded
        job.put(n, self.out, self.array.target, self.window, self.array.dtype)

    def result(self) -> np.ndarray:
        out = self.out
        if (self.y_step, self.x_step) != (1, 1):
            out = out[:, :: self.y_step, :: self.x_step]
        squeeze = tuple(axis for axis, k in enumerate(self.key) if not isinstance(k, slice))
        return out.squeeze(axis=squeeze) if squeeze else out


class _Job:
    """One member's part of a read: the source window ``needed`` under the target window,
    the same-lattice ``shift`` (a copy) or ``None`` (a warp), the rows of ``out``, and the
    decoded windows (``stack``) with the shared nearest index map when warped; ``masks``
    holds the records' internal mask windows (allocated by :meth:`mask_window`) and
    ``pending`` how many of each record's windows are not decoded yet."""

    __slots__ = (
        "coordinates", "fill", "masks", "member", "needed", "pending", "rows", "shift", "stack",
    )  # fmt: skip

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
        self.masks: np.ndarray | None = None
        self.pending: list[int] = []

    def mask_window(self, n: int) -> np.ndarray:
        """The buffer record ``n``'s internal mask window decodes into (all ones — every
        pixel valid — for the records without a mask)."""
        if self.masks is None:
            self.masks = np.full(self.stack.shape, 255, np.uint8)
            self.pending = [1] * len(self.rows)
        self.pending[n] += 1
        return self.masks[n]

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

    def prepare(self, target: GridSpec, window: Window, maps: WarpMaps) -> None:
        """The nearest index map, derived before the read (shared by the members on one
        grid and the dataset's bands), so the decode threads only gather."""
        if self.shift is None and self.member.resampling == "nearest":
            self.coordinates = maps.nearest(self.member.grid, target, window, self.needed)

    def put(
        self, n: int, out: np.ndarray, target: GridSpec, window: Window, dtype: np.dtype
    ) -> None:
        """Record ``n`` of the stack (decoded) onto its row of ``out``."""
        member, needed, k = self.member, self.needed, self.rows[n]
        data = self.stack[n : n + 1]
        internal = None if self.masks is None else self.masks[n : n + 1]
        if self.shift is not None:  # same lattice, but nodata, dtype or a mask: masked copy
            rows, cols = self._paste(window)
            dst = out[k, rows, cols]
            np.copyto(dst, data[0], casting="unsafe")
            valid = valid_mask(data[0], member.nodata)
            if internal is not None:
                kept = internal[0] != 0
                valid = kept if valid is None else valid & kept
            if valid is not None:  # the record's nodata becomes its fill in the output
                np.copyto(dst, self.fill, where=~valid, casting="unsafe")
            return
        if self.coordinates is not None and data.dtype == dtype:  # gathered into ``out``
            gather_nearest(
                data, self.coordinates, member.nodata, self.fill, out[k : k + 1], valid=internal
            )
            return
        scale = None if member.resampling == "nearest" else kernel_scale(member.grid, target)
        out[k] = warp_array(
            data, member.grid, target, resampling=member.resampling, src_nodata=member.nodata,
            nodata=self.fill, dtype=dtype, window=window,
            source_offset=(needed.row_off, needed.col_off), scale=scale,
            coordinates=self.coordinates, valid=None if internal is None else internal != 0,
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
