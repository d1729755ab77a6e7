"""``get_xarray``: AOI reads as an ``xr.Dataset`` with dims ``(time, geometry, y, x)``.

One data variable per band (native dtype, nodata in ``attrs["nodata"]`` as rioxarray and
odc-stac read it; no CF packing in ``attrs`` or ``encoding``, so ``.rio`` works and
``to_zarr`` round-trips values bit-exactly), plus ``{band}_valid`` (bool) with
``with_mask=True``. All windows lie on one grid — the records' common pixel frame, or
the target grid — and ``y`` / ``x`` span the union of the geometries' windows (pixel
centres, ``y`` descending for north-up). ``time`` has one entry per record (``id``
coordinate along it; equal timestamps are kept apart, never merged) or per mosaic group
with ``groupby`` (``group`` and ``record_ids`` coordinates; for an ISO 8601 period such
as ``"P1M"`` the time is the period's first day). ``with_properties`` adds record
columns as coordinates along ``time`` (:mod:`rasteret.index.properties`; for groups,
those constant within every group). A CF ``spatial_ref`` coordinate carries the CRS and
``GeoTransform``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rasteret._pages import small_pages
from rasteret._progress import ProgressOption
from rasteret.fetch import RangeReader
from rasteret.geo.grid import GridSpec
from rasteret.geo.transform import crs_key
from rasteret.index import CollectionTable
from rasteret.index.columns import record_ids
from rasteret.index.failed import OnFailedAsset
from rasteret.index.grouping import groupby_period
from rasteret.index.properties import group_properties, property_columns, property_values
from rasteret.read.aoi_engine import read_aoi
from rasteret.read.result import AOIWindow, RaggedShapesError, shared_rule, stack_views


@small_pages
def get_xarray(
    collection: CollectionTable,
    geometries: Any,
    bands: str | Sequence[str],
    *,
    geometry_crs: Any = "auto",
    geometry_column: str | None = None,
    all_touched: bool = False,
    groupby: Any = None,
    fuse: str = "first",
    with_mask: bool = True,
    apply_scale: bool = False,
    fill_value: float | None = None,
    grid: Any = None,
    target_crs: Any = None,
    resolution: Any = None,
    resampling: str | None = None,
    overviews: bool = True,
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    with_properties: bool | str | Sequence[str] | None = None,
    like: Any = None,
    progress: ProgressOption = None,
    **filters: Any,
) -> Any:
    """AOI reads of ``bands`` as an ``xr.Dataset`` (see module docs). The options are
    those of :func:`rasteret.read.get_numpy`; ``**filters`` go to ``collection.subset``;
    ``with_properties``: ``True`` (every scalar record column) or column names as
    coordinates along ``time``."""
    import xarray as xr

    found = read_aoi(
        collection,
        geometries,
        bands,
        geometry_crs=geometry_crs,
        geometry_column=geometry_column,
        all_touched=all_touched,
        groupby=groupby if groupby is not None else "id",
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
        filters=filters,
        one_grid=True,
        like=like,
        progress=progress,
    )
    windows, fill = found.windows, found.fill
    union = _union_grid(windows)
    period = groupby_period(collection.table, groupby) if groupby is not None else None
    if period is not None:  # one time step per period, at its first day
        windows = [replace(w, datetime=np.datetime64(w.group, "us")) for w in windows]
    keys = list(dict.fromkeys((w.group, str(w.datetime)) for w in windows))
    gids = sorted({w.geometry_id for w in windows})
    t_of = {k: i for i, k in enumerate(keys)}
    g_of = {g: i for i, g in enumerate(gids)}
    first = windows[0]
    n_bands = len(first.bands)
    shape = (len(keys), len(gids), union.height, union.width)
    cells = [(t_of[(w.group, str(w.datetime))], g_of[w.geometry_id]) for w in windows]
    # every (time, geometry) cell filled by one window of the union's size: nothing of
    # the arrays stays unwritten, so no fill pass over fresh memory first
    covered = len(set(cells)) == len(windows) == len(keys) * len(gids) and all(
        w.grid.shape == union.shape for w in windows
    )
    in_order = (
        covered
        and len({w.data.dtype for w in windows}) == 1
        and cells == [divmod(k, len(gids)) for k in range(len(windows))]
    )
    if in_order:
        # the windows in (time, geometry) order: one array — read whole, then each band
        # is a view of it and nothing is copied, else stacked once — with every pixel
        # and its validity in place
        block = stack_views([w.data for w in windows])
        data5 = block.reshape(len(keys), len(gids), *block.shape[1:])
        rule = shared_rule(windows)
        if rule is not None:  # derived once from the stacked pixels
            valid5 = rule.of(data5, band_axis=2)
        else:
            valid5 = stack_views([w.mask for w in windows]).reshape(data5.shape)
        data = [data5[:, :, c] for c in range(n_bands)]
        valid = [valid5[:, :, c] for c in range(n_bands)]
    else:
        if covered:
            data = [np.empty(shape, dtype=first.data.dtype) for _ in range(n_bands)]
            valid = [np.empty(shape, dtype=bool) for _ in range(n_bands)]
        else:
            data = [
                np.full(shape, _band_fill(windows, c, fill), dtype=first.data.dtype)
                for c in range(n_bands)
            ]
            valid = [np.zeros(shape, dtype=bool) for _ in range(n_bands)]
        a, _, c0, _, e, f0 = union.transform
        for w, (t, g) in zip(windows, cells, strict=True):
            row = round((w.grid.transform[5] - f0) / e)
            col = round((w.grid.transform[2] - c0) / a)
            rows = slice(row, row + w.grid.height)
            cols = slice(col, col + w.grid.width)
            for c in range(n_bands):
                data[c][t, g, rows, cols] = w.data[c]
                valid[c][t, g, rows, cols] = w.mask[c]
    times = np.array([_time_of(windows, k) for k in keys], dtype="datetime64[ns]")
    coords: dict[str, Any] = {
        "time": times,
        "geometry": np.asarray(gids, dtype=np.int64),
        **{k: v for k, v in union.coords.items()},
        "spatial_ref": xr.DataArray(0, attrs=_spatial_ref(union)),
    }
    group_of = {k: w for w in windows for k in [(w.group, str(w.datetime))]}
    if groupby is None:
        coords["id"] = ("time", [group_of[k].record_ids[0] for k in keys])
    else:
        coords["group"] = ("time", [k[0] for k in keys])
        coords["record_ids"] = ("time", [", ".join(group_of[k].record_ids) for k in keys])
    properties, omitted = _properties(collection, windows, keys, coords, groupby, with_properties)
    coords.update(properties)
    variables: dict[str, Any] = {}
    for c, band in enumerate(first.bands):
        var = xr.DataArray(data[c], dims=("time", "geometry", "y", "x"))
        var.attrs["grid_mapping"] = "spatial_ref"
        variables[band] = var
        if with_mask:
            variables[f"{band}_valid"] = xr.DataArray(valid[c], dims=("time", "geometry", "y", "x"))
    ds = xr.Dataset(variables, coords=coords)
    if omitted:
        ds.attrs["rasteret_omitted_coordinates"] = f"{', '.join(omitted)} (differ within a group)"
    for band in first.bands:
        fv = _band_fill(windows, first.bands.index(band), fill)
        ds[band].attrs["nodata"] = fv  # rioxarray / odc-stac; no CF packing (module docs)
    return ds


def _properties(
    collection: CollectionTable,
    windows: Sequence[AOIWindow],
    keys: list[tuple[Any, str]],
    coords: dict[str, Any],
    groupby: Any,
    with_properties: Any,
) -> tuple[dict[str, Any], list[str]]:
    """Record columns as coordinates along ``time``: per record, or per group where they
    are constant in every group (the others named in ``attrs``, see module docs)."""
    table = collection.table
    names = property_columns(table, with_properties)
    clash = [n for n in names if n in coords or n in ("group", "record_ids", "geometry")]
    if clash and with_properties is not True:
        raise ValueError(f"with_properties: {clash} would replace the dataset's own names")
    names = [n for n in names if n not in clash]
    if not names:
        return {}, []
    row_of = {rid: row for row, rid in enumerate(record_ids(table))}
    members: dict[tuple[Any, str], list[int]] = {k: [] for k in keys}
    for w in windows:
        rows = members[(w.group, str(w.datetime))]
        ids = w.record_ids or ((w.record_id,) if w.record_id is not None else ())
        rows += [row_of[i] for i in ids if row_of[i] not in rows]
    if groupby is None:
        values = property_values(table, [members[k][0] for k in keys], names)
        return {name: ("time", v) for name, v in values.items()}, []
    kept, omitted = group_properties(table, [members[k] for k in keys], names)
    return {name: ("time", v) for name, v in kept.items()}, omitted


def _band_fill(windows: Sequence[AOIWindow], c: int, fill: Any) -> Any:
    data = windows[0].data[c]
    outside = ~windows[0].mask[c]
    if outside.any():
        return data[outside].flat[0]
    return fill


def _time_of(windows: Sequence[AOIWindow], key: tuple[Any, str]) -> np.datetime64:
    return next(w.datetime for w in windows if (w.group, str(w.datetime)) == key)


def _union_grid(windows: Sequence[AOIWindow]) -> GridSpec:
    ref = windows[0].grid
    key = crs_key(ref.crs)
    a, _, _, _, e, _ = ref.transform
    lefts, tops, rights, bottoms = [], [], [], []
    for w in windows:
        t = w.grid.transform
        if crs_key(w.grid.crs) != key or not (np.isclose(t[0], a) and np.isclose(t[4], e)):
            raise RaggedShapesError(
                "the windows are not on one grid: pass target_crs= and resolution= "
                "(or grid=GridSpec(...))"
            )
        lefts.append(t[2])
        tops.append(t[5])
        rights.append(t[2] + a * w.grid.width)
        bottoms.append(t[5] + e * w.grid.height)
    left, top = min(lefts), max(tops)
    width = round((max(rights) - left) / a)
    height = round((min(bottoms) - top) / e)
    return GridSpec(ref.crs, (a, 0.0, left, 0.0, e, top), (height, width))


def _spatial_ref(grid: GridSpec) -> dict[str, Any]:
    attrs = dict(grid.crs.to_cf())
    attrs["crs_wkt"] = grid.crs.to_wkt()
    attrs["spatial_ref"] = attrs["crs_wkt"]
    a, b, c, d, e, f = grid.transform
    attrs["GeoTransform"] = f"{c!r} {a!r} {b!r} {f!r} {d!r} {e!r}"
    return attrs
