"""Record properties as 1-D arrays: the ``with_properties=`` coordinates along ``time``.

``with_properties=True`` selects every *scalar* record column (numbers, booleans,
text, timestamps and dates — e.g. ``eo:cloud_cover``, ``platform``, ``proj:epsg``);
the columns every surface already uses (``id``, ``datetime``, ``geometry``, ``bbox``,
``assets``) and the per-band ``{band}_metadata`` / ``{band}_error`` columns are left
out, and so are nested columns (structs, lists, maps, binary). A list of names selects
those columns and raises ``ValueError`` for one that is absent or not scalar.

Types are kept: integers and booleans keep their dtype, floats theirs, timestamps and
dates become ``datetime64[ns]`` (naive UTC), text becomes ``str``. Nulls are ``NaN``
(floats; an integer column with nulls becomes float64), ``NaT`` (times) or ``None``
(text and booleans with nulls become ``object`` arrays).

For groups of records (mosaics, composites) a property is kept when it is constant
within every group (nulls equal), and otherwise left out and named by
:func:`group_properties`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rasteret.index.schema import ERROR_SUFFIX, METADATA_SUFFIX, REQUIRED_COLUMNS

#: What ``with_properties=`` accepts: ``True`` (every scalar column), ``False`` / ``None``
#: (none) or column names.
WithProperties = bool | str | Sequence[str] | None


def property_columns(table: pa.Table, with_properties: WithProperties) -> list[str]:
    """The record columns ``with_properties`` selects from ``table`` (module docs)."""
    if with_properties is None or with_properties is False:
        return []
    if with_properties is True:
        return [
            field.name
            for field in table.schema
            if field.name not in REQUIRED_COLUMNS
            and not field.name.endswith((METADATA_SUFFIX, ERROR_SUFFIX))
            and _is_scalar(field.type)
        ]
    names = [with_properties] if isinstance(with_properties, str) else list(with_properties)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"with_properties= takes column names, got {name!r}")
        if name not in table.column_names:
            raise ValueError(
                f"with_properties: the collection has no column {name!r} "
                f"(scalar columns: {property_columns(table, True)})"
            )
        kind = table.schema.field(name).type
        if not _is_scalar(kind):
            raise ValueError(
                f"with_properties: column {name!r} is {kind}, not a scalar "
                "(numbers, booleans, text, timestamps, dates)"
            )
    return list(dict.fromkeys(names))


def property_values(table: pa.Table, rows: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Each column of ``names`` at table ``rows`` as a typed numpy array (module docs)."""
    picked = table.select(list(names)).take(pa.array(np.asarray(rows, np.int64), pa.int64()))
    return {name: _to_numpy(picked[name]) for name in names}


def group_properties(
    table: pa.Table, groups: Sequence[Sequence[int]], names: Sequence[str]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per group of table rows, the value of each column of ``names`` that is constant in
    every group; and the names left out because they differ within a group."""
    firsts = np.asarray([members[0] for members in groups], dtype=np.int64)
    kept: dict[str, np.ndarray] = {}
    omitted: list[str] = []
    for name in names:
        column = table[name].combine_chunks()
        if all(_constant(column, members) for members in groups):
            kept[name] = property_values(table, firsts, [name])[name]
        else:
            omitted.append(name)
    return kept, omitted


def _constant(column: pa.Array, members: Sequence[int]) -> bool:
    if len(members) < 2:
        return True
    values = column.take(pa.array(np.asarray(members, np.int64), pa.int64()))
    return len(pc.unique(values)) == 1


def _is_scalar(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
        or (pa.types.is_dictionary(kind) and _is_scalar(kind.value_type))
    )


def _to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks()
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    nulls = array.null_count > 0
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            array = array.cast(pa.timestamp(kind.unit))  # the UTC instants, naive
        elif pa.types.is_date(kind):
            array = array.cast(pa.timestamp("s"))
        return array.to_numpy(zero_copy_only=False).astype("datetime64[ns]")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        values = array.to_pylist()
        return np.asarray(values, dtype=object) if nulls else np.asarray(values, dtype=str)
    if pa.types.is_boolean(kind):
        if nulls:
            return np.asarray(array.to_pylist(), dtype=object)
        return array.to_numpy(zero_copy_only=False).astype(bool)
    if pa.types.is_integer(kind) and nulls:
        return array.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return array.to_numpy(zero_copy_only=False)
