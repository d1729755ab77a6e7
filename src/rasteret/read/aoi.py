"""AOI reads: ``get_numpy`` / ``get_xarray`` / ``read_aoi_windows`` through the virtual store.

On the native grid a window equals ``rasterio.mask.mask(src, [geometry], crop=True)``:
the window is rasterio's ``geometry_window`` (floor / ceil of the geometry bounds in
pixel space, cut to the raster), pixels outside the geometry (GDAL's rasterisation
rule, ``all_touched`` as rasterio) or invalid (nodata, internal mask) are filled with
``fill_value`` (default: the band's nodata, else 0). Results carry their identity and
a valid-data mask (:class:`~rasteret.read.result.AOIStack`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely

from rasteret.geo.grid import GridSpec
from rasteret.index import Collection
from rasteret.read.budget import enforce_read_budget
from rasteret.read.geometry import Geometries, coerce_geometries
from rasteret.read.members import MemberRead, read_members, source_grid
from rasteret.read.plan import PixelWindow, geometry_mask, geometry_windows, window_grid
from rasteret.read.radiometry import apply_scale as scale_values
from rasteret.read.radiometry import fill_value_for
from rasteret.read.result import AOIStack, AOIWindow, NoDataError, stack_windows
from rasteret.read.stacks import BandSource, StoreIndex
from rasteret.store.records import record_order

GroupBy = str | Callable[[dict[str, Any]], Any] | None


def get_numpy(
    collection: Collection,
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
    grid: GridSpec | None = None,
    target_crs: Any = None,
    resolution: Any = None,
    resampling: str | None = None,
    overviews: bool = True,
    **filters: Any,
) -> AOIStack:
    """Pixels of ``bands`` inside ``geometries`` for every record, stacked with identity.

    Returns an :class:`AOIStack`: ``data`` ``[N, H, W]`` (one band) or ``[N, C, H, W]``;
    ``N`` = (record, geometry) pairs that overlap, in record time order (datetime, id),
    then geometry order — ``.records`` says which is which; ``.mask`` marks valid pixels.
    Windows of different shapes or CRSs raise :class:`RaggedShapesError` saying what to
    pass. ``groupby`` mosaics records per group (see :mod:`rasteret.read.mosaic`),
    ``apply_scale`` returns ``value * scale + offset`` as float with NaN for invalid
    pixels; ``**filters`` go to ``collection.subset``. On a target grid (``grid=`` or
    ``target_crs=`` / ``resolution=``) coarser than the data, the overview GDAL would
    choose is read (``overviews=False``: always full resolution).
    """
    windows, single, fill = _read(
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
        filters=filters,
    )
    return stack_windows(windows, single_band=single, with_mask=with_mask, fill_value=fill)


def read_aoi_windows(
    collection: Collection, geometries: Any, bands: str | Sequence[str], **kwargs: Any
) -> list[AOIWindow]:
    """Like :func:`get_numpy` but one :class:`AOIWindow` per (record, geometry), unstacked
    (windows may differ in shape and CRS)."""
    filters = pop_filters(kwargs)
    windows, _, _ = _read(collection, geometries, bands, filters=filters, **kwargs)
    return windows


def pop_filters(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove the ``collection.subset`` filters from ``kwargs`` and return them."""
    return {k: kwargs.pop(k) for k in list(kwargs) if k in _SUBSET_KEYS}


#: Options of the original API accepted and ignored (the fetch layer owns I/O settings).
LEGACY_OPTIONS = frozenset(
    {"max_concurrent", "progress", "cloud_config", "data_source", "backend", "xr_combine"}
)
_SUBSET_KEYS = ("cloud_cover_lt", "date_range", "bbox", "split", "split_column")


def _read(
    collection: Collection,
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
    filters: dict[str, Any] | None = None,
) -> tuple[list[AOIWindow], bool, Any]:
    collection = filtered(collection, filters)
    band_list, single = band_names(collection, bands)
    geoms = coerce_geometries(
        geometries, geometry_crs=geometry_crs, geometry_column=geometry_column, kind="area"
    )
    enforce_read_budget(
        collection, band_list, tuple(shapely.total_bounds(geoms.geometries)), geoms.crs
    )
    index = StoreIndex(collection, band_list)
    rows = time_ordered_rows(collection)
    if grid is not None or target_crs is not None or resolution is not None:
        from rasteret.read.common_grid import read_on_grid

        windows = read_on_grid(
            collection,
            index,
            rows,
            geoms,
            band_list,
            grid=grid,
            target_crs=target_crs,
            resolution=resolution,
            resampling=resampling,
            all_touched=all_touched,
            groupby=groupby,
            fuse=fuse,
            fill_value=fill_value,
            overviews=overviews,
        )
    elif groupby is not None:
        from rasteret.read.mosaic import read_mosaic

        windows = read_mosaic(
            collection, index, rows, geoms, band_list, groupby, fuse, all_touched, fill_value
        )
    else:
        windows = read_native(collection, index, rows, geoms, band_list, all_touched, fill_value)
    if not windows:
        raise NoDataError(no_data_message(collection, index, geoms, band_list))
    fill: Any = windows[0].data.dtype.type(0) if fill_value is None else fill_value
    if apply_scale:
        windows = [scaled(w, index) for w in windows]
        fill = np.nan
    elif fill_value is None:
        fill = _fills(index, band_list, rows)[0]
    return windows, single, fill


# ----------------------------------------------------------------------------- native


def read_native(
    collection: Collection,
    index: StoreIndex,
    rows: np.ndarray,
    geoms: Geometries,
    bands: Sequence[str],
    all_touched: bool,
    fill_value: float | None,
) -> list[AOIWindow]:
    """One window per (record, geometry) on the record's own grid (rasterio semantics)."""
    ids = collection.table["id"].cast("string").to_pylist()
    times = collection.datetimes
    fills = _fills(index, bands, rows, fill_value)
    pending: list[tuple[int, int, GridSpec, MemberRead]] = []
    cache: dict[tuple[Any, ...], list[PixelWindow | None]] = {}
    for row in rows:
        sources = tuple(index.source(b, int(row)) for b in bands)
        ref = _reference_source(sources, bands, ids[row])
        if ref is None:
            continue
        key = (ref.crs_key, ref.transform, ref.height, ref.width)
        windows = cache.get(key)
        if windows is None:
            local = geoms.to_crs(index.crs(ref))
            windows = cache[key] = geometry_windows(local, ref.transform, (ref.height, ref.width))
        grid = source_grid(ref)
        for gid, window in enumerate(windows):
            if window is not None:
                pending.append(
                    (int(row), gid, window_grid(grid, window), MemberRead(sources, window))
                )
    results = read_members(index, [p[3] for p in pending], fills)
    masks: dict[tuple[Any, ...], np.ndarray] = {}
    out: list[AOIWindow] = []
    for (row, gid, wgrid, _), (data, valid) in zip(pending, results, strict=True):
        mask_key = (wgrid, gid)
        inside = masks.get(mask_key)
        if inside is None:
            local = geoms.to_crs(wgrid.crs)[gid]
            inside = masks[mask_key] = geometry_mask(local, wgrid, all_touched=all_touched)
        valid &= inside
        for c in range(len(bands)):
            data[c][~inside] = fills[c]
        out.append(
            AOIWindow(ids[row], times[row], int(geoms.ids[gid]), wgrid, tuple(bands), data, valid)
        )
    return out


def _reference_source(
    sources: Sequence[BandSource | None], bands: Sequence[str], record_id: str
) -> BandSource | None:
    present = [s for s in sources if s is not None]
    if not present:
        return None
    ref = present[0]
    for src in present[1:]:
        if (src.crs_key, src.transform, src.height, src.width) != (
            ref.crs_key,
            ref.transform,
            ref.height,
            ref.width,
        ):
            raise ValueError(
                f"record {record_id!r}: bands {ref.band!r} ({ref.width}x{ref.height} px) and "
                f"{src.band!r} ({src.width}x{src.height} px) are on different grids; read them "
                "in separate calls or pass resolution= / grid= to put them on one grid"
            )
    return ref


# ----------------------------------------------------------------------------- helpers


def filtered(collection: Collection, filters: dict[str, Any] | None) -> Collection:
    if not isinstance(collection, Collection):
        from rasteret.store.api import as_store_collection

        collection = as_store_collection(collection)
    active = {k: v for k, v in (filters or {}).items() if v is not None and k not in LEGACY_OPTIONS}
    return collection.subset(**active) if active else collection


def band_names(collection: Collection, bands: str | Sequence[str]) -> tuple[list[str], bool]:
    """Requested bands as a list (validated) and whether the output drops the band axis."""
    if bands is None:
        raise ValueError(f"pass bands= (available bands: {collection.bands})")
    wanted = [bands] if isinstance(bands, str) else list(bands)
    if not wanted:
        raise ValueError(f"bands is empty (available bands: {collection.bands})")
    collection._check_bands(wanted)
    return wanted, len(wanted) == 1


def time_ordered_rows(collection: Collection) -> np.ndarray:
    order, _, _ = record_order(collection.table)
    return order


def _fills(
    index: StoreIndex, bands: Sequence[str], rows: np.ndarray, fill_value: float | None = None
) -> list[float | int]:
    fills: list[float | int] = []
    for band in bands:
        src = next((index.source(band, int(r)) for r in rows if index.source(band, int(r))), None)
        if src is None:
            fills.append(0 if fill_value is None else fill_value)
        else:
            fills.append(fill_value_for(src.dtype, src.nodata, fill_value))
    return fills


def scaled(window: AOIWindow, index: StoreIndex) -> AOIWindow:
    """``window`` with scale / offset applied per band (float, NaN where invalid)."""
    ids = window.record_ids or (window.record_id,)
    rows = {rid: i for i, rid in enumerate(index.collection.table["id"].cast("string").to_pylist())}
    planes = []
    for c, band in enumerate(window.bands):
        src = next(
            (index.source(band, rows[r]) for r in ids if r in rows and index.source(band, rows[r])),
            None,
        )
        scale = None if src is None else src.scale
        offset = None if src is None else src.offset
        planes.append(scale_values(window.data[c], window.mask[c], scale, offset))
    data = np.stack(planes)
    return AOIWindow(
        window.record_id,
        window.datetime,
        window.geometry_id,
        window.grid,
        window.bands,
        data,
        window.mask,
        window.group,
        window.record_ids,
    )


def no_data_message(
    collection: Collection, index: StoreIndex, geoms: Geometries, bands: Sequence[str]
) -> str:
    crss = sorted({s.crs_key[:40] for s in index._sources.values()})
    bounds = shapely.total_bounds(geoms.geometries)
    return (
        f"No valid data found: none of the {len(geoms)} geometries (bounds "
        f"{tuple(round(float(v), 6) for v in bounds)} in {geoms.crs.name!r}) intersects any of "
        f"the {len(collection)} records' bands {list(bands)} (record CRSs: {crss}). Check "
        "geometry_crs= and the collection's bounds."
    )
