"""Resampling names and the pixel rules every kernel shares (vectorised numpy, no GDAL).

Two families, both with GDAL's semantics (the kernels are in :mod:`rasteret.geo.kernels`):

* **point kernels** (``nearest``, ``bilinear``, ``cubic``) evaluate the source at the
  target pixel centre mapped into source pixel coordinates ``(sx, sy)``;
* **area kernels** (``average``, ``mode``, ``min``, ``max``, ``median``) reduce the source
  pixels covered by the target pixel's footprint (its two mapped corners), a port of
  GDAL's ``GWKAverageOrModeThread`` (bit-identical to ``rasterio.warp.reproject``).

Here: the names (:func:`check_resampling`), the source pixel holding a mapped centre
(:func:`centre_pixel`, also what nearest maps use) and how float results become the
output dtype without reading as nodata (:func:`cast_output`, :func:`keep_off_nodata`).
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
    keep_off_nodata(out, ok, nodata)
    out[~ok] = nodata
    return out


def keep_off_nodata(out: np.ndarray, ok: np.ndarray, nodata: float) -> None:
    """As GDAL: a valid result (``ok``) never reads as ``nodata`` — such values become
    the next representable value, in place."""
    if isinstance(nodata, float) and math.isnan(nodata):
        return
    clash = ok & (out == np.asarray(nodata).astype(out.dtype))
    if clash.any():
        out[clash] = _next_to(nodata, out.dtype)


def _next_to(nodata: float, dtype: np.dtype) -> object:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return nodata + 1 if nodata < info.max else nodata - 1
    return np.nextafter(np.asarray(nodata, dtype), np.asarray(np.inf, dtype))
