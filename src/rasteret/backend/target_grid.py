"""Every grid of a store on one target grid: the engine's ``crs=``/``resolution=``/``bbox=``.

Engine-only (``xr.open_dataset(..., engine="rasteret", crs=..., resolution=...)``): it
composes the ``geo`` services (grids, overview choice, the lazy warp) over a store.

Each full-resolution group (one per native grid, e.g. two UTM zones) is read at the
overview level GDAL would choose for the target resolution (:func:`choose_overview`),
warped lazily onto the target :class:`GridSpec`, and the records of all groups are
merged into one ``(time, y, x)`` variable per band, sorted by time then id. A record
that has no pixels of a band reads as that band's nodata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from rasteret._pages import small_pages
from rasteret.backend.variables import TileSteps
from rasteret.backend.warp_maps import WarpMaps
from rasteret.geo.coords import resolution_scale, source_window
from rasteret.geo.grid import Align, GridSpec
from rasteret.geo.lazy import warp
from rasteret.geo.overview import choose_overview
from rasteret.geo.resampling import check_resampling
from rasteret.geo.transform import CRSLike, crs_equal, to_crs, transform_bounds
from rasteret.geo.warp import output_nodata
from rasteret.store.bands import band_stacks
from rasteret.store.metadata import fill_value

if TYPE_CHECKING:
    from rasteret.geo.window import Window
    from rasteret.store.bands import BandStack
    from rasteret.store.layout import ArrayLayout


def group_grid(layout_group: Any) -> GridSpec:
    """The :class:`GridSpec` of a store group's layout."""
    grid = layout_group.grid
    crs = grid.crs_wkt or (f"EPSG:{grid.epsg}" if grid.epsg else None)
    if crs is None or grid.transform is None:
        raise ValueError(
            f"group {layout_group.name!r} has no CRS or transform; it cannot be reprojected"
        )
    return GridSpec(crs, grid.transform, (grid.height, grid.width))


def target_grid(
    store: Any,
    *,
    crs: CRSLike | None = None,
    resolution: float | Sequence[float] | None = None,
    bbox: Sequence[float] | None = None,
    bbox_crs: CRSLike | None = None,
    shape: tuple[int, int] | None = None,
    align: Align = None,
) -> GridSpec:
    """The target grid from the engine's parameters; defaults come from the native grids.

    ``crs`` defaults to the grids' CRS when they share one; ``resolution`` to the finest
    native resolution; ``bbox`` (in ``bbox_crs``, default the target CRS) to the union
    of every grid's bounds. ``shape`` instead of ``resolution`` fixes the pixel count.
    """
    grids = [group_grid(store.layout.groups[name]) for name in store.layout.grid_groups]
    if not grids:
        raise ValueError("the collection has no readable records for the selected bands")
    if crs is None:
        if not all(crs_equal(g.crs, grids[0].crs) for g in grids):
            raise ValueError(
                "the collection's grids are in different CRSs; pass crs= (e.g. crs='EPSG:32633')"
            )
        crs = grids[0].crs
    target_crs = to_crs(crs, what="crs=")
    if bbox is None:
        boxes = [transform_bounds(g.bounds, g.crs, target_crs) for g in grids]
        bbox = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
    elif bbox_crs is not None:
        bbox = transform_bounds(tuple(bbox), bbox_crs, target_crs)
    if shape is not None:
        return GridSpec.from_shape(tuple(bbox), target_crs, shape)
    if resolution is None:
        same = [g for g in grids if crs_equal(g.crs, target_crs)] or grids
        resolution = min(min(g.resolution) for g in same)
    return GridSpec.from_bbox(tuple(bbox), target_crs, resolution, align=align)


def band_resampling(band: str, resampling: str | Mapping[str, str] | None) -> str:
    """The resampling of ``band``: a mapping's entry (``"*"``: the others), else
    ``resampling`` (default ``nearest``). Exactly what is asked, whatever the band's name:
    pass ``{"SCL": "mode", "*": "bilinear"}`` to resample class bands differently."""
    if isinstance(resampling, Mapping):
        if band in resampling:
            return check_resampling(resampling[band])
        resampling = resampling.get("*")
    return check_resampling(resampling or "nearest")


def source_reads(
    store: Any, target: GridSpec, resampling: str | Mapping[str, str] | None = None
) -> list[tuple[str, ArrayLayout, Window]]:
    """What :func:`open_on_grid` reads when all of it is computed: per native grid, the
    level it reads and, per data (or internal mask) array there, the source window under
    ``target`` (``(group, array, window)``, for the read budget)."""
    layout = store.layout
    reads = []
    for name in layout.grid_groups:
        path, grid = _level_for(layout, name, group_grid(layout.groups[name]), target, resampling)
        for array in layout.groups[path].arrays.values():
            method = band_resampling(array.band, resampling)
            window = source_window(grid, target, resampling=method)
            if window is not None:
                reads.append((path, array, window))
    return reads


def open_on_grid(
    store: Any,
    target: GridSpec,
    *,
    resampling: str | Mapping[str, str] | None = None,
    open_group: Any,
    chunks: int | tuple[int, int] | None = None,
    mask_and_scale: bool = False,
    coverage: bool = False,
) -> xr.Dataset:
    """All groups of ``store`` warped onto ``target`` as one lazy ``(time, y, x)`` Dataset.

    ``open_group(path) -> xr.Dataset`` opens one store group lazily (the backend's
    ``open_group_dataset``). Variables keep their native dtype and nodata
    (``attrs["nodata"]``), or with ``mask_and_scale`` are float with each record's nodata as
    NaN and its scale / offset applied (:func:`mask_and_scale_records`);
    ``attrs["rasteret_sources"]`` says which group / overview level each native grid was
    read from. ``coverage``: also ``{band}_coverage`` (uint8, 1 where a record's grid
    covers the target pixel) for each band with records that declare no nodata — what
    tells their pixels outside their grid from data (the composites use it).
    """
    layout = store.layout
    pieces: dict[str, list[_Piece]] = {}
    covers: dict[str, list[xr.DataArray]] = {}
    fills: dict[str, Any] = {}
    records: dict[str, np.datetime64] = {}
    sources: list[str] = []
    for name in layout.grid_groups:
        group = layout.groups[name]
        full = group_grid(group)
        path, grid = _level_for(layout, name, full, target, resampling)
        sources.append(f"{name} -> {path}")
        for record_id, when in zip(group.ids, group.times, strict=True):
            records.setdefault(record_id, when)
        if source_window(grid, target) is None:
            continue  # this grid does not reach the target: nothing to read
        ds = open_group(path)
        stacks = band_stacks(layout.groups[path], path)
        internal = {s.band: s for s in stacks.values() if s.kind == "mask"}
        for stack in stacks.values():
            if stack.kind != "data" or stack.name not in ds:
                continue
            # one piece per array of the band: each read with its records' own nodata
            for member, array in enumerate(stack.arrays):
                steps = [t for t, m in enumerate(stack.member_of) if m == member]
                if not steps:
                    continue
                variable = ds[stack.name].isel(time=steps)  # lazy: coordinates, attributes
                own_fill, note = fill_value(array.nodata, np.dtype(array.dtype))
                fill = own_fill if note is None else None
                fills.setdefault(stack.band, fill)
                method = band_resampling(stack.band, resampling)
                coords = {k: v.variable for k, v in variable.coords.items() if v.dims == ("time",)}
                kept = {
                    k: v for k, v in variable.attrs.items() if k not in ("missing_value", "nodata")
                }
                masks = _mask_paths(internal.get(stack.band), steps)
                piece = _Piece(
                    f"{path}/{array.name}", grid, method, fill, str(array.dtype), steps, coords,
                    kept, masks if any(m is not None for m in masks) else (),
                )  # fmt: skip
                pieces.setdefault(stack.band, []).append(piece)
                if coverage and fill is None:  # no nodata: which pixels the record covers
                    source = TileSteps(store, piece.path, array, steps)
                    covered = warp(
                        Coverage(source.shape),
                        target,
                        source_grid=grid,
                        resampling=method,
                        nodata=0,
                        chunks=chunks,
                        dims=("time", "y", "x"),
                    )
                    covers.setdefault(stack.band, []).append(
                        covered.assign_coords({k: coords[k] for k in ("time", "id")})
                    )
    order = sorted(records, key=lambda rid: (records[rid], rid))
    maps = WarpMaps()  # the bands' index maps, computed once for all of them
    variables = {
        band: _band_on_grid(
            store,
            target,
            parts,
            order,
            fills[band],
            lazy=not coverage,
            decoded=mask_and_scale,
            maps=maps,
        )
        for band, parts in pieces.items()
    }
    if mask_and_scale:  # applied: no band keeps radiometry coordinates
        radiometry = [
            f"{b}_{k}" for b in variables for k in ("nodata", "scale_factor", "add_offset")
        ]
        variables = {
            band: mask_and_scale_records(_as_dask(v), band).drop_vars(radiometry, errors="ignore")
            for band, v in variables.items()
        }
    for band, parts in covers.items():
        variables[f"{band}_coverage"] = _merge(parts, order, 0)
    times = np.array([records[rid] for rid in order], dtype="datetime64[ns]")
    ds = xr.Dataset(variables)
    ds = ds.assign_coords(time=("time", times), id=("time", np.asarray(order, dtype=str)))
    ds.attrs["rasteret_target_grid"] = repr(target)
    ds.attrs["rasteret_sources"] = "; ".join(sources)
    return ds


def _mask_paths(mask: BandStack | None, steps: list[int]) -> tuple[str | None, ...]:
    """Per time step: the store path of the band's internal mask array (``None``: the
    record has none)."""
    if mask is None:
        return (None,) * len(steps)
    return tuple(mask.paths[m] if (m := mask.member_of[t]) >= 0 else None for t in steps)


class Coverage:
    """A lazy ``(time, y, x)`` array of ones (uint8) of ``shape``: warped like a band, it
    says which target pixels a record's grid covers. Reads nothing."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(np.uint8)
        self.ndim = len(self.shape)

    @small_pages
    def __getitem__(self, key: tuple[Any, ...]) -> np.ndarray:
        shape = [
            len(range(*k.indices(n)))
            for k, n in zip(key, self.shape, strict=False)
            if isinstance(k, slice)
        ]
        return np.ones(shape, dtype=self.dtype)

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("rasteret.Coverage", self.shape)


@dataclass(frozen=True)
class _Piece:
    """One store array's records of a band, before they are placed on the record order."""

    path: str
    grid: GridSpec
    resampling: str
    nodata: float | None
    dtype: str
    steps: list[int]
    coords: dict[str, xr.Variable]  # along ``time``
    attrs: dict[str, Any]
    masks: tuple[str | None, ...] = ()  # per step: its internal mask array (empty: none)


def _band_on_grid(
    store: Any,
    target: GridSpec,
    parts: list[_Piece],
    order: list[str],
    fill: Any,
    *,
    lazy: bool,
    decoded: bool = False,
    maps: WarpMaps | None = None,
) -> xr.DataArray:
    """One band on ``target`` in record ``order``: a :class:`GridBandArray` (``lazy``; xarray
    chunks it) or a dask array of it, with the pieces' time coordinates merged (a record
    missing from every piece gets ``fill`` there too). ``decoded`` (``mask_and_scale``):
    read as float, a pixel without data (outside a record's grid, masked, no record)
    NaN unless its record declares a nodata (that value, made NaN by
    :func:`mask_and_scale_records` with the record's scale and offset)."""
    from xarray.core import indexing

    from rasteret.backend.grid_array import GridBandArray, GridMember, grid_chunks
    from rasteret.geo.lazy import spatial_coordinates

    dtype = np.result_type(*(np.dtype(p.dtype) for p in parts))
    if decoded:
        dtype = np.dtype(np.float32 if dtype.itemsize <= 2 or dtype == np.float32 else np.float64)
        fill = np.nan
    if fill is None:
        fill = np.nan if dtype.kind == "f" else 0
    fill = np.asarray(fill).astype(dtype).item()
    coords, index = _merged_coords([p.coords for p in parts], order, fill)
    located: list[list[int]] = [[] for _ in parts]
    bounds = np.cumsum([0] + [len(p.steps) for p in parts])
    for t, at in enumerate(index.tolist()):
        if at >= 0:
            k = int(np.searchsorted(bounds, at, side="right")) - 1
            located[k].append(t)
    members = []
    for k, p in enumerate(parts):
        at = [int(index[t]) - int(bounds[k]) for t in located[k]]
        masks = tuple(p.masks[a] for a in at) if p.masks else ()
        members.append(
            GridMember(
                p.path, p.grid, p.resampling, p.nodata, p.dtype, tuple(p.steps[a] for a in at),
                tuple(located[k]), masks,
            )
        )  # fmt: skip
    array = GridBandArray(store, target, members, len(order), dtype, fill, maps)
    attrs = {k: v for k, v in parts[0].attrs.items() if k != "_FillValue"}
    own = [output_nodata(dtype, p.nodata, p.nodata) for p in parts]
    first = np.asarray(own[0]).astype(dtype).item()
    if not (isinstance(own[0], float) and math.isnan(own[0]) and dtype.kind not in "fc"):
        attrs["nodata"] = first
    if len({_key(v) for v in own}) > 1:
        attrs.pop("nodata", None)  # per record: the ``{band}_nodata`` coordinate
    attrs["grid_mapping"] = "spatial_ref"
    attrs["resampling"] = parts[0].resampling
    encoding = {"preferred_chunks": grid_chunks(target, len(order), dtype)}
    variable = xr.Variable(("time", "y", "x"), indexing.LazilyIndexedArray(array), attrs, encoding)
    out = xr.DataArray(variable, coords={**coords, **spatial_coordinates(target)})
    out.encoding = dict(encoding)  # not kept from the Variable when coords are given
    return out if lazy else _as_dask(out)


def _as_dask(variable: xr.DataArray) -> xr.DataArray:
    """``variable`` as a dask array in its preferred chunks (a no-op when it is one)."""
    preferred = variable.encoding.get("preferred_chunks")
    if preferred is None or variable.chunks is not None:  # ``.data`` would load it
        return variable
    return variable.chunk(preferred)


def _merged_coords(
    coords: list[dict[str, xr.Variable]], order: list[str], fill: Any
) -> tuple[dict[str, xr.Variable], np.ndarray]:
    """The pieces' time coordinates (each piece's include ``id``) placed on the record
    ``order`` (``fill`` where a record is in no piece; ``time`` and ``id`` are the
    caller's), and each record's position in the pieces' concatenation (``-1``: none)."""
    ids = np.concatenate([np.asarray(c["id"].values).astype(str) for c in coords])
    first: dict[str, int] = {}
    for k, record_id in enumerate(ids.tolist()):
        first.setdefault(record_id, k)
    index = np.fromiter((first.get(r, -1) for r in order), np.int64, len(order))
    missing = index < 0
    merged: dict[str, xr.Variable] = {}
    names = dict.fromkeys(n for c in coords for n in c if n not in ("id", "time"))
    for name in names:
        template = next(c[name] for c in coords if name in c)
        parts = [
            np.asarray(c[name].values) if name in c else np.full(len(c["id"]), fill) for c in coords
        ]
        values = np.concatenate(parts)[np.where(missing, 0, index)]
        if missing.any():
            try:
                values = values.astype(np.result_type(values.dtype, type(fill)), copy=False)
            except TypeError:  # text / object values: a fill of another kind
                values = values.astype(object)
            values[missing] = fill
        merged[name] = xr.Variable("time", values, attrs=template.attrs)
    return merged, index


def _level_for(layout, name, full: GridSpec, target: GridSpec, resampling) -> tuple[str, GridSpec]:
    """The group (full or overview) to read for ``target``, and its grid."""
    xs, ys = resolution_scale(full, target)
    desired = 1.0 / max(xs, ys)  # source pixels per target pixel on the least reduced axis
    overviews = sorted(
        (g.overview, path)
        for path, g in layout.groups.items()
        if g.parent == name and g.overview is not None
    )
    if not overviews or desired <= 1.0:
        return name, full
    factors = [full.width / layout.groups[path].grid.width for _, path in overviews]
    kinds = {band_resampling(a.band, resampling) for a in layout.groups[name].arrays.values()}
    rule = "nearest" if kinds == {"nearest"} else "average"
    level = choose_overview(1.0, factors, desired, resampling=rule)
    if level is None:
        return name, full
    path = overviews[level][1]
    return path, group_grid(layout.groups[path])


def _merge(parts: list[xr.DataArray], order: list[str], fill: Any) -> xr.DataArray:
    """Concatenate lazily warped per-grid pieces (dask) along time and place them on the
    record order without copying: the time axis in chunks of one record, each referring
    to its piece's chunk, a fill chunk for a record in no piece."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    dtype = np.result_type(*(p.dtype for p in parts))
    fill = np.asarray(fill).astype(dtype).item()
    coords, index = _merged_coords(
        [{k: v.variable for k, v in p.coords.items() if v.dims == ("time",)} for p in parts],
        order,
        fill,
    )
    source = da.concatenate(
        [p.data.astype(dtype, copy=False).rechunk({0: 1}) for p in parts], axis=0
    )
    _, row_chunks, col_chunks = source.chunks
    name = "rasteret-merge-" + tokenize(source.name, index, fill, str(dtype))
    dsk: dict[Any, Any] = {}
    for t, at in enumerate(index.tolist()):
        for i, rows in enumerate(row_chunks):
            for j, cols in enumerate(col_chunks):
                if at >= 0:
                    dsk[(name, t, i, j)] = (source.name, at, i, j)  # an alias: no task
                else:
                    dsk[(name, t, i, j)] = (np.full, (1, rows, cols), fill, dtype)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[source])
    data = da.Array(graph, name, ((1,) * len(index), row_chunks, col_chunks), dtype=dtype)
    first = parts[0]
    coords |= {k: v.variable for k, v in first.coords.items() if "time" not in v.dims}
    out = xr.DataArray(data, dims=("time", *first.dims[1:]), coords=coords)
    out.attrs = dict(first.attrs)
    return out


def _key(value: Any) -> Any:
    return "nan" if isinstance(value, float) and value != value else value


def mask_and_scale_records(variable: xr.DataArray, band: str) -> xr.DataArray:
    """``variable`` (raw, merged on the target grid) with each record's nodata as NaN and
    its scale / offset applied — from the ``{band}_nodata`` / ``{band}_scale_factor`` /
    ``{band}_add_offset`` coordinates along ``time``, else the ``nodata`` attribute."""
    coords = variable.coords
    nodata = coords.get(f"{band}_nodata")
    if nodata is None and variable.attrs.get("nodata") is not None:
        nodata = variable.attrs["nodata"]
    scale = coords.get(f"{band}_scale_factor")
    offset = coords.get(f"{band}_add_offset")
    if nodata is None and scale is None and offset is None:
        return variable
    dtype = (
        np.float32 if variable.dtype.itemsize <= 2 or variable.dtype == np.float32 else np.float64
    )
    values = variable.astype(dtype)
    if scale is not None:
        values = values * scale.fillna(1.0).astype(dtype)
    if offset is not None:
        values = values + offset.fillna(0.0).astype(dtype)
    if nodata is not None:
        invalid = variable == nodata
        if isinstance(nodata, float) and nodata != nodata:
            invalid = variable.isnull()
        values = values.where(~invalid)
    drop = (f"{band}_nodata", f"{band}_scale_factor", f"{band}_add_offset")
    values = values.drop_vars(drop, errors="ignore")
    values.attrs = {k: v for k, v in variable.attrs.items() if k != "nodata"}
    return values
