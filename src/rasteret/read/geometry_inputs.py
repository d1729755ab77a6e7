"""Coercion of every geometry input but bbox tuples to Shapely (see
:mod:`rasteret.read.geometry` for the accepted inputs), and point coordinates.

Imported only when an input needs Shapely: a bbox read never loads this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
import pyarrow as pa
import shapely
from pyproj import CRS

from rasteret.read.geoarrow import (
    as_table,
    crs_metadata,
    from_arrow_column,
    from_table,
    from_wkb,
    guess_geometry_column,
    is_tabular,
    native_points,
)
from rasteret.read.geometry import (
    GeometryKind,
    as_crs,
    check_box,
    coerce_geometries,
    resolve_crs,
)
from rasteret.read.geometry_errors import GeometryError, UnsupportedGeometryError


def coerce_shapes(
    value: Any, geometry_column: str | None, kind: GeometryKind
) -> tuple[np.ndarray, CRS | None, pa.Table | None, bool]:
    """``value`` as a 1-D object array of checked Shapely geometries, the CRS found in the
    input, its other columns, and whether it was tabular."""
    geoms, found_crs, attributes, tabular = _coerce(value, geometry_column, kind)
    geoms = np.asarray(geoms, dtype=object)
    if geoms.ndim != 1:
        geoms = geoms.reshape(-1)
    if len(geoms) == 0:
        raise GeometryError("no geometries given")
    _check_types(geoms, kind)
    return geoms, found_crs, attributes, tabular


def _coerce(
    value: Any, geometry_column: str | None, kind: GeometryKind
) -> tuple[Any, CRS | None, pa.Table | None, bool]:
    """(geometries, CRS found in the input, other columns, whether the input was tabular)."""
    if value is None:
        raise GeometryError("geometries is None: pass a bbox tuple, Shapely geometries, WKB, ...")
    if isinstance(value, tuple) and len(value) == 4 and all(isinstance(v, Real) for v in value):
        return [_bbox(value)], None, None, False
    pair = isinstance(value, tuple) and len(value) == 2
    if kind == "point" and pair and all(isinstance(v, Real) for v in value):
        return [shapely.Point(float(value[0]), float(value[1]))], None, None, False
    if isinstance(value, shapely.Geometry):
        return [value], None, None, False
    if isinstance(value, (bytes, bytearray, memoryview)):
        return [from_wkb(bytes(value), 0)], None, None, False
    if isinstance(value, str):
        return [_from_wkt(value, 0)], None, None, False
    if isinstance(value, Mapping):
        return _from_geojson(value), _crs_of_mapping(value), None, False
    if isinstance(value, np.ndarray) and value.dtype != object:
        return _from_coordinates(value, kind), None, None, False
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        field = pa.field("geometry", value.type)
        return from_arrow_column(value, field, "geometry"), None, None, False
    if is_tabular(value):
        return (*_table_geometries(as_table(value), geometry_column), True)
    if hasattr(value, "to_arrow") and hasattr(value, "__geo_interface__"):
        crs = _crs_attribute(value)
        try:
            table = as_table(value.to_arrow(geometry_encoding="WKB"))
        except TypeError:
            table = None
        if table is not None:
            geoms, found, attributes = _table_geometries(table, geometry_column)
            return geoms, found or crs, attributes, False
    if hasattr(value, "__geo_interface__"):
        return _from_geojson(value.__geo_interface__), _crs_attribute(value), None, False
    if isinstance(value, (Sequence, np.ndarray)):
        items = list(value)
        if not items:
            raise GeometryError("no geometries given (empty sequence)")
        return [_one(item, i, kind) for i, item in enumerate(items)], None, None, False
    raise GeometryError(
        f"cannot use a {type(value).__name__} as geometries: pass a bbox tuple, Shapely "
        "geometries, WKB bytes, GeoJSON dicts, a GeoArrow/Arrow array or table, or a "
        "GeoDataFrame"
    )


def _one(item: Any, index: int, kind: GeometryKind) -> shapely.Geometry:
    if isinstance(item, shapely.Geometry):
        return item
    if isinstance(item, (bytes, bytearray, memoryview)):
        return from_wkb(bytes(item), index)
    if isinstance(item, str):
        return _from_wkt(item, index)
    if isinstance(item, Mapping):
        found = _from_geojson(item)
        if len(found) != 1:
            raise GeometryError(f"geometry {index}: a FeatureCollection inside a list")
        return found[0]
    if hasattr(item, "__geo_interface__"):
        return shapely.geometry.shape(item.__geo_interface__)
    if isinstance(item, (tuple, list)) and all(isinstance(v, Real) for v in item):
        if kind == "point" and len(item) == 2:
            return shapely.Point(float(item[0]), float(item[1]))
        if len(item) == 4 and isinstance(item, tuple):
            return _bbox(item)
    raise GeometryError(f"geometry {index}: cannot use a {type(item).__name__}")


def _bbox(value: Sequence[float]) -> shapely.Geometry:
    return shapely.box(*check_box(value))


def _from_wkt(text: str, index: int) -> shapely.Geometry:
    try:
        return shapely.from_wkt(text)
    except Exception as exc:
        raise GeometryError(f"geometry {index}: invalid WKT {text[:40]!r}: {exc}") from None


def _from_geojson(obj: Mapping[str, Any]) -> list[shapely.Geometry]:
    kind = obj.get("type")
    if kind == "FeatureCollection":
        return [_geojson_geometry(f.get("geometry"), i) for i, f in enumerate(obj["features"])]
    if kind == "Feature":
        return [_geojson_geometry(obj.get("geometry"), 0)]
    return [_geojson_geometry(obj, 0)]


def _geojson_geometry(obj: Any, index: int) -> shapely.Geometry:
    if obj is None:
        raise GeometryError(f"geometry {index}: null GeoJSON geometry")
    try:
        return shapely.geometry.shape(obj)
    except Exception as exc:
        raise GeometryError(f"geometry {index}: invalid GeoJSON geometry: {exc}") from None


def _crs_of_mapping(obj: Mapping[str, Any]) -> CRS | None:
    crs = obj.get("crs")
    if isinstance(crs, Mapping):  # GeoJSON 2008 named CRS
        name = (crs.get("properties") or {}).get("name")
        return as_crs(name) if name else None
    return None


def _table_geometries(
    table: pa.Table, geometry_column: str | None
) -> tuple[np.ndarray, CRS | None, pa.Table]:
    geoms, crs, attributes = from_table(table, geometry_column)
    return geoms, _optional_crs(crs), attributes


def _optional_crs(value: Any) -> CRS | None:
    return None if value is None else as_crs(value)


def _crs_attribute(value: Any) -> CRS | None:
    crs = getattr(value, "crs", None)
    return None if crs is None else as_crs(crs)


def _from_coordinates(array: np.ndarray, kind: GeometryKind) -> np.ndarray:
    if kind != "point" or array.ndim != 2 or array.shape[1] != 2:
        raise GeometryError(
            f"a numeric array of shape {array.shape} is not a geometry input "
            "(for points pass an (N, 2) array of x, y)"
        )
    return shapely.points(np.asarray(array, dtype=np.float64))


def point_coordinates(
    value: Any,
    *,
    geometry_crs: Any = "auto",
    geometry_column: str | None = None,
    x_column: str | None = None,
    y_column: str | None = None,
) -> tuple[np.ndarray, np.ndarray, CRS, pa.Table | None]:
    """``(x, y, crs, other columns)`` of point input, vectorised (no per-point Python).

    ``x_column`` / ``y_column`` read plain coordinate columns of a table; otherwise
    the input is coerced like :func:`coerce_geometries` with ``kind="point"``.
    """
    if x_column is not None or y_column is not None:
        if x_column is None or y_column is None:
            raise GeometryError("pass both x_column and y_column")
        table = as_table(value)
        for column in (x_column, y_column):
            if column not in table.column_names:
                raise GeometryError(
                    f"column {column!r} is not in the points table (columns: {table.column_names})"
                )
        x = table[x_column].to_numpy().astype(np.float64)
        y = table[y_column].to_numpy().astype(np.float64)
        crs = resolve_crs(geometry_crs, None, True)
        return x, y, crs, table.drop_columns([x_column, y_column])
    if is_tabular(value):
        table = as_table(value)
        name = geometry_column or guess_geometry_column(table)
        if name in table.column_names:
            field = table.schema.field(name)
            column = table[name].combine_chunks()
            storage = column.storage if isinstance(column.type, pa.ExtensionType) else column
            xy = native_points(storage)
            if xy is not None:
                crs = resolve_crs(geometry_crs, _optional_crs(crs_metadata(field)), True)
                return xy[:, 0].copy(), xy[:, 1].copy(), crs, table.drop_columns([name])
    if isinstance(value, np.ndarray) and value.dtype != object:
        xy = np.asarray(value, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise GeometryError(f"point array must have shape (N, 2), got {xy.shape}")
        crs = resolve_crs(geometry_crs, None, False)
        return xy[:, 0].copy(), xy[:, 1].copy(), crs, None
    found = coerce_geometries(
        value, geometry_crs=geometry_crs, geometry_column=geometry_column, kind="point"
    )
    return (
        shapely.get_x(found.geometries),
        shapely.get_y(found.geometries),
        found.crs,
        found.attributes,
    )


_AREA_TYPES = {shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON}


def _check_types(geoms: np.ndarray, kind: GeometryKind) -> None:
    if shapely.is_missing(geoms).any():
        raise GeometryError(f"geometry {int(np.argmax(shapely.is_missing(geoms)))} is missing")
    types = shapely.get_type_id(geoms)
    if kind == "area":
        bad = ~np.isin(types, [int(t) for t in _AREA_TYPES])
        if bad.any():
            i = int(np.argmax(bad))
            name = geoms[i].geom_type
            if name in ("Point", "MultiPoint"):
                raise UnsupportedGeometryError(
                    f"geometry {i} is a {name}: area reads take Polygon / MultiPolygon; "
                    "use sample_points() for values at points"
                )
            raise UnsupportedGeometryError(
                f"geometry {i} is a {name}: area reads take Polygon / MultiPolygon"
            )
    else:
        bad = types != int(shapely.GeometryType.POINT)
        if bad.any():
            i = int(np.argmax(bad))
            raise UnsupportedGeometryError(
                f"geometry {i} is a {geoms[i].geom_type}: sample_points takes Points"
            )
    empty = shapely.is_empty(geoms)
    if empty.any():
        raise GeometryError(f"geometry {int(np.argmax(empty))} is empty")
