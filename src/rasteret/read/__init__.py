"""Analysis surfaces over the virtual Zarr store: AOI reads, mosaics, point sampling.

* :func:`get_numpy` / :func:`get_xarray` / :func:`read_aoi_windows` / :func:`get_gdf` —
  pixels inside geometries, with identity (``AOIStack.records``) and a valid-data mask;
* ``groupby=`` on those — mosaics (:mod:`rasteret.read.mosaic`);
* :func:`sample_points` — values at points as an Arrow table.

Every pixel is read through the store's tiles (:mod:`rasteret.store.window_read`),
never through a second reader.

Names are imported lazily: a surface loads only the modules it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rasteret._lazy import lazy_exports

if TYPE_CHECKING:
    from rasteret.read.aoi import get_numpy, read_aoi_windows
    from rasteret.read.aoi_gdf import get_gdf
    from rasteret.read.aoi_xarray import get_xarray
    from rasteret.read.geometry import (
        GeometryCRSError,
        GeometryError,
        UnsupportedGeometryError,
        coerce_geometries,
    )
    from rasteret.read.points import POINT_SAMPLES_SCHEMA, sample_points
    from rasteret.read.quicklook import plot_quicklook, quicklook_rgb, write_quicklook
    from rasteret.read.result import (
        AOIStack,
        AOIWindow,
        ImpliedMask,
        NoDataError,
        RaggedShapesError,
    )

_LAZY: dict[str, str] = {
    "get_numpy": "rasteret.read.aoi",
    "read_aoi_windows": "rasteret.read.aoi",
    "get_xarray": "rasteret.read.aoi_xarray",
    "get_gdf": "rasteret.read.aoi_gdf",
    "GeometryCRSError": "rasteret.read.geometry",
    "GeometryError": "rasteret.read.geometry",
    "UnsupportedGeometryError": "rasteret.read.geometry",
    "coerce_geometries": "rasteret.read.geometry",
    "POINT_SAMPLES_SCHEMA": "rasteret.read.points",
    "sample_points": "rasteret.read.points",
    "plot_quicklook": "rasteret.read.quicklook",
    "quicklook_rgb": "rasteret.read.quicklook",
    "write_quicklook": "rasteret.read.quicklook",
    "AOIStack": "rasteret.read.result",
    "AOIWindow": "rasteret.read.result",
    "ImpliedMask": "rasteret.read.result",
    "NoDataError": "rasteret.read.result",
    "RaggedShapesError": "rasteret.read.result",
}

__all__ = [
    "POINT_SAMPLES_SCHEMA",
    "AOIStack",
    "AOIWindow",
    "GeometryCRSError",
    "GeometryError",
    "ImpliedMask",
    "NoDataError",
    "RaggedShapesError",
    "UnsupportedGeometryError",
    "coerce_geometries",
    "get_gdf",
    "get_numpy",
    "get_xarray",
    "plot_quicklook",
    "quicklook_rgb",
    "read_aoi_windows",
    "sample_points",
    "write_quicklook",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
