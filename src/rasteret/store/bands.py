"""One variable per band: a group's stacks of a band merged, with per-record radiometry.

The store layout splits a band into several arrays (``B04``, ``B04__2``...) when its
records decode differently (compression, predictor, tile size, dtype) or differ in
nodata / scale / offset (the Zarr codec sees no chunk coordinates: DESIGN decision 2).
The engine does not expose that split: a :class:`BandStack` is every array of one
band (and kind) in a group, with, per time step, the array that holds the record
(``-1``: the record has no pixels of the band) and the record's nodata, scale and
offset. Reading it reads each time step from its own array, in one batch, into one
output of the common dtype (``numpy.result_type`` of the arrays'): no record that has
data ever reads as a fill value.

:class:`Radiometry` says what CF can and cannot say about a stack: ``_FillValue`` only
when every record shares one nodata, ``scale_factor`` / ``add_offset`` only when every
record shares them. Otherwise the per-record values are coordinates along ``time``
(``{band}_nodata``, ``{band}_scale_factor``, ``{band}_add_offset``), and
``mask_and_scale=True`` applies each record's own values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rasteret.store.metadata import fill_value

if TYPE_CHECKING:
    from rasteret.store.layout import ArrayLayout, GroupLayout


@dataclass(frozen=True, slots=True)
class Radiometry:
    """Per time step: nodata, scale and offset of a band's records (``None``: not declared)."""

    nodata: tuple[float | None, ...]
    scale: tuple[float | None, ...]
    offset: tuple[float | None, ...]
    present: tuple[bool, ...]  # the record has pixels of the band

    def _uniform(self, values: tuple[float | None, ...]) -> tuple[bool, float | None]:
        seen = {_key(v) for v, p in zip(values, self.present, strict=True) if p}
        if len(seen) > 1:
            return False, None
        first = next((v for v, p in zip(values, self.present, strict=True) if p), None)
        return True, first

    @property
    def uniform_nodata(self) -> tuple[bool, float | None]:
        """``(True, nodata)`` when every record with data declares the same nodata."""
        return self._uniform(self.nodata)

    @property
    def uniform_scaling(self) -> tuple[bool, float | None, float | None]:
        """``(True, scale, offset)`` when every record with data shares scale and offset."""
        same_scale, scale = self._uniform(tuple(_one(s) for s in self.scale))
        same_offset, offset = self._uniform(tuple(_zero(o) for o in self.offset))
        return same_scale and same_offset, scale, offset

    @property
    def scaled(self) -> bool:
        """Whether any record declares a scale other than 1 or an offset other than 0."""
        return any(
            p and (_one(s) != 1.0 or _zero(o) != 0.0)
            for s, o, p in zip(self.scale, self.offset, self.present, strict=True)
        )


@dataclass(frozen=True, slots=True)
class BandStack:
    """Every array of one band (and kind) in a group, and which one holds each record."""

    name: str  # the variable's name (the first array's)
    band: str
    kind: str
    group: str
    arrays: tuple[ArrayLayout, ...]
    member_of: tuple[int, ...]  # per time step: index into ``arrays``, -1 = no pixels
    dtype: np.dtype
    radiometry: Radiometry

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{a.name}" for a in self.arrays)

    @property
    def first(self) -> ArrayLayout:
        return self.arrays[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.first.shape

    @property
    def records(self) -> int:
        return sum(m >= 0 for m in self.member_of)

    def raw_fill(self) -> Any:
        """The value of a record without pixels in raw reads: the shared nodata when it
        is a value of the dtype, else 0."""
        same, nodata = self.radiometry.uniform_nodata
        value, _ = fill_value(nodata if same else None, self.dtype)
        return value

    def decoded_dtype(self) -> np.dtype:
        """The float dtype of ``mask_and_scale=True`` reads (as xarray chooses it)."""
        if self.dtype.kind == "f":
            return self.dtype
        if self.dtype.itemsize <= 2:
            return np.dtype("float32")
        return np.dtype("float64")


def band_stacks(group: GroupLayout, path: str) -> dict[str, BandStack]:
    """The :class:`BandStack` of each band and kind of ``group`` (at ``path``), by name."""
    by_band: dict[tuple[str, str], list[ArrayLayout]] = {}
    for array in group.arrays.values():  # layout order: first stack first
        by_band.setdefault((array.band, array.kind), []).append(array)
    steps = len(group.rows)
    stacks: dict[str, BandStack] = {}
    for (band, kind), arrays in by_band.items():
        member_of = [-1] * steps
        nodata: list[float | None] = [None] * steps
        scale: list[float | None] = [None] * steps
        offset: list[float | None] = [None] * steps
        for index, array in enumerate(arrays):
            for t in np.flatnonzero(array.present).tolist():  # no source is built
                member_of[t] = index
                nodata[t], scale[t], offset[t] = array.nodata, array.scale, array.offset
        dtype = np.result_type(*(np.dtype(a.dtype) for a in arrays))
        stacks[arrays[0].name] = BandStack(
            name=arrays[0].name,
            band=band,
            kind=kind,
            group=path,
            arrays=tuple(arrays),
            member_of=tuple(member_of),
            dtype=np.dtype(dtype),
            radiometry=Radiometry(
                tuple(nodata), tuple(scale), tuple(offset), tuple(m >= 0 for m in member_of)
            ),
        )
    return stacks


def decode_records(
    raw: np.ndarray, stack: BandStack, steps: list[int], dtype: np.dtype
) -> np.ndarray:
    """``raw`` (``(len(steps), ...)``) with each record's nodata as NaN and its scale and
    offset applied; steps without pixels of the band are NaN."""
    out = raw.astype(dtype, copy=True)
    radiometry = stack.radiometry
    for k, t in enumerate(steps):
        plane = out[k]
        if stack.member_of[t] < 0:
            plane[...] = np.nan
            continue
        nodata = radiometry.nodata[t]
        mask = None
        if nodata is not None:
            mask = np.isnan(raw[k]) if math.isnan(nodata) else raw[k] == nodata
        scale, offset = _one(radiometry.scale[t]), _zero(radiometry.offset[t])
        if scale != 1.0:
            plane *= dtype.type(scale)
        if offset != 0.0:
            plane += dtype.type(offset)
        if mask is not None:
            plane[mask] = np.nan
    return out


def radiometry_coordinates(stack: BandStack) -> dict[str, tuple[tuple[str], np.ndarray, dict]]:
    """Coordinates along ``time`` for what differs per record or cannot be a CF attribute
    of raw values: ``{band}_nodata`` (when records disagree), ``{band}_scale_factor`` and
    ``{band}_add_offset`` (when any record is scaled). Records without pixels: NaN."""
    radiometry = stack.radiometry
    coords: dict[str, tuple[tuple[str], np.ndarray, dict]] = {}
    name = stack.name
    if not radiometry.uniform_nodata[0]:
        values = np.array(
            [
                np.nan if (v is None or not p) else v
                for v, p in zip(radiometry.nodata, radiometry.present, strict=True)
            ],
            dtype="float64",
        )
        coords[f"{name}_nodata"] = (
            ("time",),
            values,
            {"long_name": f"nodata value of {stack.band} per record (NaN: none declared)"},
        )
    if radiometry.scaled:
        scale = [
            _one(s) if p else np.nan
            for s, p in zip(radiometry.scale, radiometry.present, strict=True)
        ]
        offset = [
            _zero(o) if p else np.nan
            for o, p in zip(radiometry.offset, radiometry.present, strict=True)
        ]
        note = f"physical = raw * {name}_scale_factor + {name}_add_offset"
        coords[f"{name}_scale_factor"] = (
            ("time",),
            np.array(scale, dtype="float64"),
            {"long_name": f"scale of {stack.band} per record", "comment": note},
        )
        coords[f"{name}_add_offset"] = (
            ("time",),
            np.array(offset, dtype="float64"),
            {"long_name": f"offset of {stack.band} per record", "comment": note},
        )
    return coords


def _one(value: float | None) -> float:
    return 1.0 if value is None else float(value)


def _zero(value: float | None) -> float:
    return 0.0 if value is None else float(value)


def _key(value: float | None) -> Any:
    if value is not None and value != value:
        return "nan"
    return value
