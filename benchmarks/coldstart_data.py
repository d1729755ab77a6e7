"""Inputs of ``coldstart.py``: Sentinel-2-like scenes, the four scenarios, STAC items, floors.

Scenes come from :func:`rasteret.samples.make_sentinel2_like` (uint16, deflate +
predictor 2, square tiles, overviews down to one tile as GDAL's ``OVERVIEWS=AUTO``,
nodata 0; GDAL opens them as ``LAYOUT=COG``). Scene ``i`` lies in UTM zone 32N (even
``i``) or 33N (odd ``i``); all cover the same ground around 12°E 47°N, on the boundary
of the two zones, so every AOI is read from scenes on two different grids.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BANDS = ("B02", "B03", "B04", "B08")
ZONES = (32632, 32633)
CENTER = (12.0, 47.0)
RESOLUTION = 10.0
TARGET_EPSG = 32632  # the cross-CRS scenario's output grid
SMALL_GAP = 1024  # bytes between tiles that still count as one byte run
CONCURRENCY = 16  # requests in flight for the latency floor (and GDAL's thread pool)


@dataclass(frozen=True)
class Scenario:
    """One read: AOIs (lon/lat boxes) over some scenes and bands.

    ``grid == "native"``: one window per (scene, AOI) on the scene's own grid, pixels
    outside the AOI polygon set to nodata (``rasterio.mask.mask(crop=True)``);
    ``grid == "target"``: every scene resampled (nearest) onto one EPSG:32632 grid
    covering the first AOI.
    """

    name: str
    title: str
    scenes: tuple[str, ...]
    bands: tuple[str, ...]
    aois: tuple[tuple[float, float, float, float], ...]  # lon/lat (west, south, east, north)
    grid: str = "native"
    target_bounds: tuple[float, float, float, float] | None = None  # EPSG:32632, metres


def overview_factors(size: int, tile: int) -> tuple[int, ...]:
    """GDAL COG ``OVERVIEWS=AUTO``: halve until the overview fits in one tile."""
    factors, factor, side = [], 1, size
    while side > tile:
        factor *= 2
        side = -(-size // factor)
        factors.append(factor)
    return tuple(factors)


def make_scenes(root: Path, *, size: int, tile: int, scenes: int) -> list[dict[str, Any]]:
    """Write (or reuse, when ``root`` already holds the same set) the scenes; records with
    ``href`` paths relative to ``root``."""
    from rasteret.samples import make_sentinel2_like

    root.mkdir(parents=True, exist_ok=True)
    marker = root / "scenes.json"
    wanted = {"size": size, "tile": tile, "scenes": scenes, "bands": list(BANDS)}
    if marker.exists():
        made = json.loads(marker.read_text())
        if made.get("wanted") == wanted:
            return made["records"]
    records = make_sentinel2_like(
        root / "scenes",
        scenes=scenes,
        size=size,
        bands=BANDS,
        zones=ZONES,
        tile=tile,
        interval_days=5,
        overviews=overview_factors(size, tile),
    )
    out = [
        {
            "id": r["id"],
            "datetime": r["datetime"].isoformat(),
            "epsg": r["epsg"],
            "transform": list(r["transform"]),
            "shape": list(r["shape"]),
            "bbox": list(r["bbox"]),
            "geometry": r["geometry"],
            "hrefs": {b: str(Path(h).relative_to(root.resolve())) for b, h in r["hrefs"].items()},
        }
        for r in records
    ]
    marker.write_text(json.dumps({"wanted": wanted, "records": out}))
    return out


def _lonlat_box(dx: float, dy: float, half: float) -> tuple[float, float, float, float]:
    """A lon/lat box of half-width ``half`` metres centred ``(dx, dy)`` metres off CENTER."""
    lon0, lat0 = CENTER
    m_per_deg_lat = 111_200.0
    m_per_deg_lon = m_per_deg_lat * math.cos(math.radians(lat0))
    x, y = lon0 + dx / m_per_deg_lon, lat0 + dy / m_per_deg_lat
    return (
        round(x - half / m_per_deg_lon, 7),
        round(y - half / m_per_deg_lat, 7),
        round(x + half / m_per_deg_lon, 7),
        round(y + half / m_per_deg_lat, 7),
    )


def scenarios(records: list[dict[str, Any]], size: int) -> dict[str, Scenario]:
    """The four scenarios of the original system's benchmark, scaled to the scene size."""
    extent = size * RESOLUTION  # metres across a scene
    ids = [r["id"] for r in records]
    zone33 = tuple(r["id"] for r in records if r["epsg"] == 32633)
    multi = tuple(
        _lonlat_box(fx * extent, fy * extent, 0.05 * extent)
        for fx, fy in ((-0.2, 0.2), (0.15, 0.25), (0.0, 0.0), (-0.25, -0.2), (0.2, -0.15))
    )
    half = 0.125 * extent
    left = round((_utm_x_of_center() - half) / RESOLUTION) * RESOLUTION
    bottom = round((_utm_y_of_center() - half) / RESOLUTION) * RESOLUTION
    target = (left, bottom, left + 2 * half, bottom + 2 * half)
    return {
        "single": Scenario(
            "single",
            f"single AOI, {len(zone33[:15])} scenes",
            zone33[:15],
            BANDS,
            (_lonlat_box(0.05 * extent, 0.04 * extent, 0.15 * extent),),
        ),
        "multi": Scenario(
            "multi", f"multi-AOI, {len(ids[:30])} scenes", tuple(ids[:30]), BANDS, multi
        ),
        "crosscrs": Scenario(
            "crosscrs",
            f"cross-CRS, {len(ids[:12])} scenes",
            tuple(ids[:12]),
            BANDS,
            (),
            grid="target",
            target_bounds=target,
        ),
        "ndvi": Scenario(
            "ndvi",
            f"NDVI series, {len(ids)} scenes",
            tuple(ids),
            ("B04", "B08"),
            (_lonlat_box(0.11 * extent, -0.07 * extent, 0.01 * extent),),
        ),
    }


def _utm_x_of_center() -> float:
    return _center_in(TARGET_EPSG)[0]


def _utm_y_of_center() -> float:
    return _center_in(TARGET_EPSG)[1]


def _center_in(epsg: int) -> tuple[float, float]:
    from pyproj import Transformer

    return Transformer.from_crs(4326, epsg, always_xy=True).transform(*CENTER)


def scenario_spec(scenario: Scenario) -> dict[str, Any]:
    return asdict(scenario)


# -- STAC items (odc-stac) ------------------------------------------------------------------------
def stac_items(records: list[dict[str, Any]], base_url: str) -> list[dict[str, Any]]:
    """STAC items (dicts) with projection-extension metadata and one asset per band."""
    items = []
    for r in records:
        height, width = r["shape"]
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "stac_extensions": [
                    "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
                ],
                "id": r["id"],
                "geometry": r["geometry"],
                "bbox": r["bbox"],
                "properties": {
                    "datetime": r["datetime"],
                    "proj:epsg": r["epsg"],
                    "proj:shape": [height, width],
                    "proj:transform": r["transform"],
                },
                "links": [],
                "assets": {
                    band: {
                        "href": f"{base_url}/{href}",
                        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                        "roles": ["data"],
                    }
                    for band, href in r["hrefs"].items()
                },
            }
        )
    return items


# -- lower bounds -----------------------------------------------------------------------------
def _tile_table(path: Path) -> tuple[int, int, int, list[int], list[int]]:
    """(tile, tiles across, tiles down, offsets, byte counts) of the full-resolution image."""
    from rasteret.tiff import read_header

    async def parse() -> Any:
        with open(path, "rb") as handle:

            async def fetch(offset: int, length: int) -> bytes:
                return os.pread(handle.fileno(), length, offset)

            return await read_header(fetch, str(path))

    full = asyncio.run(parse()).full  # type: ignore[attr-defined]
    return (
        full.block_width,
        full.blocks_across,
        full.blocks_down,
        [int(o) for o in full.block_offsets],
        [int(c) for c in full.block_byte_counts],
    )


def ranges_for(path: Path, windows: list[tuple[int, int, int, int]]) -> tuple[int, int, int]:
    """(tiles, byte runs, bytes) of the tiles under ``windows`` (row0, row1, col0, col1)
    of one file. A run merges tiles at most ``SMALL_GAP`` bytes apart (COG tiles carry a
    4-byte size leader and trailer): the fewest GETs without multi-range or reading
    unwanted tiles."""
    tile, across, down, offsets, counts = _tile_table(path)
    touched: set[int] = set()
    for r0, r1, c0, c1 in windows:
        for tr in range(max(0, r0 // tile), min(down, -(-r1 // tile))):
            for tc in range(max(0, c0 // tile), min(across, -(-c1 // tile))):
                touched.add(tr * across + tc)
    spans = sorted((offsets[i], offsets[i] + counts[i]) for i in touched if counts[i] > 0)
    runs, end = 0, -(1 << 40)
    for start, stop in spans:
        if start - end > SMALL_GAP:
            runs += 1
        end = stop
    return len(touched), runs, sum(stop - start for start, stop in spans)


def isal_checked(raw: bytes, out: Any) -> int:
    """Inflate a zlib stream with ISA-L into ``out`` and check the Adler-32 trailer ISA-L
    skips (what rasteret's own decoder does): the fastest checked inflate a decode floor
    may take. Returns the decoded byte count."""
    import imagecodecs

    n = len(imagecodecs.isal_decode(raw, out=out))
    if imagecodecs.deflate_adler32(memoryview(out)[:n]) != int.from_bytes(raw[-4:], "big"):
        raise ValueError("ISA-L decoded a tile whose Adler-32 does not match")
    return n


def decode_seconds_per_tile(path: Path, sample: int = 9) -> float:
    """Inflate + predictor time of one full tile with ``imagecodecs``: the best of 5
    tries per tile (robust to a busy machine) with the faster of its inflaters
    (libdeflate, or ISA-L plus the Adler-32 check it skips), the median over ``sample``
    tiles."""
    import statistics
    import time

    import imagecodecs
    import numpy as np

    inflaters = [lambda raw, out: imagecodecs.deflate_decode(raw, out=out)]
    if imagecodecs.ISAL.available:
        inflaters.append(isal_checked)
    tile, _, _, offsets, counts = _tile_table(path)
    per_tile = []
    with open(path, "rb") as handle:
        for i in range(min(sample, len(offsets))):
            raw = os.pread(handle.fileno(), counts[i], offsets[i])
            out = np.empty((tile, tile), "<u2")
            best = float("inf")
            for _ in range(5):
                for inflate in inflaters:
                    start = time.perf_counter()
                    inflate(raw, out.view(np.uint8).reshape(-1))
                    imagecodecs.delta_decode(out, axis=-1, out=out)
                    best = min(best, time.perf_counter() - start)
            per_tile.append(best)
    return statistics.median(per_tile)
