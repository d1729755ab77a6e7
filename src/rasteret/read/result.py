"""``AOIStack``: pixels of AOI reads with their identity and valid-data mask.

A read whose invalid pixels (nodata, internal mask, outside the geometry) are exactly the
pixels holding a per-band value — every band with a nodata, that nodata its fill, no
internal mask — keeps no mask array: its :class:`ImpliedMask` derives ``mask`` from the
pixels the first time it is asked for (the same booleans; the read then holds only its
data, a third less memory for uint16 bands, and spends no time on a mask not used).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from rasteret.errors import RasteretError
from rasteret.geo.grid import GridSpec


class NoDataError(RasteretError, ValueError):
    """Nothing to read: no geometry intersects any record (message says which CRSs)."""


class RaggedShapesError(RasteretError, ValueError):
    """AOI windows differ in shape or CRS and cannot be stacked into one array."""


#: Columns of :attr:`AOIStack.records` (mosaics add ``group`` and ``record_ids``).
RECORD_COLUMNS = ("record_id", "datetime", "geometry_id", "crs", "transform", "height", "width")


@dataclass(frozen=True)
class ImpliedMask:
    """Validity the pixels imply: a pixel is invalid exactly when it equals its band's
    ``invalid`` value (NaN: when it is NaN). See the module docs."""

    invalid: tuple[float | int, ...]  # per band

    def __post_init__(self) -> None:  # one NaN object: equal rules compare and hash equal
        values = tuple(math.nan if _is_nan(v) else v for v in self.invalid)
        object.__setattr__(self, "invalid", values)

    def of(self, data: np.ndarray, *, band_axis: int | None = -3) -> np.ndarray:
        """The boolean mask (``True`` = valid) of ``data`` whose bands lie along
        ``band_axis`` (``None``: all of ``data`` is the one band)."""
        if band_axis is None:
            return self._band(data, self.invalid[0])
        planes = np.moveaxis(data, band_axis, 0)
        if len(planes) != len(self.invalid):
            raise ValueError(f"{len(planes)} bands for {len(self.invalid)} invalid values")
        mask = np.empty(data.shape, dtype=bool)
        out = np.moveaxis(mask, band_axis, 0)
        for c, value in enumerate(self.invalid):
            self._band(planes[c], value, out[c])
        return mask

    @staticmethod
    def _band(plane: np.ndarray, value: float | int, out: np.ndarray | None = None) -> np.ndarray:
        if _is_nan(value):
            out = np.isnan(plane, out=out)
            return np.logical_not(out, out=out)
        return np.not_equal(plane, value, out=out)


def _is_nan(value: float | int) -> bool:
    return isinstance(value, float) and math.isnan(value)


#: A window's or stack's validity: the mask itself, or the rule that derives it.
Validity = np.ndarray | ImpliedMask


@dataclass(frozen=True)
class AOIWindow:
    """One (record or mosaic group, geometry) window: ``data`` ``[C, h, w]`` on ``grid``;
    ``mask`` its valid pixels (from ``validity``: the array, or derived on first use)."""

    record_id: str | None
    datetime: np.datetime64
    geometry_id: int
    grid: GridSpec
    bands: tuple[str, ...]
    data: np.ndarray  # [C, h, w], native dtype (float when scaled / fused by mean/median)
    validity: Validity  # [C, h, w] bool, True = valid (inside the geometry and not nodata)
    group: str | None = None
    record_ids: tuple[str, ...] = ()

    @cached_property
    def mask(self) -> np.ndarray:
        """``[C, h, w]`` bool, ``True`` = valid: inside the geometry, not nodata."""
        found = self.validity
        return found if isinstance(found, np.ndarray) else found.of(self.data)


@dataclass(frozen=True)
class AOIStack:
    """Stacked AOI windows.

    ``data`` is ``[N, H, W]`` for one band, ``[N, C, H, W]`` for several (requested band
    order), native dtype unless ``apply_scale`` or a mean / median fuser. ``mask`` has the
    same shape (``True`` = valid pixel: inside the geometry, not nodata, set in the
    internal mask) or is ``None`` when not requested; with an :class:`ImpliedMask` as
    ``validity`` it is derived from ``data`` on first use (take it before changing
    ``data`` in place). ``records`` is an Arrow table with
    one row per ``N``: ``record_id, datetime, geometry_id, crs, transform (6-value affine
    of the window), height, width`` (mosaics: also ``group`` and ``record_ids``).

    It behaves like the array for NumPy (``np.asarray(stack)``, ``stack.shape``,
    ``stack[i]``), so code written for the original ``get_numpy`` keeps working.
    """

    data: np.ndarray
    validity: Validity | None
    records: pa.Table
    bands: tuple[str, ...]
    fill_value: float | int

    @cached_property
    def mask(self) -> np.ndarray | None:
        """Valid pixels (``True``), the shape of ``data``; ``None`` when not requested.
        Derived from the pixels on first use when the read kept no mask array."""
        found = self.validity
        if found is None or isinstance(found, np.ndarray):
            return found
        return found.of(self.data, band_axis=None if self.data.ndim == 3 else -3)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Any) -> Any:
        return self.data[index]

    def __iter__(self) -> Any:
        return iter(self.data)

    def masked(self) -> np.ma.MaskedArray:
        """``data`` as a masked array (masked where not valid)."""
        if self.mask is None:
            raise ValueError("this stack was read with with_mask=False")
        return np.ma.MaskedArray(self.data, mask=~self.mask)

    @property
    def grids(self) -> list[GridSpec]:
        """The grid of every window (CRS + transform + shape)."""
        rows = self.records.select(["crs", "transform", "height", "width"]).to_pylist()
        return [GridSpec(r["crs"], r["transform"], (r["height"], r["width"])) for r in rows]

    def __repr__(self) -> str:
        return (
            f"AOIStack(shape={self.data.shape}, dtype={self.data.dtype}, bands={list(self.bands)}, "
            f"records={self.records.num_rows})"
        )


def records_table(windows: Sequence[AOIWindow]) -> pa.Table:
    """The identity table of ``windows`` (see :class:`AOIStack`)."""
    columns: dict[str, Any] = {
        "record_id": pa.array([w.record_id for w in windows], pa.string()),
        "datetime": pa.array(
            np.array([w.datetime for w in windows], dtype="datetime64[us]"), pa.timestamp("us")
        ),
        "geometry_id": pa.array([w.geometry_id for w in windows], pa.int64()),
        "crs": pa.array([_crs_text(w.grid) for w in windows], pa.string()),
        "transform": pa.array([list(w.grid.transform) for w in windows], pa.list_(pa.float64())),
        "height": pa.array([w.grid.height for w in windows], pa.int32()),
        "width": pa.array([w.grid.width for w in windows], pa.int32()),
    }
    if any(w.group is not None for w in windows):
        columns["group"] = pa.array([w.group for w in windows], pa.string())
        columns["record_ids"] = pa.array(
            [list(w.record_ids) for w in windows], pa.list_(pa.string())
        )
    return pa.table(columns)


def _crs_text(grid: GridSpec) -> str:
    from rasteret.geo.transform import crs_key

    return crs_key(grid.crs)


def stack_views(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays)``: without a copy when the arrays are, in order, the whole of
    one array (windows read ``contiguous``), which then is the result."""
    base = arrays[0].base
    if (
        isinstance(base, np.ndarray)
        and base.shape == (len(arrays), *arrays[0].shape)
        and base.flags.c_contiguous
        and all(
            a.base is base
            and a.strides == base.strides[1:]
            and a.ctypes.data == base.ctypes.data + k * base.strides[0]
            for k, a in enumerate(arrays)
        )
    ):
        return base
    return np.stack(arrays)


def shared_rule(windows: Sequence[AOIWindow]) -> ImpliedMask | None:
    """The :class:`ImpliedMask` of every window when they share one (``None`` otherwise)."""
    rules = {w.validity for w in windows if isinstance(w.validity, ImpliedMask)}
    if len(rules) == 1 and all(isinstance(w.validity, ImpliedMask) for w in windows):
        return rules.pop()
    return None


def stack_windows(
    windows: Sequence[AOIWindow], *, single_band: bool, with_mask: bool, fill_value: Any
) -> AOIStack:
    """Stack ``windows`` into an :class:`AOIStack`; :class:`RaggedShapesError` when the
    windows differ in shape or CRS (never a silent ragged array)."""
    shapes: dict[tuple[int, ...], list[int]] = {}
    crss: dict[str, list[int]] = {}
    for i, w in enumerate(windows):
        shapes.setdefault(w.data.shape, []).append(i)
        crss.setdefault(_crs_text(w.grid), []).append(i)
    if len(crss) > 1:
        names = ", ".join(f"{c[:30]} ({len(v)} windows)" for c, v in crss.items())
        raise RaggedShapesError(
            f"AOI windows are in {len(crss)} CRSs ({names}): they are not stackable on their "
            "native grids. Pass target_crs= and resolution= (or grid=GridSpec(...)) to read "
            "them onto one grid, or subset the collection to one CRS."
        )
    if len(shapes) > 1:
        examples = "; ".join(
            f"{shape[-2:]} e.g. record {windows[idx[0]].record_id!r} geometry "
            f"{windows[idx[0]].geometry_id}"
            for shape, idx in list(shapes.items())[:4]
        )
        raise RaggedShapesError(
            f"AOI windows have {len(shapes)} different shapes ({examples}). Pass "
            "grid=GridSpec(...) or resolution= to read every window onto one grid, use "
            "get_xarray() (one grid per AOI set), or read_aoi_windows() for per-window arrays."
        )
    data = stack_views([w.data for w in windows])
    validity: Validity | None = None
    if with_mask:  # the windows' rule, derived from the stack on first use, or their masks
        validity = shared_rule(windows) or stack_views([w.mask for w in windows])
    if single_band:
        data = data[:, 0]
        if isinstance(validity, np.ndarray):
            validity = validity[:, 0]
    return AOIStack(data, validity, records_table(windows), windows[0].bands, fill_value)
