"""Type aliases shared by every layer (no imports: safe for ``tiff``, ``index`` and ``geo``)."""

from __future__ import annotations

#: An affine transform ``(a, b, c, d, e, f)`` in GDAL / rasterio order:
#: ``x = a * col + b * row + c``, ``y = d * col + e * row + f``.
Affine6 = tuple[float, float, float, float, float, float]

#: A box ``(left, bottom, right, top)`` (``minx, miny, maxx, maxy``) in some CRS.
Bounds = tuple[float, float, float, float]

__all__ = ["Affine6", "Bounds"]
