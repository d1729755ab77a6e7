"""Whole-scene decode: rasteret's xarray engine against rasterio (GDAL) on the same COG.

``setup_cache`` writes one Sentinel-2-like uint16 COG (deflate + predictor 2, 512-px
tiles, overviews) with ``rasteret.samples`` and indexes it once. The timings read the
full-resolution image into one numpy array in the benchmark process (so warm: imports,
thread pools and the page cache are hot); compare them as the ratio tracked in the same
run. Request counts come from a loopback ``rasteret.testing.objserver.ObjectServer``.
The cold-process, over-HTTP comparison is ``benchmarks/throughput.py``.

Run without asv: ``python asv_bench/benchmarks/decode.py``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

BAND = "B04"
SIZE = 2048
TILE = 512
GDAL_ENV = {"GDAL_NUM_THREADS": "ALL_CPUS"}

Paths = dict[str, str]


def write_scene(root: Path) -> Paths:
    """One COG and its collection (a GeoParquet file) under ``root``."""
    from rasteret.ingest import build_from_files
    from rasteret.samples import make_sentinel2_like

    records = make_sentinel2_like(
        root / "scene", scenes=1, size=SIZE, bands=(BAND,), tile=TILE, overviews=(2, 4)
    )
    cog = records[0]["hrefs"][BAND]
    collection = root / "collection.parquet"
    build_from_files(
        [cog], name="decode-bench", workspace_dir=root / "workspace", bands=[BAND], force=True
    ).export(collection)
    return {"root": str(root), "cog": cog, "collection": str(collection)}


def read_rasteret(collection: str) -> np.ndarray:
    import xarray as xr

    ds = xr.open_dataset(collection, engine="rasteret", bands=[BAND], chunks={})
    return ds[BAND].values[0]


def read_rasterio(path: str, **env: str) -> np.ndarray:
    import rasterio

    with rasterio.Env(**{**GDAL_ENV, **env}), rasterio.open(path) as src:
        return src.read(1)


def _best_of(repeat: int, func: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


class WholeSceneDecode:
    """Read a whole 2048² scene (16 tiles of 512²) into memory."""

    timeout = 300

    def setup_cache(self) -> Paths:
        paths = write_scene(Path(tempfile.mkdtemp(prefix="rasteret-asv-decode-")))
        if not np.array_equal(read_rasteret(paths["collection"]), read_rasterio(paths["cog"])):
            raise RuntimeError("rasteret and rasterio read different pixels")
        return paths

    def time_rasteret_whole_scene(self, paths: Paths) -> None:
        read_rasteret(paths["collection"])

    def time_rasterio_whole_scene(self, paths: Paths) -> None:
        read_rasterio(paths["cog"])

    def track_rasteret_over_rasterio_time(self, paths: Paths) -> float:
        """rasteret's time as a multiple of rasterio's, both measured in this run."""
        read_rasteret(paths["collection"])  # warm both paths up once
        read_rasterio(paths["cog"])
        ours = _best_of(3, lambda: read_rasteret(paths["collection"]))
        theirs = _best_of(3, lambda: read_rasterio(paths["cog"]))
        return ours / theirs

    track_rasteret_over_rasterio_time.unit = "ratio"

    def track_requests_per_header(self, paths: Paths) -> float:
        """HTTP requests rasteret's index build spends on one file's header."""
        from rasteret.ingest import build_from_files
        from rasteret.testing.objserver import ObjectServer

        root = Path(paths["root"])
        with ObjectServer(root) as server:
            url = server.url_for(Path(paths["cog"]).relative_to(root))
            with tempfile.TemporaryDirectory() as workspace:
                build_from_files([url], workspace_dir=workspace, bands=[BAND], force=True)
            return float(server.requests)

    track_requests_per_header.unit = "requests"

    def track_rasteret_requests_whole_scene_http(self, paths: Paths) -> float:
        """HTTP requests of a whole-scene read through the index (no header reads)."""
        from rasteret.ingest import build_from_files
        from rasteret.testing.objserver import ObjectServer

        root = Path(paths["root"])
        with ObjectServer(root) as server, tempfile.TemporaryDirectory() as workspace:
            url = server.url_for(Path(paths["cog"]).relative_to(root))
            collection = Path(workspace) / "http.parquet"
            build_from_files(
                [url], name="http", workspace_dir=workspace, bands=[BAND], force=True
            ).export(collection)
            server.reset()
            read_rasteret(str(collection))
            return float(server.requests)

    track_rasteret_requests_whole_scene_http.unit = "requests"

    def track_rasterio_requests_whole_scene_http(self, paths: Paths) -> float:
        """HTTP requests of the same read by GDAL's ``/vsicurl/`` (open included)."""
        from rasteret.testing.objserver import ObjectServer

        root = Path(paths["root"])
        with ObjectServer(root) as server:
            url = server.url_for(Path(paths["cog"]).relative_to(root))
            read_rasterio(
                f"/vsicurl/{url}",
                GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR",
                CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".tif",
                CPL_VSIL_CURL_NON_CACHED=f"/vsicurl/{server.url}",
                GDAL_HTTP_MULTIRANGE="YES",
                GDAL_HTTP_MERGE_CONSECUTIVE_RANGES="YES",
            )
            return float(server.requests)

    track_rasterio_requests_whole_scene_http.unit = "requests"


if __name__ == "__main__":
    bench = WholeSceneDecode()
    state = bench.setup_cache()
    for name in sorted(dir(bench)):
        method = getattr(bench, name)
        if name.startswith("time_"):
            seconds = _best_of(3, lambda method=method: method(state))
            print(f"{name}: {1e3 * seconds:.1f} ms")
        elif name.startswith("track_"):
            print(f"{name}: {method(state):.2f} {getattr(method, 'unit', '')}")
