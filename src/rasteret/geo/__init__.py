"""Geometry helpers without GDAL: grid footprints in CRS84."""

from rasteret.geo.footprint import Footprint, FootprintError, grid_footprint

__all__ = ["Footprint", "FootprintError", "grid_footprint"]
