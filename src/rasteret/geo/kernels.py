"""Resampling kernels (vectorised numpy, no GDAL) used by :mod:`rasteret.geo.warp`.

* :func:`point_kernel` (``nearest``, ``bilinear``, ``cubic``) evaluates the source at the
  target pixel centre mapped into source pixel coordinates ``(sx, sy)``;
* :func:`area_kernel` (``average``, ``mode``, ``min``, ``max``, ``median``) reduces the
  source pixels covered by the target pixel's footprint (its two mapped corners), a port
  of GDAL's ``GWKAverageOrModeThread`` (bit-identical to ``rasterio.warp.reproject``).

Nodata never bleeds: invalid source pixels (nodata, NaN, masked) take no part in a
kernel and the weights of the valid ones are renormalised; a target pixel whose centre
falls on an invalid or outside source pixel, or whose kernel holds no valid pixel, is
invalid. Both return ``(values, ok)``: float64 values and a boolean validity.
"""

from __future__ import annotations

import math

import numpy as np

from rasteret.geo.resampling import INDEX_EPSILON, centre_pixel


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
    *,
    source_shape: tuple[int, int] | None = None,
    origin: tuple[int, int] = (0, 0),
    scale: tuple[float, float] = (1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce the source pixels under each target footprint, as GDAL's
    ``GWKAverageOrModeThread`` does.

    ``(x0, y0)`` / ``(x1, y1)`` are the source pixel coordinates of each target pixel's
    top-left and bottom-right corners (GDAL maps exactly these two), in the pixel space
    of the full source of ``source_shape`` (height, width; default ``data``'s);
    ``data`` may be a crop of it starting at ``origin`` (row, col). ``scale`` is the
    target/source size ratio (GDAL's ``XSCALE``/``YSCALE``) that sets the margin
    beyond which a footprint is skipped.

    GDAL's rules: the corners are swapped into order; the source rows / columns
    ``floor(min + 1e-10) .. ceil(max - 1e-10)`` (clipped, at least one) take part;
    ``average`` weights the first / last row and column by their covered fraction
    (a single row or column weighs 1) and accumulates the *weighted incremental mean*
    ``m += (w / W) * (v - m)`` in row-major order (so exact .5 ties round as GDAL's);
    ``mode`` breaks ties in favour of the value whose count reached the maximum first
    (``uint8``/``uint16``/``int16`` by value, other dtypes compared as float32);
    ``median`` takes the lower middle value of an even count. Returns ``(values, ok)``,
    float64 values ``(n, h, w)``.
    """
    n = data.shape[0]
    height, width = source_shape or data.shape[1:]
    row0, col0 = origin
    eps = INDEX_EPSILON
    finite = np.isfinite(x0) & np.isfinite(x1) & np.isfinite(y0) & np.isfinite(y1)
    x0, x1, y0, y1 = (np.where(finite, v, 0.0) for v in (x0, x1, y0, y1))
    mx = 2 * max(1, math.ceil(1.0 / scale[0])) if scale[0] > 0 else 2
    my = 2 * max(1, math.ceil(1.0 / scale[1])) if scale[1] > 0 else 2
    inside = finite.copy()
    for v, size, margin in ((x0, width, mx), (x1, width, mx), (y0, height, my), (y1, height, my)):
        inside &= (v >= -margin) & (v - size <= margin)
    xmin, xmax = np.minimum(x0, x1), np.maximum(x0, x1)
    ymin, ymax = np.minimum(y0, y1), np.maximum(y0, y1)
    inside &= (xmax > -eps) & (xmin < width + eps) & (ymax > -eps) & (ymin < height + eps)
    c0, c1 = _index_range(xmin, xmax, width)
    r0, r1 = _index_range(ymin, ymax, height)
    has = inside & (c1 > c0) & (r1 > r0)
    kx = int(np.max(np.where(has, c1 - c0, 0), initial=0))
    ky = int(np.max(np.where(has, r1 - r0, 0), initial=0))
    shape = (n, *x0.shape)
    if kx == 0 or ky == 0:
        return np.zeros(shape), np.zeros(shape, bool)
    crop_h, crop_w = data.shape[1:]
    if name == "average":
        mean = np.zeros(shape)
        total = np.zeros(shape)
    stack_values, stack_good, stack_weight = [], [], []
    for dy in range(ky):
        row = r0 + dy
        row_in = has & (row < r1)
        wy = _edge_weight(row, r0, r1, ymin, ymax)
        local_row = row - row0
        row_ok = row_in & (local_row >= 0) & (local_row < crop_h)
        row_c = np.clip(local_row, 0, crop_h - 1)
        for dx in range(kx):
            col = c0 + dx
            local_col = col - col0
            use = row_ok & (col < c1) & (local_col >= 0) & (local_col < crop_w)
            col_c = np.clip(local_col, 0, crop_w - 1)
            values = data[:, row_c, col_c]
            good = np.broadcast_to(use, values.shape)
            if valid is not None:
                good = good & valid[:, row_c, col_c]
            # COMPUTE_WEIGHT: wy times the column's covered fraction at the edges
            weight = _edge_weight(col, c0, c1, xmin, xmax, wy)
            if name != "average":
                stack_values.append(values)
                stack_good.append(good)
                if name == "mode":
                    stack_weight.append(weight)
                continue
            step = good & (weight > 0)
            total = np.where(step, total + weight, total)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(step, mean + (weight / total) * (values - mean), mean)
    if name == "average":
        return mean, total > 0
    values = np.stack(stack_values)  # (k, n, h, w), row-major scan order
    good = np.stack(stack_good)
    ok = good.any(axis=0)
    if name in ("min", "max"):
        as_float = values.astype(np.float64)
        fill = np.inf if name == "min" else -np.inf
        reduce = np.min if name == "min" else np.max
        return reduce(np.where(good, as_float, fill), axis=0), ok
    if name == "median":
        return _lower_median(values, good), ok
    if name == "mode":
        weights = np.broadcast_to(np.stack(stack_weight)[:, None], values.shape)
        return _weighted_mode(values, good, weights), ok
    raise ValueError(f"not an area resampling: {name!r}")


def _index_range(low: np.ndarray, high: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """GDAL's ``iSrcXMin``/``iSrcXMax``: at least one pixel when inside the source."""
    start = np.maximum(np.floor(low + INDEX_EPSILON), 0.0)
    stop = np.minimum(np.ceil(high - INDEX_EPSILON), float(size))
    stop = np.where((start == stop) & (stop < size), stop + 1, stop)
    big = np.iinfo(np.intp).max // 4
    return (
        np.clip(start, -big, big).astype(np.intp),
        np.clip(stop, -big, big).astype(np.intp),
    )


def _edge_weight(
    index: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    base: np.ndarray | float = 1.0,
) -> np.ndarray:
    """GDAL's ``COMPUTE_WEIGHT(_Y)`` factor of pixel ``index`` in ``[start, stop)``."""
    single = start + 1 == stop
    first = np.where(single, base, base * (1 - (low - start)))
    last = base * (1 - (stop - high))
    return np.where(index == start, first, np.where(index + 1 == stop, last, base))


def _lower_median(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    as_float = np.where(good, values.astype(np.float64), np.inf)
    ordered = np.sort(as_float, axis=0)
    count = good.sum(axis=0)
    index = np.maximum(np.ceil(0.5 * count - 1).astype(np.intp), 0)
    return np.take_along_axis(ordered, index[None], axis=0)[0]


def _weighted_mode(values: np.ndarray, good: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """GDAL's weighted mode: per value, the float32 sum of its pixels' weights, in
    row-major scan order. 8/16-bit integers (GDAL's histogram path): the value whose
    count first exceeds every count so far wins. Other dtypes (``GWKModeRealType``):
    the first value seen, replaced only when a value seen before grows past it."""
    k = values.shape[0]
    histogram = values.dtype in (np.uint8, np.int8, np.uint16, np.int16)
    w32 = np.where(good, weights, 0.0).astype(np.float32)
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    w_sorted = np.take_along_axis(w32, order, axis=0)
    new_run = np.ones(ordered.shape, bool)
    new_run[1:] = ordered[1:] != ordered[:-1]
    counts_sorted = np.empty_like(w_sorted)
    seen_sorted = np.zeros(ordered.shape, bool)  # a valid pixel of the value came before
    good_sorted = np.take_along_axis(good, order, axis=0)
    counts_sorted[0] = w_sorted[0]
    for j in range(1, k):  # float32 running sums per run, in scan order (stable sort)
        counts_sorted[j] = np.where(new_run[j], w_sorted[j], counts_sorted[j - 1] + w_sorted[j])
        before = seen_sorted[j - 1] | good_sorted[j - 1]
        seen_sorted[j] = np.where(new_run[j], False, before)
    counts = np.empty_like(counts_sorted)
    np.put_along_axis(counts, order, counts_sorted, axis=0)
    seen = np.empty_like(seen_sorted)
    np.put_along_axis(seen, order, seen_sorted, axis=0)
    mode = np.zeros(values.shape[1:], values.dtype)
    best = np.zeros(values.shape[1:], np.float32)
    found = np.zeros(values.shape[1:], bool)
    for p in range(k):
        step = good[p]
        if histogram:
            take = step & (counts[p] > best)
        else:
            same = found & (values[p] == mode)
            take = step & (~found | (seen[p] & ~same & (counts[p] > best)))
            best = np.where(step & same, counts[p], best)
        mode = np.where(take, values[p], mode)
        best = np.where(take, counts[p], best)
        found |= step
    return mode.astype(np.float64)


__all__ = ["area_kernel", "point_kernel"]
