"""Boxes as polygon rings without Shapely: the form a bbox AOI takes on the read path.

A bbox read (``get_numpy((minx, miny, maxx, maxy), ...)``) needs a polygon's bounds, its
rings for :mod:`rasteret.geo.rasterize`, and the polygon moved to a record's CRS. None of
that needs Shapely, whose import is a large part of a fresh process's first read.
:class:`RingPolygon` offers what the read path asks of a polygon (``bounds``,
``geom_type``, ``is_empty``, ``rings``); :func:`box_polygons` builds them in a CRS.

Its coordinates equal Shapely's for the same box, bit for bit: :func:`box_ring` is
``shapely.box``'s ring, :func:`densify_ring` is GEOS's ``Densifier`` (``segmentize``)
with the same floating-point steps, and the projection is the same pyproj transformer.
So a box read gives the same windows and masks whichever form the box came in (tested
against Shapely on random boxes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pyproj import CRS

from rasteret.geo.transform import crs_equal, transformer


@dataclass(frozen=True, eq=False)
class RingPolygon:
    """A polygon without holes: its closed exterior ring, ``(k, 2)`` x / y."""

    exterior: np.ndarray
    geom_type: ClassVar[str] = "Polygon"
    is_empty: ClassVar[bool] = False

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)``, as Shapely's."""
        x, y = self.exterior[:, 0], self.exterior[:, 1]
        return (float(x.min()), float(y.min()), float(x.max()), float(y.max()))

    @property
    def rings(self) -> list[np.ndarray]:
        """Exterior first, then holes (none)."""
        return [self.exterior]

    def intersects_box(self, box: tuple[float, float, float, float]) -> bool:
        """Whether the polygon and the closed box ``(minx, miny, maxx, maxy)`` share a
        point: an edge meets the box (Liang-Barsky clipping), or the box lies inside."""
        minx, miny, maxx, maxy = box
        x0, y0 = self.exterior[:-1, 0], self.exterior[:-1, 1]
        dx, dy = np.diff(self.exterior[:, 0]), np.diff(self.exterior[:, 1])
        enter, leave = np.zeros(len(dx)), np.ones(len(dx))
        inside = np.ones(len(dx), bool)
        for p, q in ((-dx, x0 - minx), (dx, maxx - x0), (-dy, y0 - miny), (dy, maxy - y0)):
            parallel = p == 0
            inside &= ~(parallel & (q < 0))
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(parallel, 0.0, q / np.where(parallel, 1.0, p))
            enter = np.where(~parallel & (p < 0), np.maximum(enter, r), enter)
            leave = np.where(~parallel & (p > 0), np.minimum(leave, r), leave)
        if (inside & (enter <= leave)).any():
            return True
        return self._contains_point(minx, miny)

    def _contains_point(self, x: float, y: float) -> bool:
        """Even-odd ray casting (a point on the boundary was found by the edge test)."""
        xs, ys = self.exterior[:, 0], self.exterior[:, 1]
        x0, y0, x1, y1 = xs[:-1], ys[:-1], xs[1:], ys[1:]
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        return bool(np.count_nonzero(crosses & (x < at)) % 2)


def box_ring(minx: float, miny: float, maxx: float, maxy: float) -> np.ndarray:
    """The closed ring of ``shapely.box(minx, miny, maxx, maxy)`` (counter-clockwise,
    starting at the lower right corner)."""
    return np.array(
        [[maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny], [maxx, miny]], np.float64
    )


def densify_ring(ring: np.ndarray, max_length: float) -> np.ndarray:
    """``ring`` with every segment longer than ``max_length`` split into equal parts: GEOS's
    ``Densifier::densifyPoints`` (``shapely.segmentize``), step for step."""
    points: list[np.ndarray] = []
    for (x0, y0), (x1, y1) in zip(ring[:-1].tolist(), ring[1:].tolist(), strict=True):
        points.append(np.array([[x0, y0]]))
        dx, dy = x1 - x0, y1 - y0
        length = math.sqrt(dx * dx + dy * dy)
        count = math.ceil(length / max_length)
        if count > 1:
            fraction = (np.arange(1, count, dtype=np.float64) * (length / count)) / length
            points.append(np.column_stack([x0 + fraction * dx, y0 + fraction * dy]))
    points.append(ring[-1:])
    return np.concatenate(points)


def box_polygons(boxes: np.ndarray, src: CRS, dst: CRS, *, points: int) -> np.ndarray:
    """``boxes`` (``(n, 4)``: minx, miny, maxx, maxy in ``src``) as an object array of
    :class:`RingPolygon` in ``dst``: each densified first (segments no longer than
    1/``points`` of the box's larger side) unless the CRSs are equal. Corners outside
    ``dst``'s domain come out infinite; the caller decides."""
    rings = [box_ring(*map(float, b)) for b in boxes]
    if not crs_equal(src, dst):
        widths = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        rings = [densify_ring(r, float(w) / points) for r, w in zip(rings, widths, strict=True)]
        sizes = [len(r) for r in rings]
        flat = np.concatenate(rings)
        x, y = transformer(src, dst).transform(flat[:, 0], flat[:, 1])
        rings = np.split(np.column_stack([x, y]), np.cumsum(sizes)[:-1])
    out = np.empty(len(rings), dtype=object)
    out[:] = [RingPolygon(r) for r in rings]
    return out
