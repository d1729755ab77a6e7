"""``rasteret.Collection``: the user-facing collection, with every pixel surface typed.

The top of the layer stack (DESIGN.md, ``docs/architecture.md``). The control plane's
own type, :class:`rasteret.index.CollectionTable`, filters, summarises and persists
records and knows nothing of pixels; this class adds the surfaces that read them
(store, engine, AOI reads, points, windows, TorchGeo) with their real signatures, each
delegating to the layer that implements it. Views (``subset``, ``where``, ...) keep the
class, and :func:`load` / :func:`as_collection` (and ``rasteret.build*``) return it.

The surfaces are grouped by kind in mixins of this package (``_original``: the
original system's names; ``_data_plane``: store, xarray, Icechunk / kerchunk;
``_reads``: AOI, point and window reads and ``explain``); this module composes them
with maintenance and TorchGeo. Implementations are imported when a method is first
called, so ``rasteret.load`` costs only the index layer; nothing here touches the
network at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Self

from rasteret.collection._data_plane import DataPlane
from rasteret.collection._original import OriginalNames
from rasteret.collection._reads import PixelReads
from rasteret.index.table import CollectionTable

if TYPE_CHECKING:
    from rasteret.fetch import RangeReader
    from rasteret.index.failed import OnFailedAsset
    from rasteret.ingest.refresh import RefreshReport
    from rasteret.integrations.torchgeo import RasteretGeoDataset

__all__ = ["Collection", "as_collection", "load"]

Bounds = tuple[float, float, float, float]
#: ``groupby`` of AOI reads and composites: ``"solar_day"``, ``"time"``, ``"id"``, an ISO
#: 8601 period (``"P1M"``), a column name, or ``record -> key``.
GroupBy = str | Callable[[dict[str, Any]], Any] | None


class Collection(OriginalNames, DataPlane, PixelReads, CollectionTable):
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
