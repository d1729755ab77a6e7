"""``Collection.iterate_rasters`` / ``get_first_raster``: one handle per record (original API).

The original rasteret yielded a ``RasterAccessor`` per row, holding the row's metadata
and reading its bands. :class:`RasterAccessor` keeps what is still meaningful:

* the record: ``id``, ``datetime`` (UTC-naive), ``bbox`` (lon/lat), ``footprint`` /
  ``geometry`` (Shapely, lon/lat), ``crs`` (``"EPSG:x"`` or WKT) and ``epsg``,
  ``cloud_cover``, ``assets``, ``collection`` (STAC collection id), ``data_source``;
* its bands: ``available_bands``, ``band_metadata`` (``{"B04_metadata": {...}}``, the
  index's header structs as dicts), :meth:`~RasterAccessor.band_levels` (typed) and
  :meth:`~RasterAccessor.try_get_band_cog_metadata` (``(struct, href, band_index)``);
* reads of that record alone through the same store and fetch layer as every other read
  (no header is read again): :meth:`~RasterAccessor.load_bands` (``xr.Dataset``, or
  ``AOIStack`` / GeoDataFrame) and :meth:`~RasterAccessor.sample_points`. They are
  coroutines, as in the original, and run the read in a worker thread.

The handles are immutable values over one-record views of the collection (no row is
copied; ``band_metadata`` is materialised on first access).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pyarrow as pa
import shapely

from rasteret.index import CollectionTable
from rasteret.index.columns import asset_field, record_ids
from rasteret.index.levels import BandLevels
from rasteret.index.schema import metadata_column

__all__ = ["RasterAccessor", "get_first_raster", "iterate_rasters"]


@dataclass(frozen=True, eq=False)
class RasterAccessor:
    """One record of a collection: its metadata, band headers, and reads of it alone."""

    id: str
    datetime: dt.datetime | None
    bbox: tuple[float, float, float, float] | None
    footprint: shapely.Geometry | None
    crs: str | None
    epsg: int | None
    cloud_cover: float | None
    assets: dict[str, Any]
    collection: str | None
    data_source: str
    records: CollectionTable = field(repr=False)
    bands: tuple[str, ...] = field(repr=False)

    @property
    def geometry(self) -> shapely.Geometry | None:
        """The footprint (lon/lat), as the original's alias."""
        return self.footprint

    @property
    def available_bands(self) -> list[str]:
        """Bands of this record with an indexed header (a non-null ``{band}_metadata``)."""
        table = self.records.table
        return [b for b in self.bands if table[metadata_column(b)][0].is_valid]

    @cached_property
    def band_metadata(self) -> dict[str, dict[str, Any]]:
        """``{"<band>_metadata": header struct as a dict}`` of the available bands."""
        table = self.records.table
        return {
            metadata_column(b): table[metadata_column(b)][0].as_py() for b in self.available_bands
        }

    def band_levels(self, band: str) -> BandLevels:
        """Typed header of ``band`` (full resolution, overviews, masks, nodata, scale...)."""
        return BandLevels.from_struct(self._struct(band))

    def try_get_band_cog_metadata(
        self, band: str
    ) -> tuple[dict[str, Any] | None, str | None, int | None]:
        """``(header struct, href, band_index)`` of ``band``; ``(None, None, None)`` when
        the record has no indexed header for it (as the original)."""
        if band not in self.bands or band not in self.available_bands:
            return None, None, None
        href = asset_field(self.records.table, band, "href")[0]
        index = asset_field(self.records.table, band, "band_index")[0]
        return self.band_metadata[metadata_column(band)], href, index

    def intersects(self, geometry: Any, geometry_crs: Any = 4326) -> bool:
        """Whether the record's footprint intersects ``geometry`` (any area input of the
        reads: a box tuple, Shapely, WKB, GeoJSON...; in ``geometry_crs``)."""
        from rasteret.read.geometry import coerce_geometries

        if self.footprint is None:
            return False
        geoms = coerce_geometries(geometry, geometry_crs=geometry_crs, kind="area")
        lonlat = geoms.to_crs("OGC:CRS84")
        return bool(shapely.intersects(self.footprint, lonlat).any())

    async def load_bands(
        self,
        geometries: Any,
        band_codes: str | Sequence[str],
        *,
        geometry_crs: Any = "auto",
        all_touched: bool = False,
        target_crs: Any = None,
        for_xarray: bool = True,
        for_numpy: bool = False,
        reader: Any = None,
        **legacy: Any,
    ) -> Any:
        """Pixels of ``band_codes`` inside ``geometries`` for this record: an
        :class:`~rasteret.read.AOIStack` with ``for_numpy=True``, else an ``xr.Dataset``
        (``for_xarray``, the default) or a GeoDataFrame (``for_xarray=False``), as
        ``Collection.get_numpy`` / ``get_xarray`` / ``get_gdf`` of this record alone
        (``legacy``: their options of the original API, e.g. ``backend=``)."""
        from rasteret.read.selection import legacy_read_options

        reader, legacy = legacy_read_options(legacy, reader)
        if for_numpy:
            from rasteret.read import get_numpy as read
        elif for_xarray:
            from rasteret.read import get_xarray as read
        else:
            from rasteret.read import get_gdf as read
        return await asyncio.to_thread(
            read,
            self.records,
            geometries,
            band_codes,
            geometry_crs=geometry_crs,
            all_touched=all_touched,
            target_crs=target_crs,
            reader=reader,
            **legacy,
        )

    async def sample_points(
        self,
        *,
        points: Any,
        band_codes: str | Sequence[str],
        geometry_crs: Any = "auto",
        reader: Any = None,
        **options: Any,
    ) -> pa.Table:
        """Values of ``band_codes`` at ``points`` in this record (the table of
        ``Collection.sample_points``)."""
        from rasteret.read import sample_points
        from rasteret.read.selection import legacy_read_options

        reader, options = legacy_read_options(options, reader)
        return await asyncio.to_thread(
            sample_points,
            self.records,
            points,
            band_codes,
            geometry_crs=geometry_crs,
            reader=reader,
            **options,
        )

    def _struct(self, band: str) -> dict[str, Any]:
        if band not in self.bands:
            from rasteret.errors import BandNotFoundError

            raise BandNotFoundError(
                f"Band(s) not found: [{band!r}]. Available bands: {list(self.bands)}"
            )
        found = self.band_metadata.get(metadata_column(band))
        if found is None:
            raise ValueError(f"record {self.id!r}: band {band!r} has no indexed header")
        return found

    def __repr__(self) -> str:
        return (
            f"RasterAccessor(id={self.id!r}, datetime='{self.datetime}', "
            f"cloud_cover={self.cloud_cover})"
        )


def _column(table: pa.Table, name: str) -> list[Any]:
    return table[name].to_pylist() if name in table.column_names else [None] * table.num_rows


def _bbox(value: Any) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return (value["xmin"], value["ymin"], value["xmax"], value["ymax"])
    return tuple(value)  # type: ignore[return-value]


def _naive(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


async def iterate_rasters(
    collection: CollectionTable,
    data_source: str | None = None,
    bands: Sequence[str] | None = None,
) -> AsyncIterator[RasterAccessor]:
    """One :class:`RasterAccessor` per record, in table order; ``bands`` restricts the
    bands each one exposes (validated: unknown bands raise
    :class:`~rasteret.errors.BandNotFoundError`); ``data_source`` overrides the
    collection's."""
    from rasteret.read.selection import band_names

    wanted = tuple(band_names(collection, list(bands))[0]) if bands else tuple(collection.bands)
    table = collection.table
    ids = record_ids(table)
    times = _column(table, "datetime")
    boxes = _column(table, "bbox")
    clouds = _column(table, "eo:cloud_cover")
    names = _column(table, "collection")
    assets = _column(table, "assets")
    footprints = (
        shapely.from_wkb(table["geometry"].to_pylist())
        if "geometry" in table.column_names
        else [None] * table.num_rows
    )
    source = data_source or collection.data_source or ""
    for row in range(table.num_rows):
        records = collection._view(table.slice(row, 1))
        crs = records.crs
        epsg = records.epsg
        yield RasterAccessor(
            id=ids[row],
            datetime=_naive(times[row]),
            bbox=_bbox(boxes[row]),
            footprint=footprints[row],
            crs=crs[0] if crs else None,
            epsg=epsg[0] if epsg else None,
            cloud_cover=clouds[row],
            assets=dict(assets[row] or {}),
            collection=names[row],
            data_source=source,
            records=records,
            bands=wanted,
        )
        await asyncio.sleep(0)  # let the caller's other tasks run between records


async def get_first_raster(collection: CollectionTable) -> RasterAccessor:
    """The first record's :class:`RasterAccessor`; ``ValueError`` for an empty collection."""
    async for raster in iterate_rasters(collection):
        return raster
    raise ValueError(f"No raster records found in collection {collection.name!r}")
