"""The data plane of :class:`~rasteret.Collection`: the virtual Zarr store, the xarray view
and the virtual-dataset exports (Icechunk, kerchunk).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from rasteret.index.table import CollectionTable

if TYPE_CHECKING:
    import xarray as xr

    from rasteret.fetch import RangeReader
    from rasteret.index.failed import OnFailedAsset
    from rasteret.integrations.virtual_export_icechunk import IcechunkExport
    from rasteret.store import VirtualStore
Bounds = tuple[float, float, float, float]
#: ``groupby`` of AOI reads and composites: ``"solar_day"``, ``"time"``, ``"id"``, an ISO
#: 8601 period (``"P1M"``), a column name, or ``record -> key``.
GroupBy = str | Callable[[dict[str, Any]], Any] | None


class DataPlane(CollectionTable):
    """Store, xarray and virtual-dataset surfaces (mixed into :class:`~rasteret.Collection`)."""

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
        internal_masks: Literal["export", "omit"] = "export",
    ) -> IcechunkExport:
        """Commit these records as an Icechunk virtual dataset that ``xr.open_zarr`` reads
        without rasteret (needs the ``icechunk`` extra): one group per grid, one array
        per band, one virtual chunk per COG tile.

        ``storage_or_path`` is an ``icechunk.Storage`` or a local directory (created as
        a repository when it is none). Standard Zarr codecs where the files allow,
        else the ``rasteret.tiff`` codec (``codecs="standard"`` refuses those). A band's
        internal mask is exported as ``{band}_mask`` (``internal_masks="omit"``: left
        out, said in the band's attributes). See
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
            internal_masks=internal_masks,
        )

    def to_kerchunk(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        bands: str | Sequence[str] | None = None,
        errors: OnFailedAsset = "raise",
        internal_masks: Literal["export", "omit"] = "export",
    ) -> dict[str, Any]:
        """Kerchunk version-1 references (Zarr v2, standard codecs only) of these
        records, written to ``path`` as JSON when given; fsspec's ``reference://``
        filesystem and zarr open them without rasteret. 1-bit internal masks need the
        ``rasteret.tiff`` codec: refused unless ``internal_masks="omit"``. See
        :mod:`rasteret.integrations.virtual_export_kerchunk`.
        """
        from rasteret.integrations.virtual_export_kerchunk import to_kerchunk

        return to_kerchunk(self, path, bands=bands, errors=errors, internal_masks=internal_masks)
