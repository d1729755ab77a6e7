"""Geometry and grids without GDAL: footprints, ``GridSpec``, CRS transforms, warping,
resampling, overview choice and polygon masks.

Names are imported lazily: a read loads only the modules it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rasteret._lazy import keep_exports_over_submodules, lazy_exports

if TYPE_CHECKING:
    from rasteret.geo.coords import source_coordinates, source_window
    from rasteret.geo.footprint import Footprint, FootprintError, grid_footprint
    from rasteret.geo.grid import GridError, GridSpec
    from rasteret.geo.lazy import warp
    from rasteret.geo.overview import choose_overview
    from rasteret.geo.rasterize import geometry_mask, rasterize
    from rasteret.geo.resampling import RESAMPLINGS
    from rasteret.geo.transform import (
        CRSError,
        crs_equal,
        crs_key,
        to_crs,
        transform_bounds,
        transform_points,
    )
    from rasteret.geo.warp import warp_array
    from rasteret.geo.window import Window

_LAZY: dict[str, str] = {
    "Footprint": "rasteret.geo.footprint",
    "FootprintError": "rasteret.geo.footprint",
    "grid_footprint": "rasteret.geo.footprint",
    "GridError": "rasteret.geo.grid",
    "GridSpec": "rasteret.geo.grid",
    "choose_overview": "rasteret.geo.overview",
    "RESAMPLINGS": "rasteret.geo.resampling",
    "CRSError": "rasteret.geo.transform",
    "crs_equal": "rasteret.geo.transform",
    "crs_key": "rasteret.geo.transform",
    "to_crs": "rasteret.geo.transform",
    "transform_bounds": "rasteret.geo.transform",
    "transform_points": "rasteret.geo.transform",
    "source_coordinates": "rasteret.geo.coords",
    "source_window": "rasteret.geo.coords",
    "warp_array": "rasteret.geo.warp",
    "Window": "rasteret.geo.window",
    # also submodule names: kept over the submodules below
    "warp": "rasteret.geo.lazy",
    "rasterize": "rasteret.geo.rasterize",
    "geometry_mask": "rasteret.geo.rasterize",
}

__all__ = [
    "RESAMPLINGS",
    "CRSError",
    "Footprint",
    "FootprintError",
    "GridError",
    "GridSpec",
    "Window",
    "choose_overview",
    "crs_equal",
    "crs_key",
    "geometry_mask",
    "grid_footprint",
    "rasterize",
    "source_coordinates",
    "source_window",
    "to_crs",
    "transform_bounds",
    "transform_points",
    "warp",
    "warp_array",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
keep_exports_over_submodules(__name__, ["warp", "rasterize"])
