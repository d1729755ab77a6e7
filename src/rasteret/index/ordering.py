"""The order an export writes records in: month, then place, then time.

Records are sorted by the calendar month of ``datetime`` (UTC), then by the position of
their footprint's centre (the ``bbox`` covering) along a Hilbert curve over lon/lat
(:data:`HILBERT_ORDER` bits a side), then by ``datetime`` and ``id``. A row group then
holds records that are close in time *and* in space, so the row-group statistics of
``datetime`` and of the ``bbox`` fields prune the usual selection — one place over a few
months — to about one row group per month (sorted by time alone, the records of one
place are spread over every row group of those months).

Records without a ``datetime`` come last; within a month, records without a ``bbox``
come after those with one. A table without ``datetime`` / ``bbox`` / ``id`` is sorted
by the keys it has.

The disk order is not the order users see: a loaded collection lists its records by
``datetime`` then ``id`` (:func:`time_order`, applied to the selected rows as they are
read), as the exported table did.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Bits per axis of the Hilbert curve (a 2^16 × 2^16 lon/lat grid: ~600 m cells).
HILBERT_ORDER = 16


def hilbert_index(x: np.ndarray, y: np.ndarray, order: int = HILBERT_ORDER) -> np.ndarray:
    """Distance along a Hilbert curve of the integer cells ``x``, ``y`` (each in
    ``[0, 2**order)``), vectorised (the classic xy→d walk, one bit per step)."""
    side = np.uint64(1 << order)
    x = x.astype(np.uint64, copy=True)
    y = y.astype(np.uint64, copy=True)
    d = np.zeros(x.shape, dtype=np.uint64)
    s = side >> np.uint64(1)
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((np.uint64(3) * rx.astype(np.uint64)) ^ ry.astype(np.uint64))
        flip = ~ry & rx  # rotate the quadrant so the curve stays continuous
        x = np.where(flip, side - np.uint64(1) - x, x)
        y = np.where(flip, side - np.uint64(1) - y, y)
        swap = ~ry
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s >>= np.uint64(1)
    return d


def place_keys(bbox: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Hilbert index of each ``bbox`` centre (lon/lat; clamped to the globe), null where
    the bbox or one of its fields is null."""
    fields = [pc.struct_field(bbox, key) for key in ("xmin", "ymin", "xmax", "ymax")]
    xmin, ymin, xmax, ymax = (
        np.asarray(pc.fill_null(f.cast(pa.float64()), np.nan), dtype=np.float64) for f in fields
    )
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    missing = ~(np.isfinite(cx) & np.isfinite(cy))
    cells = (1 << HILBERT_ORDER) - 1
    gx = np.clip(np.nan_to_num((cx + 180.0) / 360.0), 0.0, 1.0) * cells
    gy = np.clip(np.nan_to_num((cy + 90.0) / 180.0), 0.0, 1.0) * cells
    keys = hilbert_index(gx.astype(np.uint64), gy.astype(np.uint64))
    return pa.array(keys, pa.uint64(), mask=missing)


def sort_indices(table: pa.Table) -> pa.Array:
    """Row order of ``table``: month, place, ``datetime``, ``id`` (see the module docs)."""
    keys: dict[str, pa.Array | pa.ChunkedArray] = {}
    names = table.column_names
    if "datetime" in names:
        times = table["datetime"]
        keys["month"] = pc.add(
            pc.multiply(pc.year(times).cast(pa.int32()), 12), pc.month(times).cast(pa.int32())
        )
    if "bbox" in names and pa.types.is_struct(table.schema.field("bbox").type):
        keys["place"] = place_keys(table["bbox"])
    if "datetime" in names:
        keys["datetime"] = table["datetime"]
    if "id" in names:
        keys["id"] = table["id"]
    return pc.sort_indices(
        pa.table(keys), sort_keys=[(name, "ascending", "at_end") for name in keys]
    )


def time_order(table: pa.Table) -> pa.Table:
    """``table`` by ``datetime`` then ``id`` (stable; nulls last): the order a loaded
    collection lists its records in, whatever the order on disk."""
    keys = [name for name in ("datetime", "id") if name in table.column_names]
    if not keys or table.num_rows < 2:
        return table
    order = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_end") for k in keys])
    if np.array_equal(order.to_numpy(), np.arange(table.num_rows)):
        return table  # already in order: no copy (the chunks stay as read)
    return table.take(order)


def sort_records(table: pa.Table) -> pa.Table:
    """``table`` in export order (month, place, time; see the module docs)."""
    if table.num_rows < 2 or not {"datetime", "bbox", "id"} & set(table.column_names):
        return table
    return table.take(sort_indices(table))
