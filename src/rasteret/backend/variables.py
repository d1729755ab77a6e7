"""The engine's variables: one group of the store as raw (CF-encoded) xarray variables.

What xarray's Zarr backend would produce from the store's ``zarr.json`` documents, built
from the layout directly: coordinates ``x`` / ``y`` (pixel centres), ``time`` (int64
microseconds, CF-encoded), ``id`` and ``spatial_ref``, and one lazily indexed variable
per array whose reads go through :mod:`rasteret.store.window_read` (all tiles of one
indexing call in one concurrent batch, decoded in parallel, copied straight into the
result) instead of zarr's per-chunk machinery — so the engine neither depends on nor
changes zarr's process-wide ``async.concurrency``. Attributes are the store's, so
``xr.open_zarr(store)`` and the engine agree; ``encoding`` carries ``chunks`` (one
tile), ``preferred_chunks`` and the Zarr ``fill_value``, never the TIFF codec (so a
result can be written with ``to_zarr`` / ``to_netcdf``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from rasteret.geo.window import Window
from rasteret.store.coords import coordinate_arrays
from rasteret.store.metadata import array_document, fill_value, group_attributes
from rasteret.store.window_read import ArrayWindow, read_array_windows_sync

if TYPE_CHECKING:
    from rasteret.store.layout import ArrayLayout, GroupLayout
    from rasteret.store.tiles import TileStore


class TileBackendArray(BackendArray):
    """One store array ``(time, y, x)``; indexing reads the tiles it touches."""

    def __init__(self, store: TileStore, path: str, array: ArrayLayout) -> None:
        self.store = store
        self.path = path
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        return read_stack(self.store, self.path, list(range(self.shape[0])), key, self.dtype)


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
    y0, y1, y_step = _span(y_key, height)
    x0, x1, x_step = _span(x_key, width)
    window = Window(y0, x0, max(0, y1 - y0), max(0, x1 - x0))
    requests = [ArrayWindow(path, t, window) for t in times]
    arrays = read_array_windows_sync(store.layout, store.reader, requests) if requests else []
    out = np.stack(arrays) if arrays else np.empty((0, window.height, window.width), dtype)
    if (y_step, x_step) != (1, 1):
        out = out[:, ::y_step, ::x_step]
    squeeze = tuple(axis for axis, k in enumerate(key) if not isinstance(k, slice))
    return out.squeeze(axis=squeeze) if squeeze else out


def _span(key: Any, size: int) -> tuple[int, int, int]:
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


def group_variables(
    store: TileStore, path: str, group: GroupLayout, chunk_bytes: int
) -> tuple[dict[str, xr.Variable], dict[str, Any]]:
    """Raw variables and attributes of group ``path`` (decode them with xarray's
    ``decode_cf_variables``); ``preferred_chunks`` of about ``chunk_bytes``."""
    from rasteret.backend.chunks import preferred_chunks

    variables = {
        name: xr.Variable(dims, values, attrs)
        for name, (dims, values, attrs) in coordinate_arrays(group).items()
    }
    georeferenced = "spatial_ref" in variables
    for name, array in group.arrays.items():
        attrs = dict(array_document(array, georeferenced=georeferenced)["attributes"])
        dtype = np.dtype(array.dtype)
        fill, _ = fill_value(array.nodata, dtype)
        if "_FillValue" in attrs:
            attrs["_FillValue"] = fill
        lazy = indexing.LazilyIndexedArray(TileBackendArray(store, f"{path}/{name}", array))
        encoding = {
            "chunks": tuple(array.chunk_shape),
            "preferred_chunks": preferred_chunks(array, chunk_bytes),
            "fill_value": dtype.type(fill),
        }
        variables[name] = xr.Variable(("time", "y", "x"), lazy, attrs, encoding)
    return variables, group_attributes(group)
