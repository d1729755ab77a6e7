"""``GridSpec``: an immutable raster grid (CRS + affine transform + shape).

A small GeoBox-like value type (after odc-geo's ``GeoBox``): the target of warps and
AOI reads, and the description of a native grid. ``transform`` is the affine of the
pixel *corners* in GDAL / rasterio order ``(a, b, c, d, e, f)``::

    x = a * col + b * row + c
    y = d * col + e * row + f

``shape`` is ``(height, width)``. Grids built here are north-up (``b == d == 0``,
``e < 0``) unless a transform says otherwise; coordinates (``coords``) exist only for
axis-aligned grids. Equality and hashing use the canonical CRS text, the transform
rounded to 1e-9 and the shape, so equal grids from different sources compare equal.
``affine`` / :meth:`GridSpec.from_affine` speak ``affine.Affine`` (imported on use: it is
not a rasteret dependency); :meth:`GridSpec.from_geobox` / :meth:`GridSpec.to_geobox`
convert exactly to and from odc-geo's ``GeoBox`` (:mod:`rasteret.geo.odc`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from pyproj import CRS

from rasteret._types import Affine6, Bounds
from rasteret.geo.transform import CRSLike, crs_key, to_crs, transform_bounds
from rasteret.geo.window import Window

#: ``None``/"edge", "center", "floating", an ``(x, y)`` anchor, or a GridSpec to align to.
Align = Union[str, tuple[float, float], "GridSpec", None]

#: Snapping tolerance in pixels: bounds within this of a pixel edge snap to that edge.
SNAP_TOLERANCE = 1e-6


class GridError(ValueError):
    """A grid cannot be built from the values given (no pixels, bad resolution...)."""


def _as_affine(transform: Any) -> Affine6:
    values = tuple(float(v) for v in tuple(transform)[:6])
    if len(values) == 4:  # the original system's (a, c, e, f)
        a, c, e, f = values
        return (a, 0.0, c, 0.0, e, f)
    if len(values) != 6:
        raise GridError(f"transform needs 6 values (a, b, c, d, e, f), got {len(values)}")
    return values  # type: ignore[return-value]


def _resolution_pair(resolution: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(resolution, (int, float, np.number)):
        rx = ry = float(resolution)
    else:
        rx, ry = (float(v) for v in resolution)
    rx, ry = abs(rx), abs(ry)
    if not (rx > 0 and ry > 0 and math.isfinite(rx) and math.isfinite(ry)):
        raise GridError(f"resolution must be positive and finite, got {resolution!r}")
    return rx, ry


class GridSpec:
    """An immutable grid: ``crs`` (pyproj CRS), ``transform`` (affine), ``shape`` (h, w)."""

    __slots__ = ("_crs", "_key", "shape", "transform")

    crs: CRS
    transform: Affine6
    shape: tuple[int, int]

    def __init__(self, crs: CRSLike, transform: Any, shape: tuple[int, int]) -> None:
        height, width = (int(v) for v in shape)
        if height <= 0 or width <= 0:
            raise GridError(f"grid has no pixels (shape {shape})")
        affine = _as_affine(transform)
        if affine[0] * affine[4] - affine[1] * affine[3] == 0:
            raise GridError(f"transform {affine} is singular")
        object.__setattr__(self, "_crs", to_crs(crs, what="grid crs"))
        object.__setattr__(self, "transform", affine)
        object.__setattr__(self, "shape", (height, width))
        key = (crs_key(self._crs), tuple(round(v, 9) for v in affine), (height, width))
        object.__setattr__(self, "_key", key)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("GridSpec is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (GridSpec, (self._crs.to_wkt(), self.transform, self.shape))

    # -- constructors ----------------------------------------------------------------
    @classmethod
    def from_bbox(
        cls,
        bbox: Bounds,
        crs: CRSLike,
        resolution: float | Sequence[float],
        *,
        align: Align = None,
    ) -> GridSpec:
        """The grid of ``resolution`` covering ``bbox`` (left, bottom, right, top) in ``crs``.

        ``align`` places the pixel edges:

        * ``None`` / ``"edge"`` (default): on multiples of the resolution (as
          ``gdalwarp -tap``); the bbox is expanded outward to whole pixels.
        * ``"center"``: pixel *centres* on multiples of the resolution.
        * ``"floating"``: the top-left corner exactly at ``(left, top)``; width and
          height rounded up to whole pixels.
        * ``(x, y)``: pixel edges pass through that point (anchor), e.g. a source
          grid's origin; a :class:`GridSpec` aligns to that grid's edges.
        """
        rx, ry = _resolution_pair(resolution)
        left, bottom, right, top = (float(v) for v in bbox)
        if not (right > left and top > bottom):
            raise GridError(f"bbox {bbox} is empty (need left < right and bottom < top)")
        if align == "floating":
            width = max(1, math.ceil((right - left) / rx - SNAP_TOLERANCE))
            height = max(1, math.ceil((top - bottom) / ry - SNAP_TOLERANCE))
            return cls(crs, (rx, 0.0, left, 0.0, -ry, top), (height, width))
        ax, ay = _anchor(align, rx, ry)
        c0 = math.floor((left - ax) / rx + SNAP_TOLERANCE)
        c1 = math.ceil((right - ax) / rx - SNAP_TOLERANCE)
        r0 = math.floor((ay - top) / ry + SNAP_TOLERANCE)
        r1 = math.ceil((ay - bottom) / ry - SNAP_TOLERANCE)
        width, height = max(1, c1 - c0), max(1, r1 - r0)
        return cls(crs, (rx, 0.0, ax + c0 * rx, 0.0, -ry, ay - r0 * ry), (height, width))

    @classmethod
    def from_shape(cls, bbox: Bounds, crs: CRSLike, shape: tuple[int, int]) -> GridSpec:
        """The ``shape`` (height, width) grid whose edges are exactly ``bbox``."""
        left, bottom, right, top = (float(v) for v in bbox)
        height, width = (int(v) for v in shape)
        if not (right > left and top > bottom) or height <= 0 or width <= 0:
            raise GridError(f"cannot build a {shape} grid on bbox {bbox}")
        rx, ry = (right - left) / width, (top - bottom) / height
        return cls(crs, (rx, 0.0, left, 0.0, -ry, top), (height, width))

    @classmethod
    def from_coords(cls, x: Any, y: Any, crs: CRSLike) -> GridSpec:
        """The grid whose pixel centres are the regular 1-D coordinates ``x`` and ``y``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.ndim != 1 or y.ndim != 1 or x.size == 0 or y.size == 0:
            raise GridError("x and y must be non-empty 1-D coordinate arrays")
        rx = (x[-1] - x[0]) / (x.size - 1) if x.size > 1 else None
        ry = (y[-1] - y[0]) / (y.size - 1) if y.size > 1 else None
        if rx is None and ry is None:
            raise GridError("a 1 x 1 grid needs a transform, not coordinates")
        rx = rx if rx is not None else -ry  # type: ignore[operator]
        ry = ry if ry is not None else -rx
        if x.size > 2 and not np.allclose(np.diff(x), rx, rtol=1e-6, atol=0):
            raise GridError("x coordinates are not regularly spaced")
        if y.size > 2 and not np.allclose(np.diff(y), ry, rtol=1e-6, atol=0):
            raise GridError("y coordinates are not regularly spaced")
        transform = (rx, 0.0, x[0] - rx / 2, 0.0, ry, y[0] - ry / 2)
        return cls(crs, transform, (y.size, x.size))

    @classmethod
    def from_xarray(cls, obj: Any) -> GridSpec:
        """The grid of a DataArray / Dataset with ``x``/``y`` coords and a CRS.

        The CRS comes from ``spatial_ref`` (``crs_wkt`` / ``spatial_ref`` attribute, as
        the rasteret store and rioxarray write it), ``obj.attrs["crs"]``, or ``obj.rio.crs``.
        """
        crs = _xarray_crs(obj)
        if "x" not in obj.coords or "y" not in obj.coords:
            raise GridError("the xarray object has no x / y coordinates")
        transform = _xarray_transform(obj)
        if transform is not None:
            return cls(crs, transform, (obj.sizes["y"], obj.sizes["x"]))
        return cls.from_coords(obj["x"].values, obj["y"].values, crs)

    @classmethod
    def from_affine(cls, crs: CRSLike, affine: Any, shape: tuple[int, int]) -> GridSpec:
        """The grid of an ``affine.Affine`` (or any ``(a, b, c, d, e, f, ...)`` sequence:
        rasterio's ``transform``), ``crs`` and ``shape`` (height, width)."""
        return cls(crs, tuple(affine)[:6], shape)

    @classmethod
    def from_geobox(cls, geobox: Any) -> GridSpec:
        """The grid of an ``odc.geo.geobox.GeoBox``: same CRS, affine and shape
        (:mod:`rasteret.geo.odc`; odc-geo is not imported by rasteret)."""
        from rasteret.geo.odc import grid_from_geobox

        return grid_from_geobox(geobox)

    # -- properties ------------------------------------------------------------------
    @property
    def crs(self) -> CRS:  # type: ignore[override]
        return self._crs

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def is_axis_aligned(self) -> bool:
        """True when the grid has no rotation or shear (``b == d == 0``)."""
        return self.transform[1] == 0.0 and self.transform[3] == 0.0

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size ``(x, y)`` as positive numbers (CRS units)."""
        a, b, _, d, e, _ = self.transform
        return (math.hypot(a, d), math.hypot(b, e))

    @property
    def bounds(self) -> Bounds:
        """``(left, bottom, right, top)`` of the pixel edges."""
        h, w = self.shape
        xs, ys = self.pixel_to_xy(np.array([0, w, w, 0]), np.array([0, 0, h, h]))
        return (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))

    @property
    def affine(self) -> Any:
        """The transform as an ``affine.Affine`` (the ``affine`` package, a rasterio and
        odc-geo dependency, is imported here: it is not a rasteret dependency)."""
        try:
            from affine import Affine
        except ImportError as exc:
            raise ImportError(
                "GridSpec.affine needs the affine package: pip install affine "
                "(GridSpec.transform holds the same six numbers)"
            ) from exc
        return Affine(*self.transform)

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """Pixel-centre coordinates ``{"y": ..., "x": ...}`` (float64) of an axis-aligned grid."""
        if not self.is_axis_aligned:
            raise GridError("a rotated grid has no 1-D x / y coordinates")
        a, _, c, _, e, f = self.transform
        return {
            "y": f + e * (np.arange(self.height) + 0.5),
            "x": c + a * (np.arange(self.width) + 0.5),
        }

    # -- mappings ----------------------------------------------------------------------
    def pixel_to_xy(self, cols: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """CRS coordinates of (fractional) pixel positions; ``+0.5`` gives centres."""
        a, b, c, d, e, f = self.transform
        cols = np.asarray(cols, dtype=np.float64)
        rows = np.asarray(rows, dtype=np.float64)
        return c + cols * a + rows * b, f + cols * d + rows * e  # GDAL's operation order

    def xy_to_pixel(self, xs: Any, ys: Any) -> tuple[np.ndarray, np.ndarray]:
        """Fractional ``(cols, rows)`` of CRS coordinates (``floor`` gives the pixel)."""
        ia, ib, ic, id_, ie, if_ = inverse_geotransform(self.transform)
        x = np.asarray(xs, dtype=np.float64)
        y = np.asarray(ys, dtype=np.float64)
        return ic + x * ia + y * ib, if_ + x * id_ + y * ie  # GDAL's operation order

    # -- derived grids ---------------------------------------------------------------
    def window_of(self, bounds: Bounds, *, crs: CRSLike | None = None, clip: bool = True) -> Window:
        """The pixel window covering ``bounds`` (in ``crs``, default the grid's CRS).

        Every pixel that ``bounds`` overlaps by more than ``SNAP_TOLERANCE`` pixels is in
        the window; with ``clip`` the window is cut to the grid (possibly empty).
        """
        if crs is not None:
            bounds = transform_bounds(bounds, crs, self._crs)
        left, bottom, right, top = bounds
        cols, rows = self.xy_to_pixel(
            np.array([left, right, right, left]), np.array([top, top, bottom, bottom])
        )
        c0 = math.floor(cols.min() + SNAP_TOLERANCE)
        c1 = math.ceil(cols.max() - SNAP_TOLERANCE)
        r0 = math.floor(rows.min() + SNAP_TOLERANCE)
        r1 = math.ceil(rows.max() - SNAP_TOLERANCE)
        window = Window(r0, c0, max(0, r1 - r0), max(0, c1 - c0))
        return window.intersection(Window(0, 0, *self.shape)) if clip else window

    def crop(self, window: Window | tuple[slice, slice]) -> GridSpec:
        """The sub-grid of ``window`` (a :class:`Window` or ``(rows, cols)`` slices)."""
        if not isinstance(window, Window):
            rows, cols = window
            r0, r1, _ = rows.indices(self.height)
            c0, c1, _ = cols.indices(self.width)
            window = Window(r0, c0, r1 - r0, c1 - c0)
        if window.is_empty:
            raise GridError(f"window {window} has no pixels")
        x, y = self.pixel_to_xy(window.col_off, window.row_off)
        a, b, _, d, e, _ = self.transform
        return GridSpec(self._crs, (a, b, float(x), d, e, float(y)), (window.height, window.width))

    def __getitem__(self, index: tuple[slice, slice]) -> GridSpec:
        return self.crop(index)

    def zoom_to(self, shape: tuple[int, int]) -> GridSpec:
        """The same extent with ``shape`` (height, width) pixels."""
        height, width = (int(v) for v in shape)
        sy, sx = self.height / height, self.width / width
        a, b, c, d, e, f = self.transform
        return GridSpec(self._crs, (a * sx, b * sy, c, d * sx, e * sy, f), (height, width))

    def coarsen(self, factor: int | tuple[int, int]) -> GridSpec:
        """Pixels ``factor`` times larger, same origin; ``ceil(size / factor)`` pixels."""
        fy, fx = (factor, factor) if isinstance(factor, int) else factor
        a, b, c, d, e, f = self.transform
        shape = (-(-self.height // fy), -(-self.width // fx))
        return GridSpec(self._crs, (a * fx, b * fy, c, d * fx, e * fy, f), shape)

    def with_crs(self, crs: CRSLike) -> GridSpec:
        """The same pixels labelled with another CRS (no reprojection)."""
        return GridSpec(crs, self.transform, self.shape)

    def to_geobox(self) -> Any:
        """This grid as an ``odc.geo.geobox.GeoBox`` (needs odc-geo; exact round trip with
        :meth:`from_geobox`)."""
        from rasteret.geo.odc import grid_to_geobox

        return grid_to_geobox(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "crs": crs_key(self._crs),
            "transform": list(self.transform),
            "shape": list(self.shape),
        }

    # -- value semantics -------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, GridSpec) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        rx, ry = self.resolution
        left, bottom, right, top = self.bounds
        return (
            f"GridSpec({crs_key(self._crs)[:40]}, {self.height}x{self.width}, "
            f"res=({rx:g}, {ry:g}), bounds=({left:g}, {bottom:g}, {right:g}, {top:g}))"
        )

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("rasteret.GridSpec", self._key)


def inverse_geotransform(transform: Affine6) -> Affine6:
    """The inverse affine with ``GDALInvGeoTransform``'s arithmetic (so ties round as in
    GDAL): pixel = ``(c' + x*a' + y*b', f' + x*d' + y*e')``."""
    a, b, c, d, e, f = transform
    if b == 0.0 and d == 0.0:
        return (1.0 / a, 0.0, -c / a, 0.0, 1.0 / e, -f / e)
    inv = 1.0 / (a * e - b * d)
    return (e * inv, -b * inv, (b * f - c * e) * inv, -d * inv, a * inv, (-a * f + c * d) * inv)


def _anchor(align: Any, rx: float, ry: float) -> tuple[float, float]:
    if align is None or align == "edge":
        return (0.0, 0.0)
    if align == "center":
        return (rx / 2, ry / 2)
    if isinstance(align, GridSpec):
        return (align.transform[2], align.transform[5])
    if isinstance(align, (tuple, list)) and len(align) == 2:
        return (float(align[0]), float(align[1]))
    raise GridError(
        f"align must be None, 'edge', 'center', 'floating', an (x, y) anchor or a GridSpec; "
        f"got {align!r}"
    )


def _xarray_crs(obj: Any) -> CRS:
    if "spatial_ref" in obj.coords:
        attrs = obj.coords["spatial_ref"].attrs
        for key in ("crs_wkt", "spatial_ref"):
            if attrs.get(key):
                return to_crs(attrs[key])
    if obj.attrs.get("crs") is not None:
        return to_crs(obj.attrs["crs"])
    rio = getattr(obj, "rio", None)
    if rio is not None and getattr(rio, "crs", None) is not None:
        return to_crs(rio.crs.to_wkt())
    raise GridError("the xarray object has no CRS (no spatial_ref coordinate or crs attribute)")


def _xarray_transform(obj: Any) -> Affine6 | None:
    if "spatial_ref" not in obj.coords:
        return None
    text = obj.coords["spatial_ref"].attrs.get("GeoTransform")
    if not text:
        return None
    c, a, b, f, d, e = (float(v) for v in str(text).split())
    transform = (a, b, c, d, e, f)
    # A GeoTransform describes the full group; trust it only if it matches the coords.
    x, y = obj["x"].values, obj["y"].values
    if x.size and y.size and b == 0 and d == 0:
        ok_x = math.isclose(c + a * 0.5, float(x[0]), rel_tol=0, abs_tol=abs(a) * 1e-6)
        ok_y = math.isclose(f + e * 0.5, float(y[0]), rel_tol=0, abs_tol=abs(e) * 1e-6)
        if not (ok_x and ok_y):
            return None
    return transform
