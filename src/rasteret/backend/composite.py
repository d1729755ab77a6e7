"""Composites and record properties in the xarray engine: ``groupby=``, ``fuse=``,
``with_properties=``.

``groupby`` groups the records of the ``(time, y, x)`` cube exactly as the AOI mosaics
do (:mod:`rasteret.index.grouping`: ``"solar_day"``, ``"time"``, a column, a callable,
or an ISO 8601 calendar period such as ``"P1M"``), and ``fuse`` reduces each group per
pixel onto one time step (:mod:`rasteret.geo.composite`: ``first`` — the default, a
mosaic —, ``last``, ``min``, ``max`` in the band's dtype; ``mean``, ``median`` in
float64). A pixel counts only where its record has it: not nodata, not NaN, inside
the record's internal mask (native grids) and inside the record's grid (target
grids: for bands without nodata a warped coverage mask says which pixels a record
covers). Where no member is valid, native-dtype results hold the band's nodata (the
members of a group must agree on it, else :class:`CompositeError`) and float results
NaN.

The time coordinate is the period's first day for periods, else the group's first
record's datetime; ``group`` (the key) and ``record_ids`` (``", "``-joined) replace
``id``. Other coordinates along ``time`` (``{band}_scale_factor``... and the
properties) are kept where they are constant within every group, else left out and
named in ``attrs["rasteret_omitted_coordinates"]``; raw values of records whose scale
or offset differ are never fused (:class:`CompositeError`: open with
``mask_and_scale=True``).

Lazy: a native group's composite is a lazily indexed backend array (``chunks={}``:
dask chunks of whole tiles, as the engine's other variables) whose read of a time step
reads only its members' windows; a target-grid composite is a dask reduction over the
warped cube, so it reads exactly the tiles the cube reads.

``with_properties`` (:mod:`rasteret.index.properties`) adds record columns as
coordinates along ``time``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from rasteret._pages import small_pages
from rasteret.errors import RasteretError
from rasteret.geo.composite import FLOAT_FUSERS, fuse_stack, fused_dtype
from rasteret.index.columns import datetimes, record_ids
from rasteret.index.grouping import group_keys, groupby_period, ordered_groups
from rasteret.index.properties import (
    group_properties,
    property_columns,
    property_values,
)
from rasteret.store.bands import band_stacks

if TYPE_CHECKING:
    from rasteret.backend.record_options import RecordOptions
    from rasteret.store.bands import BandStack
    from rasteret.store.tiles import TileStore

#: The attribute naming coordinates a composite left out (they differ within a group).
OMITTED = "rasteret_omitted_coordinates"
#: CF packing in ``encoding`` that a float composite must not be written back with.
_PACKING = ("dtype", "_FillValue", "missing_value", "scale_factor", "add_offset", "_Unsigned")


class CompositeError(RasteretError, ValueError):
    """A band's records cannot be fused as asked (the band, the group and the cause)."""

    def __init__(self, band: str, group: str, cause: str) -> None:
        self.band, self.group, self.cause = band, group, cause
        super().__init__(f"cannot fuse band {band!r} in group {group!r}: {cause}")


def apply_records(
    options: RecordOptions,
    ds: xr.Dataset,
    store: TileStore,
    group: str | None,
    *,
    mask_and_scale: bool,
) -> xr.Dataset:
    """``ds`` (a native ``group``, or the target-grid cube when ``group`` is ``None``)
    with its records composited and / or their properties as coordinates, as
    ``options`` ask (at least one of ``groupby`` / ``with_properties``)."""
    table = store.source.collection.table
    rows = _cube_rows(ds, store, group)
    names = _free_names(
        ds, property_columns(table, options.with_properties), options.with_properties is True
    )
    if options.groupby is None:
        values = property_values(table, rows, names)
        return ds.assign_coords({k: ("time", v) for k, v in values.items()})
    groups = plan_groups(store, rows, options.groupby)
    steps = _step_validity(ds, store, group, mask_and_scale)
    out = _composite(ds, store, group, groups, steps, options.fuser, mask_and_scale)
    if names:
        kept, omitted = group_properties(table, groups.rows, names)
        out = out.assign_coords({k: ("time", v) for k, v in kept.items()})
        _note_omitted(out, omitted)
    out.attrs["rasteret_groupby"] = getattr(options.groupby, "__name__", str(options.groupby))
    out.attrs["rasteret_fuse"] = options.fuser
    return out


@dataclass(frozen=True)
class Groups:
    """The cube's time steps in groups: ``members`` (time steps, in fuse order), their
    table ``rows``, each group's ``key`` and its time label (``times``)."""

    keys: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]
    rows: tuple[tuple[int, ...], ...]
    times: np.ndarray  # datetime64[ns] per group

    def __len__(self) -> int:
        return len(self.keys)


def plan_groups(store: TileStore, rows: np.ndarray, groupby: Any) -> Groups:
    """Group the cube's time steps (their table ``rows``) by ``groupby``; groups in
    first-member order, members in cube (datetime, id) order."""
    collection = store.source.collection
    times = datetimes(collection.table["datetime"])[rows] if len(rows) else rows
    keys = group_keys(collection, rows, groupby) if len(rows) else []
    grouped = ordered_groups(keys, np.arange(len(rows)))
    period = groupby_period(collection.table, groupby)
    labels = [
        np.datetime64(key, "ns") if period is not None else times[steps[0]]
        for key, steps in grouped
    ]
    return Groups(
        keys=tuple(key for key, _ in grouped),
        members=tuple(tuple(steps) for _, steps in grouped),
        rows=tuple(tuple(int(rows[s]) for s in steps) for _, steps in grouped),
        times=np.asarray(labels, dtype="datetime64[ns]"),
    )


@dataclass(frozen=True)
class StepValidity:
    """Which pixels of each time step count: the record has the band (``present``), the
    pixel is not its ``nodata`` (raw values) or NaN, and — for steps ``covered`` by a
    coverage mask — inside the record's grid."""

    present: tuple[bool, ...]
    nodata: tuple[float | None, ...]
    decoded: bool  # values are float with nodata as NaN (mask_and_scale=True)

    def covered(self, step: int) -> bool:
        """Whether ``step`` needs a coverage mask (present, but no nodata to tell)."""
        return self.present[step] and self.nodata[step] is None

    def valid(self, values: np.ndarray, steps: Sequence[int]) -> np.ndarray:
        """Validity of ``values`` ``[len(steps), ...]`` (time steps ``steps``)."""
        ok = np.ones(values.shape, dtype=bool)
        for k, step in enumerate(steps):
            if not self.present[step]:
                ok[k] = False
                continue
            if values.dtype.kind in "fc":
                ok[k] = ~np.isnan(values[k])
            nodata = self.nodata[step]
            if not self.decoded and nodata is not None and not math.isnan(nodata):
                ok[k] &= values[k] != nodata
        return ok


@dataclass(frozen=True)
class InternalMask:
    """A band's internal-mask variable in a native group, and which time steps have one."""

    variable: xr.Variable
    present: tuple[bool, ...]


class CompositeArray(BackendArray):
    """A native group's band fused per group ``(groups, y, x)``: indexing reads the
    member time steps of the selected groups (contiguous runs in one read each)."""

    def __init__(
        self,
        source: xr.Variable,
        mask: InternalMask | None,
        groups: Groups,
        steps: StepValidity,
        fuse: str,
        fills: Sequence[Any],
    ) -> None:
        self.source, self.mask, self.members = source, mask, groups.members
        self.steps, self.fuse, self.fills = steps, fuse, tuple(fills)
        self.shape = (len(groups), *source.shape[1:])
        self.dtype = fused_dtype(source.dtype, fuse)

    @small_pages
    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        t_key = key[0]
        picked = list(range(self.shape[0]))
        picked = picked[t_key] if isinstance(t_key, slice) else [picked[int(t_key)]]
        space = tuple(k if isinstance(k, slice) else slice(int(k), int(k) + 1) for k in key[1:])
        needed = sorted({s for g in picked for s in self.members[g]})
        values, position = _read_runs(self.source, needed, space)
        inside = _read_runs(self.mask.variable, needed, space)[0] if self.mask else None
        out = np.empty((len(picked), *values.shape[1:]), self.dtype)
        for k, g in enumerate(picked):
            members = self.members[g]
            at = [position[s] for s in members]
            stack = values[at]
            ok = self.steps.valid(stack, members)
            if inside is not None and self.mask is not None:
                for j, step in enumerate(members):
                    if self.mask.present[step]:  # records without a mask: all inside
                        ok[j] &= inside[at[j]] > 0
            out[k] = fuse_stack(stack, ok, self.fuse, self.fills[g])[0]
        squeeze = tuple(axis for axis, k in enumerate(key) if not isinstance(k, slice))
        return out.squeeze(axis=squeeze) if squeeze else out


def _read_runs(
    source: xr.Variable, steps: list[int], space: tuple[slice, slice]
) -> tuple[np.ndarray, dict[int, int]]:
    """Time steps ``steps`` (sorted) of ``source`` over ``space``, one read per
    contiguous run, and each step's position in the result."""
    runs: list[list[int]] = []
    for step in steps:
        if runs and step == runs[-1][-1] + 1:
            runs[-1].append(step)
        else:
            runs.append([step])
    parts = [np.asarray(source[(slice(r[0], r[-1] + 1), *space)].values) for r in runs]
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return values, {step: k for k, step in enumerate(steps)}


def _composite(
    ds: xr.Dataset,
    store: TileStore,
    group: str | None,
    groups: Groups,
    steps: dict[str, StepValidity],
    fuse: str,
    mask_and_scale: bool,
) -> xr.Dataset:
    # per-record nodata means nothing for float results (NaN where no record is valid)
    dropped = {"time", "id", *(f"{n}_nodata" for n in steps if fuse in FLOAT_FUSERS)}
    time_coords = {
        name: coord.values
        for name, coord in ds.coords.items()
        if coord.dims == ("time",) and name not in dropped
    }
    kept, omitted = _group_coordinates(time_coords, groups)
    variables: dict[str, xr.Variable] = {}
    masks = _masks(ds, store, group) if group is not None else {}
    for name, variable in ds.data_vars.items():
        if name not in steps:
            continue  # masks and coverage are consumed by their band
        _check_radiometry(name, time_coords, groups, mask_and_scale)
        fills = _group_fills(name, variable, steps[name], groups, fuse)
        if group is not None:
            mask = masks.get(name)
            array = CompositeArray(variable.variable, mask, groups, steps[name], fuse, fills)
            encoding = {k: v for k, v in variable.encoding.items() if k != "coordinates"}
            if fuse in FLOAT_FUSERS:  # a float result: never re-packed into the raw dtype
                encoding = {k: v for k, v in encoding.items() if k not in _PACKING}
            preferred = dict(encoding.get("preferred_chunks") or {})
            if preferred:
                largest = max((len(m) for m in groups.members), default=1)
                preferred["time"] = max(1, preferred.get("time", 1) // largest)
                encoding["preferred_chunks"] = preferred
            data: Any = indexing.LazilyIndexedArray(array)
        else:
            coverage = ds.get(f"{name}_coverage")
            data = _fuse_dask(variable.data, coverage, groups, steps[name], fuse, fills)
            encoding = {}
        attrs = dict(variable.attrs)
        if fuse in FLOAT_FUSERS:
            attrs["nodata"] = float("nan")
            attrs.pop("rasteret_fill_value", None)
        variables[name] = xr.Variable(("time", "y", "x"), data, attrs, encoding)
    coords = {k: v for k, v in ds.coords.items() if "time" not in v.dims}
    out = xr.Dataset(variables, coords=coords, attrs=dict(ds.attrs))
    group_coords = {
        "time": ("time", groups.times),
        "group": ("time", np.asarray(groups.keys, dtype=str)),
        "record_ids": ("time", np.asarray([_ids(ds, m) for m in groups.members], dtype=str)),
    }
    out = out.assign_coords({**group_coords, **{k: ("time", v) for k, v in kept.items()}})
    _note_omitted(out, omitted)
    return out


def _fuse_dask(
    data: Any,
    coverage: xr.DataArray | None,
    groups: Groups,
    steps: StepValidity,
    fuse: str,
    fills: Sequence[Any],
) -> Any:
    """The fused dask array of a target-grid band: one task per (group, chunk), fed by
    the cube's own chunks (nothing is read that the cube would not read)."""
    import dask.array as da

    order = np.asarray([s for m in groups.members for s in m], dtype=np.int64)
    sizes = tuple(len(m) for m in groups.members)
    inputs = [data[order].rechunk({0: sizes})]
    if coverage is not None:
        inputs.append(coverage.data[order].rechunk({0: sizes}))
    dtype = fused_dtype(data.dtype, fuse)
    return da.map_blocks(
        _fuse_block,
        *inputs,
        members=groups.members,
        steps=steps,
        fuse=fuse,
        fills=tuple(fills),
        chunks=((1,) * len(groups), *data.chunks[1:]),
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype),
    )


def _fuse_block(
    values: np.ndarray,
    coverage: np.ndarray | None = None,
    *,
    members: tuple[tuple[int, ...], ...],
    steps: StepValidity,
    fuse: str,
    fills: tuple[Any, ...],
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    assert block_info is not None
    g = block_info[None]["chunk-location"][0]
    ok = steps.valid(values, members[g])
    if coverage is not None:
        for k, step in enumerate(members[g]):
            if steps.covered(step):
                ok[k] &= coverage[k] > 0
    return fuse_stack(values, ok, fuse, fills[g])[0][np.newaxis]


def _step_validity(
    ds: xr.Dataset, store: TileStore, group: str | None, mask_and_scale: bool
) -> dict[str, StepValidity]:
    """Per data variable of ``ds``: each time step's presence and nodata, from the layout
    (a native ``group``'s band stacks, or every grid's by record id on a target grid)."""
    layout = store.layout
    if group is not None:
        stacks = band_stacks(layout.groups[group], group)
        return {
            name: StepValidity(stack.radiometry.present, stack.radiometry.nodata, mask_and_scale)
            for name, stack in stacks.items()
            if stack.kind == "data" and name in ds.data_vars
        }
    per_band: dict[str, dict[str, tuple[bool, float | None]]] = {}
    for name in layout.grid_groups:
        grid = layout.groups[name]
        for stack in band_stacks(grid, name).values():
            if stack.kind != "data":
                continue
            found = per_band.setdefault(stack.band, {})
            for t, record in enumerate(grid.ids):
                if stack.radiometry.present[t]:
                    found[record] = (True, stack.radiometry.nodata[t])
    ids = [str(i) for i in ds["id"].values]
    out = {}
    for band, found in per_band.items():
        if band not in ds.data_vars:
            continue
        steps = [found.get(record, (False, None)) for record in ids]
        out[band] = StepValidity(
            tuple(p for p, _ in steps), tuple(n for _, n in steps), mask_and_scale
        )
    return out


def _group_fills(
    name: str,
    variable: xr.DataArray,
    steps: StepValidity,
    groups: Groups,
    fuse: str,
) -> list[Any]:
    """The value of each group where no member is valid: NaN for float fusers, else the
    members' nodata (they must agree), else the variable's ``nodata``, else 0."""
    if fuse in FLOAT_FUSERS or steps.decoded:  # float values, nodata already NaN
        return [np.nan] * len(groups)
    dtype = np.dtype(variable.dtype)
    default = variable.attrs.get("nodata", np.nan if dtype.kind == "f" else 0)
    fills = []
    for key, members in zip(groups.keys, groups.members, strict=True):
        values = {_nan_key(steps.nodata[s]) for s in members if steps.present[s]} - {None}
        if len(values) > 1:
            raise CompositeError(
                name,
                key,
                f"its records declare different nodata values {sorted(map(str, values))}; "
                "use fuse='mean' / 'median' (NaN where no record is valid) or "
                "mask_and_scale=True",
            )
        value = next(iter(values), None) if values else None
        fills.append(_representable(value, dtype, default))
    return fills


def _representable(value: Any, dtype: np.dtype, default: Any) -> Any:
    if value is None:
        return default
    if value == "nan":
        return np.nan if dtype.kind == "f" else default
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if value != int(value) or not info.min <= value <= info.max:
            return default
        return int(value)
    return value


def _check_radiometry(
    name: str, coords: dict[str, np.ndarray], groups: Groups, mask_and_scale: bool
) -> None:
    """Raw values of records with different scale / offset are never fused together."""
    if mask_and_scale:
        return
    for suffix in ("scale_factor", "add_offset"):
        values = coords.get(f"{name}_{suffix}")
        if values is None:
            continue
        for key, members in zip(groups.keys, groups.members, strict=True):
            seen = {float(values[s]) for s in members if not np.isnan(values[s])}
            if len(seen) > 1:
                raise CompositeError(
                    name,
                    key,
                    f"its records have different {suffix} values {sorted(seen)}, so their "
                    "raw values are not comparable; open with mask_and_scale=True",
                )


def _group_coordinates(
    coords: dict[str, np.ndarray], groups: Groups
) -> tuple[dict[str, np.ndarray], list[str]]:
    kept: dict[str, np.ndarray] = {}
    omitted: list[str] = []
    for name, values in coords.items():
        values = np.asarray(values)
        if all(_same(values[list(m)]) for m in groups.members):
            kept[name] = values[[m[0] for m in groups.members]]
        else:
            omitted.append(name)
    return kept, omitted


def _same(values: np.ndarray) -> bool:
    first = values[0]
    if values.dtype.kind in "fcmM":
        both_nan = np.isnan(values) & bool(np.isnan(first))
        return bool(np.all((values == first) | both_nan))
    return all(v == first for v in values)


def _note_omitted(ds: xr.Dataset, omitted: list[str]) -> None:
    if not omitted:
        return
    before = ds.attrs.get(OMITTED)
    names = ([before] if before else []) + omitted
    ds.attrs[OMITTED] = ", ".join(names) + " (differ within a group)"


def _masks(ds: xr.Dataset, store: TileStore, group: str) -> dict[str, InternalMask]:
    """Data variable → its band's internal mask, in a native group."""
    stacks: dict[str, BandStack] = band_stacks(store.layout.groups[group], group)
    masks = {s.band: s for s in stacks.values() if s.kind == "mask" and s.name in ds}
    return {
        name: InternalMask(ds[masks[s.band].name].variable, masks[s.band].radiometry.present)
        for name, s in stacks.items()
        if s.kind == "data" and s.band in masks
    }


def _cube_rows(ds: xr.Dataset, store: TileStore, group: str | None) -> np.ndarray:
    """The table row of each time step of ``ds``."""
    if group is not None:
        return np.asarray(store.layout.groups[group].rows, dtype=np.int64)
    row_of = {rid: row for row, rid in enumerate(record_ids(store.source.collection.table))}
    return np.asarray([row_of[str(i)] for i in ds["id"].values], dtype=np.int64)


def _ids(ds: xr.Dataset, steps: Sequence[int]) -> str:
    ids = ds["id"].values
    return ", ".join(str(ids[s]) for s in steps)


def _free_names(ds: xr.Dataset, names: list[str], skip_taken: bool) -> list[str]:
    """``names`` that name nothing of ``ds`` yet: the others are skipped (``skip_taken``)
    or refused (names the user listed)."""
    taken = set(ds.variables) | set(ds.dims) | {"group", "record_ids"}
    clash = [n for n in names if n in taken]
    if clash and not skip_taken:
        raise ValueError(f"with_properties: {clash} would replace the dataset's own names")
    return [n for n in names if n not in taken]


def _nan_key(value: float | None) -> Any:
    if value is not None and value != value:
        return "nan"
    return value
