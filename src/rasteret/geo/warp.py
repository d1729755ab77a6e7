"""Reprojection and resampling onto a :class:`GridSpec` without GDAL: the array kernels.

Target pixel centres (or edges, for area kernels) are mapped to source pixel
coordinates with pyproj through GDAL's *approximate transformer*: along each target
row the first, middle and last points are transformed exactly and the row is linearly
interpolated when the middle point's error is at most ``error_threshold`` source pixels
(0.125, gdalwarp's default), else each half is treated the same way. Then the source is
gathered with a kernel of :mod:`rasteret.geo.resampling`.

:func:`warp_array` warps one block eagerly; :func:`rasteret.geo.lazy.warp` (exported as
``rasteret.geo.warp``) is the dask front end built on it: one coordinate task and one
warp task per target chunk (per chunk of the leading axes), a warp task depending only
on the source chunks its footprint (plus the kernel radius) touches.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rasteret.geo.grid import GridSpec
from rasteret.geo.resampling import (
    AREA_KERNELS,
    VALUE_PRESERVING,
    area_kernel,
    cast_output,
    check_resampling,
    point_kernel,
)
from rasteret.geo.transform import crs_equal, transform_points
from rasteret.geo.window import Window

#: gdalwarp's default error threshold of the approximate transformer (source pixels).
ERROR_THRESHOLD = 0.125
#: Default target chunk (rows, cols) of :func:`warp`.
DEFAULT_CHUNK = (1024, 1024)
_EXACT_BELOW = 5  # GDAL transforms segments of at most 5 points exactly


# -- coordinate mapping ------------------------------------------------------------------
def map_positions(
    source: GridSpec,
    target: GridSpec,
    cols: np.ndarray,
    rows: np.ndarray,
    *,
    error_threshold: float = ERROR_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel coordinates ``(sx, sy)`` (each ``(len(rows), len(cols))``) of the
    target pixel positions ``cols`` x ``rows`` (fractional; ``+0.5`` are centres).

    Same-CRS grids map exactly (an affine); otherwise rows are approximated as GDAL's
    approximate transformer does (``error_threshold`` 0 = every point exactly).
    Points outside the source CRS's domain come back as NaN.
    """
    cols = np.asarray(cols, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.float64)
    if crs_equal(source.crs, target.crs):
        cc, rr = np.meshgrid(cols, rows)
        return source.xy_to_pixel(*target.pixel_to_xy(cc, rr))

    def exact(c: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = target.pixel_to_xy(c, r)
        x, y = transform_points(x, y, target.crs, source.crs)
        sx, sy = source.xy_to_pixel(x, y)
        bad = ~(np.isfinite(sx) & np.isfinite(sy))
        sx[bad] = np.nan
        sy[bad] = np.nan
        return sx, sy

    n = cols.size
    out_x = np.full((rows.size, n), np.nan)
    out_y = np.full((rows.size, n), np.nan)
    if error_threshold <= 0 or n <= _EXACT_BELOW or rows.size == 0:
        cc, rr = np.meshgrid(cols, rows)
        return exact(cc, rr)
    idx = np.array([0, (n - 1) // 2, n - 1])
    sme = exact(np.broadcast_to(cols[idx], (rows.size, 3)), rows[:, None] + np.zeros(3))
    _approx_segment(
        exact, cols, rows, np.arange(rows.size), 0, n, sme, error_threshold, out_x, out_y
    )
    return out_x, out_y


def _approx_segment(exact, cols, rows, which, start, length, sme, threshold, out_x, out_y):
    """GDAL's ``GDALApproxTransformInternal`` on points ``[start, start+length)`` of rows
    ``which``, vectorised across rows. ``sme`` = exact (start, middle, end) per row."""
    mid_n = (length - 1) // 2
    end = start + length - 1
    mid = start + mid_n
    span = cols[end] - cols[start]
    smx, smy = sme
    dxs = (smx[:, 2] - smx[:, 0]) / span
    dys = (smy[:, 2] - smy[:, 0]) / span
    mdist = cols[mid] - cols[start]
    error = np.abs(smx[:, 0] + dxs * mdist - smx[:, 1]) + np.abs(
        smy[:, 0] + dys * mdist - smy[:, 1]
    )
    good = error <= threshold  # NaN errors (failed points) go to the exact branch below
    if good.any():
        rows_ok = which[good]
        dist = cols[start : end + 1] - cols[start]
        out_x[rows_ok, start : end + 1] = smx[good, 0:1] + dxs[good, None] * dist
        out_y[rows_ok, start : end + 1] = smy[good, 0:1] + dys[good, None] * dist
    bad = ~good
    if not bad.any():
        return
    which_bad = which[bad]
    for s, n in ((start, mid_n), (mid, length - mid_n)):
        if n <= 0:
            continue
        seg = slice(s, s + n)
        if n <= _EXACT_BELOW or np.isnan(error[bad]).any():
            cc = np.broadcast_to(cols[seg], (which_bad.size, n))
            rr = np.broadcast_to(rows[which_bad, None], (which_bad.size, n))
            ex, ey = exact(cc, rr)
            out_x[which_bad, seg] = ex
            out_y[which_bad, seg] = ey
            continue
        idx = np.array([s, s + (n - 1) // 2, s + n - 1])
        sub = exact(
            np.broadcast_to(cols[idx], (which_bad.size, 3)),
            np.broadcast_to(rows[which_bad, None], (which_bad.size, 3)),
        )
        _approx_segment(exact, cols, rows, which_bad, s, n, sub, threshold, out_x, out_y)


def source_coordinates(
    source: GridSpec,
    target: GridSpec,
    window: Window | None = None,
    *,
    error_threshold: float = ERROR_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel coordinates ``(sx, sy)`` of the target pixel centres in ``window``."""
    window = window or Window(0, 0, *target.shape)
    cols = window.col_off + np.arange(window.width) + 0.5
    rows = window.row_off + np.arange(window.height) + 0.5
    return map_positions(source, target, cols, rows, error_threshold=error_threshold)


def corner_coordinates(
    source: GridSpec, target: GridSpec, window: Window, error_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per target pixel, the source pixel coordinates ``x0, x1, y0, y1`` of its top-left
    and bottom-right corners, each mapped as its own row of points (as GDAL's
    ``GWKAverageOrModeThread`` transforms ``(iDstX, iDstY)`` and ``(iDstX+1, iDstY+1)``)."""
    cols = window.col_off + np.arange(window.width, dtype=np.float64)
    rows = window.row_off + np.arange(window.height, dtype=np.float64)
    x0, y0 = map_positions(source, target, cols, rows, error_threshold=error_threshold)
    x1, y1 = map_positions(source, target, cols + 1.0, rows + 1.0, error_threshold=error_threshold)
    return x0, x1, y0, y1


def kernel_scale(source: GridSpec, target: GridSpec) -> tuple[float, float]:
    """The kernel scale per axis (< 1 widens bilinear / cubic kernels), as GDAL's warper
    computes it: target size ÷ the size of the source window the target maps to (the
    bounding box of the mapped target edges, clipped to the source), so a target rotated
    against the source (another UTM zone) counts as slightly downsampled, exactly as in
    ``gdalwarp``. :func:`resolution_scale` is the pixel-size ratio."""
    h, w = target.shape
    steps = 21  # GDAL's ComputeSourceWindow samples 21 points per edge
    cols = np.linspace(0.0, w, steps)
    rows = np.linspace(0.0, h, steps)
    sx, sy = map_positions(source, target, cols, rows, error_threshold=0)
    ok = np.isfinite(sx) & np.isfinite(sy)
    if not ok.any():
        return 1.0, 1.0
    height, width = source.shape
    x0 = max(0, math.floor(float(sx[ok].min())))
    x1 = min(width, math.ceil(float(sx[ok].max())))
    y0 = max(0, math.floor(float(sy[ok].min())))
    y1 = min(height, math.ceil(float(sy[ok].max())))
    xs = w / (x1 - x0) if x1 > x0 else 1.0
    ys = h / (y1 - y0) if y1 > y0 else 1.0
    return float(xs), float(ys)


def resolution_scale(source: GridSpec, target: GridSpec) -> tuple[float, float]:
    """Target-to-source pixel size ratio per axis (< 1 when the target is coarser): from
    the mapped size of the target extent, independent of rotation (overview choice)."""
    h, w = target.shape
    cols = np.array([0.0, w / 2, w])
    rows = np.array([0.0, h / 2, h])
    sx, sy = map_positions(source, target, cols, rows, error_threshold=0)
    width = np.nanmax(np.hypot(sx[:, 2] - sx[:, 0], sy[:, 2] - sy[:, 0]))
    height = np.nanmax(np.hypot(sx[2] - sx[0], sy[2] - sy[0]))
    xs = w / width if np.isfinite(width) and width > 0 else 1.0
    ys = h / height if np.isfinite(height) and height > 0 else 1.0
    return float(xs), float(ys)


def source_window(
    source: GridSpec,
    target: GridSpec,
    window: Window | None = None,
    *,
    resampling: str = "nearest",
    error_threshold: float = ERROR_THRESHOLD,
) -> Window | None:
    """The source pixels needed to fill ``window`` of ``target`` (``None``: none).

    The target window's pixel edges are mapped on a mesh (every 16 pixels and the
    edges), padded by the kernel radius and clipped to the source. Results are cached
    per (grids, window, resampling): a lazy read asks once per band and chunk.
    """
    resampling = check_resampling(resampling)
    window = window or Window(0, 0, *target.shape)
    return _source_window(source, target, window, resampling, error_threshold)


@functools.lru_cache(maxsize=512)
def _source_window(
    source: GridSpec, target: GridSpec, window: Window, resampling: str, error_threshold: float
) -> Window | None:
    cols = np.unique(np.r_[np.arange(window.width, step=16), window.width]) + window.col_off
    rows = np.unique(np.r_[np.arange(window.height, step=16), window.height]) + window.row_off
    sx, sy = map_positions(
        source, target, cols.astype(float), rows.astype(float), error_threshold=0
    )
    ok = np.isfinite(sx) & np.isfinite(sy)
    if not ok.any():
        return None
    pad = 1
    if resampling in ("bilinear", "cubic"):
        xs, ys = kernel_scale(source, target)
        radius = 1 if resampling == "bilinear" else 2
        pad = 1 + math.ceil(radius / min(1.0, xs if xs < 0.95 else 1.0, ys if ys < 0.95 else 1.0))
    c0 = math.floor(sx[ok].min()) - pad
    c1 = math.ceil(sx[ok].max()) + pad
    r0 = math.floor(sy[ok].min()) - pad
    r1 = math.ceil(sy[ok].max()) + pad
    found = Window(r0, c0, r1 - r0, c1 - c0).intersection(Window(0, 0, *source.shape))
    return None if found.is_empty else found


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


@dataclass(frozen=True)
class NearestIndex:
    """The nearest-neighbour map of a target window into a source crop, computed once
    and shared by every band warped with it (:func:`nearest_index`): the flat index of
    each target pixel's source pixel in a ``(height, width)`` crop and whether the
    centre falls inside it; ``sx`` / ``sy`` (relative to the crop) for other kernels.
    ``block`` is set when the map is a plain offset (:class:`OffsetBlock`)."""

    index: np.ndarray
    inside: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    crop_shape: tuple[int, int]
    block: OffsetBlock | None = None


@dataclass(frozen=True)
class OffsetBlock:
    """A nearest map that is a plain offset: the target pixels ``[rows, cols]`` take the
    crop's pixels ``[src_rows, src_cols]`` one for one (same CRS and pixel size, shifted
    by less than half a pixel or a whole number of pixels); every other target pixel
    falls outside the crop. A copy of a block instead of a gather per pixel."""

    rows: slice
    cols: slice
    src_rows: slice
    src_cols: slice

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the copied block."""
        return self.rows.stop - self.rows.start, self.cols.stop - self.cols.start


def nearest_index(
    source: GridSpec,
    target: GridSpec,
    window: Window,
    crop: Window,
    error_threshold: float = ERROR_THRESHOLD,
) -> NearestIndex:
    """The :class:`NearestIndex` of ``window`` (target pixels) into ``crop`` (source
    pixels)."""
    from rasteret.geo.resampling import centre_pixel

    separable = separable_nearest_index(source, target, window, crop)
    if separable is not None:
        return separable
    sx, sy = source_coordinates(source, target, window, error_threshold=error_threshold)
    sx, sy = sx - crop.col_off, sy - crop.row_off
    iy, ix, inside = centre_pixel(sx, sy, crop.height, crop.width)
    return NearestIndex(iy * crop.width + ix, inside, sx, sy, (crop.height, crop.width))


#: Target rows mapped per step of :func:`nearest_flat_index`: its temporaries stay
#: small (reused, not first-touched memory) whatever the size of the target.
INDEX_ROWS = 64


def nearest_flat_index(
    source: GridSpec, target: GridSpec, window: Window, crop: Window
) -> tuple[np.ndarray, np.ndarray]:
    """``(index, inside)`` of :func:`nearest_index` (same values) without the source
    coordinates, mapped :data:`INDEX_ROWS` target rows at a time (GDAL's approximate
    transformer works row by row, so the rows come out the same)."""
    from rasteret.geo.resampling import centre_pixel

    index = np.empty(window.shape, dtype=np.intp)
    inside = np.empty(window.shape, dtype=bool)
    for r0 in range(0, window.height, INDEX_ROWS):
        rows = Window(
            window.row_off + r0, window.col_off, min(INDEX_ROWS, window.height - r0), window.width
        )
        sx, sy = source_coordinates(source, target, rows)
        sx -= crop.col_off
        sy -= crop.row_off
        iy, ix, ok = centre_pixel(sx, sy, crop.height, crop.width)
        part = index[r0 : r0 + rows.height]
        np.multiply(iy, crop.width, out=part)
        part += ix
        inside[r0 : r0 + rows.height] = ok
    return index, inside


def separable_nearest_index(
    source: GridSpec, target: GridSpec, window: Window, crop: Window
) -> NearestIndex | None:
    """:func:`nearest_index` from one row and one column of coordinates, when ``source``
    and ``target`` share a CRS and neither grid is rotated: each source column then
    depends on the target column only (and rows on rows), so the map is an outer
    combination of two 1-D maps — the same index, computed with the same floating-point
    operations per axis, instead of a transform per pixel. ``None`` otherwise."""
    axes = _separable_axes(source, target, window, crop)
    if axes is None:
        return None
    (iy, inside_y, sy), (ix, inside_x, sx) = axes
    inside = inside_y[:, None] & inside_x[None, :]
    index = np.where(inside, iy[:, None] * crop.width + ix[None, :], 0)
    shape = (window.height, window.width)
    return NearestIndex(
        index,
        inside,
        np.broadcast_to(sx[None, :], shape),
        np.broadcast_to(sy[:, None], shape),
        (crop.height, crop.width),
        _offset_block(axes),
    )


def offset_block(
    source: GridSpec, target: GridSpec, window: Window, crop: Window
) -> OffsetBlock | None:
    """The :class:`OffsetBlock` of :func:`separable_nearest_index` (``None`` when the
    map is no plain offset) from the two 1-D maps alone: no per-pixel arrays."""
    axes = _separable_axes(source, target, window, crop)
    return None if axes is None else _offset_block(axes)


_Axis = tuple[np.ndarray, np.ndarray, np.ndarray]  # source index, inside, source position


def _separable_axes(
    source: GridSpec, target: GridSpec, window: Window, crop: Window
) -> tuple[_Axis, _Axis] | None:
    """The nearest map's row and column axes (``(index, inside, position)`` each) when
    it is separable (one CRS, no rotation); ``None`` otherwise."""
    from rasteret.geo.resampling import centre_pixel

    if any((target.transform[1], target.transform[3], source.transform[1], source.transform[3])):
        return None
    if not crs_equal(source.crs, target.crs):
        return None
    cols = window.col_off + np.arange(window.width) + 0.5
    rows = window.row_off + np.arange(window.height) + 0.5
    # the affine path of map_positions, one axis at a time (the other axis's term is 0)
    x, _ = target.pixel_to_xy(cols, np.zeros_like(cols))
    _, y = target.pixel_to_xy(np.zeros_like(rows), rows)
    sx, _ = source.xy_to_pixel(x, np.zeros_like(x))
    _, sy = source.xy_to_pixel(np.zeros_like(y), y)
    sx, sy = sx - crop.col_off, sy - crop.row_off
    _, ix, inside_x = centre_pixel(sx, np.zeros_like(sx), 1, crop.width)
    iy, _, inside_y = centre_pixel(np.zeros_like(sy), sy, crop.height, 1)
    return (iy, inside_y, sy), (ix, inside_x, sx)


def _offset_block(axes: tuple[_Axis, _Axis]) -> OffsetBlock | None:
    (iy, inside_y, _), (ix, inside_x, _) = axes
    rows, cols = _consecutive_run(iy, inside_y), _consecutive_run(ix, inside_x)
    if rows is None or cols is None:
        return None
    return OffsetBlock(rows[0], cols[0], rows[1], cols[1])


def _consecutive_run(index: np.ndarray, inside: np.ndarray) -> tuple[slice, slice] | None:
    """``(target slice, source slice)`` when the inside positions of a 1-D nearest map
    are one run of target positions taking consecutive source positions; else ``None``."""
    where = np.flatnonzero(inside)
    if where.size == 0 or where[-1] - where[0] + 1 != where.size:
        return None
    taken = index[where[0] : where[-1] + 1]
    first = int(taken[0])
    if not np.array_equal(taken, np.arange(first, first + taken.size)):
        return None
    return slice(int(where[0]), int(where[-1]) + 1), slice(first, first + taken.size)


def _gather_nearest(
    flat: np.ndarray, sx: np.ndarray, sy: np.ndarray, src_nodata: float | None, fill: float
) -> np.ndarray:
    """Nearest warp of ``flat`` ``(n, H, W)`` as one gather per step through a flat index
    (no fancy indexing, no source-sized mask): the values, ``fill`` where the centre falls
    outside or the gathered value is invalid, exactly as the general path gives them."""
    from rasteret.geo.resampling import centre_pixel

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
    from rasteret.geo.resampling import keep_off_nodata

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
    from rasteret.geo.resampling import keep_off_nodata

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
    "ERROR_THRESHOLD",
    "NearestIndex",
    "corner_coordinates",
    "gather_nearest",
    "kernel_scale",
    "map_positions",
    "nearest_index",
    "output_nodata",
    "source_coordinates",
    "source_window",
    "valid_mask",
    "warp_array",
]
