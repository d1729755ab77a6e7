"""AOI reads as arrays: ``get_numpy`` / ``read_aoi_windows`` through the virtual store
(``get_xarray``: :mod:`rasteret.read.aoi_xarray`; the engine: :mod:`rasteret.read.aoi_engine`).

On the native grid a window equals ``rasterio.mask.mask(src, [geometry], crop=True)``:
the window is rasterio's ``geometry_window`` (floor / ceil of the geometry bounds in
pixel space, cut to the raster), pixels outside the geometry (GDAL's rasterisation
rule, ``all_touched`` as rasterio) or invalid (nodata, internal mask) are filled with
``fill_value`` (default: the band's nodata, else 0). Results carry their identity and
a valid-data mask (:class:`~rasteret.read.result.AOIStack`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rasteret._pages import small_pages
from rasteret._progress import ProgressOption
from rasteret.fetch import RangeReader
from rasteret.geo.grid import GridSpec
from rasteret.index import CollectionTable
from rasteret.index.failed import OnFailedAsset
from rasteret.read.aoi_engine import GroupBy, read_aoi
from rasteret.read.result import AOIStack, AOIWindow, stack_windows


@small_pages
def get_numpy(
    collection: CollectionTable,
    geometries: Any,
    bands: str | Sequence[str],
    *,
    geometry_crs: Any = "auto",
    geometry_column: str | None = None,
    all_touched: bool = False,
    groupby: GroupBy = None,
    fuse: str = "first",
    with_mask: bool = True,
    apply_scale: bool = False,
    fill_value: float | None = None,
    grid: Any = None,
    target_crs: Any = None,
    resolution: Any = None,
    resampling: str | None = None,
    overviews: bool = True,
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    like: Any = None,
    progress: ProgressOption = None,
    **filters: Any,
) -> AOIStack:
    """Pixels of ``bands`` inside ``geometries`` for every record, stacked with identity.

    Returns an :class:`AOIStack`: ``data`` ``[N, H, W]`` (one band) or ``[N, C, H, W]``;
    ``N`` = (record, geometry) pairs that overlap, in record time order (datetime, id), then
    geometry order — ``.records`` says which is which; ``.mask`` marks valid pixels. Records
    overlapping the geometries in several CRSs (UTM zones) are reprojected to the most
    common one at its finest native resolution (as the original did; pass ``target_crs=`` /
    ``resolution=`` to choose); windows of different shapes still raise
    :class:`RaggedShapesError` saying what to pass. ``groupby`` mosaics records per group
    (see :mod:`rasteret.read.mosaic`), ``apply_scale`` returns ``value * scale + offset`` as
    float with NaN for invalid pixels; ``**filters`` go to ``collection.subset``. On a
    target grid (``grid=`` or ``target_crs=`` / ``resolution=``) coarser than the data, the
    overview GDAL would choose is read (``overviews=False``: always full resolution).
    ``grid=`` is a :class:`~rasteret.geo.GridSpec` or an odc-geo ``GeoBox``; ``like=`` an
    xarray object with a CRS (or a GeoBox) whose grid to read onto.

    ``progress``: ``True`` shows a line on a terminal, ``False`` nothing, a callable is
    called as ``progress(done, total)`` in **tiles** (the distinct tiles the read fetches
    and decodes: ``done`` only grows, ``total`` is fixed, the last call has ``done ==
    total``), from rasteret's read threads; default: a line on a terminal for large reads
    (:func:`rasteret.read.stacks.read_progress`).
    """
    found = read_aoi(
        collection,
        geometries,
        bands,
        geometry_crs=geometry_crs,
        geometry_column=geometry_column,
        all_touched=all_touched,
        groupby=groupby,
        fuse=fuse,
        apply_scale=apply_scale,
        fill_value=fill_value,
        grid=grid,
        target_crs=target_crs,
        resolution=resolution,
        resampling=resampling,
        overviews=overviews,
        reader=reader,
        errors=errors,
        filters=filters,
        one_grid=True,
        like=like,
        progress=progress,
    )
    return stack_windows(
        found.windows, single_band=found.single_band, with_mask=with_mask, fill_value=found.fill
    )


@small_pages
def read_aoi_windows(
    collection: CollectionTable,
    geometries: Any,
    bands: str | Sequence[str],
    *,
    geometry_crs: Any = "auto",
    geometry_column: str | None = None,
    all_touched: bool = False,
    groupby: GroupBy = None,
    fuse: str = "first",
    apply_scale: bool = False,
    fill_value: float | None = None,
    grid: GridSpec | None = None,
    target_crs: Any = None,
    resolution: Any = None,
    resampling: str | None = None,
    overviews: bool = True,
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    **filters: Any,
) -> list[AOIWindow]:
    """Like :func:`get_numpy` but one :class:`AOIWindow` per (record, geometry), unstacked
    (windows may differ in shape and CRS)."""
    return read_aoi(
        collection,
        geometries,
        bands,
        geometry_crs=geometry_crs,
        geometry_column=geometry_column,
        all_touched=all_touched,
        groupby=groupby,
        fuse=fuse,
        apply_scale=apply_scale,
        fill_value=fill_value,
        grid=grid,
        target_crs=target_crs,
        resolution=resolution,
        resampling=resampling,
        overviews=overviews,
        reader=reader,
        errors=errors,
        filters=filters,
    ).windows
