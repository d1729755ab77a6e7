"""The Arrow stream of a collection (``__arrow_c_stream__``): its ``geometry`` column (WKB)
annotated as the GeoArrow ``geoarrow.wkb`` extension with its CRS (``OGC:CRS84``), so
GeoArrow-aware readers (DuckDB, GeoPandas, lonboard) see geometries, not bytes."""

from __future__ import annotations

import json

import pyarrow as pa

#: Field metadata of the ``geometry`` column: GeoArrow WKB in lon/lat.
GEOARROW_WKB = {
    b"ARROW:extension:name": b"geoarrow.wkb",
    b"ARROW:extension:metadata": json.dumps(
        {"crs": "OGC:CRS84", "crs_type": "authority_code"}
    ).encode(),
}


def geoarrow_annotated(table: pa.Table) -> pa.Table:
    """``table`` with its binary ``geometry`` column annotated as ``geoarrow.wkb``."""
    if "geometry" not in table.column_names:
        return table
    index = table.schema.get_field_index("geometry")
    field = table.schema.field(index)
    if isinstance(field.type, pa.ExtensionType) or not (
        pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)
    ):
        return table
    schema = table.schema.set(
        index, field.with_metadata({**(field.metadata or {}), **GEOARROW_WKB})
    )
    return pa.Table.from_arrays(table.columns, schema=schema)
