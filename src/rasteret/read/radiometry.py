"""Valid-data masks and scale / offset, applied on request.

* :func:`valid_mask`: pixels that hold data — not ``nodata`` (NaN-aware), and set in the
  band's internal mask IFD when the file has one. Both are combined (AND): GDAL uses
  only the internal mask when one exists; rasteret is stricter so a nodata value
  inside the mask is never taken for data.
* :func:`apply_scale`: ``value * scale + offset`` (from the TIFF header: GDAL metadata
  ``scale`` / ``offset``) as floating point, invalid pixels ``NaN``. Without a scale or
  offset the band is only converted to float. float32 for integer bands of up to 16
  bits and float32 bands, float64 otherwise.
"""

from __future__ import annotations

import numpy as np


def valid_mask(
    data: np.ndarray, nodata: float | None, internal_mask: np.ndarray | None = None
) -> np.ndarray:
    """Boolean ``True`` where ``data`` is valid (see module docs)."""
    if nodata is None:
        valid = np.ones(data.shape, dtype=bool)
    elif np.isnan(nodata):
        valid = ~np.isnan(data) if data.dtype.kind == "f" else np.ones(data.shape, bool)
    else:
        valid = data != cast_nodata(nodata, data.dtype)
    if internal_mask is not None:
        valid &= internal_mask > 0
    return valid


def valid_into(out: np.ndarray, data: np.ndarray, nodata: float | None) -> None:
    """:func:`valid_mask` (without an internal mask) written into ``out``: no temporary."""
    if nodata is None:
        out[...] = True
    elif np.isnan(nodata):
        if data.dtype.kind == "f":
            np.isnan(data, out=out)
            np.logical_not(out, out=out)
        else:
            out[...] = True
    else:
        np.not_equal(data, cast_nodata(nodata, data.dtype), out=out)


def invalid_holds_fill(
    dtype: np.dtype, nodata: float | None, fill: float | int, out_dtype: np.dtype
) -> bool:
    """Whether every invalid pixel of a band (no internal mask) already equals ``fill``
    in ``out_dtype``, bit for bit (so a straight copy is exact)."""
    if nodata is None:
        return True  # nothing is invalid
    target = np.asarray(fill).astype(out_dtype)
    if np.isnan(nodata):
        return dtype.kind != "f" or bool(np.isnan(target))
    cast = cast_nodata(nodata, dtype)
    if isinstance(cast, float) and np.isnan(cast):
        return True  # an integer band whose nodata no value can equal
    if dtype.kind == "f" and cast == 0:
        return False  # -0.0 pixels are nodata too, but not the same bits as the fill
    return bool(np.asarray(cast, dtype=dtype).astype(out_dtype) == target)


def implied_invalid(
    dtype: np.dtype, nodata: float | None, fill: float | int, out_dtype: np.dtype
) -> float | int | None:
    """The value of ``out_dtype`` that exactly the invalid pixels of a band of ``dtype``
    hold once read with ``fill`` where invalid (no internal mask): its nodata when that
    is the fill (NaN: NaN pixels), so validity is ``pixel != value``. ``None`` when no
    value tells them apart (no nodata, a nodata no pixel can hold, another fill)."""
    if nodata is None:
        return None
    cast = cast_nodata(nodata, dtype)
    if isinstance(cast, float) and np.isnan(cast) and dtype.kind != "f":
        return None  # an integer band: nothing is nodata, only the outside is invalid
    if not invalid_holds_fill(dtype, nodata, fill, out_dtype):
        return None
    value = np.asarray(fill).astype(out_dtype)
    return float(value) if out_dtype.kind == "f" else int(value)


def cast_nodata(nodata: float, dtype: np.dtype) -> float | int:
    """``nodata`` as a value of ``dtype`` to compare pixels with (NaN: no pixel can equal
    it, e.g. an out-of-range or fractional nodata of an integer band)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not (info.min <= nodata <= info.max) or nodata != int(nodata):
            return np.nan  # never equal to an integer: nothing is nodata
        return int(nodata)
    return nodata


def fill_value_for(dtype: np.dtype, nodata: float | None, fill_value: float | None) -> float | int:
    """The value written where pixels are invalid: ``fill_value``, else nodata, else 0."""
    value = fill_value if fill_value is not None else nodata
    if value is None:
        return 0
    if dtype.kind in "iu":
        if np.isnan(value):
            raise ValueError(f"cannot fill a {dtype} band with NaN; pass fill_value=")
        return int(value)
    return float(value)


def scaled_dtype(dtype: np.dtype) -> np.dtype:
    """The float dtype :func:`apply_scale` returns for ``dtype``."""
    if (dtype.kind in "iub" and dtype.itemsize <= 2) or dtype == np.float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def apply_scale(
    data: np.ndarray,
    valid: np.ndarray,
    scale: float | None,
    offset: float | None,
) -> np.ndarray:
    """``data * scale + offset`` as float, ``NaN`` where ``valid`` is False."""
    out = data.astype(scaled_dtype(data.dtype))
    if scale is not None and scale != 1:
        out *= out.dtype.type(scale)
    if offset:
        out += out.dtype.type(offset)
    out[~valid] = np.nan
    return out
