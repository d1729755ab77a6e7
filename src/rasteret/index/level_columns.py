"""Whole-column views of a ``{band}_metadata`` column (the vectorised twin of ``levels``).

:func:`band_levels` builds one :class:`~rasteret.index.levels.BandLevels` per row, which
costs a Python dict per row and per level. Consumers that walk thousands of rows (the
Zarr layout) instead use :func:`band_level_columns`:

* ``signature[row]``: rows with equal signatures have equal :class:`BandLevels` except for
  their block tables (``offsets`` / ``byte_counts`` contents), JPEG tables contents and
  object identity (``file_size``, ``etag``, ``last_modified``); so one
  ``BandLevels.from_struct`` per signature describes every row of it. Signatures may be
  finer than necessary (e.g. two NaN payloads), never coarser.
* ``blocks(slot, row)``: that row's block tables as zero-copy slices of one flat array.

Slots name a level the way :class:`BandLevels` does: ``("full", 0)``, ``("overview", i)``
(``overviews[i]``) and ``("mask", j)`` (``mask_levels[j]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Slot = tuple[str, int]

# Fields whose contents vary per row without changing the level structure.
_BLOCK_FIELDS = ("tile_offsets", "tile_byte_counts")
_PER_ROW_FIELDS = frozenset({"file_size", "etag", "last_modified", "pixel_scale", "tiepoint"})


class _Unsupported(Exception):
    """The column has a shape the vectorised path does not handle."""


@dataclass(frozen=True, slots=True, eq=False)
class LevelBlocks:
    """Block tables of one level kind across entries, as slices of flat int64 arrays."""

    offsets: np.ndarray
    offset_bounds: tuple[np.ndarray, np.ndarray]  # (start, end) of each entry
    counts: np.ndarray
    count_bounds: tuple[np.ndarray, np.ndarray]
    jpeg_tables: pa.Array | None

    @classmethod
    def from_struct_array(cls, entries: pa.StructArray) -> LevelBlocks:
        fields = _fields(entries)
        offsets, offset_bounds = _flat_list(fields.get("tile_offsets"), len(entries))
        counts, count_bounds = _flat_list(fields.get("tile_byte_counts"), len(entries))
        return cls(offsets, offset_bounds, counts, count_bounds, fields.get("jpeg_tables"))

    def blocks(self, entry: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.offset_bounds[0][entry], self.offset_bounds[1][entry]
        cstart, cend = self.count_bounds[0][entry], self.count_bounds[1][entry]
        return self.offsets[start:end], self.counts[cstart:cend]

    def jpeg(self, entry: int) -> bytes | None:
        return None if self.jpeg_tables is None else self.jpeg_tables[entry].as_py()


@dataclass(frozen=True, slots=True, eq=False)
class BandLevelColumns:
    """Per-row structure signatures and block tables of one ``{band}_metadata`` column."""

    valid: np.ndarray  # bool: the row has band metadata
    signature: np.ndarray  # int64 structure signature of each row
    full: LevelBlocks
    overviews: LevelBlocks | None
    overview_start: np.ndarray | None  # entry of each row's first overview
    mask: LevelBlocks | None
    mask_overviews: LevelBlocks | None
    mask_overview_start: np.ndarray | None
    file_size: list[int | None]
    etag: list[str | None]
    last_modified: list[str | None]

    def blocks(self, slot: Slot, row: int) -> tuple[np.ndarray, np.ndarray]:
        """``(offsets, byte_counts)`` of ``slot`` of ``row`` (views, int64)."""
        return self._entry(slot, row, LevelBlocks.blocks)

    def jpeg_tables(self, slot: Slot, row: int) -> bytes | None:
        """The JPEG tables stored for ``slot`` of ``row``."""
        return self._entry(slot, row, LevelBlocks.jpeg)

    def _entry(self, slot: Slot, row: int, read: Any) -> Any:
        kind, index = slot
        if kind == "full":
            return read(self.full, row)
        if kind == "overview":
            assert self.overviews is not None and self.overview_start is not None
            return read(self.overviews, int(self.overview_start[row]) + index)
        if index == 0:
            assert self.mask is not None
            return read(self.mask, row)
        assert self.mask_overviews is not None and self.mask_overview_start is not None
        return read(self.mask_overviews, int(self.mask_overview_start[row]) + index - 1)


def band_level_columns(column: pa.ChunkedArray | pa.Array) -> BandLevelColumns | None:
    """Vectorised view of a ``{band}_metadata`` column, or ``None`` if its shape is unusual.

    ``None`` (e.g. null block offsets, non-int64 block tables, unknown field types) means:
    use :func:`~rasteret.index.levels.band_levels` row by row. Rows are not validated
    here; build one ``BandLevels.from_struct`` per signature to validate them (rows of a
    signature share every checked value, block-table lengths included).
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_struct(array.type):
        return None
    try:
        return _columns(array)
    except (_Unsupported, pa.ArrowException, TypeError, ValueError):
        return None


def _columns(array: pa.StructArray) -> BandLevelColumns:
    n = len(array)
    fields = _fields(array)
    overviews, overview_start = _nested_levels(fields.get("overviews"), n)
    mask = mask_overviews = mask_overview_start = None
    mask_array = fields.get("mask")
    if mask_array is not None:
        if not pa.types.is_struct(mask_array.type):
            raise _Unsupported("mask is not a struct")
        mask = LevelBlocks.from_struct_array(mask_array)
        mask_fields = _fields(mask_array)
        mask_overviews, mask_overview_start = _nested_levels(mask_fields.get("overviews"), n)
    return BandLevelColumns(
        valid=_valid(array),
        signature=_signature(array),
        full=LevelBlocks.from_struct_array(array),
        overviews=overviews,
        overview_start=overview_start,
        mask=mask,
        mask_overviews=mask_overviews,
        mask_overview_start=mask_overview_start,
        file_size=_pylist(fields.get("file_size"), n),
        etag=_pylist(fields.get("etag"), n),
        last_modified=_pylist(fields.get("last_modified"), n),
    )


def _nested_levels(levels: pa.Array | None, n: int) -> tuple[LevelBlocks | None, np.ndarray | None]:
    if levels is None:
        return None, None
    if not _is_list(levels.type) or not pa.types.is_struct(levels.type.value_type):
        raise _Unsupported("levels are not a list of structs")
    start = levels.offsets.to_numpy()[:-1].astype(np.int64)
    return LevelBlocks.from_struct_array(levels.values), start


def _signature(array: pa.Array) -> np.ndarray:
    columns: list[np.ndarray] = []
    _key_columns(array, columns)
    if not len(array):
        return np.zeros(0, dtype=np.int64)
    # a column equal on every row tells no rows apart: most are, in a collection of one
    # sensor, so the rows are compared on the few that vary (often none)
    varying = [c for c in columns if len(c) and (c != c[0]).any()]
    if not varying:
        return np.zeros(len(array), dtype=np.int64)
    if len(varying) == 1:
        _, inverse = np.unique(varying[0], return_inverse=True)
        return inverse.reshape(-1).astype(np.int64)
    stacked = np.ascontiguousarray(np.stack(varying, axis=1))
    rows = stacked.view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1])))
    _, inverse = np.unique(rows.reshape(-1), return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def _key_columns(array: pa.Array, out: list[np.ndarray]) -> None:
    """Append int64 columns that together identify each entry's value of ``array``."""
    kind = array.type
    out.append(_valid(array).astype(np.int64))
    if pa.types.is_struct(kind):
        for name, child in _fields(array).items():
            if name in _BLOCK_FIELDS:
                out.append(_lengths(child))
            elif name == "jpeg_tables":
                present = pc.fill_null(pc.greater(pc.binary_length(child), 0), False)
                out.append(present.to_numpy(zero_copy_only=False).astype(np.int64))
            elif name not in _PER_ROW_FIELDS:
                _key_columns(child, out)
    elif _is_list(kind):
        lengths = _lengths(array)
        out.append(lengths)
        starts = array.offsets.to_numpy()[:-1].astype(np.int64)
        for j in range(int(lengths.max()) if len(lengths) else 0):
            index = pa.array(starts + j, mask=lengths <= j)
            _key_columns(array.values.take(index), out)
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        fill = pa.scalar(0 if pa.types.is_integer(kind) else False, kind)
        out.append(fill_nulls(array, fill).to_numpy(zero_copy_only=False).astype(np.int64))
    elif pa.types.is_floating(kind):
        values = fill_nulls(array if kind == pa.float64() else pc.cast(array, pa.float64()), 0.0)
        out.append(values.to_numpy(zero_copy_only=False).astype(np.float64).view(np.int64))
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind):
        indices = fill_nulls(array.dictionary_encode().indices, -1)
        out.append(indices.to_numpy(zero_copy_only=False).astype(np.int64))
    elif not pa.types.is_null(kind):
        raise _Unsupported(f"field type {kind}")


def _flat_list(values: pa.Array | None, n: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Flat int64 values of a list column and each entry's (start, end); nulls are empty."""
    if values is None:
        zeros = np.zeros(n, dtype=np.int64)
        return np.zeros(0, dtype=np.int64), (zeros, zeros)
    if not _is_list(values.type) or values.type.value_type != pa.int64():
        raise _Unsupported("block table is not a list of int64")
    flat = values.values
    if flat.null_count:
        raise _Unsupported("null block offsets")
    offsets = values.offsets.to_numpy().astype(np.int64)
    start, end = offsets[:-1], offsets[1:]
    end = np.where(_valid(values), end, start)
    return flat.to_numpy(zero_copy_only=False), (start, end)


def _fields(array: pa.Array) -> dict[str, pa.Array]:
    """Children of a struct array, sliced like it and null where it is null."""
    return {field.name: child for field, child in zip(array.type, array.flatten(), strict=True)}


def _lengths(array: pa.Array) -> np.ndarray:
    if not _is_list(array.type):
        raise _Unsupported(f"expected a list, got {array.type}")
    lengths = fill_nulls(pc.list_value_length(array), 0)
    return lengths.to_numpy(zero_copy_only=False).astype(np.int64)


def fill_nulls(values: pa.Array, fill: Any) -> pa.Array:
    """``values`` with nulls replaced by ``fill`` (no compute call when there are none:
    each costs ~20 µs, and a band's checks make about a hundred)."""
    return pc.fill_null(values, fill) if values.null_count else values


def _valid(array: pa.Array) -> np.ndarray:
    return array.is_valid().to_numpy(zero_copy_only=False)


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind)


def _pylist(array: pa.Array | None, n: int) -> list[Any]:
    return [None] * n if array is None else array.to_pylist()
