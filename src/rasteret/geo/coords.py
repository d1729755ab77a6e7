"""Target pixel positions → source pixel coordinates without GDAL: the geometry of a warp.

Positions are mapped with pyproj through GDAL's *approximate transformer*: along each
target row the first, middle and last points are transformed exactly and the row is
linearly interpolated when the middle point's error is at most ``error_threshold`` source
pixels (0.125, gdalwarp's default), else each half is treated the same way. Same-CRS
grids map exactly (an affine). :func:`source_window` is the source crop a target window
needs; :func:`kernel_scale` / :func:`resolution_scale` compare the grids' pixel sizes.
The kernels that sample the source at these coordinates are in :mod:`rasteret.geo.warp`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from rasteret.geo.grid import GridSpec
from rasteret.geo.resampling import check_resampling
from rasteret.geo.transform import crs_equal, transform_points
from rasteret.geo.window import Window

#: gdalwarp's default error threshold of the approximate transformer (source pixels).
ERROR_THRESHOLD = 0.125
_EXACT_BELOW = 5  # GDAL transforms segments of at most 5 points exactly


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


__all__ = [
    "ERROR_THRESHOLD",
    "corner_coordinates",
    "kernel_scale",
    "map_positions",
    "resolution_scale",
    "source_coordinates",
    "source_window",
]
