"""CRS84 footprint of a raster grid (CRS + affine + shape).

The footprint is the outline of the grid's pixel edges, densified (``densify_pts``
extra points per edge, as ``rasterio.warp.transform_bounds`` does) and projected to
OGC:CRS84 (longitude, latitude) with pyproj.

Special cases, handled deliberately rather than by returning a globe-spanning box:

* **Antimeridian.** A footprint whose edges jump by more than 180° of longitude between
  consecutive points is unwrapped, then split at ±180° into a ``MultiPolygon``. Its
  ``bbox`` follows the STAC / GeoParquet convention ``xmin > xmax`` (the box wraps
  across 180°) and ``crosses_antimeridian`` is set. Spatial filters must treat
  ``xmin > xmax`` as "wrapping".
* **Poles.** When the outline encircles a pole (e.g. a polar stereographic grid centred on
  it), the polygon is closed through the pole and covers every longitude; ``bbox`` is then
  ``(-180, lat_min, 180, 90)`` (or ``-90`` for the south pole) and ``contains_pole`` is set.
  That box is genuinely correct, not a fallback.
* Points that cannot be projected (outside the projection's domain) are dropped; when fewer
  than three remain, :class:`FootprintError` is raised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon, box

from rasteret._types import Affine6
from rasteret.errors import RasteretError
from rasteret.geo.transform import transformer

_WORLD = box(-180.0, -90.0, 180.0, 90.0)


class FootprintError(RasteretError, ValueError):
    """A grid's footprint cannot be computed (no CRS, degenerate grid, outside the domain)."""


@dataclass(frozen=True, slots=True)
class Footprint:
    """A grid's outline in OGC:CRS84 and its bounding box."""

    geometry: Polygon | MultiPolygon
    bbox: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax (xmin > xmax: wraps 180°)
    crosses_antimeridian: bool = False
    contains_pole: bool = False

    @property
    def wkb(self) -> bytes:
        return shapely.to_wkb(self.geometry)


def _edge_pixels(width: int, height: int, densify_pts: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-edge coordinates (col, row) of the grid outline, clockwise, not closed."""
    n = densify_pts + 2
    t = np.linspace(0.0, 1.0, n)[:-1]  # each edge without its end corner
    cols = np.concatenate([t * width, np.full(n - 1, width), (1 - t) * width, np.zeros(n - 1)])
    rows = np.concatenate([np.zeros(n - 1), t * height, np.full(n - 1, height), (1 - t) * height])
    return cols, rows


def grid_footprint(
    transform: Affine6 | tuple[float, ...],
    width: int,
    height: int,
    crs: CRS | str | int,
    *,
    densify_pts: int = 21,
) -> Footprint:
    """Footprint in CRS84 of a ``width`` x ``height`` grid with affine ``transform``.

    ``transform`` is ``(a, b, c, d, e, f)`` (GDAL / rasterio order: ``x = a*col + b*row + c``,
    ``y = d*col + e*row + f``) or the 4-value ``(a, c, e, f)`` form of the original system.
    ``crs`` is anything ``pyproj.CRS.from_user_input`` accepts (WKT, ``"EPSG:32633"``, int).
    """
    if len(transform) == 4:
        a, c, e, f = transform
        b = d = 0.0
    elif len(transform) >= 6:
        a, b, c, d, e, f = transform[:6]
    else:
        raise FootprintError(f"transform must have 4 or 6 values, got {len(transform)}")
    if width <= 0 or height <= 0:
        raise FootprintError(f"grid has no pixels ({width} x {height})")
    if crs is None or crs == "":
        raise FootprintError("grid has no CRS; cannot place it on the globe")

    cols, rows = _edge_pixels(width, height, densify_pts)
    xs = a * cols + b * rows + c
    ys = d * cols + e * rows + f
    try:
        lon, lat = transformer(crs, "OGC:CRS84").transform(xs, ys, errcheck=False)
    except Exception as exc:  # rasteret.geo.CRSError (parse) and pyproj.ProjError
        raise FootprintError(f"cannot transform the grid outline to CRS84: {exc}") from exc
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if ok.sum() < 3:
        raise FootprintError("the grid outline lies outside the domain of its CRS")
    return _footprint_from_ring(lon[ok], lat[ok])


def _footprint_from_ring(lon: np.ndarray, lat: np.ndarray) -> Footprint:
    closed = np.append(lon, lon[0])
    unwrapped = np.unwrap(closed, period=360.0)
    winding = round((unwrapped[-1] - unwrapped[0]) / 360.0)
    ring_lon = unwrapped[:-1]
    lat = np.clip(lat, -90.0, 90.0)

    if winding != 0:  # the outline goes once around a pole: close it through that pole
        pole = 90.0 if np.mean(lat) > 0 else -90.0
        cap = Polygon(
            [
                *zip(ring_lon, lat, strict=True),
                (unwrapped[-1], lat[0]),
                (unwrapped[-1], pole),
                (ring_lon[0], pole),
            ]
        )
        geometry = _fold_into_world(shapely.make_valid(cap))
        ymin, ymax = (float(lat.min()), 90.0) if pole > 0 else (-90.0, float(lat.max()))
        return Footprint(geometry, (-180.0, ymin, 180.0, ymax), contains_pole=True)

    polygon = shapely.make_valid(Polygon(list(zip(ring_lon, lat, strict=True))))
    xmin, ymin, xmax, ymax = polygon.bounds
    if xmin >= -180.0 and xmax <= 180.0:
        return Footprint(polygon, (xmin, ymin, xmax, ymax))
    if xmax - xmin >= 360.0:  # wider than the globe: genuinely covers every longitude
        return Footprint(_fold_into_world(polygon), (-180.0, ymin, 180.0, ymax))
    geometry = _fold_into_world(polygon)
    wrap = lambda x: (x + 180.0) % 360.0 - 180.0  # noqa: E731
    return Footprint(geometry, (wrap(xmin), ymin, wrap(xmax), ymax), crosses_antimeridian=True)


def _fold_into_world(geometry: shapely.Geometry) -> Polygon | MultiPolygon:
    """Cut a geometry with longitudes beyond ±180° into pieces inside [-180, 180]."""
    parts: list[Polygon] = []
    for shift in (-360.0, 0.0, 360.0):
        moved = shapely.transform(geometry, lambda xy, s=shift: xy + np.array([s, 0.0]))
        piece = moved.intersection(_WORLD)
        parts.extend(
            g for g in getattr(piece, "geoms", [piece]) if isinstance(g, Polygon) and g.area > 0
        )
    if len(parts) == 1:
        return parts[0]
    return MultiPolygon(parts)
