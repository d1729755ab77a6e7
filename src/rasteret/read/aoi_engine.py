"""The AOI read engine behind ``get_numpy``, ``read_aoi_windows`` and ``get_xarray``.

:func:`read_aoi` validates the request (filters, bands, geometries, read budget), picks
the read — on each record's own grid (:mod:`rasteret.read.native`), mosaicked per group
(:mod:`rasteret.read.mosaic`) or on one target grid (:mod:`rasteret.read.common_grid`)
— and returns the windows with the fill of invalid pixels; ``apply_scale`` is applied
here. The surfaces only shape the result (a stack, a list, a Dataset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rasteret._progress import ProgressOption
from rasteret.fetch import RangeReader
from rasteret.geo.grid import GridSpec
from rasteret.geo.odc import pick_grid
from rasteret.index import CollectionTable
from rasteret.index.columns import record_ids
from rasteret.index.failed import OnFailedAsset, check_indexed
from rasteret.read.budget import enforce_read_budget
from rasteret.read.fills import band_fills
from rasteret.read.geometry import Geometries, coerce_geometries
from rasteret.read.native import read_native
from rasteret.read.radiometry import apply_scale as scale_values
from rasteret.read.result import AOIWindow, NoDataError
from rasteret.read.selection import apply_filters, band_names, time_ordered_rows
from rasteret.read.stacks import StoreIndex, read_progress

GroupBy = str | Callable[[dict[str, Any]], Any] | None


@dataclass(frozen=True)
class AOIRead:
    """The windows of an AOI read, whether one band was asked for as a string (the
    band axis is dropped), and the value of pixels without data (NaN when scaled)."""

    windows: list[AOIWindow]
    single_band: bool
    fill: Any


def read_aoi(
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
    grid: Any = None,
    target_crs: Any = None,
    resolution: Any = None,
    resampling: str | None = None,
    overviews: bool = True,
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    filters: dict[str, Any] | None = None,
    one_grid: bool = False,
    like: Any = None,
    progress: ProgressOption = None,
) -> AOIRead:
    """The windows of ``bands`` inside ``geometries`` (arguments as
    :func:`rasteret.read.get_numpy`; ``filters`` go to ``collection.subset``).
    ``one_grid``: records overlapping the geometries in several CRSs are reprojected to
    the most common one (:mod:`rasteret.read.common_crs`), so the windows can stack.
    ``grid`` / ``like``: a GridSpec, an odc-geo GeoBox or (``like``) an xarray object
    with a CRS (:func:`rasteret.geo.odc.as_grid`). ``progress``: the read's tiles
    (:func:`rasteret.read.stacks.read_progress`)."""
    grid = pick_grid(grid=grid, like=like)
    collection = apply_filters(collection, filters)
    band_list, single = band_names(collection, bands)
    collection = check_indexed(collection, band_list, errors)
    geoms = coerce_geometries(
        geometries, geometry_crs=geometry_crs, geometry_column=geometry_column, kind="area"
    )
    enforce_read_budget(collection, band_list, geoms.total_bounds(), geoms.crs)
    index = StoreIndex(collection, band_list, reader=reader)
    rows = time_ordered_rows(collection)
    if one_grid and grid is None and target_crs is None and resolution is None:
        from rasteret.read.common_crs import dominant_grid

        found = dominant_grid(index, rows, geoms, band_list)
        if found is not None:  # records in several CRSs: the most common one
            target_crs, resolution = found
    with read_progress(progress):
        windows = _read_windows(
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
            contiguous=one_grid,  # the caller stacks the windows
        )
    if not windows:
        raise NoDataError(no_data_message(collection, index, geoms, band_list))
    fill: Any = windows[0].data.dtype.type(0) if fill_value is None else fill_value
    if apply_scale:
        windows = [scaled(w, index) for w in windows]
        fill = np.nan
    elif fill_value is None:
        fill = band_fills(index, band_list, rows)[0]
    return AOIRead(windows, single, fill)


def _read_windows(
    collection: CollectionTable,
    index: StoreIndex,
    rows: np.ndarray,
    geoms: Geometries,
    band_list: list[str],
    *,
    grid: GridSpec | None,
    target_crs: Any,
    resolution: Any,
    resampling: str | None,
    all_touched: bool,
    groupby: GroupBy,
    fuse: str,
    fill_value: float | None,
    overviews: bool,
    contiguous: bool = False,
) -> list[AOIWindow]:
    """The read :func:`read_aoi` picks: onto a target grid, mosaicked, or native
    (``contiguous``: its windows of one shape are views of one array, in order)."""
    if grid is not None or target_crs is not None or resolution is not None:
        from rasteret.read.common_grid import read_on_grid  # only onto a target grid

        return read_on_grid(
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
            contiguous=contiguous,
        )
    if groupby is not None:
        from rasteret.read.mosaic import read_mosaic  # only with groupby

        return read_mosaic(
            collection, index, rows, geoms, band_list, groupby, fuse, all_touched, fill_value,
            contiguous=contiguous,
        )  # fmt: skip
    return read_native(
        collection, index, rows, geoms, band_list, all_touched, fill_value, contiguous=contiguous
    )


def scaled(window: AOIWindow, index: StoreIndex) -> AOIWindow:
    """``window`` with scale / offset applied per band (float, NaN where invalid)."""
    ids = window.record_ids or (window.record_id,)
    rows = {rid: i for i, rid in enumerate(record_ids(index.collection.table))}
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
    collection: CollectionTable, index: StoreIndex, geoms: Geometries, bands: Sequence[str]
) -> str:
    """Why an AOI read found nothing: the geometries' bounds and CRS, the records' CRSs."""
    crss = sorted({s.crs_key[:40] for s in index.sources()})
    bounds = geoms.total_bounds()
    return (
        f"No valid data found: none of the {len(geoms)} geometries (bounds "
        f"{tuple(round(float(v), 6) for v in bounds)} in {geoms.crs.name!r}) intersects any of "
        f"the {len(collection)} records' bands {list(bands)} (record CRSs: {crss}). Check "
        "geometry_crs= and the collection's bounds."
    )
