"""Index build over HTTP: files per second at 0 and 30 ms first-byte latency, against
GDAL opening the same files (``rasterio.open`` over ``/vsicurl/``, a 16-thread pool).

``setup_cache`` writes 8 Sentinel-2-like scenes × 4 bands (32 COGs of 1024², 256-px
tiles, overviews) with ``rasteret.samples``. Each timing indexes every file from a
loopback ``rasteret.testing.objserver.ObjectServer``: rasteret's
``build_from_table`` (one header request per file, up to 64 in flight) and GDAL's open
(HEAD + header GETs), both in this process, in the same run.

Run without asv: ``python asv_bench/benchmarks/index_build.py``.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

BANDS = ("B02", "B03", "B04", "B08")
SCENES = 8
LATENCIES = {"0ms": 0.0, "30ms": 0.03}
GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
}


def write_files(root: Path) -> dict[str, Any]:
    from rasteret.samples import make_sentinel2_like

    records = make_sentinel2_like(root, scenes=SCENES, size=1024, bands=BANDS, tile=256)
    return {
        "root": str(root),
        "records": [
            {"id": r["id"], "datetime": r["datetime"].isoformat(), "hrefs": r["hrefs"]}
            for r in records
        ],
    }


def _table(state: dict[str, Any], server: Any) -> Any:
    import datetime as dt

    import pyarrow as pa

    root = Path(state["root"])
    rows = state["records"]
    return pa.table(
        {
            "id": [r["id"] for r in rows],
            "datetime": [dt.datetime.fromisoformat(r["datetime"]) for r in rows],
            "assets": [
                {
                    b: {"href": server.url_for(Path(h).relative_to(root))}
                    for b, h in r["hrefs"].items()
                }
                for r in rows
            ],
        }
    )


def build_rasteret(table: Any) -> Any:
    from rasteret.ingest import build_from_table

    return build_from_table(table)


def open_gdal(urls: list[str]) -> int:
    import rasterio

    def one(url: str) -> int:
        with rasterio.open("/vsicurl/" + url) as src:
            return src.width

    origin = "/".join(urls[0].split("/")[:3])  # no /vsicurl/ cache between calls
    env = {**GDAL_ENV, "CPL_VSIL_CURL_NON_CACHED": f"/vsicurl/{origin}"}
    with rasterio.Env(**env), ThreadPoolExecutor(16) as pool:
        return len(list(pool.map(one, urls)))


def _urls(table: Any) -> list[str]:
    return [a[b]["href"] for a in table["assets"].to_pylist() for b in BANDS]


class IndexBuild:
    """Headers of 32 COGs over HTTP: rasteret's index build vs GDAL's open."""

    timeout = 600
    params = (list(LATENCIES),)
    param_names = ("latency",)
    number = 1
    repeat = 3

    def setup_cache(self) -> dict[str, Any]:
        return write_files(Path(tempfile.mkdtemp(prefix="rasteret-asv-index-")))

    def setup(self, state: dict[str, Any], latency: str) -> None:
        from rasteret.testing.objserver import ObjectServer

        self.server = ObjectServer(state["root"], latency=LATENCIES[latency]).start()
        self.table = _table(state, self.server)
        self.files = len(_urls(self.table))

    def teardown(self, state: dict[str, Any], latency: str) -> None:
        self.server.stop()

    def time_rasteret_build(self, state: dict[str, Any], latency: str) -> None:
        build_rasteret(self.table)

    def time_gdal_open_all(self, state: dict[str, Any], latency: str) -> None:
        open_gdal(_urls(self.table))

    def track_rasteret_files_per_second(self, state: dict[str, Any], latency: str) -> float:
        start = time.perf_counter()
        build_rasteret(self.table)
        return self.files / (time.perf_counter() - start)

    track_rasteret_files_per_second.unit = "files/s"

    def track_gdal_files_per_second(self, state: dict[str, Any], latency: str) -> float:
        start = time.perf_counter()
        open_gdal(_urls(self.table))
        return self.files / (time.perf_counter() - start)

    track_gdal_files_per_second.unit = "files/s"

    def track_rasteret_requests_per_file(self, state: dict[str, Any], latency: str) -> float:
        self.server.reset()
        build_rasteret(self.table)
        return self.server.requests / self.files

    track_rasteret_requests_per_file.unit = "requests"

    def track_gdal_requests_per_file(self, state: dict[str, Any], latency: str) -> float:
        self.server.reset()
        open_gdal(_urls(self.table))
        return self.server.requests / self.files

    track_gdal_requests_per_file.unit = "requests"


if __name__ == "__main__":
    bench = IndexBuild()
    state = bench.setup_cache()
    for latency in LATENCIES:
        bench.setup(state, latency)
        try:
            ours = bench.track_rasteret_files_per_second(state, latency)
            theirs = bench.track_gdal_files_per_second(state, latency)
            req = bench.track_rasteret_requests_per_file(state, latency)
            greq = bench.track_gdal_requests_per_file(state, latency)
            print(
                f"{latency}: rasteret {ours:.0f} files/s ({req:.1f} req/file), "
                f"GDAL open {theirs:.0f} files/s ({greq:.1f} req/file)"
            )
        finally:
            bench.teardown(state, latency)
