"""Analysis surfaces over the virtual Zarr store: AOI reads, mosaics, point sampling.

* :func:`get_numpy` / :func:`get_xarray` / :func:`read_aoi_windows` — pixels inside
  geometries, with identity (``AOIStack.records``) and a valid-data mask;
* ``groupby=`` on those — mosaics (:mod:`rasteret.read.mosaic`);
* :func:`sample_points` — values at points as an Arrow table.

Every pixel is read through :func:`rasteret.store.open_store` (Zarr arrays indexed by
``(t, y0:y1, x0:x1)``), never through a second reader.
"""

from rasteret.read.aoi import get_numpy, read_aoi_windows
from rasteret.read.aoi_xarray import get_xarray
from rasteret.read.geometry import (
    GeometryCRSError,
    GeometryError,
    UnsupportedGeometryError,
    coerce_geometries,
)
from rasteret.read.points import POINT_SAMPLES_SCHEMA, sample_points
from rasteret.read.quicklook import plot_quicklook, quicklook_rgb, write_quicklook
from rasteret.read.result import AOIStack, AOIWindow, NoDataError, RaggedShapesError

__all__ = [
    "POINT_SAMPLES_SCHEMA",
    "AOIStack",
    "AOIWindow",
    "GeometryCRSError",
    "GeometryError",
    "NoDataError",
    "RaggedShapesError",
    "UnsupportedGeometryError",
    "coerce_geometries",
    "get_numpy",
    "get_xarray",
    "plot_quicklook",
    "quicklook_rgb",
    "read_aoi_windows",
    "sample_points",
    "write_quicklook",
]
