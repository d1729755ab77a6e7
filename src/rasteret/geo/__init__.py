"""Geometry and grids without GDAL: footprints, ``GridSpec``, CRS transforms, warping,
resampling, overview choice and polygon masks."""

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
from rasteret.geo.warp import source_coordinates, source_window, warp_array
from rasteret.geo.window import Window

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
