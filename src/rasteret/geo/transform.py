"""THE CRS module of rasteret: parsing, identity, equality and cached transforms (pyproj,
no GDAL).

* :func:`to_crs` is the one parser (EPSG ints and ``"EPSG:x"`` text, WKT, PROJJSON, PROJ
  strings, ``pyproj.CRS`` and objects with ``to_wkt()`` such as rasterio's); it raises
  :class:`CRSError`, the one CRS exception (``rasteret.geo.CRSError``; geometry input
  raises its subclass :class:`rasteret.read.GeometryCRSError`).
* :func:`crs_key` is the one identity: ``"EPSG:n"`` when the CRS *is* that EPSG CRS
  (``to_epsg(min_confidence=100)``), else its WKT2 text. :func:`crs_equal` compares keys:
  two CRSs are the same when they are the same EPSG CRS or have identical WKT. That is
  stricter than pyproj's ``==`` (PROJ "equivalent", which ignores names): a CRS it calls
  different only costs an exact identity transform, never a skipped one.
* :func:`transformer` is the one cached ``always_xy`` transformer (per pair of keys).

Every transform here uses ``always_xy=True``: coordinates are (x, y) / (lon, lat) in
that order whatever the CRS's axis order says, as rasterio does.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from pyproj import CRS, Transformer

from rasteret._types import Bounds
from rasteret.errors import RasteretError

CRSLike = CRS | str | int | dict[str, Any]

#: crs_key per ``CRS.srs`` (the input a CRS was built from: equal inputs, equal CRSs).
_KEYS: dict[str, str] = {}
_KEYS_SIZE = 4096


class CRSError(RasteretError, ValueError):
    """A CRS is missing, cannot be parsed, or a transform between two CRSs fails."""


@lru_cache(maxsize=512)
def _crs_from_text(text: str) -> CRS:
    return CRS.from_user_input(text)


def to_crs(value: CRSLike | None, *, what: str = "crs") -> CRS:
    """``value`` (a :class:`pyproj.CRS`, ``"EPSG:32633"``, ``32633``, WKT, PROJJSON) as a CRS.

    Raises :class:`CRSError` naming ``what`` when it is missing or cannot be parsed.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise CRSError(f"{what} is missing; pass a CRS such as 'EPSG:32633'")
    if isinstance(value, CRS):
        return value
    if hasattr(value, "to_wkt") and not isinstance(value, (str, int, dict)):  # rasterio CRS etc.
        value = value.to_wkt()
    if isinstance(value, (int, np.integer)):
        value = f"EPSG:{int(value)}"
    try:
        if isinstance(value, dict):
            return CRS.from_user_input(value)
        return _crs_from_text(str(value))
    except Exception as exc:  # pyproj.exceptions.CRSError
        raise CRSError(f"{what} {value!r} is not a CRS pyproj understands: {exc}") from exc


def crs_key(crs: CRSLike) -> str:
    """A canonical, hashable text for ``crs`` (``EPSG:n`` when it is one, else WKT2).

    Cached per CRS input (``CRS.srs``): identifying an EPSG code takes PROJ milliseconds.
    """
    crs = to_crs(crs)
    srs = crs.srs
    key = _KEYS.get(srs) if srs else None
    if key is None:
        epsg = crs.to_epsg(min_confidence=100)
        key = f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()
        if srs:
            if len(_KEYS) >= _KEYS_SIZE:
                _KEYS.clear()
            _KEYS[srs] = key
    return key


def crs_equal(a: CRSLike, b: CRSLike) -> bool:
    """True when ``a`` and ``b`` are the same CRS: the same EPSG CRS, or equal WKT2."""
    return crs_key(a) == crs_key(b)


def crs_epsg(crs: CRSLike | None) -> int | None:
    """The EPSG code of ``crs`` when it is exactly that EPSG CRS, else ``None``."""
    if crs is None:
        return None
    key = crs_key(crs)
    return int(key[5:]) if key.startswith("EPSG:") else None


@lru_cache(maxsize=256)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(_crs_from_text(src), _crs_from_text(dst), always_xy=True)


def transformer(src_crs: CRSLike, dst_crs: CRSLike) -> Transformer:
    """A cached ``always_xy`` pyproj Transformer from ``src_crs`` to ``dst_crs``."""
    return _transformer(crs_key(src_crs), crs_key(dst_crs))


def transform_points(
    xs: Any, ys: Any, src_crs: CRSLike, dst_crs: CRSLike
) -> tuple[np.ndarray, np.ndarray]:
    """Transform coordinate arrays (any shape) from ``src_crs`` to ``dst_crs``.

    Points outside the target CRS's domain come back as ``inf``/``nan``; nothing is
    dropped. Same-CRS transforms return float64 copies without calling PROJ.
    """
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if crs_equal(src_crs, dst_crs):
        return x.copy(), y.copy()
    try:
        tx, ty = transformer(src_crs, dst_crs).transform(x, y, errcheck=False)
    except Exception as exc:
        raise CRSError(
            f"cannot transform points from {crs_key(src_crs)} to {crs_key(dst_crs)}: {exc}"
        ) from exc
    return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)


def densified_outline(bounds: Bounds, densify_pts: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """The outline of ``bounds`` with ``densify_pts`` extra points per edge (closed: no)."""
    left, bottom, right, top = bounds
    t = np.linspace(0.0, 1.0, densify_pts + 2)[:-1]
    xs = np.concatenate(
        [
            left + t * (right - left),
            np.full(t.size, right),
            right - t * (right - left),
            np.full(t.size, left),
        ]
    )
    ys = np.concatenate(
        [
            np.full(t.size, top),
            top - t * (top - bottom),
            np.full(t.size, bottom),
            bottom + t * (top - bottom),
        ]
    )
    return xs, ys


def transform_bounds(
    bounds: Bounds, src_crs: CRSLike, dst_crs: CRSLike, *, densify_pts: int = 21
) -> Bounds:
    """Bounds of ``bounds`` (left, bottom, right, top) in ``dst_crs``.

    The outline is densified with ``densify_pts`` points per edge (as
    ``rasterio.warp.transform_bounds``), so curved edges are enclosed. Raises
    :class:`CRSError` when no outline point can be transformed.
    """
    left, bottom, right, top = (float(v) for v in bounds)
    if crs_equal(src_crs, dst_crs):
        return (left, bottom, right, top)
    xs, ys = densified_outline((left, bottom, right, top), densify_pts)
    tx, ty = transform_points(xs, ys, src_crs, dst_crs)
    ok = np.isfinite(tx) & np.isfinite(ty)
    if not ok.any():
        raise CRSError(
            f"bounds {bounds} in {crs_key(src_crs)} lie outside the domain of {crs_key(dst_crs)}"
        )
    return (float(tx[ok].min()), float(ty[ok].min()), float(tx[ok].max()), float(ty[ok].max()))
