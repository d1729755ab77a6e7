"""Pixel surfaces of a :class:`~rasteret.index.Collection`, as thin methods.

The index layer knows nothing of pixels: every method here imports its implementation
from an upper layer (store, backend, read, integrations) when it is called, the way
xarray's ``Dataset.to_zarr`` imports its backend. Nothing is imported at module load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xarray as xr

    from rasteret.store import VirtualStore


class CollectionSurfaces:
    """Mixin of :class:`~rasteret.index.Collection`: reads through the virtual Zarr store."""

    def to_zarr_store(self, bands: str | Sequence[str] | None = None) -> VirtualStore:
        """The virtual read-only Zarr v3 store of this collection (one chunk per COG tile).

        Use it with ``zarr.open_group(store, mode="r")`` or ``xr.open_zarr(store)``.
        """
        from rasteret.store import open_store

        return open_store(self, bands)

    def to_xarray(
        self,
        bands: str | Sequence[str] | None = None,
        *,
        chunks: Any = None,
        **kwargs: Any,
    ) -> xr.Dataset:
        """``xr.open_dataset(self, engine="rasteret", ...)``: lazy, native dtype, one grid.

        ``chunks={}`` gives dask arrays chunked in whole tiles; other keyword arguments
        go to the engine (``group=``, ``overview_level=``, ...).
        """
        import xarray as xr

        return xr.open_dataset(self, engine="rasteret", bands=bands, chunks=chunks, **kwargs)

    def get_numpy(self, geometries: Any, bands: str | Sequence[str], **kwargs: Any) -> Any:
        """Pixels of ``bands`` inside ``geometries`` for every record, with identity.

        Returns an :class:`~rasteret.read.AOIStack` (``.data`` ``[N, H, W]`` or
        ``[N, C, H, W]`` in native dtype, ``.mask``, ``.records``). Options
        (``geometry_crs``, ``all_touched``, ``groupby``, ``grid`` / ``target_crs`` /
        ``resolution``, ``apply_scale``, filters...): :func:`rasteret.read.get_numpy`.
        """
        from rasteret.read import get_numpy

        return get_numpy(self, geometries, bands, **kwargs)

    def get_xarray(self, geometries: Any, bands: str | Sequence[str], **kwargs: Any) -> xr.Dataset:
        """AOI reads as a Dataset ``(time, geometry, y, x)`` with valid masks and CF CRS.

        Options as :meth:`get_numpy`; see :func:`rasteret.read.get_xarray`.
        """
        from rasteret.read import get_xarray

        return get_xarray(self, geometries, bands, **kwargs)

    def read_aoi_windows(self, geometries: Any, bands: str | Sequence[str], **kwargs: Any) -> Any:
        """One :class:`~rasteret.read.AOIWindow` per (record, geometry), not stacked."""
        from rasteret.read import read_aoi_windows

        return read_aoi_windows(self, geometries, bands, **kwargs)

    def sample_points(self, points: Any, bands: str | Sequence[str], **kwargs: Any) -> Any:
        """Values of ``bands`` at ``points`` as an Arrow table (one row per point, record,
        band), reading only the tiles that hold points; see :func:`rasteret.read.sample_points`.
        """
        from rasteret.read import sample_points

        return sample_points(self, points, bands, **kwargs)

    def explain(self, bands: str | Sequence[str] | None = None, **kwargs: Any) -> Any:
        """Dry run: the objects, merged ranges, requests and bytes a read would fetch,
        computed from the index alone (nothing is fetched); see
        :func:`rasteret.read.explain.explain` for ``window=`` / ``bbox=`` / ``group=``."""
        from rasteret.read.explain import explain

        return explain(self, bands, **kwargs)

    def refresh(self, bands: Sequence[str] | None = None, **kwargs: Any) -> Any:
        """A collection whose changed objects (size / ETag) are re-indexed: one HEAD per
        asset, one header read per changed one; see :func:`rasteret.ingest.refresh.refresh`."""
        from rasteret.ingest.refresh import refresh

        return refresh(self, bands, **kwargs)

    # -- workspace helpers of the original API (implemented in rasteret.ingest) -----------
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
    def list_collections(workspace_dir: Any = None) -> list[dict[str, Any]]:
        """Every ``*_stac`` / ``*_records`` collection in the workspace (name, kind, size...)."""
        from rasteret.ingest.manage import list_collections

        return list_collections(workspace_dir)

    def read_window(self, **kwargs: Any) -> Any:
        """Pixels of one window (``bounds``, ``res``, ``crs``, ``bands``; optional
        ``records``, ``group_by``, ``resampling``) as ``[C, H, W]`` or, with ``group_by``,
        ``[T, C, H, W]``; all reads of the window in one concurrent batch. See
        :func:`rasteret.read.window.read_window`."""
        from rasteret.read.window import read_window

        return read_window(self, **kwargs)

    def to_torchgeo_dataset(self, **kwargs: Any) -> Any:
        """A TorchGeo ``GeoDataset`` over this collection (``bands``, ``time_series``,
        ``label_field``, ``split``, ``target_crs``, ``res``...); needs the ``torchgeo``
        extra. See :func:`rasteret.integrations.torchgeo.to_torchgeo_dataset`."""
        from rasteret.integrations.torchgeo import to_torchgeo_dataset

        return to_torchgeo_dataset(self, **kwargs)
