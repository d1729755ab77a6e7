"""Per-pixel fusion of a stack of co-registered rasters: the mosaic and composite kernel.

``fuse_stack(stack, ok, fuse, fill)`` reduces ``stack`` ``[M, ...]`` (members in fuse
order) over its first axis, using only the pixels where ``ok`` is true:

* ``first`` / ``last`` — the first / last valid member's pixel (native dtype);
* ``min`` / ``max`` — the smallest / largest valid value (native dtype);
* ``mean`` / ``median`` — of the valid values, computed and returned as float64 (exact
  for every integer up to 2**53; the median of an even count is the mean of the two
  middle values).

Pixels no member has valid are ``fill`` for the native-dtype fusers and NaN for
``mean`` / ``median``. The AOI mosaics (:mod:`rasteret.read.mosaic`) and the xarray
engine's composites (:mod:`rasteret.backend.composite`) both fuse with this function,
so they agree bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Every fuser, in documentation order.
FUSERS = ("first", "last", "min", "max", "mean", "median")
#: Fusers whose result is float64 (NaN where no member is valid).
FLOAT_FUSERS = ("mean", "median")


def check_fuse(fuse: str) -> str:
    """``fuse`` when it names a fuser, else ``ValueError`` listing them."""
    if fuse not in FUSERS:
        raise ValueError(f"fuse={fuse!r}: use one of {FUSERS}")
    return fuse


def fused_dtype(dtype: np.dtype | str, fuse: str) -> np.dtype:
    """The dtype :func:`fuse_stack` returns for a stack of ``dtype``."""
    return np.dtype(np.float64) if check_fuse(fuse) in FLOAT_FUSERS else np.dtype(dtype)


def fuse_stack(
    stack: np.ndarray, ok: np.ndarray, fuse: str, fill: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``(fused [...], valid [...])`` of ``stack`` ``[M, ...]`` with validity ``ok`` (same
    shape); ``fill`` (a scalar, or an array broadcasting to ``stack.shape[1:]``) where no
    member is valid for the native-dtype fusers (see module docs)."""
    check_fuse(fuse)
    if stack.shape != ok.shape or stack.ndim < 1 or len(stack) == 0:
        raise ValueError(f"stack {stack.shape} and ok {ok.shape} must be equal, non-empty")
    if len(stack) == 1 and fuse not in FLOAT_FUSERS:
        # one member: its valid pixels as they are, fills elsewhere (no masked-array pass)
        data, valid = stack[0], ok[0]
        if not valid.all():
            data = data.copy()
            _fill(data, valid, fill)
        return data, valid
    valid = ok.any(axis=0)
    if fuse in ("first", "last"):
        members = range(len(stack)) if fuse == "first" else range(len(stack) - 1, -1, -1)
        data = np.empty(stack.shape[1:], stack.dtype)
        taken = np.zeros(stack.shape[1:], bool)
        for m in members:
            take = ok[m] & ~taken
            data[take] = stack[m][take]
            taken |= take
        _fill(data, valid, fill)
        return data, valid
    masked = np.ma.MaskedArray(stack, mask=~ok)
    if fuse == "min":
        fused = masked.min(axis=0)
    elif fuse == "max":
        fused = masked.max(axis=0)
    elif fuse == "mean":
        fused = masked.astype(np.float64).mean(axis=0)
    else:
        fused = np.ma.median(masked.astype(np.float64), axis=0)
    data = np.array(np.ma.getdata(fused), copy=True).reshape(stack.shape[1:])
    _fill(data, valid, np.nan if fuse in FLOAT_FUSERS else fill)
    return data, valid


def _fill(data: np.ndarray, valid: np.ndarray, fill: Any) -> None:
    if valid.all():
        return
    value = np.broadcast_to(np.asarray(fill), data.shape)
    np.copyto(data, value, where=~valid, casting="unsafe")
