"""Generate small Sentinel-2-L2A-like scenes (one COG per band) for demos, tests and benchmarks.

Every scene covers the same ground (a square around ``center`` projected into the
scene's UTM zone) with a pattern of agricultural fields whose NDVI follows a season:
red / NIR reflectance as uint16 digital numbers (``reflectance = DN * 1e-4 - 0.1``, the
L2A convention since processing baseline 04.00), an SCL scene classification (uint8),
a slanted no-data swath edge that differs per scene (value 0 in every band) and a few
clouds. Deterministic for a given ``seed``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rasteret.samples.cog import write_cog

SCALE, OFFSET = 1e-4, -0.1
SCL_NO_DATA, SCL_SHADOW, SCL_VEGETATION, SCL_BARE = 0, 3, 4, 5
SCL_WATER, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH = 6, 8, 9
CLOUD_CLASSES = (SCL_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH)


def _utm_name(epsg: int) -> str:
    if 32601 <= epsg <= 32660:
        return f"{epsg - 32600:02d}N"
    if 32701 <= epsg <= 32760:
        return f"{epsg - 32700:02d}S"
    return str(epsg)


def _field_pattern(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel field phase (0..1) and a boolean river mask, smooth at ~100 px scale."""
    fields_across = max(2, size // 128)
    phases = rng.random((fields_across, fields_across))
    index = (np.arange(size) * fields_across) // size
    phase = phases[index[:, None], index[None, :]]
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    river_centre = 0.55 + 0.08 * np.sin(2 * np.pi * (y * 1.5 + 0.1))
    river = np.abs(x - river_centre) < 0.012
    return phase.astype(np.float32), river


def _ndvi(phase: np.ndarray, day_of_year: int) -> np.ndarray:
    """Seasonal NDVI: green-up from day 20 + 100·phase, back to bare soil 160 days later."""
    start = 20 + 100 * phase
    t = (day_of_year - start) / 160.0
    growing = np.clip(np.sin(np.pi * np.clip(t, 0, 1)), 0, 1)
    return 0.15 + 0.7 * growing


def _clouds(size: int, rng: np.random.Generator, cover: float) -> tuple[np.ndarray, np.ndarray]:
    """Cloud and shadow masks: ``cover`` (0..1) of the scene as round blobs."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    cloud = np.zeros((size, size), bool)
    shadow = np.zeros((size, size), bool)
    radius = size / 10
    target = cover * size * size
    while cloud.sum() < target:
        cy, cx = rng.random(2) * size
        r = radius * (0.5 + rng.random())
        cloud |= (y - cy) ** 2 + (x - cx) ** 2 < r**2
        shadow |= (y - cy - r / 2) ** 2 + (x - cx - r / 2) ** 2 < r**2
    return cloud, shadow & ~cloud


def _scene_arrays(
    size: int, day_of_year: int, index: int, rng: np.random.Generator, field: tuple
) -> tuple[dict[str, np.ndarray], float]:
    phase, river = field
    ndvi = _ndvi(phase, day_of_year)
    nir = 0.22 + 0.25 * (ndvi - 0.15) + rng.normal(0, 0.004, (size, size))
    red = nir * (1 - ndvi) / (1 + ndvi)
    nir = np.where(river, 0.02, nir)
    red = np.where(river, 0.03, red)
    cover = float(rng.choice([0.0, 0.03, 0.1, 0.3]))
    cloud, shadow = _clouds(size, rng, cover)
    red = np.where(cloud, 0.45, np.where(shadow, red * 0.4, red))
    nir = np.where(cloud, 0.5, np.where(shadow, nir * 0.4, nir))

    rows = np.arange(size)[:, None]
    cols = np.arange(size)[None, :]
    edge = (0.15 + 0.1 * (index % 3)) * size - 0.3 * rows  # slanted swath edge
    nodata = cols < edge

    scl = np.full((size, size), SCL_VEGETATION, np.uint8)
    scl[ndvi < 0.3] = SCL_BARE
    scl[river] = SCL_WATER
    scl[shadow] = SCL_SHADOW
    scl[cloud] = SCL_CLOUD_HIGH
    scl[nodata] = SCL_NO_DATA

    def to_dn(reflectance: np.ndarray) -> np.ndarray:
        dn = np.clip(np.rint((reflectance - OFFSET) / SCALE), 1, 65535).astype(np.uint16)
        dn[nodata] = 0
        return dn

    valid = ~nodata
    cloud_cover = float(100.0 * np.isin(scl[valid], CLOUD_CLASSES).mean()) if valid.any() else 0.0
    return {"red": to_dn(red), "nir": to_dn(nir), "scl": scl}, round(cloud_cover, 2)


def _grid(center: tuple[float, float], epsg: int, size: int, resolution: float):
    from pyproj import Transformer

    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = to_utm.transform(*center)
    half = size * resolution / 2
    left = round((x - half) / resolution) * resolution
    top = round((y + half) / resolution) * resolution
    return (resolution, 0.0, float(left), 0.0, -resolution, float(top))


def _footprint(transform, width: int, height: int, epsg: int) -> tuple[tuple, dict]:
    from pyproj import Transformer

    a, _, c, _, e, f = transform
    bounds = (c, f + e * height, c + a * width, f)
    to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)
    corners = [(bounds[0], bounds[1]), (bounds[2], bounds[1]), (bounds[2], bounds[3])]
    corners += [(bounds[0], bounds[3]), (bounds[0], bounds[1])]
    ring = [tuple(round(v, 8) for v in to_wgs84.transform(x, y)) for x, y in corners]
    return bounds, {"type": "Polygon", "coordinates": [ring]}


def _band_kind(band: str) -> str:
    name = band.upper()
    if name == "SCL":
        return "scl"
    if name in ("B08", "B8A", "NIR", "NIR08"):
        return "nir"
    return "red"


def make_sentinel2_like(
    root: str | Path,
    *,
    scenes: int = 6,
    size: int = 1024,
    bands: Sequence[str] = ("B04", "B08", "SCL"),
    zones: Sequence[int] = (32633,),
    start: str | dt.date = "2024-01-01",
    interval_days: int = 30,
    seed: int = 0,
    center: tuple[float, float] = (12.0, 47.0),
    resolution: float = 10.0,
    band_resolution: Mapping[str, float] | None = None,
    tile: int = 256,
    overviews: Sequence[int] = (2, 4),
    compression: str = "deflate",
) -> list[dict[str, Any]]:
    """Write ``scenes`` Sentinel-2-like scenes under ``root/{id}/{band}.tif``; return records.

    Scene ``i`` is dated ``start + i * interval_days`` (10:30 UTC) and lies in UTM zone
    ``zones[i % len(zones)]``; all scenes cover the area around ``center`` (lon, lat),
    which by default lies on the 32N/33N boundary so several zones overlap. Bands
    named ``B08``/``B8A``/``NIR`` get NIR reflectance, ``SCL`` the scene
    classification (uint8, ``nearest`` overviews), every other band red reflectance
    (uint16, ``average`` overviews, scale 1e-4 / offset -0.1). Nodata is 0 everywhere.
    ``band_resolution`` gives some bands a coarser grid (e.g. ``{"SCL": 20.0}``).

    Each record: ``id``, ``datetime`` (aware, UTC), ``epsg``, ``transform`` and
    ``shape`` (of the ``resolution`` grid), ``bounds`` (scene CRS), ``bbox`` and
    ``geometry`` (lon/lat, GeoJSON), ``eo:cloud_cover`` (percent of valid pixels),
    ``hrefs`` (band → absolute path) and ``assets`` (band → ``{"href": path}``).
    """
    if scenes < 1 or size < 16 or not bands or not zones:
        raise ValueError("need at least one scene, band and zone, and size >= 16")
    root = Path(root)
    first = dt.date.fromisoformat(start) if isinstance(start, str) else start
    band_resolution = dict(band_resolution or {})
    rng = np.random.default_rng(seed)
    field = _field_pattern(size, rng)
    records = []
    for index in range(scenes):
        epsg = int(zones[index % len(zones)])
        day = first + dt.timedelta(days=index * interval_days)
        when = dt.datetime(day.year, day.month, day.day, 10, 30, tzinfo=dt.UTC)
        scene_id = f"S2L_{_utm_name(epsg)}_{day:%Y%m%d}_{index:02d}_L2A"
        arrays, cloud_cover = _scene_arrays(size, day.timetuple().tm_yday, index, rng, field)
        transform = _grid(center, epsg, size, resolution)
        hrefs: dict[str, str] = {}
        for band in bands:
            kind = _band_kind(band)
            pixels = arrays[kind]
            band_transform = transform
            factor = round(band_resolution.get(band, resolution) / resolution)
            if factor > 1:
                pixels = pixels[::factor, ::factor]  # nearest, as GDAL
                band_transform = (
                    resolution * factor,
                    0.0,
                    transform[2],
                    0.0,
                    -resolution * factor,
                    transform[5],
                )
            path = root / scene_id / f"{band}.tif"
            write_cog(
                path,
                pixels,
                transform=band_transform,
                epsg=epsg,
                nodata=0,
                tile=tile,
                compression=compression,
                overviews=overviews,
                resampling="nearest" if kind == "scl" else "average",
                scale=None if kind == "scl" else SCALE,
                offset=None if kind == "scl" else OFFSET,
            )
            hrefs[band] = str(path.resolve())
        bounds, geometry = _footprint(transform, size, size, epsg)
        lons = [p[0] for p in geometry["coordinates"][0]]
        lats = [p[1] for p in geometry["coordinates"][0]]
        records.append(
            {
                "id": scene_id,
                "datetime": when,
                "epsg": epsg,
                "transform": transform,
                "shape": (size, size),
                "bounds": bounds,
                "bbox": (min(lons), min(lats), max(lons), max(lats)),
                "geometry": geometry,
                "eo:cloud_cover": cloud_cover,
                "hrefs": hrefs,
                "assets": {band: {"href": href} for band, href in hrefs.items()},
            }
        )
    return records
