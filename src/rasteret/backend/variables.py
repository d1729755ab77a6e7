"""The engine's variables: one group of the store as raw (CF-encoded) xarray variables.

Built from the layout directly: coordinates ``x`` / ``y`` (pixel centres), ``time``
(int64 microseconds, CF-encoded), ``id`` and ``spatial_ref``, and one lazily indexed
variable per band — all arrays of a split band together (:mod:`rasteret.store.bands`)
— whose reads go through :mod:`rasteret.store.window_read` (all tiles of one indexing
call in one concurrent batch, decoded in parallel, copied straight into the result)
instead of zarr's per-chunk machinery — so the engine neither depends on nor
changes zarr's process-wide ``async.concurrency``. CF packing is never left in
``attrs`` of raw values (xarray keeps attrs through arithmetic, so a derived float
written with ``to_zarr`` would be re-scaled or masked on reading): nodata is the
``nodata`` attribute (what rioxarray and odc-stac read; an ``encoding["_FillValue"]``
would tell rioxarray the values were masked to NaN), scale / offset are coordinates;
``encoding`` also carries ``chunks`` (one tile) and ``preferred_chunks``, never the TIFF
codec (so a result can be written with ``to_zarr`` / ``to_netcdf``).

Band variables also implement xarray's asynchronous indexing (``async_getitem``), so
``await ds.load_async()`` reads on the caller's event loop without blocking it: the
fetch layer keeps its state (coalescing, in-flight limit) per event loop, and decoding
runs in the decode pool, so two datasets awaited together overlap their requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from rasteret._pages import small_pages
from rasteret.backend.chunks import preferred_chunks
from rasteret.geo.window import Window
from rasteret.store.bands import band_stacks, decode_records, radiometry_coordinates
from rasteret.store.coords import coordinate_arrays
from rasteret.store.metadata import array_document, fill_value, group_attributes
from rasteret.store.window_read import (
    ArrayWindow,
    read_array_windows,
    read_array_windows_sync,
)

if TYPE_CHECKING:
    from rasteret.store.bands import BandStack
    from rasteret.store.layout import ArrayLayout, GroupLayout
    from rasteret.store.tiles import TileStore


class TileBackendArray(BackendArray):
    """One band of a group ``(time, y, x)`` (all its arrays); indexing reads the tiles it
    touches. ``decoded``: each record's nodata → NaN and its scale / offset applied, and
    NaN where its internal mask (the stack ``mask``, read in the same batch) clears."""

    def __init__(
        self,
        store: TileStore,
        stack: BandStack,
        *,
        decoded: bool = False,
        mask: BandStack | None = None,
    ) -> None:
        self.store = store  # pickles by reference
        self.group = stack.group
        self.name = stack.name
        self.mask_name = None if mask is None else mask.name
        self._stack: BandStack | None = stack
        self._mask: BandStack | None = mask
        self.decoded = decoded
        self.shape = tuple(stack.shape)
        self.dtype = stack.decoded_dtype() if decoded else stack.dtype

    @property
    def stack(self) -> BandStack:
        """The band's arrays (rebuilt from the store's layout after unpickling)."""
        if self._stack is None:
            group = self.store.layout.groups[self.group]
            self._stack = band_stacks(group, self.group)[self.name]
        return self._stack

    @property
    def mask(self) -> BandStack | None:
        """The band's internal mask stack (rebuilt from the layout after unpickling)."""
        if self._mask is None and self.mask_name is not None:
            group = self.store.layout.groups[self.group]
            self._mask = band_stacks(group, self.group)[self.mask_name]
        return self._mask

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_stack"] = None  # the layout travels with the store's reference, not here
        state["_mask"] = None
        return state

    @small_pages
    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    async def async_getitem(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        """``__getitem__`` on the caller's event loop (xarray's ``load_async``): the tiles
        are fetched there, decoded in the decode pool, and the loop stays free meanwhile,
        so concurrent ``load_async`` calls overlap their I/O."""
        return await indexing.async_explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read_async
        )

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        return read_band(self.store, self.stack, key, decoded=self.decoded, mask=self.mask)

    async def _read_async(self, key: tuple[Any, ...]) -> np.ndarray:
        return await read_band_async(
            self.store, self.stack, key, decoded=self.decoded, mask=self.mask
        )


def read_band(
    store: TileStore,
    stack: BandStack,
    key: tuple[Any, ...],
    *,
    decoded: bool = False,
    mask: BandStack | None = None,
) -> np.ndarray:
    """``[t, rows, cols]`` (ints or forward slices) of a band: each time step read from the
    array that holds its record, every tile in one batch, in the stack's common dtype
    (``decoded``: float, each record's nodata / scale / offset applied, and NaN where its
    internal mask ``mask`` — read in the same batch — clears the pixel)."""
    read = _BandRead(stack, key, mask if decoded else None)
    results = (
        read_array_windows_sync(store.layout, store.reader, read.requests, outputs=read.outputs)
        if read.requests
        else []
    )
    return read.finish(results, decoded=decoded)


async def read_band_async(
    store: TileStore,
    stack: BandStack,
    key: tuple[Any, ...],
    *,
    decoded: bool = False,
    mask: BandStack | None = None,
) -> np.ndarray:
    """:func:`read_band` on the running event loop (no thread blocks while tiles are in
    flight)."""
    read = _BandRead(stack, key, mask if decoded else None)
    results = (
        await read_array_windows(store.layout, store.reader, read.requests, outputs=read.outputs)
        if read.requests
        else []
    )
    return read.finish(results, decoded=decoded)


class _BandRead:
    """The windows one indexing call of a band reads, and its output: the time steps'
    requests (decoded straight into ``out`` when an array has the stack's dtype)."""

    def __init__(
        self, stack: BandStack, key: tuple[Any, ...], mask: BandStack | None = None
    ) -> None:
        t_key, y_key, x_key = key
        steps = list(range(stack.shape[0]))
        self.stack = stack
        self.key = key
        self.times = steps[t_key] if isinstance(t_key, slice) else [steps[int(t_key)]]
        _, height, width = stack.shape
        y0, y1, self.y_step = index_span(y_key, height)
        x0, x1, self.x_step = index_span(x_key, width)
        window = Window(y0, x0, max(0, y1 - y0), max(0, x1 - x0))
        self.out = np.empty((len(self.times), window.height, window.width), stack.dtype)
        self.requests: list[ArrayWindow] = []
        self.outputs: list[np.ndarray | None] = []
        self.casts: list[tuple[int, int]] = []
        for k, t in enumerate(self.times):
            member = stack.member_of[t]
            if member < 0:
                self.out[k] = stack.raw_fill()
                continue
            array = stack.arrays[member]
            self.requests.append(ArrayWindow(stack.paths[member], t, window))
            if np.dtype(array.dtype) == stack.dtype:
                self.outputs.append(self.out[k])
            else:
                self.outputs.append(None)
                self.casts.append((k, len(self.requests) - 1))
        self.masks: list[tuple[int, int]] = []  # (row of out, request of its mask window)
        for k, t in enumerate(self.times if mask is not None else ()):
            member = mask.member_of[t]  # type: ignore[union-attr]
            if member >= 0 and stack.member_of[t] >= 0:
                self.requests.append(ArrayWindow(mask.paths[member], t, window))  # type: ignore[union-attr]
                self.outputs.append(None)
                self.masks.append((k, len(self.requests) - 1))

    def finish(self, results: list[np.ndarray], *, decoded: bool) -> np.ndarray:
        """The indexed values from the read ``results`` (one per request)."""
        out = self.out
        for k, r in self.casts:
            out[k] = results[r]
        if decoded:
            out = decode_records(out, self.stack, self.times, self.stack.decoded_dtype())
            for k, r in self.masks:  # the record's internal mask clears these pixels
                np.copyto(out[k], np.nan, where=results[r] == 0)
        if (self.y_step, self.x_step) != (1, 1):
            out = out[:, :: self.y_step, :: self.x_step]
        squeeze = tuple(axis for axis, k in enumerate(self.key) if not isinstance(k, slice))
        return out.squeeze(axis=squeeze) if squeeze else out


class TileSteps:
    """Time steps ``steps`` of a store array as a lazy array ``(len(steps), y, x)``: the
    source the target-grid warp slices per task (only the window it needs)."""

    def __init__(self, store: TileStore, path: str, array: ArrayLayout, steps: list[int]) -> None:
        self.store = store
        self.path = path
        self.steps = list(steps)
        self.shape = (len(self.steps), *array.shape[1:])
        self.dtype = np.dtype(array.dtype)
        self.ndim = 3

    @small_pages
    def __getitem__(self, key: tuple[Any, ...]) -> np.ndarray:
        return read_stack(self.store, self.path, self.steps, key, self.dtype)

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("rasteret.TileSteps", self.store.token, self.path, tuple(self.steps))


def read_stack(
    store: TileStore, path: str, steps: list[int], key: tuple[Any, ...], dtype: np.dtype
) -> np.ndarray:
    """``[t, rows, cols]`` (ints or forward slices) of array ``path`` whose time index ``k``
    is the store's time step ``steps[k]``: every tile of every step in one batch."""
    t_key, y_key, x_key = key
    times = steps[t_key] if isinstance(t_key, slice) else [steps[int(t_key)]]
    array = store.array(path)
    if array is None:
        raise KeyError(f"no array {path!r} in {store!r}")
    _, height, width = array.shape
    y0, y1, y_step = index_span(y_key, height)
    x0, x1, x_step = index_span(x_key, width)
    window = Window(y0, x0, max(0, y1 - y0), max(0, x1 - x0))
    requests = [ArrayWindow(path, t, window) for t in times]
    out = np.empty((len(requests), window.height, window.width), np.dtype(array.dtype))
    if requests:  # decoded straight into the stack (no per-step arrays, no copy)
        read_array_windows_sync(store.layout, store.reader, requests, outputs=list(out))
    if (y_step, x_step) != (1, 1):
        out = out[:, ::y_step, ::x_step]
    squeeze = tuple(axis for axis, k in enumerate(key) if not isinstance(k, slice))
    return out.squeeze(axis=squeeze) if squeeze else out


def index_span(key: Any, size: int) -> tuple[int, int, int]:
    """``(start, stop, step)`` of the rows an index reads (``stop`` exclusive, step > 0)."""
    if isinstance(key, slice):
        start, stop, step = key.indices(size)
        if step < 0:  # read forward, then reverse
            raise NotImplementedError("negative steps are applied by xarray, not the backend")
        if stop <= start:
            return start, start, 1
        last = start + ((stop - start - 1) // step) * step
        return start, last + 1, step
    index = int(key)
    return index, index + 1, 1


#: CF attributes that belong in ``encoding`` (or coordinates), never in raw ``attrs``.
_PACKING = ("_FillValue", "scale_factor", "add_offset")


def group_variables(
    store: TileStore,
    path: str,
    group: GroupLayout,
    chunk_bytes: int,
    *,
    mask_and_scale: bool = False,
) -> tuple[dict[str, xr.Variable], dict[str, Any]]:
    """Variables (one per band and kind: :mod:`rasteret.store.bands`) and attributes of
    group ``path``, to be decoded with xarray's ``decode_cf_variables``; ``preferred_chunks``
    of about ``chunk_bytes``.

    Raw (``mask_and_scale=False``): native values, the shared nodata as the ``nodata``
    attribute and scale / offset as coordinates, so nothing in ``attrs``
    re-scales or masks a derived result that is written out. ``mask_and_scale=True``:
    CF attributes that xarray decodes into ``encoding`` when every record shares them,
    else each record's own values applied here (float, no packing)."""
    variables = {
        name: xr.Variable(dims, values, attrs)
        for name, (dims, values, attrs) in coordinate_arrays(group).items()
    }
    georeferenced = "spatial_ref" in variables
    stacks = band_stacks(group, path)
    masks = {s.band: s for s in stacks.values() if s.kind == "mask"}
    for name, stack in stacks.items():
        document = array_document(stack.first, georeferenced=georeferenced)["attributes"]
        attrs = {k: v for k, v in document.items() if k not in _PACKING}
        attrs["records"] = stack.records
        same_nodata, nodata = stack.radiometry.uniform_nodata
        same_scaling, scale, offset = stack.radiometry.uniform_scaling
        fill, note = fill_value(nodata if same_nodata else None, stack.dtype)
        if note is not None and not same_nodata:
            attrs["rasteret_fill_value"] = "0 (records declare different nodata values)"
        elif note is not None:
            attrs["rasteret_fill_value"] = note
        encoding: dict[str, Any] = {
            "chunks": tuple(stack.first.chunk_shape),
            "preferred_chunks": preferred_chunks(stack.first, chunk_bytes),
        }
        mask = masks.get(stack.band) if stack.kind == "data" else None
        # an internal mask is applied here: xarray's CF decoding knows only nodata
        decoded = mask_and_scale and (mask is not None or not (same_nodata and same_scaling))
        backend = TileBackendArray(store, stack, decoded=decoded, mask=mask if decoded else None)
        if mask_and_scale and not decoded:  # xarray's CF decoding moves these to encoding
            if note is None:
                attrs["_FillValue"] = stack.dtype.type(fill)
            if scale is not None and scale != 1.0:
                attrs["scale_factor"] = scale
            if offset is not None and offset != 0.0:
                attrs["add_offset"] = offset
        elif not mask_and_scale:
            if note is None:
                attrs["nodata"] = stack.dtype.type(fill).item()
            for cname, (dims, values, cattrs) in radiometry_coordinates(stack).items():
                variables[cname] = xr.Variable(dims, values, cattrs)
                attrs["coordinates"] = f"{attrs.get('coordinates', '')} {cname}".strip()
        lazy = indexing.LazilyIndexedArray(backend)
        variables[name] = xr.Variable(("time", "y", "x"), lazy, attrs, encoding)
    return variables, group_attributes(group)
