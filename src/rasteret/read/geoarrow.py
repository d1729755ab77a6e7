"""Arrow / GeoArrow geometry input: tables and columns → Shapely geometries or coordinates.

WKB (``geoarrow.wkb`` or plain binary), WKT and native GeoArrow point columns (struct or
interleaved), with the CRS taken from the GeoArrow extension metadata. Used by
:mod:`rasteret.read.geometry`, which resolves that CRS.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import shapely

from rasteret.read.geometry_errors import GeometryError


def from_wkb(data: bytes, index: int) -> shapely.Geometry:
    """One WKB geometry; the error names its position ``index``."""
    try:
        return shapely.from_wkb(data)
    except Exception as exc:
        raise GeometryError(f"geometry {index}: invalid WKB ({len(data)} bytes): {exc}") from None


def is_tabular(value: Any) -> bool:
    """Whether ``value`` is an Arrow table-like input (not a GeoDataFrame)."""
    return isinstance(value, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)) or (
        hasattr(value, "__arrow_c_stream__") and not hasattr(value, "__geo_interface__")
    )


def as_table(value: Any) -> pa.Table:
    """``value`` (Table, RecordBatch, RecordBatchReader, Arrow C stream) as a ``pa.Table``."""
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    if isinstance(value, pa.RecordBatchReader):
        return value.read_all()
    return pa.table(value)


def from_table(table: pa.Table, geometry_column: str | None) -> tuple[np.ndarray, Any, pa.Table]:
    """(geometries, :func:`crs_metadata` of their column, the other columns) of ``table``."""
    name = geometry_column or guess_geometry_column(table)
    if name not in table.column_names:
        raise GeometryError(
            f"geometry_column {name!r} is not in the table (columns: {table.column_names})"
        )
    field = table.schema.field(name)
    geoms = from_arrow_column(table[name], field, name)
    return geoms, crs_metadata(field), table.drop_columns([name])


def guess_geometry_column(table: pa.Table) -> str:
    """The one GeoArrow-annotated column, else ``geometry``, else the one binary column."""
    annotated = [f.name for f in table.schema if _extension_name(f) is not None]
    if len(annotated) == 1:
        return annotated[0]
    if "geometry" in table.column_names:
        return "geometry"
    binary = [f.name for f in table.schema if pa.types.is_binary(f.type)]
    if len(binary) == 1 and not annotated:
        return binary[0]
    raise GeometryError(
        f"cannot tell which column holds the geometries (columns: {table.column_names}): "
        "pass geometry_column="
    )


def _extension_name(field: pa.Field) -> str | None:
    if isinstance(field.type, pa.ExtensionType):
        return field.type.extension_name
    meta = field.metadata or {}
    name = meta.get(b"ARROW:extension:name")
    return name.decode() if name and name.startswith(b"geoarrow.") else None


def _extension_metadata(field: pa.Field) -> dict[str, Any]:
    if isinstance(field.type, pa.ExtensionType):
        raw = field.type.__arrow_ext_serialize__()
    else:
        raw = (field.metadata or {}).get(b"ARROW:extension:metadata") or b""
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


def crs_metadata(field: pa.Field) -> Any:
    """The ``crs`` of a GeoArrow column's extension metadata as stored (PROJJSON, WKT, ...),
    ``None`` without one; raises :class:`GeometryError` for non-planar edges."""
    meta = _extension_metadata(field)
    if meta.get("edges") not in (None, "planar"):
        raise GeometryError(
            f"column {field.name!r}: GeoArrow edges={meta['edges']!r} are not supported "
            "(only planar edges)"
        )
    crs = meta.get("crs")
    return None if crs in (None, "") else crs


def from_arrow_column(column: Any, field: pa.Field, name: str) -> np.ndarray:
    """Shapely geometries of a WKB, WKT or native GeoArrow point column (no nulls)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column.type, pa.ExtensionType):
        column = column.storage
    if column.null_count:
        first = column.is_null().to_numpy(zero_copy_only=False).argmax()
        raise GeometryError(f"column {name!r}: geometry {int(first)} is null")
    kind = column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        values = column.to_numpy(zero_copy_only=False)
        try:
            return shapely.from_wkb(values)
        except Exception as exc:
            for i, v in enumerate(values):  # name the first bad one
                from_wkb(v, i)
            raise GeometryError(f"column {name!r}: invalid WKB: {exc}") from None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            return shapely.from_wkt(column.to_numpy(zero_copy_only=False))
        except Exception as exc:
            raise GeometryError(f"column {name!r}: invalid WKT: {exc}") from None
    xy = native_points(column)
    if xy is not None:
        return shapely.points(xy)
    raise GeometryError(
        f"column {name!r} of type {kind} is not a supported geometry encoding "
        "(WKB, WKT or GeoArrow points)"
    )


def native_points(column: pa.Array) -> np.ndarray | None:
    """``(N, 2)`` coordinates of a native GeoArrow point column (struct or interleaved)."""
    kind = column.type
    if pa.types.is_struct(kind) and {"x", "y"} <= {f.name for f in kind}:
        x = column.field("x").to_numpy(zero_copy_only=False)
        y = column.field("y").to_numpy(zero_copy_only=False)
        return np.column_stack([x, y]).astype(np.float64)
    if pa.types.is_fixed_size_list(kind) and kind.list_size in (2, 3, 4):
        flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
        return flat.reshape(-1, kind.list_size)[:, :2]
    return None
