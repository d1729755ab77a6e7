"""Reprojection and resampling onto a :class:`GridSpec` without GDAL: the array kernels.

Target pixel centres (or edges, for area kernels) are mapped to source pixel
coordinates (:mod:`rasteret.geo.coords`: GDAL's approximate transformer), then the
source is gathered with a kernel of :mod:`rasteret.geo.kernels`, or through a
nearest-neighbour map computed once per (source grid, target window)
(:mod:`rasteret.geo.nearest`).

:func:`warp_array` warps one block eagerly; :func:`rasteret.geo.lazy.warp` (exported as
``rasteret.geo.warp``) is the dask front end built on it: one coordinate task and one
warp task per target chunk (per chunk of the leading axes), a warp task depending only
on the source chunks its footprint (plus the kernel radius) touches.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rasteret.geo.coords import (
    ERROR_THRESHOLD,
    corner_coordinates,
    kernel_scale,
    source_coordinates,
)
from rasteret.geo.grid import GridSpec
from rasteret.geo.kernels import area_kernel, point_kernel
from rasteret.geo.nearest import NearestIndex
from rasteret.geo.resampling import (
    AREA_KERNELS,
    VALUE_PRESERVING,
    cast_output,
    centre_pixel,
    check_resampling,
    keep_off_nodata,
)
from rasteret.geo.window import Window

#: Default target chunk (rows, cols) of :func:`warp`.
DEFAULT_CHUNK = (1024, 1024)


# -- eager warp of one block -------------------------------------------------------------
def valid_mask(data: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """``True`` where ``data`` holds a value (not ``nodata``, not NaN); ``None``: all valid."""
    mask = None
    if data.dtype.kind == "f":
        mask = ~np.isnan(data)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        hit = data != np.asarray(nodata).astype(data.dtype)
        mask = hit if mask is None else mask & hit
    return mask


def output_nodata(dtype: np.dtype, nodata: float | None, src_nodata: float | None) -> float:
    """The fill of invalid target pixels: ``nodata``, else the source's, else NaN / 0."""
    if nodata is not None:
        return nodata
    if src_nodata is not None:
        return src_nodata
    return float("nan") if np.dtype(dtype).kind in "fc" else 0


def warp_array(
    data: np.ndarray,
    source: GridSpec,
    target: GridSpec,
    *,
    resampling: str = "nearest",
    src_nodata: float | None = None,
    nodata: float | None = None,
    dtype: Any = None,
    valid: np.ndarray | None = None,
    window: Window | None = None,
    source_offset: tuple[int, int] = (0, 0),
    error_threshold: float = ERROR_THRESHOLD,
    scale: tuple[float, float] | None = None,
    coordinates: tuple[np.ndarray, ...] | None = None,
) -> np.ndarray:
    """Warp ``data`` (``(..., H, W)`` on ``source``) onto ``window`` of ``target``, eagerly.

    ``data`` may be a crop of the source grid starting at pixel ``source_offset``
    (row, col). ``valid`` is an extra validity mask (e.g. an internal mask), combined with
    ``src_nodata`` / NaN. Invalid target pixels get ``nodata`` (default: ``src_nodata``,
    else NaN for floats, 0 for integers). ``dtype`` defaults to the source dtype (results
    of bilinear/cubic/average are rounded half up and clamped for integer dtypes).
    ``coordinates`` are precomputed source coordinates of ``window`` (``(sx, sy)``, or
    the corners for area kernels), or a :class:`NearestIndex` into exactly ``data``'s
    crop, shared by every band warped on the same grids.
    """
    resampling = check_resampling(resampling)
    window = window or Window(0, 0, *target.shape)
    data = np.asarray(data)
    lead = data.shape[:-2]
    flat = data.reshape((-1, *data.shape[-2:]))
    out_dtype = np.dtype(dtype) if dtype is not None else flat.dtype
    fill = output_nodata(out_dtype, nodata, src_nodata)
    row0, col0 = source_offset
    if isinstance(coordinates, NearestIndex):  # shared map of this crop: no re-derivation
        if flat.shape[-2:] != coordinates.crop_shape:
            raise ValueError(
                f"data of shape {flat.shape[-2:]} is not the crop {coordinates.crop_shape} "
                "its NearestIndex maps into"
            )
        if resampling == "nearest" and valid is None and flat.dtype == out_dtype:
            out = _gather_index(flat, coordinates.index, coordinates.inside, src_nodata, fill)
            return out.reshape((*lead, window.height, window.width))
        coordinates, row0, col0 = (coordinates.sx, coordinates.sy), 0, 0
    if resampling == "nearest" and valid is None and flat.dtype == out_dtype:
        sx, sy = coordinates or source_coordinates(
            source, target, window, error_threshold=error_threshold
        )
        out = _gather_nearest(flat, sx - col0, sy - row0, src_nodata, fill)
        return out.reshape((*lead, window.height, window.width))
    mask = valid_mask(flat, src_nodata)
    if valid is not None:
        extra = np.broadcast_to(np.asarray(valid, bool), data.shape).reshape(flat.shape)
        mask = extra if mask is None else mask & extra
    if resampling in AREA_KERNELS:
        x0, x1, y0, y1 = coordinates or corner_coordinates(source, target, window, error_threshold)
        if scale is None:
            scale = kernel_scale(source, target)
        values, ok = area_kernel(
            resampling, flat, mask, x0, x1, y0, y1,
            source_shape=source.shape, origin=(row0, col0), scale=scale,
        )  # fmt: skip
    else:
        sx, sy = coordinates or source_coordinates(
            source, target, window, error_threshold=error_threshold
        )
        if scale is None:
            scale = kernel_scale(source, target) if resampling != "nearest" else (1.0, 1.0)
        values, ok = point_kernel(resampling, flat, mask, sx - col0, sy - row0, scale=scale)
    if resampling in VALUE_PRESERVING and values.dtype != out_dtype and out_dtype.kind in "ui":
        values = np.where(ok, values, 0)  # exact source values: no rounding needed
    out = cast_output(values, ok, out_dtype, fill)
    return out.reshape((*lead, window.height, window.width))


def _gather_nearest(
    flat: np.ndarray, sx: np.ndarray, sy: np.ndarray, src_nodata: float | None, fill: float
) -> np.ndarray:
    """Nearest warp of ``flat`` ``(n, H, W)`` as one gather per step through a flat index
    (no fancy indexing, no source-sized mask): the values, ``fill`` where the centre falls
    outside or the gathered value is invalid, exactly as the general path gives them."""
    _, height, width = flat.shape
    iy, ix, inside = centre_pixel(sx, sy, height, width)
    return _gather_index(flat, iy * width + ix, inside, src_nodata, fill)


def gather_nearest(
    data: np.ndarray,
    nearest: NearestIndex,
    src_nodata: float | None,
    fill: float,
    out: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """The nearest warp of ``data`` ``(n, H, W)`` (the crop ``nearest`` maps into, in the
    output dtype) through its shared index map, written into ``out`` ``(n, h, w)`` when
    given (no allocation): equal to :func:`warp_array` with ``resampling="nearest"``.
    ``valid`` (``(n, H, W)``, non-zero where a source pixel has data: an internal mask)
    invalidates pixels besides ``src_nodata`` / NaN, as ``warp_array``'s ``valid``."""
    if data.shape[-2:] != nearest.crop_shape:
        raise ValueError(f"data of shape {data.shape[-2:]} is not the crop {nearest.crop_shape}")
    if valid is not None and valid.shape != data.shape:
        raise ValueError(f"validity of shape {valid.shape} is not the data's {data.shape}")
    if nearest.block is not None:
        return _copy_offset_block(data, nearest, src_nodata, fill, out, valid)
    return _gather_index(data, nearest.index, nearest.inside, src_nodata, fill, out, valid)


def _copy_offset_block(
    data: np.ndarray,
    nearest: NearestIndex,
    src_nodata: float | None,
    fill: float,
    out: np.ndarray | None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`gather_nearest` of a map that is a plain offset: a block copy, the same
    validity and fill as the gather."""
    block = nearest.block
    assert block is not None
    n = data.shape[0]
    if out is None:
        out = np.empty((n, *nearest.index.shape), data.dtype)
    inner = (block.rows, block.cols)
    for k in range(n):
        step = out[k]
        if block.shape != step.shape:
            step.fill(fill)  # outside the crop: nothing to copy
        values = step[inner]
        np.copyto(values, data[k, block.src_rows, block.src_cols])
        ok = valid_mask(values, src_nodata)
        if valid is not None:
            kept = valid[k, block.src_rows, block.src_cols] != 0
            ok = kept if ok is None else ok & kept
        keep_off_nodata(values, np.ones(values.shape, bool) if ok is None else ok, fill)
        if ok is not None:
            np.copyto(values, fill, where=~ok, casting="unsafe")
    return out


def _gather_index(
    flat: np.ndarray,
    index: np.ndarray,
    inside: np.ndarray,
    src_nodata: float | None,
    fill: float,
    out: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    n = flat.shape[0]
    if out is None:
        out = np.empty((n, *index.shape), flat.dtype)
    ok = np.empty(index.shape, bool)
    for k in range(n):
        step = out[k]
        np.take(np.ascontiguousarray(flat[k]).reshape(-1), index, out=step, mode="clip")
        gathered = valid_mask(step, src_nodata)
        if gathered is None:
            np.copyto(ok, inside)
        else:
            np.logical_and(gathered, inside, out=ok)
        if valid is not None:
            kept = np.take(np.ascontiguousarray(valid[k]).reshape(-1), index, mode="clip")
            np.logical_and(ok, kept != 0, out=ok)
        keep_off_nodata(step, ok, fill)
        np.copyto(step, fill, where=~ok, casting="unsafe")
    return out


__all__ = [
    "DEFAULT_CHUNK",
    "gather_nearest",
    "output_nodata",
    "valid_mask",
    "warp_array",
]
