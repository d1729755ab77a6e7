"""The original system's names on :class:`~rasteret.Collection`: dates, the Arrow dataset,
footprints, the catalog comparison, raster iteration and the workspace name helpers.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from rasteret.index.table import CollectionTable

if TYPE_CHECKING:
    from rasteret.read.rasters import RasterAccessor


class OriginalNames(CollectionTable):
    """Names of the original API (mixed into :class:`~rasteret.Collection`)."""

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
