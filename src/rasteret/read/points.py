"""``sample_points``: band values at points, reading only the tiles that hold points.

Vectorised: points are projected once per raster CRS, located with the inverse affine
(``floor``, as ``rasterio``'s ``sample``), grouped by (record, tile) with NumPy, and
each tile holding points is read once through the virtual store (all tiles of all
records in one concurrent batch, coalesced per file by the fetch layer). Python work
is per tile, never per point.

Output: an Arrow table with the original schema (column order kept)::

    point_index int64, point_x float64, point_y float64, point_crs int32,
    record_id string, datetime timestamp[us], collection string, band string,
    value float64, raster_crs int32

then the point table's other columns (taken by ``point_index``), and ``valid`` (bool:
not nodata / masked) when ``with_mask=True``. ``value`` stays float64 as in the original:
every integer up to 2**53 and every float32 is exact in float64, and one column holds
bands of different dtypes. Points outside a record's grid give no row. Rows are ordered
by point, then record time (datetime, id), then band.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from rasteret.fetch import RangeReader
from rasteret.geo.transform import crs_epsg, transform_points
from rasteret.geo.window import Window
from rasteret.index import CollectionTable
from rasteret.index.columns import datetimes, record_ids
from rasteret.index.failed import OnFailedAsset, check_indexed
from rasteret.read.geometry import point_coordinates
from rasteret.read.radiometry import valid_mask
from rasteret.read.selection import apply_filters, band_names, time_ordered_rows
from rasteret.read.stacks import StoreIndex, WindowRequest, read_windows

POINT_SAMPLES_SCHEMA = pa.schema(
    [
        pa.field("point_index", pa.int64(), nullable=False),
        pa.field("point_x", pa.float64(), nullable=False),
        pa.field("point_y", pa.float64(), nullable=False),
        pa.field("point_crs", pa.int32()),
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("datetime", pa.timestamp("us")),
        pa.field("collection", pa.string(), nullable=False),
        pa.field("band", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("raster_crs", pa.int32()),
    ]
)


def sample_points(
    collection: CollectionTable,
    points: Any,
    bands: str | Sequence[str],
    *,
    geometry_crs: Any = "auto",
    geometry_column: str | None = None,
    x_column: str | None = None,
    y_column: str | None = None,
    match: Literal["all", "latest"] = "all",
    with_mask: bool = False,
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    **filters: Any,
) -> pa.Table:
    """Values of ``bands`` at ``points`` for every record whose grid holds them.

    ``points``: Shapely points, WKB, ``(x, y)`` tuples, an ``(N, 2)`` array, an Arrow
    table / array of GeoArrow points or WKB, or a table with ``x_column`` / ``y_column``
    (``geometry_crs`` then required). ``match="latest"`` keeps, per (point, band), the
    newest record whose pixel there is valid (else the newest record covering the
    point). See the module docs for the output schema.
    """
    if match not in ("all", "latest"):
        raise ValueError(f"match={match!r}: use 'all' or 'latest'")
    collection = apply_filters(collection, filters)
    band_list, _ = band_names(collection, bands)
    collection = check_indexed(collection, band_list, errors)
    x, y, crs, attributes = point_coordinates(
        points,
        geometry_crs=geometry_crs,
        geometry_column=geometry_column,
        x_column=x_column,
        y_column=y_column,
    )
    index = StoreIndex(collection, band_list, reader=reader)
    rows = time_ordered_rows(collection)
    ids = record_ids(collection.table)
    names = _collection_names(collection)
    projected: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    parts: list[_Part] = []  # one per (record, band) with points inside
    requests: list[WindowRequest] = []
    located: dict[tuple[Any, ...], tuple[np.ndarray, ...] | None] = {}
    for rank, row in enumerate(rows):
        for b, band in enumerate(band_list):
            src = index.source(band, int(row))
            if src is None:
                continue
            if src.crs_key not in projected:
                projected[src.crs_key] = transform_points(x, y, crs, index.crs(src))
            grid_key = (src.crs_key, src.transform, src.width, src.height, src.block_shape)
            if grid_key not in located:  # bands / dates on one grid share the point sort
                located[grid_key] = _locate(*projected[src.crs_key], src)
            found = located[grid_key]
            if found is None:
                continue
            which, r, c, tiles, starts = found
            th, tw = src.block_shape
            parts.append(_Part(rank, int(row), b, src, which, r, c, starts, len(requests)))
            tiles_across = -(-src.width // tw)
            for t in tiles:
                ti, tj = divmod(int(t), tiles_across)
                r0, c0 = ti * th, tj * tw
                tile = Window(r0, c0, min(th, src.height - r0), min(tw, src.width - c0))
                requests.append(WindowRequest(src.path, src.t, tile))
                if src.mask_array is not None:
                    requests.append(WindowRequest(f"{src.group}/{src.mask_array}", src.t, tile))
    arrays = read_windows(index, requests)

    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("point", "rank", "band", "value")}
    columns["valid"], columns["row"] = [], []
    for part in parts:
        values, valid = part.values(arrays)
        columns["point"].append(part.which)
        columns["rank"].append(np.full(part.which.size, part.rank, np.int64))
        columns["row"].append(np.full(part.which.size, part.row, np.int64))
        columns["band"].append(np.full(part.which.size, part.band, np.int32))
        columns["value"].append(values)
        columns["valid"].append(valid)
    if parts:
        cat = {k: np.concatenate(v) for k, v in columns.items()}
    else:
        cat = {
            "point": np.empty(0, np.int64),
            "rank": np.empty(0, np.int64),
            "row": np.empty(0, np.int64),
            "band": np.empty(0, np.int32),
            "value": np.empty(0, np.float64),
            "valid": np.empty(0, bool),
        }
    order = _output_order(cat["point"], cat["rank"], cat["band"], len(x), len(rows), len(band_list))
    cat = {k: v[order] for k, v in cat.items()}
    if match == "latest":
        cat = _latest(cat)
    return _table(cat, x, y, crs, index, ids, names, band_list, collection, attributes, with_mask)


class _Part:
    """Points of one (record, band): point indices sorted by tile, and their pixels."""

    def __init__(
        self,
        rank: int,
        row: int,
        band: int,
        src: Any,
        which: np.ndarray,
        r: np.ndarray,
        c: np.ndarray,
        starts: np.ndarray,
        first_request: int,
    ) -> None:
        self.rank, self.row, self.band, self.src = rank, row, band, src
        self.which, self.r, self.c, self.starts = which, r, c, starts
        self.first_request = first_request

    def values(self, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        src = self.src
        th, tw = src.block_shape
        step = 2 if src.mask_array is not None else 1
        values = np.empty(self.which.size, np.float64)
        valid = np.empty(self.which.size, bool)
        bounds = [*list(self.starts), self.which.size]
        for k in range(len(self.starts)):
            lo, hi = bounds[k], bounds[k + 1]
            tile = arrays[self.first_request + k * step]
            internal = arrays[self.first_request + k * step + 1] if step == 2 else None
            rr = self.r[lo:hi] % th
            cc = self.c[lo:hi] % tw
            picked = tile[rr, cc]
            values[lo:hi] = picked
            mask = None if internal is None else internal[rr, cc]
            valid[lo:hi] = valid_mask(picked, src.nodata, mask)
        return values, valid


def _locate(px: np.ndarray, py: np.ndarray, src: Any) -> tuple[np.ndarray, ...] | None:
    """Points inside ``src``'s grid sorted by tile: (point indices, rows, cols, tiles, starts)."""
    cols, rrows = _pixel(px, py, src.transform)
    inside = (cols >= 0) & (rrows >= 0) & (cols < src.width) & (rrows < src.height)
    which = np.flatnonzero(inside)
    if which.size == 0:
        return None
    th, tw = src.block_shape
    r, c = rrows[which], cols[which]
    tile = (r // th) * (-(-src.width // tw)) + (c // tw)
    order = np.argsort(tile, kind="stable")
    which, r, c, tile = which[order], r[order], c[order], tile[order]
    starts = np.flatnonzero(np.r_[True, tile[1:] != tile[:-1]])
    return which, r, c, tile[starts], starts


def _output_order(
    point: np.ndarray, rank: np.ndarray, band: np.ndarray, n_points: int, n_ranks: int, n_bands: int
) -> np.ndarray:
    """Row order by (point, record rank, band): a dense scatter when it fits, else a sort."""
    per_point = max(1, n_ranks * n_bands)
    key = point * per_point + rank * n_bands + band
    if n_points * per_point <= 4 * max(point.size, 1) + 50_000_000:
        slots = np.full(n_points * per_point, -1, dtype=np.int64)
        slots[key] = np.arange(point.size)
        return slots[slots >= 0]
    return np.argsort(key, kind="stable")


def _pixel(x: np.ndarray, y: np.ndarray, transform: Sequence[float]) -> tuple[np.ndarray, ...]:
    """``floor`` of the inverse affine (rasterio's ``index`` / ``sample``); -1 where not finite."""
    a, b, c, d, e, f = transform
    det = a * e - b * d
    dx, dy = x - c, y - f
    cols = (e * dx - b * dy) / det
    rows = (a * dy - d * dx) / det
    ok = np.isfinite(cols) & np.isfinite(rows)
    cols = np.where(ok, np.floor(cols), -1).astype(np.int64)
    rows = np.where(ok, np.floor(rows), -1).astype(np.int64)
    return cols, rows


def _latest(cat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per (point, band): the newest valid row, else the newest row."""
    key = cat["point"] * 65536 + cat["band"]
    # rows are sorted by (point, rank, band); prefer valid, then highest rank
    order = np.lexsort((cat["rank"], cat["valid"], key))
    last = np.r_[key[order][1:] != key[order][:-1], True]
    keep = np.sort(order[last])
    cat = {k: v[keep] for k, v in cat.items()}
    order = np.lexsort((cat["band"], cat["point"]))
    return {k: v[order] for k, v in cat.items()}


def _collection_names(collection: CollectionTable) -> list[str]:
    table = collection.table
    if "collection" in table.column_names:
        values = table["collection"].cast("string").to_pylist()
        default = collection.data_source or collection.name or ""
        return [v if v is not None else default for v in values]
    return [collection.data_source or collection.name or ""] * len(table)


def _table(
    cat: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    crs: Any,
    index: StoreIndex,
    ids: list[str],
    names: list[str],
    bands: list[str],
    collection: CollectionTable,
    attributes: pa.Table | None,
    with_mask: bool,
) -> pa.Table:
    n = cat["point"].size
    point = cat["point"]
    row = cat["row"]
    raster_epsg = np.array([_epsg_of(index, r, bands) for r in range(len(ids))], np.float64)
    point_epsg = crs_epsg(crs)
    times = datetimes(collection.table["datetime"])
    row_idx = pa.array(row.astype(np.int32))
    columns = {
        "point_index": pa.array(point, pa.int64()),
        "point_x": pa.array(x[point], pa.float64()),
        "point_y": pa.array(y[point], pa.float64()),
        "point_crs": pa.array(
            np.full(n, point_epsg or 0, np.int32), pa.int32(), mask=np.full(n, point_epsg is None)
        ),
        "record_id": pa.array(ids, pa.string()).take(row_idx),
        "datetime": pa.array(times[row].astype("datetime64[us]"), pa.timestamp("us")),
        "collection": pa.array(names, pa.string()).take(row_idx),
        "band": pa.array(bands, pa.string()).take(pa.array(cat["band"])),
        "value": pa.array(cat["value"], pa.float64()),
        "raster_crs": _nullable_int32(raster_epsg[row] if n else np.empty(0)),
    }
    table = pa.table(columns, schema=POINT_SAMPLES_SCHEMA)
    if attributes is not None and attributes.num_columns:
        extra = attributes.take(pa.array(point))
        for name in extra.column_names:
            if name in table.column_names:
                raise ValueError(f"point table column {name!r} collides with an output column")
            table = table.append_column(name, extra[name])
    if with_mask:
        table = table.append_column("valid", pa.array(cat["valid"], pa.bool_()))
    return table


def _epsg_of(index: StoreIndex, row: int, bands: list[str]) -> float:
    for band in bands:
        src = index.source(band, row)
        if src is not None:
            if src.crs_key.startswith("EPSG:"):
                return float(src.crs_key[5:])
            code = crs_epsg(index.crs(src))
            return float(code) if code is not None else np.nan
    return np.nan


def _nullable_int32(values: np.ndarray) -> pa.Array:
    missing = np.isnan(values)
    return pa.array(np.where(missing, 0, values).astype(np.int32), pa.int32(), mask=missing)
