"""Area / point geometries with a CRS: coercion of inputs, and moving them between CRSs.

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

Bbox tuples (one, or a sequence of them) stay boxes: :meth:`Geometries.in_crs` gives the
read path Shapely-free :class:`~rasteret.geo.rings.RingPolygon` s with Shapely's own
coordinates, so a bbox read never imports Shapely (a large part of a fresh process's
first read). Every other input is coerced by :mod:`rasteret.read.geometry_inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from numbers import Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pyproj import CRS

from rasteret.geo.rings import box_polygons
from rasteret.geo.transform import CRSError, crs_equal, crs_key, to_crs, transformer
from rasteret.read.geometry_errors import (
    GeometryCRSError,
    GeometryError,
    UnsupportedGeometryError,
)

if TYPE_CHECKING:
    import pyarrow as pa

GeometryKind = Literal["area", "point"]
DEFAULT_CRS = "EPSG:4326"
#: Points per polygon edge after densification before reprojection (as transform_bounds).
DENSIFY_POINTS = 21

__all__ = [
    "DEFAULT_CRS",
    "DENSIFY_POINTS",
    "Geometries",
    "GeometryCRSError",
    "GeometryError",
    "GeometryKind",
    "UnsupportedGeometryError",
    "as_crs",
    "check_box",
    "coerce_geometries",
    "footprints",
    "resolve_crs",
    "transform_geometries",
]


@dataclass(frozen=True)
class Geometries:
    """Geometries in input order, their CRS and the input's other columns.

    ``values``: an object array of Shapely geometries, or an ``(n, 4)`` float array of
    boxes (minx, miny, maxx, maxy) when the input was bbox tuples.
    """

    values: np.ndarray
    crs: CRS
    attributes: pa.Table | None = None  # non-geometry columns of a tabular input
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    #: :meth:`in_crs` results by CRS key.
    _projected: dict[str, np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.values):
            object.__setattr__(self, "ids", np.arange(len(self.values), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.values)

    @property
    def boxes(self) -> np.ndarray | None:
        """The ``(n, 4)`` boxes of a bbox input, else ``None``."""
        return None if self.values.dtype == object else self.values

    @cached_property
    def geometries(self) -> np.ndarray:
        """The geometries as Shapely objects (built on first use for boxes)."""
        if self.boxes is None:
            return self.values
        import shapely

        return shapely.box(*self.boxes.T)

    def total_bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` over every geometry, in :attr:`crs`."""
        if self.boxes is None:
            import shapely

            minx, miny, maxx, maxy = shapely.total_bounds(self.values)
        else:
            (minx, miny), (maxx, maxy) = self.boxes[:, :2].min(0), self.boxes[:, 2:].max(0)
        return (float(minx), float(miny), float(maxx), float(maxy))

    def to_crs(self, crs: Any, *, densify: bool = True) -> np.ndarray:
        """The geometries in ``crs`` as Shapely objects (densified first unless points)."""
        return transform_geometries(self.geometries, self.crs, to_crs(crs), densify=densify)

    def in_crs(self, crs: Any) -> np.ndarray:
        """The polygons in ``crs`` as the read path takes them (densified first): Shapely
        objects, or :class:`~rasteret.geo.rings.RingPolygon` s for boxes (equal
        coordinates, no Shapely import). Projected once per CRS."""
        dst = to_crs(crs)
        key = crs_key(dst)
        found = self._projected.get(key)
        if found is None:
            found = self._projected.setdefault(key, self._project(dst))
        return found

    def _project(self, dst: CRS) -> np.ndarray:
        if self.boxes is None:
            return self.to_crs(dst)
        out = box_polygons(self.boxes, self.crs, dst, points=DENSIFY_POINTS)
        if not all(np.isfinite(p.exterior).all() for p in out):
            raise GeometryError(
                f"geometries cannot be projected from {self.crs.name!r} to {dst.name!r} "
                "(outside the target CRS's domain)"
            )
        return out


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
    boxes = _boxes(value) if kind == "area" else None
    if boxes is not None:
        return Geometries(boxes, resolve_crs(geometry_crs, None, False))
    from rasteret.read.geometry_inputs import coerce_shapes

    geoms, found_crs, attributes, tabular = coerce_shapes(value, geometry_column, kind)
    return Geometries(geoms, resolve_crs(geometry_crs, found_crs, tabular), attributes)


def check_box(value: Any) -> tuple[float, float, float, float]:
    """A bbox tuple's four floats; raises :class:`GeometryError` unless they are finite
    and min < max."""
    minx, miny, maxx, maxy = (float(v) for v in value)
    if not (minx < maxx and miny < maxy and np.isfinite([minx, miny, maxx, maxy]).all()):
        raise GeometryError(
            f"invalid bbox {tuple(value)}: need finite values, minx < maxx and miny < maxy"
        )
    return minx, miny, maxx, maxy


def _is_box(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 4 and all(isinstance(v, Real) for v in value)


def _boxes(value: Any) -> np.ndarray | None:
    """``(n, 4)`` boxes when ``value`` is a bbox tuple or a non-empty list / tuple of them."""
    if _is_box(value):
        items = [value]
    elif isinstance(value, (list, tuple)) and value and all(_is_box(v) for v in value):
        items = list(value)
    else:
        return None
    return np.array([check_box(v) for v in items], dtype=np.float64).reshape(-1, 4)


def resolve_crs(geometry_crs: Any, found: CRS | None, tabular: bool) -> CRS:
    """The geometries' CRS: ``geometry_crs`` unless ``"auto"``, else the one found in the
    input, else EPSG:4326 (a tabular input without one raises)."""
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


# ----------------------------------------------------------------------------- reprojection


def footprints(wkb: pa.ChunkedArray | pa.Array, crs: Any = None) -> np.ndarray:
    """Shapely polygons of a lon/lat WKB footprint column (null stays ``None``), in
    ``crs`` when given (densified first: :func:`transform_geometries`)."""
    import shapely

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
    import shapely

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
