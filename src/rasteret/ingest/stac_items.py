"""STAC items (dicts) → a record table ready for header enrichment.

One row per item: ``id``, ``datetime`` (``properties.datetime``, else ``start_datetime``),
``geometry`` (WKB, CRS84), ``bbox``, ``collection``, ``assets``
(``{band: {href, band_index}}`` through the band map), the record CRS (``proj:epsg`` /
``crs`` from ``proj:code`` > ``proj:epsg`` > ``proj:wkt2`` > ``proj:projjson``, item or
first mapped asset; rows without any get the header's CRS later), every other item
property as its own column, ``raster:bands`` (per band: nodata, data type, scale,
offset, unit from STAC ``raster:bands`` / STAC 1.1 ``bands``, and the asset's
``proj:*``: :mod:`rasteret.ingest.stac_raster`) and ``{band}_error`` for
items that lack a mapped asset.

Hrefs are stored without credentials: user info and signing query parameters (SAS
tokens, ``X-Amz-*`` ...) are stripped, so no secret ends up in a saved collection.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import shapely
import shapely.geometry

from rasteret.index.schema import ASSET_TYPE, error_column
from rasteret.ingest.records import parse_datetime_text
from rasteret.ingest.stac_raster import RASTER_BAND_TYPE, RASTER_BANDS_COLUMN, raster_band

log = logging.getLogger("rasteret.ingest")

_RESERVED = {"id", "datetime", "geometry", "bbox", "assets", "collection", "crs", "proj:epsg"}
_TIME_PROPERTIES = ("start_datetime", "end_datetime")


def strip_credentials(href: str) -> str:
    """``href`` without user info and without signing / token query parameters."""
    from rasteret.fetch.secrets import strip_credentials as strip_query

    parts = urllib.parse.urlsplit(href)
    if parts.scheme and parts.scheme != "file" and "@" in parts.netloc:
        href = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
    return strip_query(href)


def item_datetime(item: Mapping[str, Any]) -> str | None:
    """``properties.datetime``, else ``start_datetime`` (STAC items with a time range)."""
    props = item.get("properties") or {}
    return props.get("datetime") or props.get("start_datetime")


def resolve_href(href: str, base: str | None) -> str:
    """An asset href made absolute against the item's own location (``base``)."""
    if not href or re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", href) or href.startswith("/"):
        return href
    if not base:
        return href
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", base):
        return urllib.parse.urljoin(base, href)
    from pathlib import Path

    return str((Path(base).parent / href).resolve())


def self_href(item: Mapping[str, Any]) -> str | None:
    for link in item.get("links") or []:
        if link.get("rel") == "self" and link.get("href"):
            return link["href"]
    return None


def record_crs_from_stac(item: Mapping[str, Any], asset_keys: Sequence[str]) -> str | None:
    """``"EPSG:n"`` or a WKT2 string from the projection extension (item, else asset)."""
    sources = [item.get("properties") or {}]
    assets = item.get("assets") or {}
    sources += [assets[k] for k in asset_keys if k in assets]
    for fields in sources:
        crs = _crs_of(fields)
        if crs is not None:
            return crs
    return None


def _crs_of(fields: Mapping[str, Any]) -> str | None:
    code = fields.get("proj:code")
    if isinstance(code, str) and code:
        return code.upper() if code.upper().startswith("EPSG:") else code
    epsg = fields.get("proj:epsg")
    if isinstance(epsg, int | float) and not isinstance(epsg, bool) and epsg > 0:
        return f"EPSG:{int(epsg)}"
    for key in ("proj:wkt2", "proj:projjson"):
        value = fields.get(key)
        if value:
            return _normalise_crs(value)
    return None


def _normalise_crs(value: Any) -> str | None:
    from pyproj import CRS

    try:
        crs = CRS.from_user_input(json.dumps(value) if isinstance(value, dict) else value)
    except Exception:
        return None
    epsg = crs.to_epsg(min_confidence=100)
    return f"EPSG:{epsg}" if epsg else crs.to_wkt("WKT2_2019")


def _epsg_of(crs: str | None) -> int | None:
    if crs and crs.startswith("EPSG:") and crs[5:].isdigit():
        return int(crs[5:])
    return None


def items_to_table(
    items: Sequence[Mapping[str, Any]],
    band_map: Mapping[str, str],
    band_index_map: Mapping[str, int] | None = None,
    *,
    rewrite: Callable[[str], str] | None = None,
    label: str = "STAC",
) -> pa.Table:
    """The record table of ``items`` (see the module docstring for the columns)."""
    bands = list(band_map)
    index_map = dict(band_index_map or {})
    rows_assets: list[dict] = []
    raster: list[dict] = []
    errors: dict[str, list[str | None]] = {b: [] for b in bands}
    ids, times, wkb, boxes, collections, crs_col = [], [], [], [], [], []
    props_rows: list[dict] = []
    for item in items:
        item_id = str(item.get("id"))
        base = self_href(item)
        assets = item.get("assets") or {}
        entry_assets, entry_raster = {}, {}
        for band in bands:
            key = band_map[band]
            asset = assets.get(key)
            href = asset.get("href") if isinstance(asset, dict) else None
            if not href:
                errors[band].append(
                    f"item {item_id} has no asset {key!r} for band {band!r} "
                    f"(its assets: {sorted(assets)})"
                )
                entry_assets[band] = None
                entry_raster[band] = None
                continue
            href = resolve_href(href, base)
            if rewrite is not None:
                href = rewrite(href)
            errors[band].append(None)
            index = index_map.get(band)
            entry_assets[band] = {"href": strip_credentials(href), "band_index": index}
            entry_raster[band] = raster_band(asset, index or 0)
        rows_assets.append(entry_assets)
        raster.append(entry_raster)
        ids.append(item_id)
        times.append(parse_datetime_text(item_datetime(item), f"{label}: item {item_id}"))
        geometry = item.get("geometry")
        shape = shapely.geometry.shape(geometry) if geometry else None
        wkb.append(shapely.to_wkb(shape) if shape is not None else None)
        boxes.append(_bbox(item.get("bbox"), shape))
        collections.append(item.get("collection"))
        crs_col.append(record_crs_from_stac(item, [band_map[b] for b in bands]))
        props_rows.append(item.get("properties") or {})

    columns: dict[str, Any] = {
        "id": pa.array(ids, pa.string()),
        "datetime": pa.array(times, pa.timestamp("us")),
        "geometry": pa.array(wkb, pa.binary()),
        "bbox": pa.array(boxes, pa.list_(pa.float64())),
        "assets": pa.array(rows_assets, pa.struct([(b, ASSET_TYPE) for b in bands])),
        "collection": pa.array(collections, pa.string()),
        "proj:epsg": pa.array([_epsg_of(c) for c in crs_col], pa.int32()),
        "crs": pa.array(crs_col, pa.string()),
    }
    columns.update(_property_columns(props_rows, label))
    if any(v is not None for row in raster for v in row.values()):
        columns[RASTER_BANDS_COLUMN] = pa.array(
            raster, pa.struct([(b, RASTER_BAND_TYPE) for b in bands])
        )
    for band in bands:
        if any(e is not None for e in errors[band]):
            columns[error_column(band)] = pa.array(errors[band], pa.string())
    return pa.table(columns)


def _bbox(values: Any, shape: Any) -> list[float] | None:
    if isinstance(values, list | tuple) and len(values) in (4, 6):
        if len(values) == 6:
            values = [values[0], values[1], values[3], values[4]]
        return [float(v) for v in values]
    if shape is not None and not shape.is_empty:
        return list(shape.bounds)
    return None


def _property_columns(rows: Sequence[Mapping[str, Any]], label: str) -> dict[str, pa.Array]:
    """Item properties as columns: scalars typed, nested values as JSON text."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    out: dict[str, pa.Array] = {}
    for name in names:
        if name in _RESERVED or name == "datetime":
            continue
        values = [row.get(name) for row in rows]
        if name in _TIME_PROPERTIES:
            try:
                out[name] = pa.array(
                    [parse_datetime_text(v, label) if isinstance(v, str) else None for v in values],
                    pa.timestamp("us"),
                )
                continue
            except Exception:
                pass
        out[name] = _infer(values)
    return out


def _infer(values: list[Any]) -> pa.Array:
    present = [v for v in values if v is not None]
    nested = any(isinstance(v, dict) for v in present) or any(
        isinstance(v, list) and any(isinstance(x, dict | list) for x in v) for v in present
    )
    if not nested:
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
        if present and numbers and any(isinstance(v, float) for v in present):
            return pa.array([None if v is None else float(v) for v in values], pa.float64())
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())
