"""Pixel windows and masks of AOI geometries on a grid: rasterio's ``geometry_window``
and ``geometry_mask``.

:func:`geometry_windows` reproduces ``rasterio.features.geometry_window`` exactly
(bounds → inverse affine by ``np.linalg.solve`` as rasterio's ``AffineTransformer`` →
floor of offsets, ceiling of ends → intersection with the raster), vectorised over
geometries. :func:`geometry_mask` burns a geometry into a window grid with GDAL's
rules (pixel centres inside, or every touched pixel with ``all_touched``) through
:mod:`rasteret.geo.rasterize`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rasteret._types import Affine6
from rasteret.geo.grid import GridSpec
from rasteret.geo.rings import RingPolygon
from rasteret.geo.window import Window


def geometry_windows(
    geometries: np.ndarray, transform: Affine6, shape: tuple[int, int] | None
) -> list[Window | None]:
    """rasterio's ``geometry_window`` of each geometry (one geometry per window).

    With ``shape`` (height, width) the window is intersected with the raster and
    ``None`` marks a geometry that does not overlap it; without, windows are unbounded.
    """
    bounds = _bounds(geometries)  # (n, 4): minx, miny, maxx, maxy
    left, bottom, right, top = bounds.T
    xs = np.stack([left, right, right, left], axis=1).ravel()
    ys = np.stack([top, top, bottom, bottom], axis=1).ravel()
    a, b, c, d, e, f = transform
    matrix = np.array([[a, b, c], [d, e, f], [0.0, 0.0, 1.0]])
    points = np.vstack([xs, ys, np.ones_like(xs)])
    cols, rows = np.linalg.solve(matrix, points)[:2]
    cols = cols.reshape(-1, 4)
    rows = rows.reshape(-1, 4)
    out: list[Window | None] = []
    for k in range(len(geometries)):
        col_start, col_stop = cols[k].min(), cols[k].max()
        row_start, row_stop = rows[k].min(), rows[k].max()
        width = max(col_stop - col_start, 0.0)
        height = max(row_stop - row_start, 0.0)
        col0 = math.floor(col_start)
        row0 = math.floor(row_start)
        col1 = math.ceil(col_start + width)
        row1 = math.ceil(row_start + height)
        window = Window(row0, col0, row1 - row0, col1 - col0)
        if shape is not None:
            window = window.intersection(Window(0, 0, shape[0], shape[1]))
            if window.is_empty:
                out.append(None)
                continue
        out.append(window)
    return out


def _bounds(geometries: np.ndarray) -> np.ndarray:
    """``(n, 4)`` bounds of Shapely geometries or :class:`~rasteret.geo.rings.RingPolygon` s."""
    if all(isinstance(g, RingPolygon) for g in geometries):
        return np.array([g.bounds for g in geometries], np.float64).reshape(-1, 4)
    import shapely

    return shapely.bounds(geometries)


def window_grid(grid: GridSpec, window: Window) -> GridSpec:
    """The grid of ``window`` of ``grid`` (the window may reach beyond the grid)."""
    a, b, c, d, e, f = grid.transform
    x = a * window.col_off + b * window.row_off + c
    y = d * window.col_off + e * window.row_off + f
    return GridSpec(grid.crs, (a, b, x, d, e, y), (window.height, window.width))


def geometry_mask(geometry: Any, grid: GridSpec, *, all_touched: bool) -> np.ndarray:
    """``True`` for the pixels of ``grid`` inside ``geometry`` (rasterio's
    ``geometry_mask(..., invert=True)``)."""
    from rasteret.geo.rasterize import rasterize

    return rasterize([geometry], grid, all_touched=all_touched)
