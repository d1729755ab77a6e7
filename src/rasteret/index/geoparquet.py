"""GeoParquet 1.1 ``geo`` metadata for a collection table.

The ``geometry`` column is WKB in OGC:CRS84 (the GeoParquet default, so no ``crs``
key is written) and the ``bbox`` struct column is declared as its bbox covering.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

GEOPARQUET_VERSION = "1.1.0"

_BASE_TYPES = {
    1: "Point",
    2: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
_ISO_SUFFIX = {0: "", 1: " Z", 2: " M", 3: " ZM"}


def wkb_type_name(head: bytes) -> str:
    """GeoParquet geometry type name from the first 5 bytes of a WKB (ISO or EWKB)."""
    if len(head) < 5 or head[0] not in (0, 1):
        raise ValueError(f"not a WKB geometry header: {head!r}")
    code = struct.unpack("<I" if head[0] == 1 else ">I", head[1:5])[0]
    has_z = bool(code & 0x80000000)  # EWKB flags
    has_m = bool(code & 0x40000000)
    code &= 0x0FFFFFFF
    dims, base = divmod(code, 1000)
    if base not in _BASE_TYPES or dims > 3:
        raise ValueError(f"unknown WKB geometry type code {code}")
    if has_z or has_m:
        dims = (1 if has_z else 0) + (2 if has_m else 0)
    return _BASE_TYPES[base] + _ISO_SUFFIX[dims]


def geometry_types(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """Sorted distinct geometry type names of a WKB column (nulls ignored)."""
    if isinstance(column.type, pa.ExtensionType):
        column = _storage(column)
    if len(column) == 0 or column.null_count == len(column):
        return []
    heads = pc.unique(pc.binary_slice(column.cast(pa.large_binary()), 0, 5))
    return sorted({wkb_type_name(h) for h in heads.to_pylist() if h is not None})


def _storage(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
    return column.storage


def geo_metadata(table: pa.Table) -> dict[str, Any]:
    """The GeoParquet 1.1 ``geo`` metadata dict for ``table``."""
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": geometry_types(table["geometry"]),
    }
    if "bbox" in table.column_names:
        column["covering"] = {
            "bbox": {key: ["bbox", key] for key in ("xmin", "ymin", "xmax", "ymax")}
        }
        bounds = _bounds(table)
        if bounds is not None:
            column["bbox"] = list(bounds)
    return {
        "version": GEOPARQUET_VERSION,
        "primary_column": "geometry",
        "columns": {"geometry": column},
    }


def _bounds(table: pa.Table) -> tuple[float, float, float, float] | None:
    bbox = table["bbox"]
    values = []
    for key, reduce in (("xmin", pc.min), ("ymin", pc.min), ("xmax", pc.max), ("ymax", pc.max)):
        value = reduce(pc.struct_field(bbox, key)).as_py()
        if value is None:
            return None
        values.append(float(value))
    return tuple(values)  # type: ignore[return-value]


def geo_metadata_json(table: pa.Table) -> str:
    """:func:`geo_metadata` serialised as the Parquet ``geo`` key value."""
    return json.dumps(geo_metadata(table))
