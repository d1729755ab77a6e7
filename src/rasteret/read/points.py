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

then, with ``max_distance_pixels=N > 0``::

    pixel_row int64, pixel_col int64, distance_pixels int32, distance float64

(the record's pixel whose value is ``value``; its Chebyshev distance from the point's
own pixel and the distance, in the raster CRS's units, from the point to its footprint;
both null when no valid pixel lies within ``N`` pixels: ``value`` is then the point's
own pixel, as without a search), then, with ``return_neighbourhood`` other than
``"off"``, ``neighbourhood_values fixed_size_list<float64>[(2N+1)²]`` (the window
centred on the point's own pixel, row-major; an element is null where the pixel is
outside the raster or not valid; the whole list is null on rows whose own pixel is
valid with ``"if_center_nodata"``), then the point table's other columns (taken by
``point_index``), and ``valid`` (bool: not nodata / NaN / masked) when
``with_mask=True``. ``value`` stays float64 as in the original: every integer up to
2**53 and every float32 is exact in float64, and one column holds bands of different
dtypes. Points outside a record's grid give no row. Rows are ordered by point, then
record time (datetime, id), then band.

The nearest-valid-pixel rule (ring, then distance, then ring scan order) is defined in
:mod:`rasteret.read.points_search`. Reads: the tiles holding points first; then, in a
second batch, only the tiles under the windows of points whose own pixel is not valid
(``return_neighbourhood="always"``: the windows' tiles of every point, in one batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from rasteret._pages import small_pages
from rasteret._progress import ProgressOption
from rasteret.fetch import RangeReader
from rasteret.geo.transform import crs_epsg, transform_points
from rasteret.index import CollectionTable
from rasteret.index.columns import datetimes, record_ids
from rasteret.index.failed import OnFailedAsset, check_indexed
from rasteret.read.geometry_inputs import point_coordinates
from rasteret.read.points_search import (
    BandTiles,
    TileGroups,
    fetch_tiles,
    gather,
    search,
    window_offsets,
    window_tiles,
)
from rasteret.read.selection import apply_filters, band_names, time_ordered_rows
from rasteret.read.stacks import BandSource, StoreIndex, read_progress

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

Neighbourhood = Literal["off", "always", "if_center_nodata"]
NEIGHBOURHOOD_MODES: tuple[str, ...] = ("off", "always", "if_center_nodata")


@small_pages
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
    max_distance_pixels: int = 0,
    return_neighbourhood: Neighbourhood = "off",
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    progress: ProgressOption = None,
    **filters: Any,
) -> pa.Table:
    """Values of ``bands`` at ``points`` for every record whose grid holds them.

    ``points``: Shapely points, WKB, ``(x, y)`` tuples, an ``(N, 2)`` array, an Arrow
    table / array of GeoArrow points or WKB, or a table with ``x_column`` / ``y_column``
    (``geometry_crs`` then required). ``match="latest"`` keeps, per (point, band), the
    newest record whose pixel there is valid (else the newest record covering the
    point). ``max_distance_pixels=N``: where the point's pixel is not valid, take the
    nearest valid pixel within ``N`` pixels (rule: :mod:`rasteret.read.points_search`).
    ``return_neighbourhood``: also return the ``(2N+1)²`` window values, for every row
    (``"always"``) or only where the point's pixel is not valid (``"if_center_nodata"``);
    needs ``N > 0``. ``progress``: ``True`` / ``False`` / ``callable(done, total)`` in
    tiles, as :func:`rasteret.read.get_numpy`'s; ``total`` is the tiles holding points
    (the extra tiles of a nearest-valid search are not counted). See the module docs for
    the output schema.
    """
    if match not in ("all", "latest"):
        raise ValueError(f"match={match!r}: use 'all' or 'latest'")
    radius = _check_search(max_distance_pixels, return_neighbourhood)
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
    located: dict[tuple[Any, ...], _Located | None] = {}
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
            if found is not None:
                parts.append(_Part(rank, int(row), b, found, BandTiles(src)))

    search_mode = _SearchMode(radius, return_neighbourhood)
    with read_progress(progress):  # total: the first batch (the tiles holding points)
        fetch_tiles(index, [(p.tiles, search_mode.first_tiles(p)) for p in parts])
        for part in parts:
            part.sample_centres()
        if radius:
            fetch_tiles(index, [(p.tiles, search_mode.window_tiles(p)) for p in parts])
            for part in parts:
                part.search(search_mode)

    cat = _concatenate(parts, search_mode)
    order = _output_order(cat["point"], cat["rank"], cat["band"], len(x), len(rows), len(band_list))
    cat = {k: v[order] for k, v in cat.items()}
    if match == "latest":
        cat = _latest(cat)
    table = _table(cat, x, y, crs, index, ids, names, band_list, collection)
    return _append_columns(table, cat, search_mode, attributes, with_mask)


def _check_search(max_distance_pixels: Any, return_neighbourhood: Any) -> int:
    """Validate the search options (upstream's rules); return the radius."""
    if isinstance(max_distance_pixels, bool) or not isinstance(
        max_distance_pixels, int | np.integer
    ):
        raise TypeError(
            f"max_distance_pixels={max_distance_pixels!r}: must be an int (pixels), not "
            f"{type(max_distance_pixels).__name__}"
        )
    if max_distance_pixels < 0:
        raise ValueError(f"max_distance_pixels={max_distance_pixels}: must be >= 0")
    if return_neighbourhood not in NEIGHBOURHOOD_MODES:
        raise ValueError(
            f"return_neighbourhood={return_neighbourhood!r}: use one of {NEIGHBOURHOOD_MODES}"
        )
    if return_neighbourhood != "off" and max_distance_pixels == 0:
        raise ValueError(
            f"return_neighbourhood={return_neighbourhood!r} needs max_distance_pixels > 0 "
            "(the window is (2 * max_distance_pixels + 1) pixels square)"
        )
    return int(max_distance_pixels)


@dataclass(frozen=True)
class _Located:
    """Points inside one grid: indices, pixel (row, col), fractional pixel position and
    their grouping by tile."""

    which: np.ndarray
    r: np.ndarray
    c: np.ndarray
    frac_r: np.ndarray
    frac_c: np.ndarray
    groups: TileGroups


@dataclass(frozen=True)
class _SearchMode:
    radius: int
    neighbourhood: Neighbourhood

    @property
    def windows(self) -> bool:
        return self.neighbourhood != "off"

    def first_tiles(self, part: _Part) -> np.ndarray:
        """Tiles of the first batch: those holding points (and with ``"always"`` every
        tile under the windows, which are all needed: one batch instead of two)."""
        at = part.at
        if self.neighbourhood == "always":
            return window_tiles(part.tiles, at.r, at.c, self.radius)
        return at.groups.tiles

    def searched(self, part: _Part) -> np.ndarray:
        """Points of ``part`` whose window is needed (boolean)."""
        if self.neighbourhood == "always":
            return np.ones(part.at.r.size, bool)
        return ~part.centre_valid

    def window_tiles(self, part: _Part) -> np.ndarray:
        need = self.searched(part)
        return window_tiles(part.tiles, part.at.r[need], part.at.c[need], self.radius)


class _Part:
    """Points of one (record, band): pixels, values and the pixel each value comes from."""

    def __init__(self, rank: int, row: int, band: int, at: _Located, tiles: BandTiles) -> None:
        self.rank, self.row, self.band, self.at, self.tiles = rank, row, band, at, tiles
        n = at.which.size
        self.values = np.empty(n, np.float64)
        self.valid = np.empty(n, bool)
        self.centre_valid = self.valid
        self.pixel_row, self.pixel_col = at.r, at.c
        self.ring = np.zeros(n, np.int64)
        self.distance = np.zeros(n, np.float64)
        self.windows: np.ndarray | None = None
        self.has_window = np.zeros(n, bool)

    def sample_centres(self) -> None:
        self.values, self.valid = gather(self.tiles, self.at.r, self.at.c, self.at.groups)
        self.centre_valid = self.valid

    def search(self, mode: _SearchMode) -> None:
        at, need = self.at, mode.searched(self)
        found = search(
            self.tiles,
            at.r[need],
            at.c[need],
            at.frac_r[need],
            at.frac_c[need],
            mode.radius,
            with_windows=mode.windows,
        )
        self.values, self.valid = self.values.copy(), self.valid.copy()
        self.pixel_row, self.pixel_col = at.r.copy(), at.c.copy()
        self.values[need], self.valid[need] = found.value, found.valid
        self.pixel_row[need], self.pixel_col[need] = found.row, found.col
        self.ring = np.where(self.centre_valid, 0, -1)
        self.distance = np.where(self.centre_valid, 0.0, np.nan)
        self.ring[need], self.distance[need] = found.ring, found.distance
        if found.windows is not None:
            self.windows = np.full((at.which.size, found.windows.shape[1]), np.nan)
            self.windows[need] = found.windows
            self.has_window = need


_COLUMN_DTYPES: dict[str, type] = {
    "point": np.int64,
    "rank": np.int64,
    "row": np.int64,
    "band": np.int32,
    "value": np.float64,
    "valid": np.bool_,
}
_SEARCH_DTYPES: dict[str, type] = {
    "pixel_row": np.int64,
    "pixel_col": np.int64,
    "ring": np.int64,
    "distance": np.float64,
}


def _concatenate(parts: list[_Part], mode: _SearchMode) -> dict[str, np.ndarray]:
    """One array per output column over every part (empty arrays when there is none)."""
    columns: dict[str, list[np.ndarray]] = {
        "point": [p.at.which for p in parts],
        "rank": [np.full(p.at.which.size, p.rank, np.int64) for p in parts],
        "row": [np.full(p.at.which.size, p.row, np.int64) for p in parts],
        "band": [np.full(p.at.which.size, p.band, np.int32) for p in parts],
        "value": [p.values for p in parts],
        "valid": [p.valid for p in parts],
    }
    dtypes = dict(_COLUMN_DTYPES)
    if mode.radius:
        columns["pixel_row"] = [p.pixel_row for p in parts]
        columns["pixel_col"] = [p.pixel_col for p in parts]
        columns["ring"] = [p.ring for p in parts]
        columns["distance"] = [p.distance for p in parts]
        dtypes |= _SEARCH_DTYPES
    if not parts:
        empty = {k: np.empty(0, dtype) for k, dtype in dtypes.items()}
        if mode.windows:
            empty["windows"] = np.empty((0, window_offsets(mode.radius).size), np.float64)
            empty["has_window"] = np.empty(0, bool)
        return empty
    if mode.windows:  # set by _Part.search (a window needs a radius: always searched)
        columns["windows"] = [p.windows for p in parts if p.windows is not None]
        columns["has_window"] = [p.has_window for p in parts]
    return {k: np.concatenate(v) for k, v in columns.items()}


def _locate(px: np.ndarray, py: np.ndarray, src: BandSource) -> _Located | None:
    """Points inside ``src``'s grid (``None`` when there is none)."""
    frac_c, frac_r = _pixel(px, py, src.transform)
    cols, rows = _floor(frac_c), _floor(frac_r)
    inside = (cols >= 0) & (rows >= 0) & (cols < src.width) & (rows < src.height)
    which = np.flatnonzero(inside)
    if which.size == 0:
        return None
    r, c = rows[which], cols[which]
    tiles = BandTiles(src)
    groups = TileGroups.of(tiles.tile_ids(r, c))
    return _Located(which, r, c, frac_r[which], frac_c[which], groups)


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
    """The inverse affine: fractional ``(cols, rows)`` of the points; NaN where not finite."""
    a, b, c, d, e, f = transform
    det = a * e - b * d
    dx, dy = x - c, y - f
    cols = (e * dx - b * dy) / det
    rows = (a * dy - d * dx) / det
    ok = np.isfinite(cols) & np.isfinite(rows)
    return np.where(ok, cols, np.nan), np.where(ok, rows, np.nan)


def _floor(values: np.ndarray) -> np.ndarray:
    """``floor`` as int64 (rasterio's ``index`` / ``sample``); -1 where NaN."""
    return np.where(np.isnan(values), -1, np.floor(values)).astype(np.int64)


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
) -> pa.Table:
    """The :data:`POINT_SAMPLES_SCHEMA` columns of the rows ``cat``."""
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
    return pa.table(columns, schema=POINT_SAMPLES_SCHEMA)


def _append_columns(
    table: pa.Table,
    cat: dict[str, np.ndarray],
    mode: _SearchMode,
    attributes: pa.Table | None,
    with_mask: bool,
) -> pa.Table:
    """The search columns, the window, the point table's columns, then ``valid``."""
    if mode.radius:
        found = cat["ring"] >= 0
        table = table.append_column("pixel_row", pa.array(cat["pixel_row"], pa.int64()))
        table = table.append_column("pixel_col", pa.array(cat["pixel_col"], pa.int64()))
        ring = pa.array(cat["ring"].astype(np.int32), pa.int32(), mask=~found)
        table = table.append_column("distance_pixels", ring)
        distance = pa.array(cat["distance"], pa.float64(), mask=~found)
        table = table.append_column("distance", distance)
    if mode.windows:
        windows = cat["windows"]
        cells = pa.array(windows.reshape(-1), pa.float64(), mask=np.isnan(windows.reshape(-1)))
        lists = pa.FixedSizeListArray.from_arrays(
            cells, windows.shape[1], mask=pa.array(~cat["has_window"], pa.bool_())
        )
        table = table.append_column("neighbourhood_values", lists)
    if attributes is not None and attributes.num_columns:
        extra = attributes.take(pa.array(cat["point"]))
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
