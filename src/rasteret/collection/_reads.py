"""The pixel reads of :class:`~rasteret.Collection`: AOI reads (NumPy, xarray, GeoDataFrame),
points, windows and the dry run (``explain``), each delegating to :mod:`rasteret.read`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from rasteret.index.table import CollectionTable

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import xarray as xr

    from rasteret._progress import ProgressOption
    from rasteret.fetch import RangeReader
    from rasteret.geo import GridSpec, Window
    from rasteret.index.failed import OnFailedAsset
    from rasteret.read import AOIStack, AOIWindow
    from rasteret.read.explain import ReadPlan
Bounds = tuple[float, float, float, float]
#: ``groupby`` of AOI reads and composites: ``"solar_day"``, ``"time"``, ``"id"``, an ISO
#: 8601 period (``"P1M"``), a column name, or ``record -> key``.
GroupBy = str | Callable[[dict[str, Any]], Any] | None


class PixelReads(CollectionTable):
    """AOI, point and window reads (mixed into :class:`~rasteret.Collection`)."""

    def get_numpy(
        self,
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
        grid: GridSpec | Any = None,
        target_crs: Any = None,
        resolution: Any = None,
        resampling: str | None = None,
        overviews: bool = True,
        cloud_cover_lt: float | None = None,
        date_range: Sequence[Any] | None = None,
        bbox: Sequence[float] | None = None,
        split: str | Sequence[str] | None = None,
        split_column: str = "split",
        reader: RangeReader | None = None,
        errors: OnFailedAsset = "raise",
        like: Any = None,
        progress: ProgressOption = None,
        **legacy: Any,
    ) -> AOIStack:
        """Pixels of ``bands`` inside ``geometries`` for every record, stacked with identity.

        ``geometries``: Shapely geometries, WKB / WKT, GeoJSON, ``(minx, miny, maxx,
        maxy)`` boxes, a GeoArrow / GeoPandas table (``geometry_column``); in lon/lat
        unless they carry a CRS or ``geometry_crs`` says otherwise. Returns an
        :class:`~rasteret.read.AOIStack`: ``.data`` ``[N, H, W]`` (one band) or
        ``[N, C, H, W]`` in the native dtype, ``.mask`` (valid pixels) and
        ``.records`` (which record and geometry each of the ``N`` rows is, in record
        time order then geometry order).

        ``groupby`` mosaics records per group (``"solar_day"``, a column, a callable)
        with ``fuse`` (``"first"``, ``"last"``, ``"mean"``, ``"median"``, ``"min"``,
        ``"max"``); ``apply_scale`` returns ``value * scale + offset`` as float with NaN
        where invalid. On a target grid (``grid=`` or ``target_crs=`` / ``resolution=``,
        with ``resampling=``) every record is resampled onto one grid without GDAL,
        reading the overview GDAL would choose when coarser (``overviews=False``: full
        resolution). ``cloud_cover_lt`` / ``date_range`` / ``bbox`` / ``split`` select
        records first (:meth:`subset`). Records overlapping the geometries in several
        CRSs are reprojected to the most common one (as the original did); windows of
        different shapes raise :class:`~rasteret.read.RaggedShapesError` saying what to
        pass. ``errors="skip"`` reads without records whose asset failed to index
        (default: :class:`~rasteret.errors.UnindexedAssetError`). ``grid=`` may be an
        odc-geo ``GeoBox``; ``like=`` an xarray object with a CRS (or a GeoBox) to read
        onto. ``progress=True`` / ``False`` / ``callable(done, total)`` reports the
        read's tiles (``total`` fixed, last call ``done == total``).
        """
        from rasteret.read import get_numpy
        from rasteret.read.selection import legacy_read_options

        reader, legacy = legacy_read_options(legacy, reader)  # backend= / cloud_config=
        return get_numpy(
            self,
            geometries,
            bands,
            geometry_crs=geometry_crs,
            geometry_column=geometry_column,
            all_touched=all_touched,
            groupby=groupby,
            fuse=fuse,
            with_mask=with_mask,
            apply_scale=apply_scale,
            fill_value=fill_value,
            grid=grid,
            target_crs=target_crs,
            resolution=resolution,
            resampling=resampling,
            overviews=overviews,
            reader=reader,
            errors=errors,
            like=like,
            progress=progress,
            cloud_cover_lt=cloud_cover_lt,
            date_range=date_range,
            bbox=bbox,
            split=split,
            split_column=split_column,
            **legacy,
        )

    def get_xarray(
        self,
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
        grid: GridSpec | Any = None,
        target_crs: Any = None,
        resolution: Any = None,
        resampling: str | None = None,
        overviews: bool = True,
        cloud_cover_lt: float | None = None,
        date_range: Sequence[Any] | None = None,
        bbox: Sequence[float] | None = None,
        split: str | Sequence[str] | None = None,
        split_column: str = "split",
        reader: RangeReader | None = None,
        errors: OnFailedAsset = "raise",
        with_properties: bool | str | Sequence[str] | None = None,
        like: Any = None,
        progress: ProgressOption = None,
        **legacy: Any,
    ) -> xr.Dataset:
        """The AOI reads of :meth:`get_numpy` as an ``xr.Dataset`` ``(time, geometry, y, x)``.

        One variable per band in its native dtype (nodata in ``attrs["nodata"]``)
        plus ``{band}_valid`` masks with ``with_mask=True``; ``time`` has one entry per
        record (``id`` coordinate) or per mosaic group with ``groupby`` (for an ISO 8601
        period such as ``"P1M"``, at the period's first day); ``y`` / ``x`` span the
        union of the geometries' windows; a CF ``spatial_ref`` carries the CRS.
        ``with_properties`` (``True``: every scalar record column, or column names) adds
        record columns as coordinates along ``time`` (for groups, those constant within
        every group). Options as :meth:`get_numpy`.
        """
        from rasteret.read import get_xarray
        from rasteret.read.selection import legacy_read_options

        reader, legacy = legacy_read_options(legacy, reader)  # backend= / cloud_config=
        return get_xarray(
            self,
            geometries,
            bands,
            geometry_crs=geometry_crs,
            geometry_column=geometry_column,
            all_touched=all_touched,
            groupby=groupby,
            fuse=fuse,
            with_mask=with_mask,
            apply_scale=apply_scale,
            fill_value=fill_value,
            grid=grid,
            target_crs=target_crs,
            resolution=resolution,
            resampling=resampling,
            overviews=overviews,
            reader=reader,
            errors=errors,
            with_properties=with_properties,
            like=like,
            progress=progress,
            cloud_cover_lt=cloud_cover_lt,
            date_range=date_range,
            bbox=bbox,
            split=split,
            split_column=split_column,
            **legacy,
        )

    def get_gdf(
        self,
        geometries: Any,
        bands: str | Sequence[str],
        *,
        geometry_crs: Any = "auto",
        geometry_column: str | None = None,
        all_touched: bool = False,
        fill_value: float | None = None,
        target_crs: Any = None,
        resolution: Any = None,
        resampling: str | None = None,
        overviews: bool = True,
        cloud_cover_lt: float | None = None,
        date_range: Sequence[Any] | None = None,
        bbox: Sequence[float] | None = None,
        split: str | Sequence[str] | None = None,
        split_column: str = "split",
        reader: RangeReader | None = None,
        errors: OnFailedAsset = "raise",
        **legacy: Any,
    ) -> Any:
        """The AOI reads of :meth:`get_numpy` as a ``geopandas.GeoDataFrame``, one row per
        (record, geometry, band): ``record_id, datetime, cloud_cover, collection,
        geometry_id, geometry`` (the AOI), ``band, data`` (2-D, native dtype), ``mask``,
        ``transform`` (``affine.Affine``), ``crs``, plus a tabular input's other columns.
        Windows may differ in shape and CRS. See :mod:`rasteret.read.aoi_gdf`."""
        from rasteret.read import get_gdf
        from rasteret.read.selection import legacy_read_options

        reader, legacy = legacy_read_options(legacy, reader)  # backend= / cloud_config=
        return get_gdf(
            self,
            geometries,
            bands,
            geometry_crs=geometry_crs,
            geometry_column=geometry_column,
            all_touched=all_touched,
            fill_value=fill_value,
            target_crs=target_crs,
            resolution=resolution,
            resampling=resampling,
            overviews=overviews,
            reader=reader,
            errors=errors,
            cloud_cover_lt=cloud_cover_lt,
            date_range=date_range,
            bbox=bbox,
            split=split,
            split_column=split_column,
            **legacy,
        )

    def read_aoi_windows(
        self,
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
    ) -> list[AOIWindow]:
        """Like :meth:`get_numpy`, one :class:`~rasteret.read.AOIWindow` per (record,
        geometry), not stacked: windows may differ in shape and CRS."""
        from rasteret.read import read_aoi_windows

        return read_aoi_windows(
            self,
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
        )

    def sample_points(
        self,
        points: Any,
        bands: str | Sequence[str],
        *,
        geometry_crs: Any = "auto",
        geometry_column: str | None = None,
        x_column: str | None = None,
        y_column: str | None = None,
        match: Literal["all", "latest"] = "all",
        with_mask: bool = False,
        max_distance_pixels: int = 0,
        return_neighbourhood: Literal["off", "always", "if_center_nodata"] = "off",
        cloud_cover_lt: float | None = None,
        date_range: Sequence[Any] | None = None,
        bbox: Sequence[float] | None = None,
        split: str | Sequence[str] | None = None,
        split_column: str = "split",
        reader: RangeReader | None = None,
        errors: OnFailedAsset = "raise",
        progress: ProgressOption = None,
        **legacy: Any,
    ) -> pa.Table:
        """Values of ``bands`` at ``points`` as an Arrow table, one row per (point,
        record, band) whose grid holds the point, reading only the tiles that hold points.

        ``points``: Shapely points, WKB, ``(x, y)`` tuples, an ``(N, 2)`` array, GeoArrow,
        or a table with ``x_column`` / ``y_column`` (then ``geometry_crs`` is required).
        ``match="latest"`` keeps, per (point, band), the newest record whose pixel is
        valid. ``max_distance_pixels=N``: where the point's pixel is not valid, the
        nearest valid pixel within ``N`` pixels (adds ``pixel_row``, ``pixel_col``,
        ``distance_pixels``, ``distance``); ``return_neighbourhood="always"`` /
        ``"if_center_nodata"`` adds the ``(2N+1)²`` window as ``neighbourhood_values``
        (see :mod:`rasteret.read.points_search`). The schema is
        :data:`rasteret.read.POINT_SAMPLES_SCHEMA`, then those columns, then the point
        table's other columns, then ``valid`` with ``with_mask=True``. ``progress``: as
        :meth:`get_numpy` (the tiles holding points).
        """
        from rasteret.read import sample_points
        from rasteret.read.selection import legacy_read_options

        reader, legacy = legacy_read_options(legacy, reader)  # backend= / cloud_config=
        return sample_points(
            self,
            points,
            bands,
            geometry_crs=geometry_crs,
            geometry_column=geometry_column,
            x_column=x_column,
            y_column=y_column,
            match=match,
            with_mask=with_mask,
            max_distance_pixels=max_distance_pixels,
            return_neighbourhood=return_neighbourhood,
            reader=reader,
            errors=errors,
            progress=progress,
            cloud_cover_lt=cloud_cover_lt,
            date_range=date_range,
            bbox=bbox,
            split=split,
            split_column=split_column,
            **legacy,
        )

    def read_window(
        self,
        *,
        bands: str | Sequence[str],
        bounds: Bounds | None = None,
        res: float | Sequence[float] | None = None,
        crs: Any = None,
        grid: Any = None,
        records: Sequence[str] | None = None,
        group_by: GroupBy = None,
        resampling: str | None = None,
        fill_value: float | None = None,
        overviews: bool = True,
        reader: RangeReader | None = None,
        errors: OnFailedAsset = "raise",
        progress: ProgressOption = None,
    ) -> np.ndarray:
        """Pixels of ``bands`` on one grid: ``[C, H, W]``, or ``[T, C, H, W]`` with ``group_by``.

        ``bounds`` (left, bottom, right, top) in ``crs`` at resolution ``res`` (CRS
        units; one number or ``(xres, yres)``), or a ready ``grid``. ``crs`` defaults to
        the records' shared CRS, ``res`` to the finest native resolution. ``records``:
        only these record ids; default every record overlapping the window
        (:class:`~rasteret.read.NoDataError` when none). All reads of the window run in
        one concurrent batch; see :mod:`rasteret.read.window`. ``grid`` may be an odc-geo
        ``GeoBox``; ``progress``: as :meth:`get_numpy`.
        """
        from rasteret.read.window import read_window

        return read_window(
            self,
            bands=bands,
            bounds=bounds,
            res=res,
            crs=crs,
            grid=grid,
            records=records,
            group_by=group_by,
            resampling=resampling,  # type: ignore[arg-type]
            fill_value=fill_value,
            overviews=overviews,
            reader=reader,
            errors=errors,
            progress=progress,
        )

    def explain(
        self,
        bands: str | Sequence[str] | None = None,
        *,
        window: Window | None = None,
        bbox: Bounds | None = None,
        bbox_crs: Any = None,
        group: str | None = None,
        overview_level: int | None = None,
        include_masks: bool = False,
        reader: RangeReader | None = None,
    ) -> ReadPlan:
        """Dry run: the objects, merged byte ranges, requests and bytes a read would
        fetch, computed from the index alone (nothing is fetched).

        Without ``window`` / ``bbox`` the read is every tile of ``bands`` in the
        selected groups (default: every full-resolution grid, or overview
        ``overview_level``); ``window`` is a pixel window and ``bbox`` a box in the
        grid's CRS or in ``bbox_crs``.
        """
        from rasteret.read.explain import explain

        return explain(
            self,
            bands,
            window=window,
            bbox=bbox,
            bbox_crs=bbox_crs,
            group=group,
            overview_level=overview_level,
            include_masks=include_masks,
            reader=reader,
        )
