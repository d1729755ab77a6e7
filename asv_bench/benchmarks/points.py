"""Point sampling: 1,000,000 points over a few Sentinel-2-like scenes.

``setup_cache`` writes 4 scenes (2048² px, 512-px tiles, two bands, two UTM zones) with
``rasteret.samples`` and indexes them. The timing samples 1,000,000 random points (in
lon/lat, so every point is projected into both zones) for both bands: about 8 million
output rows, every tile of every scene read once. ``track_rows`` and ``track_requests``
record the output size and the fetch requests of one run.

Run without asv: ``python asv_bench/benchmarks/points.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

POINTS = 1_000_000
SIZE = 2048
BANDS = ("B04", "B08")


def write_collection(root: Path) -> str:
    import pyarrow as pa

    from rasteret.ingest import build_from_table
    from rasteret.samples import make_sentinel2_like

    records = make_sentinel2_like(
        root / "scenes",
        scenes=4,
        size=SIZE,
        bands=BANDS,
        tile=512,
        zones=(32632, 32633),
        overviews=(),
    )
    table = pa.table(
        {
            "id": [r["id"] for r in records],
            "datetime": [r["datetime"] for r in records],
            "assets": [r["assets"] for r in records],
        }
    )
    path = root / "collection.parquet"
    build_from_table(table).export(path)
    return str(path)


def random_points(n: int | None = None, seed: int = 0) -> np.ndarray:
    """Lon/lat points over the scenes' common area (around 12°E 47°N); ``POINTS`` of them."""
    n = POINTS if n is None else n
    rng = np.random.default_rng(seed)
    return np.column_stack([11.88 + rng.random(n) * 0.24, 46.92 + rng.random(n) * 0.16])


def sample(collection_path: str, points: np.ndarray):  # type: ignore[no-untyped-def]
    from rasteret import load
    from rasteret.read import sample_points

    return sample_points(load(collection_path), points, list(BANDS), geometry_crs="EPSG:4326")


class PointSampling:
    timeout = 600
    number = 1
    repeat = 3

    def setup_cache(self) -> str:
        root = Path(tempfile.mkdtemp(prefix="rasteret-points-"))
        return write_collection(root)

    def setup(self, collection_path: str) -> None:
        self.points = random_points()
        sample(collection_path, self.points[:1000])  # warm: imports, store cache

    def time_sample_1m_points(self, collection_path: str) -> None:
        sample(collection_path, self.points)

    def track_rows(self, collection_path: str) -> int:
        return len(sample(collection_path, random_points()))

    def track_requests(self, collection_path: str) -> int:
        from rasteret.fetch import track

        points = random_points()
        with track() as t:
            sample(collection_path, points)
        return t.requests


if __name__ == "__main__":
    root = Path(tempfile.mkdtemp(prefix="rasteret-points-"))
    path = write_collection(root)
    points = random_points()
    sample(path, points[:1000])
    for _ in range(3):
        started = time.perf_counter()
        table = sample(path, points)
        elapsed = time.perf_counter() - started
        print(f"{POINTS:,} points x {len(BANDS)} bands: {len(table):,} rows in {elapsed:.2f} s")
