"""Values of a collection table's record columns: ids, datetimes, record order, asset hrefs.

The one place these columns are decoded; the index, ingest, store and read layers call
these helpers instead of reading ``id`` / ``datetime`` / ``assets`` by hand:

* :func:`record_ids` — ids as text (``""`` where null);
* :func:`datetimes` — naive UTC ``datetime64[us]`` (NaT where null; timestamps or dates);
* :func:`record_order` / :func:`sort_order` — rows by (datetime, id), nulls last;
* :func:`asset_hrefs` / :func:`asset_field` — ``assets[band].href`` (or another field)
  per row from a struct- or map-typed ``assets`` column (``None`` where absent).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import CollectionSchemaError


def record_ids(table: pa.Table) -> list[str]:
    """The ``id`` of every row as text (``""`` where null)."""
    if "id" not in table.column_names:
        raise CollectionSchemaError("collection has no 'id' column")
    return [str(v) if v is not None else "" for v in table["id"].to_pylist()]


def record_order(table: pa.Table) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Row order (time, then id), the datetime64[us] of each row and each row's id."""
    for column in ("id", "datetime"):
        if column not in table.column_names:
            raise CollectionSchemaError(f"collection has no {column!r} column")
    ids = record_ids(table)
    times = datetimes(table["datetime"])
    return sort_order(times, ids), times, ids


def sort_order(times: np.ndarray, ids: list[str]) -> np.ndarray:
    """Rows sorted by ``times`` (NaT last), then ``ids``."""
    ticks = times.astype("int64")
    ticks = np.where(np.isnat(times), np.iinfo(np.int64).max, ticks)
    return np.lexsort((np.asarray(ids, dtype=object).astype(str), ticks)).astype(np.int64)


def datetimes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
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
    return asset_field(table, band, "href")


def asset_field(table: pa.Table, band: str, name: str) -> list[Any]:
    """``assets[band][name]`` of every row (``None`` where absent).

    ``assets`` is a struct of per-band structs (or of plain href strings, which give
    ``href`` and nothing else), or a map of band → struct.
    """
    if "assets" not in table.column_names:
        raise CollectionSchemaError("collection has no 'assets' column")
    assets = table["assets"].combine_chunks()
    kind = assets.type
    if pa.types.is_struct(kind):
        if kind.get_field_index(band) < 0:
            return [None] * len(table)
        entry = pc.struct_field(assets, band)  # null where the row's assets are null
        if pa.types.is_struct(entry.type):
            if entry.type.get_field_index(name) < 0:
                return [None] * len(table)
            return pc.struct_field(entry, name).to_pylist()
        return entry.to_pylist() if name == "href" else [None] * len(table)  # a plain href
    if pa.types.is_map(kind):
        result: list[Any] = []
        for value in assets.to_pylist():
            found = dict(value or ()).get(band)
            if isinstance(found, dict):
                result.append(found.get(name))
            else:
                result.append(found if name == "href" else None)
        return result
    raise CollectionSchemaError(f"'assets' column must be a struct or map, got {kind}")


def distinct_asset_hrefs(table: pa.Table, bands: list[str] | tuple[str, ...]) -> list[str]:
    """The distinct non-null hrefs of ``bands``, in band then table order."""
    urls: dict[str, None] = {}
    for band in bands:
        for href in asset_hrefs(table, band):
            if href is not None:
                urls[href] = None
    return list(urls)
