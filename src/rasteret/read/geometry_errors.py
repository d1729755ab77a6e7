"""Errors of geometry input (AOIs, points): shared by :mod:`rasteret.read.geometry` and
:mod:`rasteret.read.geoarrow`."""

from __future__ import annotations

from rasteret.errors import RasteretError
from rasteret.geo.transform import CRSError


class GeometryError(RasteretError, ValueError):
    """An AOI / point input cannot be used (invalid WKB, wrong type, empty, ...)."""


class GeometryCRSError(GeometryError, CRSError):
    """A geometry input has no CRS where one is needed, or one that cannot be parsed (a
    :class:`rasteret.geo.CRSError` too)."""


class UnsupportedGeometryError(GeometryError, TypeError):
    """A geometry type the operation does not take (e.g. Points for area reads)."""
