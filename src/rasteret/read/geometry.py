"""Coerce area / point inputs to Shapely geometries with a CRS, and move them between CRSs.

Accepted inputs (no geopandas dependency):

* a 4-tuple ``(minx, miny, maxx, maxy)`` (a *tuple*; a list of four numbers is ambiguous);
* Shapely geometries (one, a sequence, or a NumPy object array);
* WKB ``bytes`` (one or a sequence), WKT strings;
* GeoJSON dicts (geometry, ``Feature``, ``FeatureCollection``; one or a sequence);
* objects with ``__geo_interface__`` (a GeoDataFrame / GeoSeries works this way, with its
  ``.crs``), or with ``to_arrow()`` (geopandas >= 1.0: GeoArrow with CRS metadata);
* Arrow: a ``pa.Array`` / ``ChunkedArray`` of WKB / WKT / native GeoArrow points, or a
  table-like object (``pa.Table``, ``RecordBatch``, ``RecordBatchReader``, anything with
  ``__arrow_c_stream__`` such as a DuckDB relation) with ``geometry_column=`` (picked
  automatically when exactly one column is GeoArrow-annotated or binary);
* for points also ``(x, y)`` tuples, an ``(N, 2)`` array, and ``x_column`` / ``y_column``.

``geometry_crs="auto"`` takes the CRS from GeoArrow metadata (or a ``.crs`` attribute);
non-tabular input without one is EPSG:4326 (as in the original); tabular input without
CRS metadata raises :class:`GeometryCRSError` unless ``geometry_crs`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import shapely
from pyproj import CRS

from rasteret.geo.transform import CRSError, crs_equal, to_crs, transformer
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
from rasteret.read.geometry_errors import (
    GeometryCRSError,
    GeometryError,
    UnsupportedGeometryError,
)

GeometryKind = Literal["area", "point"]
DEFAULT_CRS = "EPSG:4326"
#: Points per polygon edge after densification before reprojection (as transform_bounds).
DENSIFY_POINTS = 21


@dataclass(frozen=True)
class Geometries:
    """Geometries (Shapely, input order), their CRS and the input's other columns."""

    geometries: np.ndarray  # object array of shapely geometries
    crs: CRS
    attributes: pa.Table | None = None  # non-geometry columns of a tabular input
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.geometries):
            object.__setattr__(self, "ids", np.arange(len(self.geometries), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.geometries)

    def to_crs(self, crs: Any, *, densify: bool = True) -> np.ndarray:
        """The geometries in ``crs`` (densified first unless points; cached per CRS)."""
        return transform_geometries(self.geometries, self.crs, to_crs(crs), densify=densify)


def as_crs(value: Any, *, what: str = "geometry_crs") -> CRS:
    """``value`` as a CRS through :func:`rasteret.geo.transform.to_crs` (the one parser);
    a value that is not a CRS raises :class:`GeometryCRSError` (a ``CRSError``)."""
    try:
        return to_crs(value, what=what)
    except GeometryCRSError:
        raise
    except CRSError as exc:
        raise GeometryCRSError(str(exc)) from None


# ----------------------------------------------------------------------------- coercion


def coerce_geometries(
    value: Any,
    *,
    geometry_crs: Any = "auto",
    geometry_column: str | None = None,
    kind: GeometryKind = "area",
) -> Geometries:
    """``value`` (see module docs) as :class:`Geometries`.

    ``kind="area"`` accepts Polygon / MultiPolygon (and bbox tuples); ``kind="point"``
    accepts Point geometries. Raises :class:`GeometryError` subclasses naming the
    problem: invalid WKB, a wrong geometry type, empty or null geometries, a tabular
    input without CRS.
    """
    geoms, found_crs, attributes, tabular = _coerce(value, geometry_column, kind)
    crs = _resolve_crs(geometry_crs, found_crs, tabular)
    geoms = np.asarray(geoms, dtype=object)
    if geoms.ndim != 1:
        geoms = geoms.reshape(-1)
    if len(geoms) == 0:
        raise GeometryError("no geometries given")
    _check_types(geoms, kind)
    return Geometries(geoms, crs, attributes)


def _resolve_crs(geometry_crs: Any, found: CRS | None, tabular: bool) -> CRS:
    if geometry_crs is not None and not (isinstance(geometry_crs, str) and geometry_crs == "auto"):
        return as_crs(geometry_crs)
    if found is not None:
        return found
    if tabular:
        raise GeometryCRSError(
            "Tabular Arrow geometry input is missing GeoArrow CRS metadata: pass "
            "geometry_crs= (e.g. geometry_crs='EPSG:4326' or the CRS of the coordinates)"
        )
    return as_crs(DEFAULT_CRS)


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
    minx, miny, maxx, maxy = (float(v) for v in value)
    if not (minx < maxx and miny < maxy):
        raise GeometryError(f"invalid bbox {tuple(value)}: need minx < maxx and miny < maxy")
    return shapely.box(minx, miny, maxx, maxy)


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
        crs = _resolve_crs(geometry_crs, None, True)
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
                crs = _resolve_crs(geometry_crs, _optional_crs(crs_metadata(field)), True)
                return xy[:, 0].copy(), xy[:, 1].copy(), crs, table.drop_columns([name])
    if isinstance(value, np.ndarray) and value.dtype != object:
        xy = np.asarray(value, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise GeometryError(f"point array must have shape (N, 2), got {xy.shape}")
        crs = _resolve_crs(geometry_crs, None, False)
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


# ----------------------------------------------------------------------------- checks


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


# ----------------------------------------------------------------------------- reprojection


def footprints(wkb: pa.ChunkedArray | pa.Array, crs: Any = None) -> np.ndarray:
    """Shapely polygons of a lon/lat WKB footprint column (null stays ``None``), in
    ``crs`` when given (densified first: :func:`transform_geometries`)."""
    geoms = shapely.from_wkb(np.asarray(wkb.to_pylist(), dtype=object))
    if crs is None:
        return geoms
    present = ~shapely.is_missing(geoms)
    out = geoms.copy()
    if present.any():
        out[present] = transform_geometries(
            geoms[present], as_crs("OGC:CRS84"), as_crs(crs, what="crs")
        )
    return out


def transform_geometries(
    geoms: np.ndarray, src: CRS, dst: CRS, *, densify: bool = True
) -> np.ndarray:
    """``geoms`` from ``src`` to ``dst``; polygons are densified first (each edge split into
    segments no longer than 1/``DENSIFY_POINTS`` of the geometry's larger extent), so
    curved edges in ``dst`` are followed, not cut."""
    if crs_equal(src, dst):
        return geoms
    if densify:
        bounds = shapely.bounds(geoms)
        extent = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
        step = np.where(extent > 0, extent / DENSIFY_POINTS, np.inf)
        geoms = shapely.segmentize(geoms, step)
    project = transformer(src, dst)

    def move(coords: np.ndarray) -> np.ndarray:
        x, y = project.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    out = shapely.transform(geoms, move)
    if not np.isfinite(shapely.bounds(out)).all():
        raise GeometryError(
            f"geometries cannot be projected from {src.name!r} to {dst.name!r} "
            "(outside the target CRS's domain)"
        )
    return out
