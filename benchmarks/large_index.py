"""Generate realistic large Sentinel-2 collection tables (10^4..10^6 records) for benchmarks.

    python benchmarks/large_index.py --records 200000 --bands 3 --out /tmp/s2.parquet
    python benchmarks/large_index.py --records 200000 --bands 3 --out /tmp/s2.parquet --chunks 200
    python benchmarks/large_index.py --records 1000000 --bands 13 --out /tmp/s2_dir --hive
    python benchmarks/large_index.py --records 10000 --size 1024 --tile 256 --out /tmp/x.parquet

Contract. The output is a valid rasteret collection: every batch passes
``rasteret.index.validate_table`` (schema and content checks), ``rasteret.load(out)``
accepts the file or directory, and no pixel file exists (every ``href`` points at a
made-up ``sentinel-cogs`` object: open lazily, never compute). The table is built
column-wise with numpy + Arrow (no Python object per record) and produced in bounded
batches, so memory stays at one batch (a few hundred MB) whatever ``--records`` is.

What the records look like (Sentinel-2 L2A-style COGs, one file per band):

* bands: ``--bands 3`` is B02, B03, B04; ``--bands 13`` the 13 MSI bands B01..B12 + B8A
  (B10 included, as in L1C); a comma list picks any of them. Native sizes at the default
  ``--size 10980``: 10 m bands 10980 px (11 x 11 tiles of 1024 px), 20 m bands 5490 px
  (6 x 6), 60 m bands 1830 px (2 x 2). ``--size`` is the 10 m bands' width; the others
  scale with their resolution and every band keeps the 109.8 km extent of an MGRS tile
  (so ``--size 1024`` gives 107.2 m pixels).
* encoding: uint16, DEFLATE (8), predictor 2, nodata 0, little-endian, tiled; overviews as
  GDAL's COG driver makes them (halving, rounding up, until a level fits in one tile;
  at most ``--overviews``, default 4: 4 levels at 10 m, 3 at 20 m, 1 at 60 m); no mask.
* block arrays: one offset / byte count per tile of every level, laid out as GDAL writes a
  COG (header + IFDs first, then the smallest overview's tiles ... the full resolution
  last, each tile between a 4-byte leader and trailer), so offsets are distinct and
  increasing within a file and differ between records; byte counts 300-900 KB per
  1024^2 tile (scaled to the tile area), smaller for edge tiles, cloudy scenes compress
  better, ~2 KB for tiles outside the swath (30% of records have a swath edge);
  ``file_size`` is the end of the last tile; an S3-style multipart ``etag`` and an
  HTTP-date ``last_modified`` per file.
* georeferencing: MGRS-like tiles drawn over land-ish regions (Europe, the Americas,
  Africa, Asia, Australia), in their UTM zone (EPSG:326zz north / 327zz south), snapped
  to the 100 km grid like Sentinel-2 tiles (60 m-aligned origins); ``transform``,
  ``pixel_scale``, ``tiepoint``, ``epsg`` and the full WKT2_2019 ``crs_wkt`` per band (as
  rasteret's header reader stores it; ``--no-crs-wkt`` leaves it null to measure its
  cost); ``geometry`` is the tile's footprint in lon/lat (WKB polygon) and ``bbox`` its
  bounds; ``proj:epsg`` / ``crs`` record columns.
* records: one acquisition per tile every 5 days between 2018-01-01 and 2025-12-31
  (``--start`` / ``--end``) at ~10:30 local solar time (``--records`` drawn from that
  pool, so some acquisitions are missing); ``--tiles`` defaults to as many tiles as the
  records need (at least 16). Ids like ``S2A_33UUP_20240105_0_L2A``, sorted by datetime;
  ``eo:cloud_cover`` (bimodal, 0-100), ``platform``, ``grid:code``, ``collection`` and a
  per-tile ``split`` (train / val / test, 70 / 15 / 15).

Chunks. ``--chunks N`` delivers the table as N appended pieces (an index assembled from N
small appends): the generator yields batches that never cross a chunk boundary and the
writer writes every batch as its own Parquet row group, so ``pyarrow.parquet.read_table``
(and ``rasteret.load``) return N-chunk columns. A chunk longer than ``--batch-rows`` is
split further (more row groups). The content does not depend on the chunking or the batch
size: random values come from per-block generators (1024 records) keyed by ``--seed``.

Output. A path ending in ``.parquet`` is one file; ``--hive`` writes a
``year=YYYY/month=M/part-0.parquet`` directory with the layout, ZSTD level 3 compression
and schema metadata (``name``, ``date_range``, ``geo``, ``rasteret_collection_version``,
``rasteret_partitioning``, ...) of ``rasteret.index.parquet_write.write_collection_table``, but
written batch by batch. The command prints rows, bytes on disk and bytes per record.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rasteret.index.schema import (
    ASSET_TYPE,
    BAND_METADATA_TYPE,
    BBOX_TYPE,
    IMAGE_LEVEL_TYPE,
    MASK_TYPE,
    metadata_column,
)

#: Sentinel-2 MSI bands and their native resolution (m), in the usual order.
S2_BANDS: dict[str, int] = {
    "B01": 60,
    "B02": 10,
    "B03": 10,
    "B04": 10,
    "B05": 20,
    "B06": 20,
    "B07": 20,
    "B08": 10,
    "B8A": 20,
    "B09": 60,
    "B10": 60,
    "B11": 20,
    "B12": 20,
}
BANDS_3: tuple[str, ...] = ("B02", "B03", "B04")
BANDS_13: tuple[str, ...] = tuple(S2_BANDS)

TILE_EXTENT = 109_800.0  # metres: a Sentinel-2 tile (100 km MGRS square + 9.8 km overlap)
START = dt.date(2018, 1, 1)
END = dt.date(2025, 12, 31)  # inclusive
REVISIT_DAYS = 5
BLOCK = 1024  # records per random block (content independent of batch boundaries)
SWATH_EDGE_SHARE = 0.3  # records whose tile is cut by the orbit's swath edge
SPLITS = (("train", 0.7), ("val", 0.15), ("test", 0.15))
HREF_ROOT = "https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/"
COLLECTION = "sentinel-2-l2a"
ROW_GROUP_ROWS = 50_000  # rasteret.index.parquet_write.ROW_GROUP_SIZE
BATCH_BYTES = 384 * 2**20  # target in-memory size of one generated batch

# (lon_min, lon_max, lat_min, lat_max, weight): rough land boxes, away from the antimeridian
LAND_BOXES: tuple[tuple[float, float, float, float, float], ...] = (
    (-10.0, 40.0, 36.0, 70.0, 0.18),  # Europe
    (-125.0, -65.0, 25.0, 60.0, 0.20),  # North America
    (-80.0, -35.0, -55.0, 10.0, 0.15),  # South America
    (-17.0, 50.0, -35.0, 35.0, 0.20),  # Africa
    (40.0, 140.0, 10.0, 55.0, 0.20),  # Asia
    (113.0, 153.0, -39.0, -11.0, 0.07),  # Australia
)
_LAT_BANDS = "CDEFGHJKLMNPQRSTUVWX"  # MGRS latitude bands, 8 degrees from 80 S
_COLUMN_SETS = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")  # MGRS 100 km column letters by zone set
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"


# --------------------------------------------------------------------------- band layouts


@dataclass(frozen=True)
class Level:
    """One image level (full resolution or an overview) of a band's file."""

    width: int
    height: int
    tile: int

    @property
    def across(self) -> int:
        return -(-self.width // self.tile)

    @property
    def down(self) -> int:
        return -(-self.height // self.tile)

    @property
    def tiles(self) -> int:
        return self.across * self.down

    def tile_geometry(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per tile (row-major): image-width fraction of its left / right edge, valid area."""
        col = np.tile(np.arange(self.across), self.down)
        row = np.repeat(np.arange(self.down), self.across)
        x0 = col * self.tile
        x1 = np.minimum(x0 + self.tile, self.width)
        y1 = np.minimum((row + 1) * self.tile, self.height)
        area = (x1 - x0) * (y1 - row * self.tile) / float(self.tile * self.tile)
        return x0 / self.width, x1 / self.width, area


@dataclass(frozen=True)
class BandLayout:
    """The file layout shared by every record of one band."""

    band: str
    resolution: int  # native Sentinel-2 resolution (m), names the group
    levels: tuple[Level, ...]  # full resolution first, then the overviews

    @property
    def full(self) -> Level:
        return self.levels[0]

    @property
    def pixel(self) -> float:
        """Pixel size (m) of the full-resolution image."""
        return TILE_EXTENT / self.full.width

    @property
    def total_tiles(self) -> int:
        return sum(level.tiles for level in self.levels)

    @property
    def header_bytes(self) -> int:
        """TIFF header + GDAL ghost area + IFDs + their tile arrays + GeoTIFF keys."""
        ifds = sum(2 + 14 * 12 + 4 + 8 * level.tiles for level in self.levels)
        return 8 + 400 + ifds + 700

    def write_order(self) -> list[int]:
        """Level indices in file order: smallest overview first, full resolution last."""
        return list(range(len(self.levels)))[::-1]


def band_layout(
    band: str, size: int = 10980, tile: int = 1024, max_overviews: int = 4
) -> BandLayout:
    """The layout of ``band`` when its 10 m siblings are ``size`` px wide."""
    resolution = S2_BANDS[band]
    width = -(-size * 10 // resolution)
    levels = [Level(width, width, tile)]
    w = width
    while w > tile and len(levels) <= max_overviews:
        w = -(-w // 2)
        levels.append(Level(w, w, tile))
    return BandLayout(band, resolution, tuple(levels))


def parse_bands(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"3"`` / ``"13"`` / ``"B04,B08"`` (or a sequence of names) as band names."""
    if not isinstance(value, str):
        names = tuple(value)
    elif value.strip() == "3":
        return BANDS_3
    elif value.strip() == "13":
        return BANDS_13
    else:
        names = tuple(v.strip().upper() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in S2_BANDS]
    if unknown or not names:
        raise ValueError(f"unknown bands {unknown}; choose 3, 13 or names of {list(S2_BANDS)}")
    return names


# --------------------------------------------------------------------------- tiles and plan


@dataclass(frozen=True)
class Tiles:
    """The MGRS-like tiles the records are acquired on (a few thousand at most)."""

    code: np.ndarray  # str, e.g. "33UUP"
    path: np.ndarray  # str, e.g. "33/U/UP" (the sentinel-cogs key prefix)
    epsg: np.ndarray  # int32
    ulx: np.ndarray  # float64, UTM
    uly: np.ndarray
    lon: np.ndarray  # centre, degrees
    wkb: pa.BinaryArray  # footprint polygon, lon/lat
    bbox: np.ndarray  # (n, 4) footprint bounds
    split: np.ndarray  # str


@dataclass(frozen=True)
class Plan:
    """Every record's tile, time and per-record draws, sorted by datetime."""

    tiles: Tiles
    tile: np.ndarray  # int32 tile index per record
    time: np.ndarray  # datetime64[us]
    platform: np.ndarray  # uint8: 0 = S2A, 1 = S2B
    cloud: np.ndarray  # float64 eo:cloud_cover
    swath_cut: np.ndarray  # float64 image-width fraction of the swath edge, NaN = none
    swath_left: np.ndarray  # bool: the empty side is left of the cut
    seed: int

    def __len__(self) -> int:
        return len(self.tile)


def acquisitions_per_tile(
    start: dt.date = START, end: dt.date = END, revisit_days: int = REVISIT_DAYS
) -> int:
    """Acquisitions of one tile between ``start`` and ``end`` (inclusive)."""
    return max(((end - start).days + 1) // revisit_days, 1)


def make_tiles(count: int, seed: int = 0) -> Tiles:
    """``count`` distinct MGRS-like tiles over land (deterministic for ``seed``)."""
    import shapely

    rng = np.random.default_rng([seed, 1])
    boxes = np.array(LAND_BOXES)
    found: dict[str, tuple[int, bool, int, int, float]] = {}
    for _attempt in range(200):
        if len(found) == count:
            break
        draw = max(64, 2 * (count - len(found)))
        which = rng.choice(len(boxes), size=draw, p=boxes[:, 4] / boxes[:, 4].sum())
        lon = rng.uniform(boxes[which, 0], boxes[which, 1])
        lat = np.degrees(  # uniform on the sphere within the box
            np.arcsin(
                rng.uniform(
                    np.sin(np.radians(boxes[which, 2])), np.sin(np.radians(boxes[which, 3]))
                )
            )
        )
        zone = np.clip(((lon + 180.0) // 6).astype(int) + 1, 1, 60)
        south = lat < 0
        east, north = np.zeros(draw), np.zeros(draw)
        for z, s in {(int(z), bool(s)) for z, s in zip(zone, south, strict=True)}:
            sel = np.flatnonzero((zone == z) & (south == s))
            east[sel], north[sel] = _forward(_epsg(z, s)).transform(lon[sel], lat[sel])
        for i in range(draw):  # in draw order: no bias towards any zone
            e_idx, n_idx = int(east[i] // 100_000), int(north[i] // 100_000)
            if not 1 <= e_idx <= 8:
                continue
            code = _mgrs_code(int(zone[i]), lat[i], e_idx, n_idx)
            if code not in found and len(found) < count:
                found[code] = (int(zone[i]), bool(south[i]), e_idx, n_idx, float(lat[i]))
    if len(found) < count:
        raise ValueError(f"found only {len(found)} distinct tiles over land, not {count}")
    codes = list(found)
    zone = np.array([found[c][0] for c in codes])
    south = np.array([found[c][1] for c in codes])
    e_idx = np.array([found[c][2] for c in codes])
    n_idx = np.array([found[c][3] for c in codes])
    ulx = np.floor(e_idx * 100_000 / 60) * 60.0
    uly = np.ceil((n_idx + 1) * 100_000 / 60) * 60.0
    epsg = np.array([_epsg(int(z), bool(s)) for z, s in zip(zone, south, strict=True)])
    polygons, bounds, centre = [], np.zeros((count, 4)), np.zeros(count)
    for i in range(count):
        inverse = _inverse(int(epsg[i]))
        xs = np.array([ulx[i], ulx[i] + TILE_EXTENT, ulx[i] + TILE_EXTENT, ulx[i], ulx[i]])
        ys = np.array([uly[i], uly[i], uly[i] - TILE_EXTENT, uly[i] - TILE_EXTENT, uly[i]])
        lons, lats = inverse.transform(xs, ys)
        polygon = shapely.Polygon(np.column_stack([lons, lats]))
        if not polygon.exterior.is_ccw:
            polygon = polygon.reverse()
        polygons.append(polygon)
        bounds[i] = polygon.bounds
        centre[i] = polygon.centroid.x
    splits = rng.choice([s for s, _ in SPLITS], size=count, p=[p for _, p in SPLITS])
    return Tiles(
        code=np.array(codes),
        path=np.array([f"{c[:2]}/{c[2]}/{c[3:]}" for c in codes]),
        epsg=epsg.astype(np.int32),
        ulx=ulx,
        uly=uly,
        lon=centre,
        wkb=pa.array(shapely.to_wkb(np.array(polygons, dtype=object)), pa.binary()),
        bbox=bounds,
        split=splits,
    )


def _epsg(zone: int, south: bool) -> int:
    return (32700 if south else 32600) + zone


@lru_cache(maxsize=128)
def _forward(epsg: int) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(4326, epsg, always_xy=True)


@lru_cache(maxsize=128)
def _inverse(epsg: int) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(epsg, 4326, always_xy=True)


@lru_cache(maxsize=128)
def crs_wkt(epsg: int) -> str:
    """WKT2_2019 of ``epsg``, as rasteret's GeoTIFF key reader stores it."""
    from pyproj import CRS

    return CRS.from_epsg(epsg).to_wkt("WKT2_2019")


def _mgrs_code(zone: int, lat: float, e_idx: int, n_idx: int) -> str:
    band = _LAT_BANDS[min(max(int((lat + 80) // 8), 0), len(_LAT_BANDS) - 1)]
    column = _COLUMN_SETS[(zone - 1) % 3][e_idx - 1]
    row = _ROW_LETTERS[(n_idx + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{column}{row}"


def plan_records(
    records: int,
    *,
    tiles: int | None = None,
    seed: int = 0,
    start: dt.date = START,
    end: dt.date = END,
    revisit_days: int = REVISIT_DAYS,
) -> Plan:
    """Draw ``records`` acquisitions (tile, datetime, platform, cloud cover, swath edge).

    ``tiles`` defaults to enough tiles for ``records`` 5-day acquisitions between
    ``start`` and ``end`` (2018-2025; at least 16 tiles, at most ``records``).
    """
    if records < 1:
        raise ValueError("records must be >= 1")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    per_tile = acquisitions_per_tile(start, end, revisit_days)
    if tiles is None:
        tiles = max(-(-records // per_tile), min(records, 16))
    if tiles * per_tile < records:
        raise ValueError(
            f"{tiles} tiles x {per_tile} acquisitions hold fewer than {records} records"
        )
    pool = make_tiles(tiles, seed)
    rng = np.random.default_rng([seed, 2])
    chosen = np.sort(rng.choice(tiles * per_tile, size=records, replace=False))
    tile, k = chosen // per_tile, chosen % per_tile
    phase = rng.integers(0, revisit_days, size=tiles)  # days
    minute = rng.uniform(-20, 20, size=tiles)  # datastrip timing within the overpass
    day = phase[tile] + k * revisit_days
    hours = 10.5 - pool.lon[tile] / 15.0 + minute[tile] / 60.0
    seconds = rng.uniform(0, 60, size=records)
    micros = (day * 86_400 + hours * 3600 + seconds) * 1e6
    origin = np.datetime64(start.isoformat(), "us")
    times = origin + micros.astype(np.int64).astype("timedelta64[us]")
    platform = (k % 2).astype(np.uint8)
    cloud = np.round(rng.beta(0.35, 0.55, size=records) * 100, 4)
    edge = rng.random(records) < SWATH_EDGE_SHARE
    cut = np.where(edge, rng.uniform(0.05, 0.95, size=records), np.nan)
    left = rng.random(records) < 0.5
    order = np.argsort(times, kind="stable")
    return Plan(
        tiles=pool,
        tile=tile[order].astype(np.int32),
        time=times[order],
        platform=platform[order],
        cloud=cloud[order],
        swath_cut=cut[order],
        swath_left=left[order],
        seed=seed,
    )


# --------------------------------------------------------------------------- columns


def record_schema(bands: Sequence[str]) -> pa.Schema:
    """The Arrow schema of a generated table (record columns, then one struct per band)."""
    return pa.schema(
        [
            ("id", pa.string()),
            ("datetime", pa.timestamp("us")),
            ("geometry", pa.binary()),
            ("bbox", BBOX_TYPE),
            ("assets", pa.struct([(b, ASSET_TYPE) for b in bands])),
            ("proj:epsg", pa.int32()),
            ("crs", pa.string()),
            ("collection", pa.string()),
            ("platform", pa.string()),
            ("grid:code", pa.string()),
            ("eo:cloud_cover", pa.float64()),
            ("split", pa.string()),
            *[(metadata_column(b), BAND_METADATA_TYPE) for b in bands],
        ]
    )


def _list(values: np.ndarray, width: int | np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    """A list array of consecutive runs of ``values`` (``width`` per row, or one per row)."""
    if np.isscalar(width):
        rows = len(values) // int(width)
        offsets = np.arange(0, rows * int(width) + 1, int(width), dtype=np.int32)
    else:
        offsets = np.concatenate([[0], np.cumsum(width)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type))


def _struct(arrays: Sequence[pa.Array], struct_type: pa.StructType) -> pa.StructArray:
    return pa.StructArray.from_arrays(
        list(arrays), fields=[struct_type.field(i) for i in range(struct_type.num_fields)]
    )


def _const(value: Any, n: int, arrow_type: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, arrow_type), n)


def _fixed_strings(data: np.ndarray) -> pa.StringArray:
    """A string array from an ``(n, width)`` uint8 matrix of ASCII codes."""
    n, width = data.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data).tobytes())
    )


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass(frozen=True)
class _Draws:
    """Per-record random inputs of one band (rows of a batch)."""

    base: np.ndarray  # (n,) compressed bytes of a full 1024^2 data tile
    noise: np.ndarray  # (n, total_tiles) lognormal tile-to-tile variation
    etag: np.ndarray  # (n, 16) uint8


def _draws(seed: int, band: str, layout: BandLayout, start: int, stop: int) -> _Draws:
    """Random inputs for records ``start:stop`` from per-block generators (1024 records)."""
    parts: list[_Draws] = []
    band_key = list(S2_BANDS).index(band)
    for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):
        rng = np.random.default_rng([seed, 3, band_key, block])
        base = rng.uniform(420_000, 800_000, size=BLOCK)
        noise = rng.lognormal(0.0, 0.12, size=(BLOCK, layout.total_tiles))
        etag = rng.integers(0, 256, size=(BLOCK, 16), dtype=np.uint8)
        lo, hi = max(start - block * BLOCK, 0), min(stop - block * BLOCK, BLOCK)
        parts.append(_Draws(base[lo:hi], noise[lo:hi], etag[lo:hi]))
    return _Draws(
        np.concatenate([p.base for p in parts]),
        np.concatenate([p.noise for p in parts]),
        np.concatenate([p.etag for p in parts]),
    )


def _level_counts(
    level: Level, base: np.ndarray, noise: np.ndarray, cut: np.ndarray, left: np.ndarray
) -> np.ndarray:
    """Compressed byte counts ``(n, tiles)`` of one level's tiles."""
    x0, x1, area = level.tile_geometry()
    scale = level.tile * level.tile / 1024.0**2
    # the share of each tile's image columns on the data side of the swath edge
    width = x1 - x0
    valid_right = np.clip((x1[None, :] - cut[:, None]) / width, 0.0, 1.0)
    swath = np.where(left[:, None], valid_right, 1.0 - valid_right)
    swath = np.where(np.isnan(cut)[:, None], 1.0, swath)
    data = np.clip(base[:, None] * noise, 300_000, 900_000)
    empty = 2_100.0 * noise**0.25  # a DEFLATEd block of zeros
    return np.rint(scale * (empty + data * area[None, :] * swath)).astype(np.int64)


def band_column(
    layout: BandLayout,
    plan: Plan,
    start: int,
    stop: int,
    *,
    last_modified: pa.Array,
    with_crs_wkt: bool = True,
) -> pa.StructArray:
    """The ``{band}_metadata`` column of records ``start:stop`` (type BAND_METADATA_TYPE)."""
    n = stop - start
    draws = _draws(plan.seed, layout.band, layout, start, stop)
    cloud = plan.cloud[start:stop]
    base = draws.base * (1.0 - 0.3 * cloud / 100.0)
    cut, left = plan.swath_cut[start:stop], plan.swath_left[start:stop]
    # byte counts per level, then the file layout: smallest overview first, full last
    counts: list[np.ndarray] = [np.empty(0)] * len(layout.levels)
    column = 0
    for index in layout.write_order():
        level = layout.levels[index]
        counts[index] = _level_counts(
            level, base, draws.noise[:, column : column + level.tiles], cut, left
        )
        column += level.tiles
    in_file = np.hstack([counts[i] for i in layout.write_order()])
    step = in_file + 8  # 4-byte leader + data + 4-byte trailer
    ends = np.cumsum(step, axis=1)
    offsets_in_file = layout.header_bytes + 4 + ends - step
    file_size = layout.header_bytes + ends[:, -1]
    offsets: list[np.ndarray] = [np.empty(0)] * len(layout.levels)
    column = 0
    for index in layout.write_order():
        offsets[index] = offsets_in_file[:, column : column + layout.levels[index].tiles]
        column += layout.levels[index].tiles

    full = layout.full
    tiles = plan.tile[start:stop]
    ulx, uly = plan.tiles.ulx[tiles], plan.tiles.uly[tiles]
    epsg = plan.tiles.epsg[tiles]
    res = layout.pixel
    transform = np.column_stack(
        [np.full(n, res), np.zeros(n), ulx, np.zeros(n), np.full(n, -res), uly]
    )
    tiepoint = np.column_stack([np.zeros(n), np.zeros(n), np.zeros(n), ulx, uly, np.zeros(n)])
    pixel_scale = np.column_stack([np.full(n, res), np.full(n, res), np.zeros(n)])
    if with_crs_wkt:
        distinct, inverse = np.unique(epsg, return_inverse=True)
        wkts = pa.array([crs_wkt(int(e)) for e in distinct]).take(pa.array(inverse))
    else:
        wkts = pa.nulls(n, pa.string())
    parts = -(-file_size // (8 * 2**20))  # S3 multipart upload, 8 MiB parts
    nibbles = np.stack([draws.etag >> 4, draws.etag & 15], axis=-1)
    hex_digits = _fixed_strings(_HEX[nibbles].reshape(n, 32))
    etag = pc.binary_join_element_wise(
        '"', hex_digits, "-", pc.cast(pa.array(parts), pa.string()), '"', ""
    )

    overviews = layout.levels[1:]
    n_ov = len(overviews)
    ov_tiles = np.array([level.tiles for level in overviews], dtype=np.int64)
    if n_ov:
        ov_offsets = np.hstack([offsets[i] for i in range(1, n_ov + 1)]).ravel()
        ov_counts = np.hstack([counts[i] for i in range(1, n_ov + 1)]).ravel()
        per_element = np.tile(ov_tiles, n)

        def per_level(values: list[int], arrow_type: pa.DataType) -> pa.Array:
            return pa.array(np.tile(np.asarray(values), n), arrow_type)

        levels = _struct(
            [
                per_level([lv.width for lv in overviews], pa.int32()),
                per_level([lv.height for lv in overviews], pa.int32()),
                per_level([lv.tile for lv in overviews], pa.int32()),
                per_level([lv.tile for lv in overviews], pa.int32()),
                _const(True, n * n_ov, pa.bool_()),
                _const(8, n * n_ov, pa.int32()),
                _const(2, n * n_ov, pa.int32()),
                pa.nulls(n * n_ov, pa.binary()),
                _list(ov_offsets, per_element, pa.int64()),
                _list(ov_counts, per_element, pa.int64()),
            ],
            IMAGE_LEVEL_TYPE,
        )
    else:
        levels = pa.array([], IMAGE_LEVEL_TYPE)
    level_starts = np.arange(n + 1, dtype=np.int32) * n_ov
    overview_column = pa.ListArray.from_arrays(pa.array(level_starts), levels)

    arrays = {
        "image_width": _const(full.width, n, pa.int32()),
        "image_height": _const(full.height, n, pa.int32()),
        "tile_width": _const(full.tile, n, pa.int32()),
        "tile_height": _const(full.tile, n, pa.int32()),
        "dtype": _const("uint16", n, pa.string()),
        "transform": _list(transform.ravel(), 6, pa.float64()),
        "predictor": _const(2, n, pa.int32()),
        "compression": _const(8, n, pa.int32()),
        "tile_offsets": _list(np.ascontiguousarray(offsets[0]).ravel(), full.tiles, pa.int64()),
        "tile_byte_counts": _list(np.ascontiguousarray(counts[0]).ravel(), full.tiles, pa.int64()),
        "pixel_scale": _list(pixel_scale.ravel(), 3, pa.float64()),
        "tiepoint": _list(tiepoint.ravel(), 6, pa.float64()),
        "nodata": _const(0.0, n, pa.float64()),
        "samples_per_pixel": _const(1, n, pa.int32()),
        "planar_configuration": _const(1, n, pa.int32()),
        "photometric": _const(1, n, pa.int32()),
        "extra_samples": pa.ListArray.from_arrays(
            pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.int32())
        ),
        "band_index": _const(0, n, pa.int32()),
        "bits_per_sample": _const(16, n, pa.int32()),
        "sample_format": _const(1, n, pa.int32()),
        "byte_order": _const("<", n, pa.string()),
        "tiled": _const(True, n, pa.bool_()),
        "crs_wkt": wkts,
        "epsg": pa.array(epsg, pa.int32()),
        "pixel_is_point": _const(False, n, pa.bool_()),
        "scale": pa.nulls(n, pa.float64()),
        "offset": pa.nulls(n, pa.float64()),
        "jpeg_tables": pa.nulls(n, pa.binary()),
        "lerc_parameters": pa.nulls(n, pa.list_(pa.int32())),
        "ycbcr_subsampling": pa.nulls(n, pa.list_(pa.int32())),
        "overviews": overview_column,
        "mask": pa.nulls(n, MASK_TYPE),
        "file_size": pa.array(file_size, pa.int64()),
        "etag": etag,
        "last_modified": last_modified,
    }
    names = [BAND_METADATA_TYPE.field(i).name for i in range(BAND_METADATA_TYPE.num_fields)]
    return _struct([arrays[name] for name in names], BAND_METADATA_TYPE)


def record_batch(
    plan: Plan,
    layouts: Sequence[BandLayout],
    start: int,
    stop: int,
    *,
    with_crs_wkt: bool = True,
) -> pa.RecordBatch:
    """Records ``start:stop`` of ``plan`` as one record batch of :func:`record_schema`."""
    n = stop - start
    tiles = plan.tiles
    tile = pa.array(plan.tile[start:stop])
    times = pa.array(plan.time[start:stop], pa.timestamp("us"))
    platform = pa.array(np.array(["A", "B"])[plan.platform[start:stop]])
    code = pa.array(tiles.code).take(tile)
    day = pc.strftime(times, format="%Y%m%d")
    ids = pc.binary_join_element_wise("S2", platform, "_", code, "_", day, "_0_L2A", "")
    epsg = pa.array(tiles.epsg).take(tile)
    prefix = pc.binary_join_element_wise(
        HREF_ROOT,
        pa.array(tiles.path).take(tile),
        "/",
        pc.cast(pc.year(times), pa.string()),
        "/",
        pc.cast(pc.month(times), pa.string()),
        "/",
        ids,
        "/",
        "",
    )
    assets = _struct(
        [
            _struct(
                [
                    pc.binary_join_element_wise(prefix, f"{layout.band}.tif", ""),
                    pa.nulls(n, pa.int64()),
                ],
                ASSET_TYPE,
            )
            for layout in layouts
        ],
        pa.struct([(layout.band, ASSET_TYPE) for layout in layouts]),
    )
    box = tiles.bbox[plan.tile[start:stop]]
    bbox = _struct([pa.array(box[:, i]) for i in range(4)], BBOX_TYPE)
    # the products were written a few hours after sensing (same for all bands of a record)
    published = (plan.time[start:stop] + np.timedelta64(5, "h")).astype("datetime64[s]")
    published = pa.array(published, pa.timestamp("s"))
    last_modified = pc.strftime(published, format="%a, %d %b %Y %H:%M:%S GMT")
    columns: list[pa.Array] = [
        ids,
        times,
        tiles.wkb.take(tile),
        bbox,
        assets,
        epsg,
        pc.binary_join_element_wise("EPSG:", pc.cast(epsg, pa.string()), ""),
        _const(COLLECTION, n, pa.string()),
        pc.binary_join_element_wise("sentinel-2", pc.utf8_lower(platform), ""),
        pc.binary_join_element_wise("MGRS-", code, ""),
        pa.array(plan.cloud[start:stop], pa.float64()),
        pa.array(tiles.split).take(tile),
    ]
    for layout in layouts:
        columns.append(
            band_column(
                layout, plan, start, stop, last_modified=last_modified, with_crs_wkt=with_crs_wkt
            )
        )
    schema = record_schema([layout.band for layout in layouts])
    return pa.RecordBatch.from_arrays(columns, schema=schema)


# --------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class Spec:
    """What to generate (the CLI options)."""

    records: int
    bands: tuple[str, ...] = BANDS_3
    size: int = 10980
    tile: int = 1024
    max_overviews: int = 4
    chunks: int | None = None
    batch_rows: int | None = None
    tiles: int | None = None
    seed: int = 0
    with_crs_wkt: bool = True
    start: dt.date = START
    end: dt.date = END

    def plan(self) -> Plan:
        """The records' tiles, times and per-record draws."""
        return plan_records(
            self.records, tiles=self.tiles, seed=self.seed, start=self.start, end=self.end
        )

    def layouts(self) -> list[BandLayout]:
        return [band_layout(b, self.size, self.tile, self.max_overviews) for b in self.bands]

    def rows_per_batch(self) -> int:
        """``batch_rows``, else about :data:`BATCH_BYTES` of Arrow memory per batch."""
        if self.batch_rows:
            return self.batch_rows
        per_record = 600 + sum(
            16 * layout.total_tiles + 400 + (1800 if self.with_crs_wkt else 0)
            for layout in self.layouts()
        )
        return int(min(ROW_GROUP_ROWS, max(1000, BATCH_BYTES // per_record)))

    def boundaries(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of every batch: inside one chunk, at most ``rows_per_batch``."""
        if self.chunks:
            edges = np.unique(np.linspace(0, self.records, self.chunks + 1).round().astype(int))
        else:
            edges = np.array([0, self.records])
        step = self.rows_per_batch()
        out = []
        for a, b in itertools.pairwise(edges):
            for s in range(int(a), int(b), step):
                out.append((s, min(s + step, int(b))))
        return out


def generate_batches(spec: Spec, plan: Plan | None = None) -> Iterator[pa.RecordBatch]:
    """Yield the table as record batches (one per :meth:`Spec.boundaries` entry)."""
    plan = plan if plan is not None else spec.plan()
    layouts = spec.layouts()
    for start, stop in spec.boundaries():
        yield record_batch(plan, layouts, start, stop, with_crs_wkt=spec.with_crs_wkt)


def generate_table(spec: Spec, plan: Plan | None = None) -> pa.Table:
    """The whole table in memory (one chunk per batch); for small ``spec.records``."""
    plan = plan if plan is not None else spec.plan()
    table = pa.Table.from_batches(list(generate_batches(spec, plan)), record_schema(spec.bands))
    return table.replace_schema_metadata(collection_metadata(plan, spec, name="synthetic-s2"))


def collection_metadata(plan: Plan, spec: Spec, *, name: str) -> dict[str, str]:
    """Schema metadata as ``CollectionTable.export`` writes it (computed from the plan)."""
    from rasteret.index.geoparquet import geo_metadata_json
    from rasteret.index.table import COLLECTION_VERSION

    used = np.unique(plan.tile)
    footprints = pa.table(
        {
            "geometry": plan.tiles.wkb.take(pa.array(used)),
            "bbox": _struct([pa.array(plan.tiles.bbox[used, i]) for i in range(4)], BBOX_TYPE),
        }
    )
    first, last = (t.astype("datetime64[us]").item() for t in (plan.time.min(), plan.time.max()))
    return {
        "name": name,
        "data_source": COLLECTION,
        "description": (
            f"synthetic Sentinel-2 index (benchmarks/large_index.py): {len(plan)} records x "
            f"{len(spec.bands)} bands, {spec.size} px / {spec.tile}-px tiles, seed {spec.seed}"
        ),
        "date_range": f"{first.isoformat()},{last.isoformat()}",
        "created": dt.datetime.now(dt.UTC).isoformat(),
        "rasteret_collection_version": COLLECTION_VERSION,
        "geo": geo_metadata_json(footprints),
    }


# --------------------------------------------------------------------------- writers


@dataclass(frozen=True)
class WriteResult:
    path: str
    rows: int
    files: int
    row_groups: int
    bytes: int
    seconds: float


_WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "write_statistics": True,
}


def write_index(
    spec: Spec,
    out: str | os.PathLike[str],
    *,
    hive: bool = False,
    name: str | None = None,
    overwrite: bool = False,
    validate_first: bool = True,
) -> WriteResult:
    """Generate ``spec`` and write it to ``out`` batch by batch (a file, or a hive dir).

    Each batch becomes one row group. The first batch is validated with
    ``rasteret.index.validate_table`` unless ``validate_first`` is false.
    """
    from rasteret.index.validate import validate_table

    target = Path(out).expanduser().absolute()
    if hive == target.name.endswith(".parquet"):
        raise ValueError(
            f"{target}: a single file must end in .parquet, a --hive directory must not"
        )
    _clear(target, overwrite)
    began = time.perf_counter()
    plan = spec.plan()
    metadata = collection_metadata(plan, spec, name=name or target.name.removesuffix(".parquet"))
    schema = record_schema(spec.bands)
    rows = groups = 0
    if hive:
        writer = _HiveWriter(target, schema, metadata)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        file_writer = pq.ParquetWriter(target, schema.with_metadata(metadata), **_WRITE_OPTIONS)
    try:
        for i, batch in enumerate(generate_batches(spec, plan)):
            if i == 0 and validate_first:
                validate_table(pa.Table.from_batches([batch]), source="generated batch 0")
            if hive:
                groups += writer.write(batch, plan.time[rows : rows + batch.num_rows])
            else:
                file_writer.write_batch(batch, row_group_size=batch.num_rows)
                groups += 1
            rows += batch.num_rows
    finally:
        if hive:
            writer.close()
        else:
            file_writer.close()
    files = [target] if not hive else sorted(target.rglob("*.parquet"))
    return WriteResult(
        path=str(target),
        rows=rows,
        files=len(files),
        row_groups=groups,
        bytes=sum(f.stat().st_size for f in files),
        seconds=time.perf_counter() - began,
    )


def _clear(target: Path, overwrite: bool) -> None:
    if not target.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{target} exists (pass --overwrite to replace it)")
    if target.is_file():
        target.unlink()
        return
    for root, _dirs, files in os.walk(target):
        parts = Path(root).relative_to(target).parts
        if any("=" not in p for p in parts) or any(not f.endswith(".parquet") for f in files):
            raise FileExistsError(f"{target} holds files that are not a collection export")
    shutil.rmtree(target)


class _HiveWriter:
    """``year=YYYY/month=M/part-0.parquet`` files, one open at a time (rows are time-sorted)."""

    def __init__(self, root: Path, schema: pa.Schema, metadata: dict[str, str]) -> None:
        from rasteret.index.parquet import PARTITION_COLUMNS, PARTITIONING_KEY

        partitioning = {
            "columns": list(PARTITION_COLUMNS),
            "types": {c: "int32" for c in PARTITION_COLUMNS},
            "derived": list(PARTITION_COLUMNS),
            "column_order": schema.names,
        }
        self.root = root
        self.schema = schema.with_metadata({**metadata, PARTITIONING_KEY: json.dumps(partitioning)})
        self.key: tuple[int, int] | None = None
        self.writer: pq.ParquetWriter | None = None
        self.done: set[tuple[int, int]] = set()

    def write(self, batch: pa.RecordBatch, times: np.ndarray) -> int:
        """Write ``batch`` (rows at ``times``, sorted); return the row groups written."""
        months = times.astype("datetime64[M]").astype(np.int64)
        cuts = np.flatnonzero(np.diff(months)) + 1
        starts = np.concatenate([[0], cuts])
        stops = np.concatenate([cuts, [len(months)]])
        for a, b in zip(starts, stops, strict=True):
            year, month = divmod(int(months[a]), 12)
            key = (1970 + year, month + 1)
            if key != self.key:
                self.close()
                if key in self.done:
                    raise ValueError(f"rows of {key} arrive after a later month: not time-sorted")
                path = self.root / f"year={key[0]}" / f"month={key[1]}" / "part-0.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                self.writer = pq.ParquetWriter(path, self.schema, **_WRITE_OPTIONS)
                self.key = key
            assert self.writer is not None
            self.writer.write_batch(batch.slice(a, b - a), row_group_size=int(b - a))
        return len(starts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            assert self.key is not None
            self.done.add(self.key)
        self.writer, self.key = None, None


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, required=True, help="number of records (rows)")
    parser.add_argument("--bands", default="3", help="3 (B02,B03,B04), 13, or a comma list")
    parser.add_argument("--out", required=True, help="a .parquet file, or a directory with --hive")
    parser.add_argument("--chunks", type=int, help="deliver the table as N appended chunks")
    parser.add_argument("--hive", action="store_true", help="write a year=/month= directory")
    parser.add_argument("--size", type=int, default=10980, help="10 m bands' width in px")
    parser.add_argument("--tile", type=int, default=1024, help="tile size in px")
    parser.add_argument("--overviews", type=int, default=4, help="maximum overview levels")
    parser.add_argument("--tiles", type=int, help="number of MGRS tiles (default: from records)")
    parser.add_argument("--batch-rows", type=int, help="records per generated batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=START, help="first day")
    parser.add_argument("--end", type=dt.date.fromisoformat, default=END, help="last day")
    parser.add_argument("--name", help="collection name (default: the output's stem)")
    parser.add_argument("--no-crs-wkt", action="store_true", help="leave crs_wkt null")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = parser.parse_args(argv)
    spec = Spec(
        records=args.records,
        bands=parse_bands(args.bands),
        size=args.size,
        tile=args.tile,
        max_overviews=args.overviews,
        chunks=args.chunks,
        batch_rows=args.batch_rows,
        tiles=args.tiles,
        seed=args.seed,
        with_crs_wkt=not args.no_crs_wkt,
        start=args.start,
        end=args.end,
    )
    result = write_index(spec, args.out, hive=args.hive, name=args.name, overwrite=args.overwrite)
    print(f"wrote {result.path}")
    print(
        f"rows {result.rows:,}  bands {len(spec.bands)}  files {result.files}  "
        f"row groups {result.row_groups}  seconds {result.seconds:.1f}"
    )
    print(
        f"bytes on disk {result.bytes:,} ({result.bytes / 2**20:.1f} MiB)  "
        f"bytes/record {result.bytes / max(result.rows, 1):,.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
