"""Record order, datetimes and asset hrefs of a collection table (for the layout)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import CollectionSchemaError


def record_order(table: pa.Table) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Row order (time, then id), the datetime64[us] of each row and each row's id."""
    for column in ("id", "datetime"):
        if column not in table.column_names:
            raise CollectionSchemaError(f"collection has no {column!r} column")
    ids = [str(v) if v is not None else "" for v in table["id"].to_pylist()]
    times = datetimes(table["datetime"])
    return sort_order(times, ids), times, ids


def sort_order(times: np.ndarray, ids: list[str]) -> np.ndarray:
    ticks = times.astype("int64")
    ticks = np.where(np.isnat(times), np.iinfo(np.int64).max, ticks)
    return np.lexsort((np.asarray(ids, dtype=object).astype(str), ticks)).astype(np.int64)


def datetimes(column: pa.ChunkedArray) -> np.ndarray:
    """Datetimes as naive UTC ``datetime64[us]`` (NaT where null)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = column.type
    if pa.types.is_timestamp(kind):
        unit = kind.unit
        ticks = pc.cast(column, pa.int64())
    elif pa.types.is_date(kind):
        unit = "s"
        ticks = pc.cast(pc.cast(column, pa.timestamp("s")), pa.int64())
    else:
        raise CollectionSchemaError(f"'datetime' column must be a timestamp, got {kind}")
    values = pc.fill_null(ticks, np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)
    return values.astype("int64").view(f"datetime64[{unit}]").astype("datetime64[us]")


def asset_hrefs(table: pa.Table, band: str) -> list[str | None]:
    """``assets[band].href`` of every row (``None`` where absent)."""
    if "assets" not in table.column_names:
        raise CollectionSchemaError("collection has no 'assets' column")
    assets = table["assets"].combine_chunks()
    kind = assets.type
    if pa.types.is_struct(kind):
        if kind.get_field_index(band) < 0:
            return [None] * len(table)
        entry = pc.struct_field(assets, band)  # null where the row's assets are null
        if pa.types.is_struct(entry.type):
            return pc.struct_field(entry, "href").to_pylist()
        return entry.to_pylist()  # a plain string href
    if pa.types.is_map(kind):
        result: list[str | None] = []
        for value in assets.to_pylist():
            found = dict(value or ()).get(band)
            result.append(found.get("href") if isinstance(found, dict) else found)
        return result
    raise CollectionSchemaError(f"'assets' column must be a struct or map, got {kind}")
