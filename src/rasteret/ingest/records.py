"""Normalise a record table to the collection contract (before header enrichment).

Reads Parquet paths and in-memory Arrow objects, applies ``column_map`` aliases, builds or
normalises ``assets``, casts ids to strings and datetimes to ``timestamp[us]`` (UTC, naive),
and normalises ``geometry`` (WKB, CRS84) and ``bbox`` when the table has them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import shapely

from rasteret.errors import BandNotFoundError, CollectionSchemaError
from rasteret.index.schema import ASSET_TYPE, BBOX_TYPE
from rasteret.ingest.stac_raster import RASTER_BANDS_COLUMN, raster_bands_of_assets

log = logging.getLogger("rasteret.ingest")

TableSource = Any  # str | Path | pa.Table | pa.RecordBatch | pa.RecordBatchReader | Arrow stream


def source_label(source: TableSource) -> str:
    """How errors name the source: the path (credentials redacted), or the kind of
    in-memory object."""
    if isinstance(source, str | Path):
        from rasteret.fetch.secrets import redact

        return redact(str(source))
    return f"<{type(source).__name__}>"


def read_source(
    source: TableSource,
    *,
    columns: Sequence[str] | None = None,
    filter_expr: pc.Expression | None = None,
) -> pa.Table:
    """Materialise ``source`` as a table, with optional column projection and filter."""
    if isinstance(source, str | Path):
        text = str(source)
        is_uri = "://" in text
        if not is_uri and not Path(text).exists():
            raise FileNotFoundError(f"{text}: no such Parquet file or directory")
        dataset = pads.dataset(text if is_uri else str(Path(text)), format="parquet")
        return dataset.to_table(columns=list(columns) if columns else None, filter=filter_expr)
    if isinstance(source, pads.Dataset):
        return source.to_table(columns=list(columns) if columns else None, filter=filter_expr)
    if isinstance(source, pa.Table):
        table = source
    elif isinstance(source, pa.RecordBatch):
        table = pa.Table.from_batches([source])
    elif isinstance(source, pa.RecordBatchReader):
        table = source.read_all()
    elif hasattr(source, "__arrow_c_stream__"):
        table = pa.RecordBatchReader.from_stream(source).read_all()
    elif hasattr(source, "__arrow_c_array__"):
        table = pa.Table.from_batches([pa.record_batch(source)])
    else:
        raise TypeError(
            f"build_from_table: unsupported source {type(source).__name__}; pass a Parquet "
            "path, a pyarrow Table / RecordBatch / RecordBatchReader or an Arrow stream"
        )
    if columns is None and filter_expr is None:
        return table
    return pads.dataset(table).to_table(
        columns=list(columns) if columns else None, filter=filter_expr
    )


def apply_column_map(table: pa.Table, column_map: Mapping[str, str] | None, label: str) -> pa.Table:
    """Add canonical columns as aliases of source columns (``{source: canonical}``)."""
    for src, dst in (column_map or {}).items():
        if src not in table.column_names:
            raise CollectionSchemaError(
                f"{label}: column_map names column {src!r}, which the table does not have "
                f"(columns: {table.column_names})"
            )
        if src == dst:
            continue
        if dst in table.column_names:
            log.warning("%s: column_map %r -> %r replaces the existing %r", label, src, dst, dst)
            table = table.drop_columns([dst])
        table = table.append_column(pa.field(dst, table[src].type), table[src])
    return table


def rewrite_urls(urls: pa.ChunkedArray | pa.Array, patterns: Mapping[str, str] | None):
    """Replace the leading ``prefix`` of each URL by ``patterns[prefix]``."""
    for old, new in (patterns or {}).items():
        urls = pc.replace_substring_regex(urls, "^" + re.escape(old), new.replace("\\", "\\\\"))
    return urls


def assets_from_href(
    table: pa.Table,
    href_column: str,
    band_index_map: Mapping[str, int],
    label: str,
    patterns: Mapping[str, str] | None = None,
) -> pa.Table:
    """Build ``assets`` for tables with one file per record: ``{band: {href, band_index}}``."""
    if href_column not in table.column_names:
        raise CollectionSchemaError(
            f"{label}: href_column {href_column!r} is not a column (columns: {table.column_names})"
        )
    hrefs = rewrite_urls(table[href_column].combine_chunks().cast(pa.string()), patterns)
    children, names = [], []
    for band, index in band_index_map.items():
        indices = pa.array(np.full(len(hrefs), int(index), dtype=np.int64))
        children.append(
            pa.StructArray.from_arrays(
                [hrefs, indices], fields=list(ASSET_TYPE), mask=pc.is_null(hrefs)
            )
        )
        names.append(str(band))
    assets = pa.StructArray.from_arrays(children, names=names)
    return set_column(table, "assets", assets)


def normalise_assets(
    table: pa.Table,
    label: str,
    *,
    patterns: Mapping[str, str] | None = None,
    band_codes: Sequence[str] | None = None,
) -> pa.Table:
    """Rewrite ``assets`` as ``struct<band: struct<href: string, band_index: int64>>``.

    Accepts stac-geoparquet assets (struct of structs with ``href`` and other fields), a
    map of such structs, or bare href strings; the assets' ``raster:bands`` / ``bands`` /
    ``proj:*`` become the ``raster:bands`` column (:mod:`rasteret.ingest.stac_raster`).
    Without ``band_codes``, assets whose STAC ``type`` is set and is not a TIFF
    (thumbnails, XML metadata) are left out, and logged.
    """
    column = table["assets"].combine_chunks()
    if pa.types.is_map(column.type):
        column = _map_to_struct(column)
    if not pa.types.is_struct(column.type):
        raise CollectionSchemaError(
            f"{label}: column 'assets' must be a struct (or map) of {{band: {{href, band_index}}}}"
            f" or {{band: href}}, got {column.type}"
        )
    available = [column.type.field(i).name for i in range(column.type.num_fields)]
    if band_codes is not None:
        missing = [b for b in band_codes if b not in available]
        if missing:
            raise BandNotFoundError(
                f"{label}: Band(s) not found: {missing}. Available bands: {available}"
            )
        wanted = list(band_codes)
    else:
        wanted = [b for b in available if _looks_like_tiff(column.field(b))]
        skipped = [b for b in available if b not in wanted]
        if skipped:
            log.info("%s: assets %s are not TIFFs (STAC 'type'); not indexed", label, skipped)
    flat = dict(zip(available, column.flatten(), strict=True))  # parent nulls propagated
    children = [_canonical_asset(flat[b], label, b, patterns) for b in wanted]
    assets = pa.StructArray.from_arrays(children, names=wanted) if wanted else None
    if assets is None:
        raise CollectionSchemaError(f"{label}: 'assets' holds no TIFF asset to index")
    if RASTER_BANDS_COLUMN not in table.column_names:  # stac-geoparquet: per-asset STAC
        index = {b: child.field("band_index") for b, child in zip(wanted, children, strict=True)}
        raster = raster_bands_of_assets(column, wanted, index)
        if raster is not None:
            table = set_column(table, RASTER_BANDS_COLUMN, raster)
    return set_column(table, "assets", assets)


def _looks_like_tiff(asset: pa.Array) -> bool:
    if not pa.types.is_struct(asset.type) or asset.type.get_field_index("type") < 0:
        return True
    types = pc.drop_null(asset.field("type")).to_pylist()
    return not types or any("tiff" in str(t).lower() for t in types)


def _canonical_asset(
    asset: pa.Array, label: str, band: str, patterns: Mapping[str, str] | None
) -> pa.StructArray:
    if pa.types.is_string(asset.type) or pa.types.is_large_string(asset.type):
        href, index = asset.cast(pa.string()), pa.nulls(len(asset), pa.int64())
        valid = pc.is_valid(href)
    elif pa.types.is_struct(asset.type) and asset.type.get_field_index("href") >= 0:
        flat = dict(zip([f.name for f in asset.type], asset.flatten(), strict=True))
        href = flat["href"].cast(pa.string())
        index = flat.get("band_index", pa.nulls(len(asset), pa.int64())).cast(pa.int64())
        valid = pc.and_(pc.is_valid(asset), pc.is_valid(href))
    else:
        raise CollectionSchemaError(
            f"{label}: asset {band!r} must be a struct with 'href' or a string, got {asset.type}"
        )
    href = rewrite_urls(href, patterns)
    return pa.StructArray.from_arrays([href, index], fields=list(ASSET_TYPE), mask=pc.invert(valid))


def strip_asset_credentials(table: pa.Table, label: str) -> pa.Table:
    """``assets`` with every query parameter outside the public allow-list
    (:data:`~rasteret.fetch.secrets.PUBLIC_QUERY_PARAMS`) and any user info removed
    from every href, and redacted in ``{band}_error`` messages, so no credential (SAS,
    pre-signed, token or CloudFront query string) is written into an index; sign at
    read time instead."""
    from rasteret.fetch.secrets import (
        PUBLIC_QUERY_PARAMS,
        has_credentials,
        redact,
        strip_credentials,
    )

    for name in table.column_names:
        if name.endswith("_error") and pa.types.is_string(table[name].type):
            messages = table[name].to_pylist()
            if any(m and ("?" in m or "@" in m) for m in messages):
                redacted = [redact(m) if m else m for m in messages]
                table = set_column(table, name, pa.array(redacted, pa.string()))
    if "assets" not in table.column_names:
        return table
    assets = table["assets"].combine_chunks()
    if not pa.types.is_struct(assets.type):
        return table
    children, stripped = [], 0
    for child in assets.flatten():
        if not pa.types.is_struct(child.type) or child.type.get_field_index("href") < 0:
            children.append(child)
            continue
        parts = dict(zip([f.name for f in child.type], child.flatten(), strict=True))
        hrefs = parts["href"].to_pylist()
        clean = [strip_credentials(h) if h else h for h in hrefs]
        stripped += sum(1 for h in hrefs if h and has_credentials(h))
        parts["href"] = pa.array(clean, parts["href"].type)
        children.append(
            pa.StructArray.from_arrays(
                list(parts.values()), fields=list(child.type), mask=child.is_null()
            )
        )
    if not stripped:
        return table
    log.warning(
        "%s: removed query strings / user info from %d asset href(s) (only %s are kept: "
        "anything else may be a credential); they are not saved in the index. Configure a "
        "signer to read them: "
        "rasteret.fetch.configure(signer=...) (docs/cloud.md)",
        label,
        stripped,
        "/".join(sorted(PUBLIC_QUERY_PARAMS)),
    )
    names = [f.name for f in assets.type]
    return set_column(
        table, "assets", pa.StructArray.from_arrays(children, names=names, mask=assets.is_null())
    )


def _map_to_struct(column: pa.MapArray) -> pa.StructArray:
    rows = column.to_pylist()
    keys = list(dict.fromkeys(k for row in rows if row for k, _ in row))
    values = [dict(row) if row is not None else None for row in rows]
    return pa.array(
        [{k: v.get(k) for k in keys} if v is not None else None for v in values],
        type=pa.struct([(k, column.type.item_type) for k in keys]),
    )


def normalise_ids(table: pa.Table, label: str) -> pa.Table:
    """Cast ``id`` to string; null ids are an error."""
    ids = table["id"]
    if ids.null_count:
        raise CollectionSchemaError(f"{label}: column 'id' has {ids.null_count} null value(s)")
    if not pa.types.is_string(ids.type):
        ids = ids.cast(pa.string())
    return set_column(table, "id", ids)


def normalise_datetime(table: pa.Table, label: str) -> pa.Table:
    """``datetime`` → ``timestamp[us]`` naive UTC (int → year; strings parsed; dates)."""
    column = table["datetime"].combine_chunks()
    t = column.type
    if pa.types.is_timestamp(t):
        out = column.cast(pa.timestamp(t.unit, tz="UTC")) if t.tz else column
        out = out.cast(pa.timestamp("us"), safe=False)
    elif pa.types.is_date(t):
        out = column.cast(pa.timestamp("us"))
    elif pa.types.is_integer(t):
        years = column.to_pylist()
        out = pa.array(
            [dt.datetime(y, 1, 1) if y is not None else None for y in years], pa.timestamp("us")
        )
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        out = pa.array(
            [parse_datetime_text(s, label) for s in column.to_pylist()], pa.timestamp("us")
        )
    elif pa.types.is_null(t):
        out = pa.nulls(len(column), pa.timestamp("us"))
    else:
        raise CollectionSchemaError(
            f"{label}: column 'datetime' has type {t}; expected a timestamp, date, int year "
            "or ISO-8601 string"
        )
    return set_column(table, "datetime", out)


def parse_datetime_text(text: str | None, label: str = "") -> dt.datetime | None:
    """Parse ISO-8601 text (``Z`` allowed) to a naive UTC datetime."""
    if text is None or not text.strip():
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CollectionSchemaError(
            f"{label}: cannot parse datetime {text!r} (expected ISO 8601, e.g. 2024-01-31 or "
            "2024-01-31T10:20:30Z)"
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def normalise_geometry(table: pa.Table, label: str) -> pa.Table:
    """``geometry`` → WKB binary in CRS84 (WKT strings parsed; GeoArrow CRS honoured)."""
    field = table.schema.field("geometry")
    column = table["geometry"].combine_chunks()
    storage = column.storage if isinstance(column, pa.ExtensionArray) else column
    t = storage.type
    if pa.types.is_null(t):
        return set_column(table, "geometry", pa.nulls(len(column), pa.binary()))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        wkb = shapely.to_wkb(shapely.from_wkt(storage.to_numpy(zero_copy_only=False)))
        storage = pa.array(wkb, pa.binary())
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        storage = storage.cast(pa.binary())
    else:
        raise CollectionSchemaError(
            f"{label}: column 'geometry' has type {field.type}; expected WKB binary or WKT"
        )
    crs = _geoarrow_crs(column, field)
    if crs is not None:
        storage = _reproject_wkb(storage, crs, label)
    return set_column(table, "geometry", storage)


def _geoarrow_crs(column: pa.Array, field: pa.Field) -> Any:
    raw = None
    if isinstance(column.type, pa.ExtensionType):
        raw = column.type.__arrow_ext_serialize__()
    elif field.metadata and b"ARROW:extension:metadata" in field.metadata:
        raw = field.metadata[b"ARROW:extension:metadata"]
    if not raw:
        return None
    try:
        crs = json.loads(raw).get("crs")
    except (ValueError, AttributeError):
        return None
    return crs or None


def _reproject_wkb(wkb: pa.Array, crs: Any, label: str) -> pa.Array:
    from pyproj import CRS, Transformer

    try:
        source = CRS.from_user_input(crs)
    except Exception as exc:
        raise CollectionSchemaError(
            f"{label}: geometry CRS {crs!r} is not understood: {exc}"
        ) from exc
    if source.equals(CRS.from_user_input("OGC:CRS84"), ignore_axis_order=True):
        return wkb
    log.info("%s: reprojecting geometry from %s to CRS84", label, source.to_string())
    transformer = Transformer.from_crs(source, "OGC:CRS84", always_xy=True)
    geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
    moved = shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(*xy.T)))
    return pa.array(shapely.to_wkb(moved), pa.binary())


def normalise_bbox(table: pa.Table, label: str) -> pa.Table:
    """``bbox`` → struct<xmin, ymin, xmax, ymax> (from a 4-list, a struct or the geometry)."""
    if "bbox" in table.column_names:
        column = table["bbox"].combine_chunks()
        if pa.types.is_struct(column.type):
            names = [f.name for f in column.type]
            if all(k in names for k in ("xmin", "ymin", "xmax", "ymax")):
                flat = dict(zip(names, column.flatten(), strict=True))
                arrays = [flat[k].cast(pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")]
                out = pa.StructArray.from_arrays(
                    arrays, fields=list(BBOX_TYPE), mask=pc.is_null(column)
                )
                return set_column(table, "bbox", out)
        if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type):
            rows = column.to_pylist()
            boxes = [_list_bbox(r) for r in rows]
            return set_column(table, "bbox", pa.array(boxes, BBOX_TYPE))
        log.warning("%s: 'bbox' of type %s replaced by the geometry's bounds", label, column.type)
    return set_column(table, "bbox", bbox_from_wkb(table["geometry"].combine_chunks()))


def _list_bbox(values: list[float] | None) -> dict | None:
    if not values:
        return None
    if len(values) == 6:  # 3-D STAC bbox
        values = [values[0], values[1], values[3], values[4]]
    return dict(zip(("xmin", "ymin", "xmax", "ymax"), values[:4], strict=True))


def bbox_from_wkb(wkb: pa.Array) -> pa.StructArray:
    """Bounds of each WKB geometry; a footprint split at ±180° gets ``xmin > xmax``."""
    geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
    bounds = shapely.bounds(geoms)
    for i in np.flatnonzero((bounds[:, 0] <= -180.0) & (bounds[:, 2] >= 180.0)):
        parts = getattr(geoms[i], "geoms", None)
        if parts is None or len(parts) < 2:
            continue
        east = [p.bounds[0] for p in parts if p.bounds[0] >= 0]
        west = [p.bounds[2] for p in parts if p.bounds[2] < 0]
        if east and west:  # split at the antimeridian, not genuinely global
            bounds[i, 0], bounds[i, 2] = min(east), max(west)
    valid = pa.array(~np.isnan(bounds[:, 0]))
    arrays = [pa.array(bounds[:, k], pa.float64(), from_pandas=True) for k in range(4)]
    return pa.StructArray.from_arrays(arrays, fields=list(BBOX_TYPE), mask=pc.invert(valid))


def require_columns(
    table: pa.Table, required: Sequence[str], label: str, hints: Mapping[str, str]
) -> None:
    """Raise :class:`CollectionSchemaError` listing missing columns and how to supply them."""
    missing = [c for c in required if c not in table.column_names]
    if not missing:
        return
    fixes = "; ".join(hints[c] for c in missing if c in hints)
    raise CollectionSchemaError(
        f"{label}: missing required columns {missing}; the table has columns "
        f"{table.column_names}. Rename your columns with column_map={{'<your column>': "
        f"'<required name>'}}{'; ' + fixes if fixes else ''}"
    )


def set_column(table: pa.Table, name: str, values: Any) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)
