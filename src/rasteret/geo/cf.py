"""CF grid-mapping attributes of a CRS (``spatial_ref``), shared by the store and warps."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np


def spatial_ref_attributes(
    epsg: int | None, crs_wkt: str | None, transform: tuple[float, ...] | None
) -> dict[str, Any] | None:
    """CF grid-mapping attributes of a CRS (``None`` without a CRS)."""
    cf = _crs_cf(epsg, crs_wkt)
    if cf is None:
        return None
    attrs = dict(cf)
    attrs["spatial_ref"] = attrs.get("crs_wkt", crs_wkt)
    if transform is not None:
        a, b, c, d, e, f = transform
        attrs["GeoTransform"] = " ".join(repr(float(v)) for v in (c, a, b, f, d, e))
    return attrs


@lru_cache(maxsize=256)
def _crs_cf(epsg: int | None, crs_wkt: str | None) -> dict[str, Any] | None:
    if epsg is None and not crs_wkt:
        return None
    from pyproj import CRS

    crs = CRS.from_wkt(crs_wkt) if crs_wkt else CRS.from_epsg(epsg)
    cf = crs.to_cf()
    return {k: _json_safe(v) for k, v in cf.items()}


@lru_cache(maxsize=256)
def axis_attributes(epsg: int | None, crs_wkt: str | None) -> dict[str, dict[str, Any]]:
    if epsg is None and not crs_wkt:
        return {}
    from pyproj import CRS

    crs = CRS.from_wkt(crs_wkt) if crs_wkt else CRS.from_epsg(epsg)
    try:
        axes = crs.cs_to_cf()
    except Exception:
        return {}
    result: dict[str, dict[str, Any]] = {}
    for attrs in axes:
        axis = attrs.get("axis")
        name = {"X": "x", "Y": "y"}.get(str(axis))
        if name is None and attrs.get("standard_name") == "longitude":
            name = "x"
        if name is None and attrs.get("standard_name") == "latitude":
            name = "y"
        if name is not None and name not in result:
            result[name] = {k: _json_safe(v) for k, v in attrs.items() if k != "axis"}
    return result


def _json_safe(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
