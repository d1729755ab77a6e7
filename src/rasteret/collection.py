"""``rasteret.Collection``: the user-facing collection, with every pixel surface typed.

The top of the layer stack (DESIGN.md, ``docs/architecture.md``). The control plane's
own type, :class:`rasteret.index.CollectionTable`, filters, summarises and persists
records and knows nothing of pixels; this class adds the surfaces that read them
(store, engine, AOI reads, points, windows, TorchGeo) with their real signatures, each
delegating to the layer that implements it. Views (``subset``, ``where``, ...) keep the
class, and :func:`load` / :func:`as_collection` (and ``rasteret.build*``) return it.

Implementations are imported when a method is first called, so ``rasteret.load`` costs
only the index layer; nothing here touches the network at import.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Self

from rasteret.index.table import CollectionTable

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import xarray as xr

    from rasteret._progress import ProgressOption
    from rasteret.fetch import RangeReader
    from rasteret.geo import GridSpec, Window
    from rasteret.index.failed import OnFailedAsset
    from rasteret.ingest.refresh import RefreshReport
    from rasteret.integrations.torchgeo import RasteretGeoDataset
    from rasteret.integrations.virtual_export_icechunk import IcechunkExport
    from rasteret.read import AOIStack, AOIWindow
    from rasteret.read.explain import ReadPlan
    from rasteret.read.rasters import RasterAccessor
    from rasteret.store import VirtualStore

__all__ = ["Collection", "as_collection", "load"]

Bounds = tuple[float, float, float, float]
#: ``groupby`` of AOI reads and composites: ``"solar_day"``, ``"time"``, ``"id"``, an ISO
#: 8601 period (``"P1M"``), a column name, or ``record -> key``.
GroupBy = str | Callable[[dict[str, Any]], Any] | None


class Collection(CollectionTable):
    """A collection of raster records with per-band COG headers, and its pixel surfaces.

    Get one from :func:`rasteret.build`, ``rasteret.build_from_stac`` /
    ``build_from_table`` / ``build_from_files``, :func:`rasteret.load` or
    :func:`rasteret.as_collection`. Filtering, summaries and export are those of
    :class:`~rasteret.index.CollectionTable`; every method below reads pixels through
    the virtual Zarr store of the selected records (no header is read again).

    ``reader=`` (a :class:`rasteret.fetch.RangeReader`, e.g.
    ``RangeReader(FetchConfig(max_in_flight=16))``) sets the fetch settings of one read;
    the default is the process's reader (:func:`rasteret.configure`). Readers travel to
    dask and DataLoader workers by reference: the worker builds its own with the same
    settings, or uses its environment's when they are the defaults. The original API's
    ``backend=`` (:func:`rasteret.create_backend`) and ``cloud_config=``
    (:class:`rasteret.CloudConfig`) are honoured by the reads that take them, as store
    options over that read's reader, with a ``DeprecationWarning``.
    """

    # ------------------------------------------------------------ original names

    @property
    def start_date(self) -> Any:
        """The earliest record datetime (UTC-naive ``datetime``), ``None`` when empty."""
        dates = self.date_range
        return None if dates is None else dates[0]

    @property
    def end_date(self) -> Any:
        """The latest record datetime (UTC-naive ``datetime``), ``None`` when empty."""
        dates = self.date_range
        return None if dates is None else dates[1]

    @property
    def dataset(self) -> Any:
        """The selected records as a ``pyarrow.dataset.Dataset`` (the original's
        ``collection.dataset.to_table()``); for a collection loaded from disk, reading
        it reads the selection."""
        import pyarrow.dataset as ds

        return ds.dataset(self.table)

    def footprints(self, crs: Any = None) -> Any:
        """The records' footprints (the ``geometry`` column, lon/lat) as an array of Shapely
        polygons in record order; in ``crs`` when given, densified first so edges that
        curve there are followed."""
        from rasteret.read.geometry import footprints

        return footprints(self._columns(["geometry"])["geometry"], crs)

    def compare_to_catalog(self) -> Any:
        """:meth:`describe` plus ``catalog``: the built-in or registered catalog entry of
        the collection's data source (``id, name, all_bands, temporal_range,
        spatial_coverage, requires_auth, license``) and ``bands_not_indexed`` (catalog bands
        this collection does not hold). The entry is the one whose id is the data source,
        else the first whose STAC collection is. ``ValueError`` when none matches."""
        from rasteret.catalog.registry import catalog_summary
        from rasteret.index.describe import DescribeResult

        catalog = catalog_summary(self.data_source)
        held = self.bands
        missing = [b for b in catalog["all_bands"] if b not in held]
        return DescribeResult(
            {**self.describe().data, "catalog": catalog, "bands_not_indexed": missing}
        )

    def iterate_rasters(
        self, data_source: str | None = None, bands: Sequence[str] | None = None
    ) -> AsyncIterator[RasterAccessor]:
        """``async for raster in collection.iterate_rasters(): ...``: one
        :class:`~rasteret.read.rasters.RasterAccessor` per record (table order) with its
        metadata, band headers and reads of that record alone (``await
        raster.load_bands(geometries, bands)``), through the store: no header is read.
        ``bands`` restricts (and validates) the bands; ``data_source`` overrides the
        collection's."""
        from rasteret.read.rasters import iterate_rasters

        return iterate_rasters(self, data_source=data_source, bands=bands)

    async def get_first_raster(self) -> RasterAccessor:
        """The first record's :class:`~rasteret.read.rasters.RasterAccessor`
        (``ValueError`` when the collection is empty)."""
        from rasteret.read.rasters import get_first_raster

        return await get_first_raster(self)

    # ------------------------------------------------------------ data plane

    def to_zarr_store(
        self, bands: str | Sequence[str] | None = None, *, reader: RangeReader | None = None
    ) -> VirtualStore:
        """The virtual read-only Zarr v3 store of this collection (one chunk per COG tile).

        Use it with ``zarr.open_group(store, mode="r")`` or ``xr.open_zarr(store)``.
        ``reader`` sets the fetch settings of its reads (default: the process's reader,
        :func:`rasteret.configure`).
        """
        from rasteret.store import open_store

        return open_store(self, bands, reader=reader)

    def to_xarray(
        self,
        bands: str | Sequence[str] | None = None,
        *,
        chunks: Any = None,
        groupby: GroupBy = None,
        fuse: str | None = None,
        with_properties: bool | str | Sequence[str] | None = None,
        **engine_options: Any,
    ) -> xr.Dataset:
        """``xr.open_dataset(self, engine="rasteret", bands=..., chunks=...)``.

        Lazy, native dtype, one grid. ``chunks={}`` gives dask arrays chunked in whole
        tiles; ``engine_options`` are the engine's (``group=``, ``overview_level=``,
        ``crs=`` / ``resolution=`` / ``bbox=`` / ``grid=`` target grids, ...; see
        :mod:`rasteret.backend.entrypoint`). ``groupby`` (``"solar_day"``, a column, an
        ISO 8601 period such as ``"P1M"``...) composites each group of records onto one
        time step with ``fuse`` (``first`` by default, ``last``, ``min``, ``max``,
        ``mean``, ``median``); ``with_properties`` (``True`` or column names) adds record
        columns as coordinates along ``time`` (:mod:`rasteret.backend.composite`).
        """
        import xarray as xr

        records = {"groupby": groupby, "fuse": fuse, "with_properties": with_properties}
        engine_options.update({k: v for k, v in records.items() if v is not None})
        return xr.open_dataset(
            self, engine="rasteret", bands=bands, chunks=chunks, **engine_options
        )

    def to_icechunk(
        self,
        storage_or_path: Any,
        *,
        bands: str | Sequence[str] | None = None,
        branch: str = "main",
        message: str | None = None,
        codecs: Literal["auto", "standard"] = "auto",
        containers: dict[str, Any] | None = None,
        errors: OnFailedAsset = "raise",
    ) -> IcechunkExport:
        """Commit these records as an Icechunk virtual dataset that ``xr.open_zarr`` reads
        without rasteret (needs the ``icechunk`` extra): one group per grid, one array
        per band, one virtual chunk per COG tile.

        ``storage_or_path`` is an ``icechunk.Storage`` or a local directory (created as
        a repository when it is none). Standard Zarr codecs where the files allow,
        else the ``rasteret.tiff`` codec (``codecs="standard"`` refuses those). See
        :mod:`rasteret.integrations.virtual_export_icechunk`.
        """
        from rasteret.integrations.virtual_export_icechunk import to_icechunk

        return to_icechunk(
            self,
            storage_or_path,
            bands=bands,
            branch=branch,
            message=message,
            codecs=codecs,
            containers=containers,
            errors=errors,
        )

    def to_kerchunk(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        bands: str | Sequence[str] | None = None,
        errors: OnFailedAsset = "raise",
    ) -> dict[str, Any]:
        """Kerchunk version-1 references (Zarr v2, standard codecs only) of these
        records, written to ``path`` as JSON when given; fsspec's ``reference://``
        filesystem and zarr open them without rasteret. See
        :mod:`rasteret.integrations.virtual_export_kerchunk`.
        """
        from rasteret.integrations.virtual_export_kerchunk import to_kerchunk

        return to_kerchunk(self, path, bands=bands, errors=errors)

    # ------------------------------------------------------------ AOI reads

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

    # ------------------------------------------------------------ maintenance

    def refresh(
        self,
        bands: Sequence[str] | None = None,
        *,
        concurrency: int = 64,
        reader: RangeReader | None = None,
    ) -> Self:
        """A collection whose changed objects (size / ETag) are re-indexed: one HEAD per
        asset, one header read per changed one; unchanged collections come back as is."""
        from rasteret.ingest.refresh import refresh

        return self.of(refresh(self, bands, concurrency=concurrency, reader=reader))

    def check_assets(
        self,
        bands: Sequence[str] | None = None,
        *,
        concurrency: int = 64,
        reader: RangeReader | None = None,
    ) -> RefreshReport:
        """Which assets changed since indexing (one HEAD per asset; nothing re-indexed)."""
        from rasteret.ingest.refresh import check_assets

        return check_assets(self, bands, concurrency=concurrency, reader=reader)

    # ------------------------------------------------------------ machine learning

    def to_torchgeo_dataset(
        self,
        *,
        bands: str | Sequence[str],
        time_series: bool = False,
        label_field: str | None = None,
        split: str | Sequence[str] | None = None,
        split_column: str = "split",
        cloud_cover_lt: float | None = None,
        date_range: Sequence[Any] | None = None,
        bbox: Sequence[float] | None = None,
        geometries: Any = None,
        target_crs: Any = None,
        res: float | tuple[float, float] | None = None,
        resampling: str | None = None,
        is_image: bool = True,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        group_by: GroupBy = None,
        fill_value: float | None = None,
        dtype: Any = None,
        overviews: bool = True,
        chip_size: int | None = None,
        geometries_crs: Any = 4326,
        reader: RangeReader | None = None,
        errors: OnFailedAsset = "raise",
        **legacy: Any,
    ) -> RasteretGeoDataset:
        """A TorchGeo ``GeoDataset`` over the records selected by ``split`` /
        ``cloud_cover_lt`` / ``date_range`` / ``bbox`` / ``geometries`` (needs the
        ``torchgeo`` extra).

        Samples hold ``image`` (or ``mask`` with ``is_image=False``) ``[C, H, W]``, or
        ``[T, C, H, W]`` with ``time_series``, on the dataset grid (``target_crs`` /
        ``res``; default the records' CRS and finest resolution), plus ``label`` from
        ``label_field``. ``chip_size`` is not used: samplers choose the patch size. See
        :mod:`rasteret.integrations.torchgeo`.
        """
        from rasteret.integrations.torchgeo import to_torchgeo_dataset
        from rasteret.read.selection import legacy_read_options

        reader, legacy = legacy_read_options(legacy, reader)  # backend= / cloud_config=
        return to_torchgeo_dataset(
            self,
            bands=bands,
            time_series=time_series,
            label_field=label_field,
            split=split,
            split_column=split_column,
            cloud_cover_lt=cloud_cover_lt,
            date_range=date_range,
            bbox=bbox,
            geometries=geometries,
            target_crs=target_crs,
            res=res,
            resampling=resampling,  # type: ignore[arg-type]
            is_image=is_image,
            transforms=transforms,  # type: ignore[arg-type]
            group_by=group_by,
            fill_value=fill_value,
            dtype=dtype,
            overviews=overviews,
            chip_size=chip_size,
            geometries_crs=geometries_crs,
            reader=reader,
            errors=errors,
            **legacy,
        )

    # ------------------------------------------------------------ workspace (original API)

    @staticmethod
    def create_name(custom_name: str, date_range: Sequence[Any] | None, data_source: str) -> str:
        """Workspace directory stem ``{custom}_{YYYYMM-MM|YYYYMM-YYYYMM}_{source}``."""
        from rasteret.ingest.workspace import create_name

        return create_name(custom_name, date_range, data_source)

    @staticmethod
    def parse_name(name: str) -> dict[str, str]:
        """Split a :meth:`create_name` stem into ``custom_name`` / ``data_source`` / ``name``."""
        from rasteret.ingest.workspace import parse_name

        return parse_name(name)

    @staticmethod
    def list_collections(
        workspace_dir: str | os.PathLike[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every ``*_stac`` / ``*_records`` collection in the workspace (name, kind, size...)."""
        from rasteret.ingest.manage import list_collections

        return list_collections(workspace_dir)


def load(
    path: str | os.PathLike[str],
    name: str = "",
    *,
    require_band_metadata: bool = True,
    local_roots: Iterable[str | os.PathLike[str]] | Literal["any"] | None = None,
) -> Collection:
    """Load an exported collection (a GeoParquet file or a ``year=/month=`` directory).

    ``path`` is local or a URL (``s3://``, ``gs://``, ``az://``, ``https://`` and
    ``hf://datasets/<org>/<name>/<path>`` files): streamed through the fetch layer's
    stores (footers, then the row groups a selection needs), never copied to disk.

    ``require_band_metadata=False`` also accepts record tables without header structs
    (built with ``enrich_cog=False``): they can be filtered and exported, not read.

    An index is data: its local hrefs (paths, ``file://``) are read only under the
    directory holding it, the workspace, ``local_roots`` and ``$RASTERET_LOCAL_ROOTS``
    (``local_roots="any"``: anywhere); otherwise the first read raises
    :class:`~rasteret.errors.LocalHrefRefusedError`. Remote hrefs are not restricted.

    Raises ``FileNotFoundError`` naming ``path`` when nothing is there and
    :class:`~rasteret.errors.CollectionSchemaError` naming it when the table is not a
    valid collection.
    """
    from rasteret.index.loading import load as load_table

    return Collection.of(
        load_table(path, name, require_band_metadata=require_band_metadata, local_roots=local_roots)
    )


def as_collection(
    table: Any,
    *,
    name: str = "",
    data_source: str = "",
    description: str = "",
    require_band_metadata: bool = True,
) -> Collection:
    """A read-ready Arrow table (or anything ``pyarrow.table()`` accepts, or a
    collection) as a validated :class:`Collection`.

    Raises :class:`~rasteret.errors.CollectionSchemaError` listing every problem.
    """
    from rasteret.index.loading import as_collection as as_table

    return Collection.of(
        as_table(
            table,
            name=name,
            data_source=data_source,
            description=description,
            require_band_metadata=require_band_metadata,
        )
    )
