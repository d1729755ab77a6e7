"""Per-band STAC metadata (``raster:bands`` / STAC 1.1 ``bands``, asset ``proj:*``) and
how it completes a parsed header.

The ``raster:bands`` column holds, per record and band, what the STAC asset says about
the sample: ``nodata``, ``data_type``, ``scale``, ``offset``, ``unit`` and the asset's
``proj:transform`` / ``proj:shape`` / ``proj:code``. It is filled from STAC items and
from stac-geoparquet assets alike.

:func:`complete_metadata` applies it to a band's header struct: STAC nodata / scale /
offset fill what the TIFF does not declare (the TIFF wins where both do: GDAL reads the
TIFF); a TIFF without georeferencing gets the asset's (else the item's) transform and
CRS; where both exist they must agree, else the asset is not indexed and its
``{band}_error`` says why — a silently shifted grid is worse than a missing record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

RASTER_BAND_TYPE = pa.struct(
    [
        ("nodata", pa.float64()),
        ("data_type", pa.string()),
        ("scale", pa.float64()),
        ("offset", pa.float64()),
        ("unit", pa.string()),
        ("proj:transform", pa.list_(pa.float64())),
        ("proj:shape", pa.list_(pa.int64())),
        ("proj:code", pa.string()),
    ]
)
RASTER_BANDS_COLUMN = "raster:bands"


class GeoreferenceMismatch(ValueError):
    """The TIFF's georeferencing and the STAC asset's ``proj:*`` disagree."""


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)  # "nan", "inf" strings are valid STAC nodata
    except (TypeError, ValueError):
        return None


def _numbers(value: Any, kind: type) -> list | None:
    if not isinstance(value, list | tuple) or not value:
        return None
    try:
        return [kind(v) for v in value]
    except (TypeError, ValueError):
        return None


def raster_band(asset: Mapping[str, Any], band_index: int) -> dict[str, Any] | None:
    """What STAC says about sample ``band_index`` of ``asset`` (``None``: nothing).

    Reads STAC 1.0 ``raster:bands`` and STAC 1.1 ``bands`` (entry fields, then asset-level
    fields such as ``nodata`` / ``raster:scale``), and the asset's ``proj:*``."""
    entries = asset.get("raster:bands") or asset.get("bands") or []
    if not isinstance(entries, list):
        entries = []
    entry = entries[band_index] if 0 <= band_index < len(entries) else {}
    if not isinstance(entry, Mapping):
        entry = {}
    merged = {**{k: v for k, v in asset.items() if k not in ("raster:bands", "bands")}, **entry}
    code = merged.get("proj:code")
    if code is None and isinstance(merged.get("proj:epsg"), int | float):
        code = f"EPSG:{int(merged['proj:epsg'])}"
    out = {
        "nodata": _float(merged.get("nodata")),
        "data_type": merged.get("data_type"),
        "scale": _float(merged.get("scale", merged.get("raster:scale"))),
        "offset": _float(merged.get("offset", merged.get("raster:offset"))),
        "unit": merged.get("unit"),
        "proj:transform": _numbers(merged.get("proj:transform"), float),
        "proj:shape": _numbers(merged.get("proj:shape"), int),
        "proj:code": None if code is None else str(code),
    }
    for key in ("data_type", "unit"):
        if out[key] is not None:
            out[key] = str(out[key])
    return out if any(v is not None for v in out.values()) else None


def raster_bands_of_assets(
    assets: pa.StructArray, bands: list[str], band_index: Mapping[str, pa.Array]
) -> pa.StructArray | None:
    """The ``raster:bands`` column of stac-geoparquet ``assets`` (a struct of asset
    structs), or ``None`` when no asset carries any of it."""
    names = [assets.type.field(i).name for i in range(assets.type.num_fields)]
    per_band: dict[str, list[dict | None]] = {}
    found = False
    for band in bands:
        if band not in names:
            per_band[band] = [None] * len(assets)
            continue
        rows = assets.field(band).to_pylist()
        indices = band_index[band].to_pylist()
        values = []
        for row, index in zip(rows, indices, strict=True):
            value = raster_band(row, int(index or 0)) if isinstance(row, Mapping) else None
            found = found or value is not None
            values.append(value)
        per_band[band] = values
    if not found:
        return None
    arrays = [pa.array(per_band[b], RASTER_BAND_TYPE) for b in bands]
    return pa.StructArray.from_arrays(arrays, names=bands)


def complete_metadata(
    metadata: dict[str, Any],
    stac: Mapping[str, Any] | None,
    record: Mapping[str, Any],
) -> dict[str, Any]:
    """``metadata`` (a band's header struct) completed with the STAC asset's values.

    ``record``: the record's item-level ``proj:transform`` / ``proj:shape`` and ``crs``
    (used when the asset has none and the shape matches). Raises
    :class:`GeoreferenceMismatch` when both say different things (the caller names the
    file)."""
    stac = stac or {}
    out = dict(metadata)
    for key in ("nodata", "scale", "offset"):
        if out.get(key) is None and stac.get(key) is not None:
            out[key] = stac[key]
    size = [out["image_height"], out["image_width"]]
    transform, shape = stac.get("proj:transform"), stac.get("proj:shape")
    if transform is None and record.get("proj:transform") is not None:
        transform, shape = record.get("proj:transform"), record.get("proj:shape")
        if shape is not None and list(shape) != size:
            transform = None  # the item's grid is another band's (e.g. 10 m vs 20 m)
    if transform is not None and (shape is None or list(shape) == size):
        given = _affine(transform)
        if given is not None:
            if out.get("transform") is None:
                out["transform"] = list(given)
                out["pixel_scale"] = out["tiepoint"] = None
            elif not _close(out["transform"], given):
                raise GeoreferenceMismatch(
                    f"the TIFF's geotransform {list(out['transform'])} disagrees "
                    f"with the STAC proj:transform {list(given)}"
                )
    code = stac.get("proj:code") or record.get("crs")
    if code and out.get("crs_wkt") is None and out.get("epsg") is None:
        epsg, wkt = _crs(code)
        out["epsg"], out["crs_wkt"] = epsg, wkt
    elif code and out.get("epsg") is not None and str(code).upper().startswith("EPSG:"):
        digits = str(code)[5:]
        if digits.isdigit() and int(digits) != out["epsg"]:
            raise GeoreferenceMismatch(
                f"the TIFF's CRS EPSG:{out['epsg']} disagrees with the STAC {code}"
            )
    return out


def _affine(values: list[float]) -> tuple[float, ...] | None:
    if len(values) not in (6, 9):
        return None
    a, b, c, d, e, f = values[:6]
    return (a, b, c, d, e, f)


def _close(left: list[float], right: tuple[float, ...]) -> bool:
    scale = max(abs(left[0]), abs(left[4]), 1e-12)
    return all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6 * scale)
        for x, y in zip(left, right, strict=True)
    )


def _crs(code: str) -> tuple[int | None, str | None]:
    from rasteret.geo.transform import to_crs

    crs = to_crs(code, what="STAC proj:code")
    epsg = crs.to_epsg(min_confidence=100)
    return (epsg, None) if epsg is not None else (None, crs.to_wkt("WKT2_2019"))
