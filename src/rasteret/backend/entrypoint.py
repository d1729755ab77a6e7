"""The ``rasteret`` xarray engine: ``xr.open_dataset(collection, engine="rasteret")``.

``filename_or_obj`` is a collection Parquet file / directory or a
:class:`~rasteret.index.Collection`. Each grid of the collection is one group of the
virtual store; overview level ``i`` (0 = first overview, as in rasterio) is the group
``{grid}_overview_{i}``. Data stay in their native dtype (``mask_and_scale=False`` by
default: nodata is the ``nodata`` attribute, scale / offset are coordinates; a band whose
records differ in codec or radiometry is still one variable:
:mod:`rasteret.store.bands`). Variables are lazy; pass ``chunks={}`` for dask chunks
that are whole-tile multiples of about 128 MiB (``encoding["preferred_chunks"]``), or
``chunks="auto"`` for dask's size aligned to them. ``reader=`` (a
:class:`rasteret.fetch.RangeReader`) sets the fetch settings of the reads (default: the
process's reader); it travels with the store to dask workers. A record whose asset of a
selected band could not be indexed (``{band}_error``) raises
:class:`~rasteret.errors.UnindexedAssetError` unless ``errors="skip"`` (then such records
are left out). With a read budget set (``$RASTERET_MAX_READ_BYTES``,
:mod:`rasteret.read.budget`), a dataset whose every value would fetch more than the budget
is refused when it is opened (:class:`~rasteret.read.budget.ReadBudgetExceeded`, naming
the plan): its reads run later, in dask tasks, outside the caller's ``read_budget``.

Target grid: ``crs=``, ``resolution=``, ``bbox=`` (``bbox_crs=``, ``shape=``, ``align=``,
``resampling=``) or ``grid=`` / ``geobox=`` / ``like=`` (a :class:`rasteret.geo.GridSpec`,
an odc-geo ``GeoBox``, or an xarray object with a CRS: :func:`rasteret.geo.odc.as_grid`)
put every record of every grid (e.g. two UTM zones) on ONE aligned ``(time, y, x)`` grid,
lazily (dask), reading the overview level GDAL would choose when the target is coarser.
That path lives in :mod:`rasteret.backend.target_grid` (imported on use: it calls the
``geo`` warp, which the native path does not need).

``filename_or_obj`` may also be one GeoTIFF (a path or URL ending in ``.tif`` / ``.tiff``):
its header is read once and it opens on its own grid, bands ``b1`` … ``bN`` as ``(y, x)``
variables, overviews as groups of ``open_datatree`` (:mod:`rasteret.backend.scene`).
Variables support xarray's ``await ds.load_async()`` (:mod:`rasteret.backend.variables`).

Composites: ``groupby=`` (``"solar_day"``, a column, ``"P1M"``...) with ``fuse=``
(``first``, ``last``, ``min``, ``max``, ``mean``, ``median``) put each group of records
on one time step, and ``with_properties=`` adds record columns as coordinates along
``time``, on native and target grids (:mod:`rasteret.backend.composite`; the options are
checked by :mod:`rasteret.backend.record_options` before any read).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

import xarray as xr
from xarray.backends import BackendEntrypoint

from rasteret.backend.chunks import DEFAULT_TARGET_BYTES
from rasteret.backend.resolve import looks_like_collection
from rasteret.backend.scene import as_scene_dataset, looks_like_scene

if TYPE_CHECKING:
    from rasteret.fetch import RangeReader
    from rasteret.geo.window import Window
    from rasteret.index.failed import OnFailedAsset
    from rasteret.store.layout import ArrayLayout
    from rasteret.store.tiles import TileStore


class RasteretBackendEntrypoint(BackendEntrypoint):
    """Open a rasteret collection as xarray Datasets / a DataTree (one group per grid)."""

    description: ClassVar[str] = (
        "Open rasteret collections (GeoParquet COG header indexes) through a virtual Zarr v3 store"
    )
    url: ClassVar[str] = "https://rasteret.readthedocs.io"
    supports_groups: ClassVar[bool] = True
    open_dataset_parameters: ClassVar[tuple[str, ...]] = (
        "filename_or_obj",
        "drop_variables",
        "bands",
        "group",
        "overview_level",
        "mask_and_scale",
        "decode_times",
        "decode_coords",
        "chunk_bytes",
        "crs",
        "resolution",
        "bbox",
        "bbox_crs",
        "shape",
        "align",
        "resampling",
        "grid",
        "geobox",
        "like",
        "reader",
        "errors",
        "groupby",
        "fuse",
        "with_properties",
    )

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        # a single GeoTIFF opens only with an explicit engine="rasteret": claiming every
        # ``.tif`` would take ``xr.open_dataset("x.tif")`` away from rioxarray's engine
        return looks_like_collection(filename_or_obj)

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        bands: str | Sequence[str] | None = None,
        group: str | None = None,
        overview_level: int | None = None,
        mask_and_scale: bool = False,
        decode_times: bool = True,
        decode_coords: bool | str = True,
        use_cftime: bool | None = None,
        decode_timedelta: bool | None = None,
        concat_characters: bool = True,
        chunk_bytes: int = DEFAULT_TARGET_BYTES,
        crs: Any = None,
        resolution: Any = None,
        bbox: Sequence[float] | None = None,
        bbox_crs: Any = None,
        shape: tuple[int, int] | None = None,
        align: Any = None,
        resampling: Any = None,
        grid: Any = None,
        geobox: Any = None,
        like: Any = None,
        reader: RangeReader | None = None,
        errors: OnFailedAsset = "raise",
        groupby: Any = None,
        fuse: str | None = None,
        with_properties: Any = None,
    ) -> xr.Dataset:
        from rasteret.backend.record_options import RecordOptions

        records = RecordOptions(groupby, fuse, with_properties)  # checked before any read
        store = _store(filename_or_obj, bands, reader, errors)
        scene = _scene(filename_or_obj)  # one GeoTIFF: its own grid, no time axis
        options = GroupOptions(
            drop_variables=drop_variables,
            mask_and_scale=mask_and_scale,
            decode_times=decode_times,
            decode_coords=decode_coords,
            use_cftime=use_cftime,
            decode_timedelta=decode_timedelta,
            concat_characters=concat_characters,
            chunk_bytes=chunk_bytes,
        )
        from rasteret.geo.odc import pick_grid

        grid = pick_grid(grid=grid, geobox=geobox, like=like)  # GridSpec | GeoBox | xarray
        wants_grid = any(v is not None for v in (crs, resolution, bbox, shape, grid))
        if wants_grid:
            if group is not None or overview_level is not None:
                raise ValueError(
                    "group= / overview_level= select a native grid; they cannot be combined "
                    "with a target grid (crs= / resolution= / bbox= / grid= / geobox= / like=)"
                )
            cube = _open_on_target_grid(
                store,
                grid=grid,
                crs=crs,
                resolution=resolution,
                bbox=bbox,
                bbox_crs=bbox_crs,
                shape=shape,
                align=align,
                resampling=resampling,
                open_group=lambda path: open_group_dataset(
                    store, path, options, mask_and_scale=False
                ),
                mask_and_scale=mask_and_scale,
                coverage=records.groupby is not None,
            )
            return scene(records.apply(cube, store, None, mask_and_scale=mask_and_scale))
        from rasteret.backend.resolve import resolve_group

        path = resolve_group(store, group, overview_level)
        check_open_budget(
            store, [(path, a, None) for a in store.layout.groups[path].arrays.values()]
        )
        ds = open_group_dataset(store, path, options)
        return scene(records.apply(ds, store, path, mask_and_scale=mask_and_scale))

    def open_groups_as_dict(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        bands: str | Sequence[str] | None = None,
        reader: RangeReader | None = None,
        errors: OnFailedAsset = "raise",
        groupby: Any = None,
        fuse: str | None = None,
        with_properties: Any = None,
        **options: Any,
    ) -> dict[str, xr.Dataset]:
        """The root and every group of the store; ``options``: :class:`GroupOptions` fields.
        ``groupby`` / ``fuse`` / ``with_properties`` apply to every group (every grid and
        overview level) as ``open_dataset``'s do to one."""
        from rasteret.backend.record_options import RecordOptions

        records = RecordOptions(groupby, fuse, with_properties)  # checked before any read
        group_options = GroupOptions(**options)
        store = _store(filename_or_obj, bands, reader, errors)
        check_open_budget(
            store,
            [(n, a, None) for n in store.groups for a in store.layout.groups[n].arrays.values()],
        )
        root = xr.Dataset(attrs=_root_attributes(store))
        groups: dict[str, xr.Dataset] = {"/": root}
        scene = _scene(filename_or_obj)
        for name in store.groups:
            ds = open_group_dataset(store, name, group_options)
            ds = records.apply(ds, store, name, mask_and_scale=group_options.mask_and_scale)
            groups[f"/{name}"] = scene(ds)
        return groups

    def open_datatree(  # type: ignore[override]
        self, filename_or_obj: Any, **kwargs: Any
    ) -> xr.DataTree:
        return xr.DataTree.from_dict(self.open_groups_as_dict(filename_or_obj, **kwargs))


@dataclass(frozen=True)
class GroupOptions:
    """How :func:`open_group_dataset` decodes a group (xarray's decoding arguments) and the
    byte size its preferred chunks aim at."""

    drop_variables: str | Iterable[str] | None = None
    mask_and_scale: bool = False
    decode_times: bool = True
    decode_coords: bool | str = True
    use_cftime: bool | None = None
    decode_timedelta: bool | None = None
    concat_characters: bool = True
    chunk_bytes: int = DEFAULT_TARGET_BYTES

    def decoding(self) -> dict[str, Any]:
        """The arguments for xarray's Zarr backend (all but ``chunk_bytes``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "chunk_bytes"}


def open_group_dataset(
    store: TileStore, path: str, options: GroupOptions | None = None, **overrides: Any
) -> xr.Dataset:
    """One group of ``store`` as a lazily loaded Dataset (coordinates in memory).

    ``options`` (default :class:`GroupOptions`) with ``overrides`` (its fields by keyword)
    applied. Variables read through :mod:`rasteret.store.window_read`
    (:mod:`rasteret.backend.variables`); xarray's CF decoding is applied as its own
    backends do."""
    from xarray import conventions

    from rasteret.backend.variables import group_variables

    options = replace(options or GroupOptions(), **overrides)
    layout = store.layout.groups[path]
    raw, attributes = group_variables(
        store, path, layout, options.chunk_bytes, mask_and_scale=options.mask_and_scale
    )
    decoding = options.decoding()
    variables, attributes, coord_names = conventions.decode_cf_variables(
        raw,
        attributes,
        concat_characters=decoding["concat_characters"],
        mask_and_scale=decoding["mask_and_scale"],
        decode_times=decoding["decode_times"],
        decode_coords=decoding["decode_coords"],
        drop_variables=decoding["drop_variables"],
        use_cftime=decoding["use_cftime"],
        decode_timedelta=decoding["decode_timedelta"],
    )
    ds = xr.Dataset(variables, attrs=attributes)
    ds = ds.set_coords(coord_names.intersection(variables))
    ds.attrs["rasteret_group"] = path
    return ds


def _open_on_target_grid(
    store: TileStore,
    *,
    grid: Any,
    open_group: Any,
    resampling: Any,
    mask_and_scale: bool = False,
    coverage: bool = False,
    **grid_parameters: Any,
) -> xr.Dataset:
    from rasteret.backend.target_grid import open_on_grid, source_reads, target_grid
    from rasteret.geo.grid import GridSpec

    if grid is not None:
        if not isinstance(grid, GridSpec):
            raise TypeError(f"grid= must be a rasteret.geo.GridSpec, not {type(grid).__name__}")
        if any(v is not None for k, v in grid_parameters.items() if k != "align"):
            raise ValueError(
                "pass either grid= / geobox= / like= or crs= / resolution= / bbox= / shape=, "
                "not both"
            )
        target = grid
    else:
        target = target_grid(store, **grid_parameters)
    from rasteret.store.budget import current_budget

    if current_budget() is not None:  # planned only then: a warp mapping per array
        check_open_budget(store, source_reads(store, target, resampling))
    return open_on_grid(
        store,
        target,
        resampling=resampling,
        open_group=open_group,
        mask_and_scale=mask_and_scale,
        coverage=coverage,
    )


#: Why the engine checks the read budget when a dataset is opened.
OPEN_BUDGET_NOTE = (
    "the xarray engine checks the read budget against the whole dataset when it is opened "
    "(its reads run later, in dask tasks): open less with bands=, group= / "
    "overview_level=, or a target grid with bbox= / crs= / resolution="
)


def check_open_budget(
    store: TileStore, reads: list[tuple[str, ArrayLayout, Window | None]]
) -> None:
    """Refuse to open, when a read budget is set (:mod:`rasteret.store.budget`), a dataset
    whose every value read would fetch more than the budget: ``reads`` are the ``(group,
    array, window)`` its variables read (``None``: the whole array), masks included.
    Raises :class:`~rasteret.store.budget.ReadBudgetExceeded` naming the plan."""
    from rasteret.store.budget import check_arrays_budget

    check_arrays_budget(store.reader, reads, what="opening the dataset", notes=(OPEN_BUDGET_NOTE,))


def _store(
    filename_or_obj: Any,
    bands: str | Sequence[str] | None,
    reader: RangeReader | None,
    errors: OnFailedAsset = "raise",
) -> TileStore:
    """The tile store to read: a given store's (Zarr or not), else one opened here from
    the collection's records whose selected assets were all indexed (``errors``:
    :mod:`rasteret.index.failed`)."""
    from rasteret.index.failed import check_indexed
    from rasteret.store.api import as_store_collection, build_tiles
    from rasteret.store.tiles import TileStore

    given = getattr(filename_or_obj, "tiles", filename_or_obj)  # a VirtualStore's tiles
    if isinstance(given, TileStore):
        if bands is not None or reader is not None:
            raise ValueError("bands= / reader= cannot be applied to an existing store")
        return given
    if isinstance(filename_or_obj, os.PathLike):
        filename_or_obj = os.fspath(filename_or_obj)
    if looks_like_scene(filename_or_obj):  # its header read once, indexed in memory
        from rasteret.backend.scene import scene_collection
        from rasteret.fetch import default_reader

        reader = reader if reader is not None else default_reader()
        filename_or_obj = scene_collection(filename_or_obj, reader)
    from rasteret.fetch import default_reader
    from rasteret.index.table import CollectionTable

    # a collection object opened again (e.g. one AOI after another) reuses its store: the
    # index check and the tile layout are built once per (bands, reader, errors)
    chosen = reader if reader is not None else default_reader()
    key = (bands if isinstance(bands, str) or bands is None else tuple(bands), chosen, errors)
    cache = (
        filename_or_obj.__dict__.setdefault("_engine_stores", {})
        if isinstance(filename_or_obj, CollectionTable)
        else {}
    )
    found = cache.get(key)
    if found is not None:
        return found
    collection = as_store_collection(filename_or_obj)
    selected = [bands] if isinstance(bands, str) else bands
    collection = check_indexed(collection, selected, errors)
    cache[key] = store = build_tiles(collection, bands, reader=reader)
    return store


def _scene(filename_or_obj: Any) -> Callable[[xr.Dataset], xr.Dataset]:
    """What a dataset of ``filename_or_obj`` becomes: a GeoTIFF's loses its one-record
    ``time`` axis (:func:`~rasteret.backend.scene.as_scene_dataset`), others are kept."""
    if not looks_like_scene(filename_or_obj):
        return lambda ds: ds
    return lambda ds: as_scene_dataset(ds, filename_or_obj)


def _root_attributes(store: TileStore) -> dict[str, Any]:
    return {
        "rasteret_groups": ", ".join(store.groups),
        "rasteret_bands": ", ".join(store.layout.bands),
    }
