"""Test scenes for read_window / TorchGeo tests, written with rasterio (the oracle).

Three scenes with per-band files ``{id}_{YYYYMMDD}_{band}.tif`` (COG, 128-px tiles):
A and B in EPSG:32633, overlapping and pixel-aligned (B shifted by whole pixels, a
month later); C in EPSG:32632 over the same area (two months later). Pixel values are
one smooth function of lon/lat, so the scenes agree where they overlap and resampled
reads can be compared with GDAL. ``B1`` is uint16 (nodata 0, with a nodata hole in A),
``B2`` float32 (nodata -9999), ``SCL`` uint8 classes (nodata 0).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pyproj import Transformer
from rasterio.transform import Affine

from _testcollections import make_table, record, write_cog

SIZE = 256
RES = 10.0
BANDS = ("B1", "B2", "SCL")
# scene id, date, EPSG, top-left corner
SCENES = (
    ("A", dt.datetime(2024, 1, 1, 10, 30, tzinfo=dt.UTC), 32633, (499_980.0, 5_200_020.0)),
    ("B", dt.datetime(2024, 2, 1, 10, 30, tzinfo=dt.UTC), 32633, (501_180.0, 5_199_120.0)),
    ("C", dt.datetime(2024, 3, 1, 10, 30, tzinfo=dt.UTC), 32632, (956_570.0, 5_217_610.0)),
)


def field(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The smooth surface every scene samples (about 1000..3000)."""
    return 2000.0 + 600.0 * np.sin(lon * 90.0) + 400.0 * np.cos(lat * 70.0)


def scene_arrays(epsg: int, corner: tuple[float, float]) -> dict[str, np.ndarray]:
    x0, y0 = corner
    cols, rows = np.meshgrid(np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5)
    xs, ys = x0 + cols * RES, y0 - rows * RES
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(xs, ys)
    value = field(lon, lat)
    b1 = np.round(value).astype(np.uint16)
    b2 = (value / 1000.0).astype(np.float32)
    scl = (1 + (np.floor(value / 400.0) % 9)).astype(np.uint8)
    return {"B1": b1, "B2": b2, "SCL": scl}


def write_scenes(root: Path) -> list[dict]:
    """Write the scenes under ``root``; return :func:`_testcollections.record` dicts."""
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for scene_id, when, epsg, corner in SCENES:
        arrays = scene_arrays(epsg, corner)
        if scene_id == "A":
            arrays["B1"][40:90, 150:230] = 0  # a nodata hole: B shows through there
            arrays["B2"][40:90, 150:230] = -9999
            arrays["SCL"][40:90, 150:230] = 0
        transform = Affine(RES, 0.0, corner[0], 0.0, -RES, corner[1])
        paths = {}
        for band, nodata in (("B1", 0), ("B2", -9999), ("SCL", 0)):
            path = root / f"{scene_id}_{when:%Y%m%d}_{band}.tif"
            write_cog(
                path,
                arrays[band],
                crs=f"EPSG:{epsg}",
                transform=transform,
                nodata=nodata,
                blocksize=128,
                predictor=2 if band != "B2" else 3,
                overviews=2,
            )
            paths[band] = path
        records.append(
            record(scene_id, when, paths, extra={"label": {"A": 1, "B": 2, "C": 3}[scene_id]})
        )
    return records


def scenes_table(records: list[dict]):  # type: ignore[no-untyped-def]
    return make_table(records, BANDS)
