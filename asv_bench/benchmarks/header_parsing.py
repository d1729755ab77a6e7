"""Header parsing: rasteret's parser against rasterio (GDAL) opening the same files.

Both sides run in the same process on the same generated COGs, so compare them as
ratios within one run. Time is per file; requests are counted by a local HTTP object
server (``rasteret.testing.objserver``): rasteret's parser through a plain range
fetcher, GDAL through ``/vsicurl/`` with sidecar probing disabled and caching off.

Run without asv: ``python asv_bench/benchmarks/header_parsing.py``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from rasteret.samples import make_sentinel2_like, write_cog
from rasteret.testing.objserver import ObjectServer
from rasteret.tiff.header import parse_header, read_header

Fetch = Callable[[int, int], Awaitable[bytes]]
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


def make_files(root: Path) -> list[str]:
    """Twelve Sentinel-2-like band files plus four COGs with deeper pyramids / BigTIFF."""
    records = make_sentinel2_like(root / "s2", scenes=4, size=1024)
    paths = [href for record in records for href in record["hrefs"].values()]
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, (2, 2048, 2048), dtype=np.uint16)
    transform = (10.0, 0.0, 399960.0, 0.0, -10.0, 5300040.0)
    for name, options in {
        "deep.tif": {"overviews": (2, 4, 8, 16), "tile": 256},
        "deep512.tif": {"overviews": (2, 4, 8), "tile": 512, "compression": "zstd"},
        "planar.tif": {"overviews": (2, 4), "interleave": "band"},
        "big.tif": {"overviews": (2, 4), "bigtiff": True},
    }.items():
        path = root / name
        write_cog(path, data, transform=transform, epsg=32633, nodata=0, **options)
        paths.append(str(path))
    return paths


def file_fetcher(handle) -> Fetch:
    async def fetch(offset: int, length: int) -> bytes:
        return os.pread(handle.fileno(), length, offset)

    return fetch


def http_fetcher(url: str) -> Fetch:
    async def fetch(offset: int, length: int) -> bytes:
        request = urllib.request.Request(
            url, headers={"Range": f"bytes={offset}-{offset + length - 1}"}
        )
        with urllib.request.urlopen(request) as response:
            return response.read()

    return fetch


async def _parse_local(paths: list[str]) -> int:
    levels = 0
    for path in paths:
        with open(path, "rb") as handle:
            header = await read_header(file_fetcher(handle), path)
        levels += len(header.images)
    return levels


async def _parse_http(urls: list[str]) -> int:
    levels = 0
    for url in urls:
        header = await read_header(http_fetcher(url), url)
        levels += len(header.images)
    return levels


def _rasterio_open(paths: list[str]) -> int:
    import rasterio

    levels = 0
    for path in paths:
        with rasterio.open(path) as src:
            levels += 1 + len(src.overviews(1))
    return levels


def _gdal_http_env(server: ObjectServer) -> dict[str, str]:
    return {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
        "CPL_VSIL_CURL_NON_CACHED": f"/vsicurl/{server.url}",
        "GDAL_HTTP_MULTIRANGE": "NO",
    }


def _best_of(repeat: int, func: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


class HeaderParsing:
    """Per-file cost of reading a COG header: rasteret's parser vs rasterio.open."""

    timeout = 300

    def setup_cache(self) -> list[str]:
        root = Path(tempfile.mkdtemp(prefix="rasteret-asv-"))
        return make_files(root)

    # -- time per file (local files, no network) ----------------------------------------
    def time_rasteret_read_header_local(self, paths: list[str]) -> None:
        asyncio.run(_parse_local(paths))

    def time_rasteret_parse_header_in_memory(self, paths: list[str]) -> None:
        for path in paths:
            with open(path, "rb") as handle:
                parse_header(handle.read(65536), path)

    def time_rasterio_open_local(self, paths: list[str]) -> None:
        _rasterio_open(paths)

    def track_rasterio_over_rasteret_time_local(self, paths: list[str]) -> float:
        """How many times longer rasterio.open takes than rasteret's parser (same run)."""
        ours = _best_of(3, lambda: asyncio.run(_parse_local(paths)))
        theirs = _best_of(3, lambda: _rasterio_open(paths))
        return theirs / ours

    track_rasterio_over_rasteret_time_local.unit = "ratio"

    # -- requests per file (HTTP, loopback object server) -------------------------------
    def track_rasteret_requests_per_file(self, paths: list[str]) -> float:
        root = Path(os.path.commonpath(paths))
        with ObjectServer(root) as server:
            urls = [server.url_for(Path(p).relative_to(root)) for p in paths]
            asyncio.run(_parse_http(urls))
            return server.requests / len(paths)

    track_rasteret_requests_per_file.unit = "requests"

    def track_rasterio_requests_per_file(self, paths: list[str]) -> float:
        import rasterio

        root = Path(os.path.commonpath(paths))
        with ObjectServer(root) as server:
            urls = ["/vsicurl/" + server.url_for(Path(p).relative_to(root)) for p in paths]
            with rasterio.Env(**_gdal_http_env(server)):
                _rasterio_open(urls)
            return server.requests / len(paths)

    track_rasterio_requests_per_file.unit = "requests"


if __name__ == "__main__":
    bench = HeaderParsing()
    files = bench.setup_cache()
    print(f"{len(files)} files")
    for name in sorted(dir(bench)):
        method = getattr(bench, name)
        if name.startswith("time_"):
            seconds = _best_of(3, lambda method=method: method(files))
            print(f"{name}: {1e3 * seconds / len(files):.3f} ms/file")
        elif name.startswith("track_"):
            print(f"{name}: {method(files):.2f} {getattr(method, 'unit', '')}")
