"""Resampling kernels (vectorised numpy, no GDAL) used by :mod:`rasteret.geo.warp`.

Two families, both with GDAL's semantics:

* **point kernels** (``nearest``, ``bilinear``, ``cubic``) evaluate the source at the
  target pixel centre mapped into source pixel coordinates ``(sx, sy)``;
* **area kernels** (``average``, ``mode``, ``min``, ``max``, ``median``) reduce the source
  pixels covered by the target pixel's footprint ``[x0, x1) x [y0, y1)`` (source pixels).

Nodata never bleeds: invalid source pixels (nodata, NaN, masked) take no part in a
kernel and the weights of the valid ones are renormalised; a target pixel whose centre
falls on an invalid or outside source pixel, or whose kernel holds no valid pixel, is
invalid. Every function returns ``(values, ok)``: float64 values and a boolean validity.
"""

from __future__ import annotations

import math

import numpy as np

POINT_KERNELS = ("nearest", "bilinear", "cubic")
AREA_KERNELS = ("average", "mode", "min", "max", "median")
RESAMPLINGS = POINT_KERNELS + AREA_KERNELS
#: Resamplings that return one of the source values (integer data stays exact).
VALUE_PRESERVING = frozenset({"nearest", "mode", "min", "max", "median"})
#: GDAL's epsilon when flooring a source coordinate to a pixel index.
INDEX_EPSILON = 1e-10


def check_resampling(name: str) -> str:
    """``name`` lower-cased if it is a supported resampling, else a ``ValueError``."""
    value = str(name).lower()
    if value not in RESAMPLINGS:
        raise ValueError(f"unknown resampling {name!r}; use one of {', '.join(RESAMPLINGS)}")
    return value


def default_resampling(dtype: np.dtype | str, *, categorical: bool = False) -> str:
    """``nearest`` for categorical bands (and as GDAL's default for everything else)."""
    return "nearest"


def _bilinear_weight(d: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(d))


def _cubic_weight(d: np.ndarray) -> np.ndarray:
    """Keys cubic convolution with a = -0.5 (GDAL's ``cubic``)."""
    x = np.abs(d)
    x2 = x * x
    near = x2 * (1.5 * x - 2.5) + 1.0
    far = x2 * (-0.5 * x + 2.5) - 4.0 * x + 2.0
    return np.where(x <= 1.0, near, np.where(x <= 2.0, far, 0.0))


_KERNELS = {"bilinear": (1, _bilinear_weight), "cubic": (2, _cubic_weight)}


def centre_pixel(
    sx: np.ndarray, sy: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source pixel ``(row, col)`` holding each mapped centre and whether it is inside."""
    finite = np.isfinite(sx) & np.isfinite(sy)
    ix = np.floor(np.where(finite, sx, -1.0) + INDEX_EPSILON)
    iy = np.floor(np.where(finite, sy, -1.0) + INDEX_EPSILON)
    inside = finite & (sx >= 0) & (sy >= 0) & (ix < width) & (iy < height)
    return (
        np.where(inside, iy, 0).astype(np.intp),
        np.where(inside, ix, 0).astype(np.intp),
        inside,
    )


def point_kernel(
    name: str,
    data: np.ndarray,
    valid: np.ndarray | None,
    sx: np.ndarray,
    sy: np.ndarray,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``data`` ``(n, H, W)`` at source coordinates ``(sx, sy)`` (each ``(h, w)``).

    ``scale`` is the target/source size ratio per axis; below 0.95 (downsampling) the
    bilinear / cubic kernels widen by ``1 / scale`` as GDAL's do. Returns float64
    ``(n, h, w)`` values (native dtype for ``nearest``) and ``ok``.
    """
    n, height, width = data.shape
    iy, ix, inside = centre_pixel(sx, sy, height, width)
    ok = np.broadcast_to(inside, (n, *inside.shape))
    if valid is not None:
        ok = ok & valid[:, iy, ix]
    if name == "nearest":
        return data[:, iy, ix], ok
    radius, weight = _KERNELS[name]
    xs, ys = scale
    xs = 1.0 if xs >= 0.95 else xs
    ys = 1.0 if ys >= 0.95 else ys
    rx, ry = math.ceil(radius / xs), math.ceil(radius / ys)
    fx = np.where(inside, sx, 0.0) - 0.5
    fy = np.where(inside, sy, 0.0) - 0.5
    bx, by = np.floor(fx), np.floor(fy)
    dx, dy = fx - bx, fy - by
    bx, by = bx.astype(np.intp), by.astype(np.intp)
    total = np.zeros((n, *sx.shape), np.float64)
    weights = np.zeros_like(total)
    wx_all = [weight((k - dx) * xs) for k in range(-rx + 1, rx + 1)]
    wy_all = [weight((k - dy) * ys) for k in range(-ry + 1, ry + 1)]
    complete = np.ones((n, *sx.shape), bool)
    for jy, ky in enumerate(range(-ry + 1, ry + 1)):
        row = by + ky
        row_in = (row >= 0) & (row < height)
        row_c = np.clip(row, 0, height - 1)
        for jx, kx in enumerate(range(-rx + 1, rx + 1)):
            col = bx + kx
            w = wy_all[jy] * wx_all[jx]
            inside_k = row_in & (col >= 0) & (col < width)
            use = inside_k & (w != 0)
            col_c = np.clip(col, 0, width - 1)
            values = data[:, row_c, col_c]
            good = np.broadcast_to(use, values.shape)
            if valid is not None:
                good = good & valid[:, row_c, col_c]
            if name == "cubic":
                complete &= inside_k if valid is None else inside_k & valid[:, row_c, col_c]
            wg = np.where(good, w, 0.0)
            total += wg * np.where(good, values, 0)
            weights += wg
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weights
    ok = ok & (np.abs(weights) >= 1e-5)
    if name == "cubic" and (xs, ys) == (1.0, 1.0) and not complete.all():
        # as GDAL: a cubic kernel that touches an invalid or outside pixel falls back
        # to bilinear (so edges and nodata borders do not ring)
        linear, linear_ok = point_kernel("bilinear", data, valid, sx, sy)
        out = np.where(complete, out, linear)
        ok = np.where(complete, ok, linear_ok)
    return out, ok


def area_kernel(
    name: str,
    data: np.ndarray,
    valid: np.ndarray | None,
    x0: np.ndarray,
    x1: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce the source pixels under each target footprint ``[x0, x1) x [y0, y1)``.

    ``average`` weights each pixel by its covered fraction (exact means on aligned
    integer factors); ``mode``/``min``/``max``/``median`` use every pixel the footprint
    overlaps. ``median`` takes the lower middle value of an even count (as GDAL);
    ``mode`` breaks ties in favour of the value whose count reached the maximum first in
    row-major order (as GDAL). Returns ``(values, ok)`` with values ``(n, h, w)``.
    """
    n, height, width = data.shape
    finite = np.isfinite(x0) & np.isfinite(x1) & np.isfinite(y0) & np.isfinite(y1)
    x0 = np.clip(np.where(finite, x0, 0.0), 0, width)
    x1 = np.clip(np.where(finite, x1, 0.0), 0, width)
    y0 = np.clip(np.where(finite, y0, 0.0), 0, height)
    y1 = np.clip(np.where(finite, y1, 0.0), 0, height)
    c0 = np.floor(x0 + INDEX_EPSILON).astype(np.intp)
    c1 = np.ceil(x1 - INDEX_EPSILON).astype(np.intp)
    r0 = np.floor(y0 + INDEX_EPSILON).astype(np.intp)
    r1 = np.ceil(y1 - INDEX_EPSILON).astype(np.intp)
    has = finite & (c1 > c0) & (r1 > r0)
    kx = int(np.max(np.where(has, c1 - c0, 0), initial=0))
    ky = int(np.max(np.where(has, r1 - r0, 0), initial=0))
    shape = (n, *x0.shape)
    if kx == 0 or ky == 0:
        return np.zeros(shape), np.zeros(shape, bool)
    stack_values, stack_good, stack_weight = [], [], []
    for dy in range(ky):
        row = r0 + dy
        row_in = has & (row < r1)
        row_c = np.minimum(row, height - 1)
        wy = np.clip(np.minimum(y1, row + 1) - np.maximum(y0, row), 0.0, 1.0)
        for dx in range(kx):
            col = c0 + dx
            use = row_in & (col < c1)
            col_c = np.minimum(col, width - 1)
            values = data[:, row_c, col_c]
            good = np.broadcast_to(use, values.shape)
            if valid is not None:
                good = good & valid[:, row_c, col_c]
            stack_values.append(values)
            stack_good.append(good)
            if name == "average":
                wx = np.clip(np.minimum(x1, col + 1) - np.maximum(x0, col), 0.0, 1.0)
                stack_weight.append(wx * wy)
    values = np.stack(stack_values)  # (k, n, h, w), row-major scan order
    good = np.stack(stack_good)
    ok = good.any(axis=0)
    if name == "average":
        w = np.where(good, np.stack(stack_weight)[:, None], 0.0)
        sums = (w * np.where(good, values, 0)).sum(axis=0)
        wsum = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / wsum, ok & (wsum > 0)
    if name in ("min", "max"):
        as_float = values.astype(np.float64)
        fill = np.inf if name == "min" else -np.inf
        reduce = np.min if name == "min" else np.max
        return reduce(np.where(good, as_float, fill), axis=0), ok
    if name == "median":
        return _lower_median(values, good), ok
    if name == "mode":
        return _first_mode(values, good), ok
    raise ValueError(f"not an area resampling: {name!r}")


def _lower_median(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    as_float = np.where(good, values.astype(np.float64), np.inf)
    ordered = np.sort(as_float, axis=0)
    count = good.sum(axis=0)
    index = np.maximum(np.ceil(0.5 * count - 1).astype(np.intp), 0)
    return np.take_along_axis(ordered, index[None], axis=0)[0]


def _first_mode(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Most frequent valid value; ties go to the value whose count peaked first."""
    k = values.shape[0]
    as_float = np.where(good, values.astype(np.float64), np.inf)
    order = np.argsort(as_float, axis=0, kind="stable")
    ordered = np.take_along_axis(as_float, order, axis=0)
    new_run = np.ones(ordered.shape, bool)
    new_run[1:] = ordered[1:] != ordered[:-1]
    position = np.arange(k).reshape((k,) + (1,) * (values.ndim - 1))
    run_start = np.maximum.accumulate(np.where(new_run, position, 0), axis=0)
    rank = position - run_start + 1  # occurrences so far (stable: scan order)
    occurrences = np.empty_like(rank)
    np.put_along_axis(occurrences, order, rank, axis=0)
    occurrences = np.where(good, occurrences, 0)
    peak = occurrences.max(axis=0)
    first = np.argmax(occurrences == peak[None], axis=0)
    return np.take_along_axis(values.astype(np.float64), first[None], axis=0)[0]


def cast_output(values: np.ndarray, ok: np.ndarray, dtype: np.dtype, nodata: float) -> np.ndarray:
    """Round / clamp float results into ``dtype`` (as GDAL) and put ``nodata`` where not ok."""
    dtype = np.dtype(dtype)
    if values.dtype == dtype:
        out = values.copy()
    elif dtype.kind in "ui":
        info = np.iinfo(dtype)
        with np.errstate(invalid="ignore"):
            rounded = np.floor(np.where(ok, values, 0).astype(np.float64) + 0.5)
        out = np.clip(rounded, info.min, info.max).astype(dtype)
    else:
        out = values.astype(dtype)
    if not (isinstance(nodata, float) and math.isnan(nodata)):
        clash = ok & (out == np.asarray(nodata).astype(dtype))
        if clash.any():  # as GDAL: a valid result never reads as nodata
            out[clash] = _next_to(nodata, dtype)
    out[~ok] = nodata
    return out


def _next_to(nodata: float, dtype: np.dtype) -> object:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return nodata + 1 if nodata < info.max else nodata - 1
    return np.nextafter(np.asarray(nodata, dtype), np.asarray(np.inf, dtype))
