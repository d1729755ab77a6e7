"""Window reads over HTTP: requests and bytes next to their lower bound, and wall time at
0 and 30 ms injected first-byte latency.

``setup_cache`` writes 4 Sentinel-2-like scenes (2048², 256-px tiles, deflate) with
``rasteret.samples`` and serves them from a loopback
``rasteret.testing.objserver.ObjectServer``. Each window read goes through the xarray
engine. The lower bound of requests is one per object touched (every tile of it merged);
the lower bound of bytes is the bytes of the tiles touched (``explain().tile_bytes``);
"tiles touched" is the request count without coalescing. ``explain()``'s prediction is
reported too (it must equal the measured counts).

Run without asv: ``python asv_bench/benchmarks/window_io.py`` (prints a table).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

BAND = "B04"
SIZE = 2048
TILE = 256
SCENES = 4
WINDOWS = {  # name: ((row0, row1), (col0, col1))
    "one_tile": ((10, 200), (10, 200)),
    "2x2_tiles": ((200, 400), (200, 400)),
    "512px_aligned": ((512, 1024), (512, 1024)),
    "1000px": ((300, 1300), (700, 1700)),
    "full_row_strip": ((0, 256), (0, SIZE)),
}
LATENCIES = {"0ms": 0.0, "30ms": 0.03}


def write_data(root: Path) -> dict[str, str]:
    from rasteret.samples import make_sentinel2_like

    records = make_sentinel2_like(
        root / "scenes", scenes=SCENES, size=SIZE, bands=(BAND,), tile=TILE, overviews=()
    )
    return {"root": str(root), "cogs": "\n".join(r["hrefs"][BAND] for r in records)}


def _serve_and_build(paths: dict[str, str]) -> tuple[Any, Any]:
    from rasteret.ingest import build_from_files
    from rasteret.testing.objserver import ObjectServer

    root = Path(paths["root"])
    server = ObjectServer(root).start()
    urls = [server.url_for(Path(p).relative_to(root)) for p in paths["cogs"].split("\n")]
    collection = build_from_files(urls, bands=[BAND])
    server.reset()
    server.urls = urls  # type: ignore[attr-defined]
    return server, collection


def read_window(collection: Any, window: tuple[tuple[int, int], tuple[int, int]]) -> Any:
    import xarray as xr

    (r0, r1), (c0, c1) = window
    ds = xr.open_dataset(collection, engine="rasteret", bands=[BAND])
    return ds[BAND].isel(y=slice(r0, r1), x=slice(c0, c1)).values


GDAL_ENV = {
    "GDAL_NUM_THREADS": "ALL_CPUS",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
}


def read_window_gdal(urls: list[str], window: tuple[tuple[int, int], tuple[int, int]]) -> Any:
    """The same window of every scene through GDAL ``/vsicurl/`` (one thread per file,
    caching off so every call opens the files again, as ``read_window`` reads the index)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import rasterio
    from rasterio.windows import Window

    (r0, r1), (c0, c1) = window
    origin = "/".join(urls[0].split("/")[:3])

    def one(url: str) -> Any:
        with rasterio.open("/vsicurl/" + url) as src:
            return src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))

    env = {**GDAL_ENV, "CPL_VSIL_CURL_NON_CACHED": f"/vsicurl/{origin}"}
    with rasterio.Env(**env), ThreadPoolExecutor(16) as pool:
        return np.stack(list(pool.map(one, urls)))


def measure(paths: dict[str, str], latency: float) -> list[dict[str, Any]]:
    """One row per window: measured requests/bytes/time, explain()'s plan, lower bounds."""
    from rasteret.read.explain import explain

    server, collection = _serve_and_build(paths)
    rows = []
    try:
        server.latency = latency
        for name, window in WINDOWS.items():
            plan = explain(collection, BAND, window=window)
            server.reset()
            start = time.perf_counter()
            read_window(collection, window)
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "window": name,
                    "latency_ms": latency * 1e3,
                    "requests": server.requests,
                    "planned_requests": plan.requests,
                    "objects": len(plan.objects),
                    "tiles_touched": plan.tiles,
                    "bytes": server.bytes_sent,
                    "tile_bytes": plan.tile_bytes,
                    "seconds": seconds,
                }
            )
    finally:
        server.stop()
    return rows


class WindowIO:
    """Requests, bytes and time of window reads (4 scenes, 2048², 256-px tiles)."""

    timeout = 600
    params = (list(WINDOWS), list(LATENCIES))
    param_names = ("window", "latency")

    def setup_cache(self) -> dict[str, str]:
        return write_data(Path(tempfile.mkdtemp(prefix="rasteret-asv-window-")))

    def setup(self, paths: dict[str, str], window: str, latency: str) -> None:
        self.server, self.collection = _serve_and_build(paths)
        self.server.latency = LATENCIES[latency]

    def teardown(self, paths: dict[str, str], window: str, latency: str) -> None:
        self.server.stop()

    def time_window_read(self, paths: dict[str, str], window: str, latency: str) -> None:
        read_window(self.collection, WINDOWS[window])

    def time_gdal_window_read(self, paths: dict[str, str], window: str, latency: str) -> None:
        read_window_gdal(self.server.urls, WINDOWS[window])

    def track_rasteret_over_gdal_time(
        self, paths: dict[str, str], window: str, latency: str
    ) -> float:
        """rasteret's window read time as a multiple of GDAL's (best of 3 each, same run);
        also checks both return the same pixels."""
        import numpy as np

        ours = read_window(self.collection, WINDOWS[window])
        theirs = read_window_gdal(self.server.urls, WINDOWS[window])
        if not np.array_equal(ours, theirs):
            raise RuntimeError(f"window {window}: rasteret and GDAL read different pixels")
        best = {"ours": float("inf"), "theirs": float("inf")}
        for _ in range(3):
            for name, func in (
                ("ours", lambda: read_window(self.collection, WINDOWS[window])),
                ("theirs", lambda: read_window_gdal(self.server.urls, WINDOWS[window])),
            ):
                start = time.perf_counter()
                func()
                best[name] = min(best[name], time.perf_counter() - start)
        return best["ours"] / best["theirs"]

    track_rasteret_over_gdal_time.unit = "ratio"

    def track_requests(self, paths: dict[str, str], window: str, latency: str) -> float:
        self.server.reset()
        read_window(self.collection, WINDOWS[window])
        return float(self.server.requests)

    track_requests.unit = "requests"

    def track_requests_over_objects(
        self, paths: dict[str, str], window: str, latency: str
    ) -> float:
        """Requests per object touched (1.0 is the lower bound)."""
        from rasteret.read.explain import explain

        plan = explain(self.collection, BAND, window=WINDOWS[window])
        self.server.reset()
        read_window(self.collection, WINDOWS[window])
        return self.server.requests / max(1, len(plan.objects))

    track_requests_over_objects.unit = "ratio"

    def track_bytes_over_tile_bytes(
        self, paths: dict[str, str], window: str, latency: str
    ) -> float:
        """Bytes fetched per byte of the tiles touched (1.0 is the lower bound)."""
        from rasteret.read.explain import explain

        plan = explain(self.collection, BAND, window=WINDOWS[window])
        self.server.reset()
        read_window(self.collection, WINDOWS[window])
        return self.server.bytes_sent / max(1, plan.tile_bytes)

    track_bytes_over_tile_bytes.unit = "ratio"


if __name__ == "__main__":
    state = write_data(Path(tempfile.mkdtemp(prefix="rasteret-window-io-")))
    header = (
        f"{'window':<16}{'latency':>8}{'requests':>9}{'planned':>8}{'objects':>8}"
        f"{'tiles':>7}{'bytes':>11}{'tile bytes':>12}{'time ms':>9}"
    )
    print(header)
    for latency in LATENCIES.values():
        measure(state, latency)  # warm-up (imports, page cache)
        for row in measure(state, latency):
            print(
                f"{row['window']:<16}{row['latency_ms']:>6.0f}ms{row['requests']:>9}"
                f"{row['planned_requests']:>8}{row['objects']:>8}{row['tiles_touched']:>7}"
                f"{row['bytes']:>11,}{row['tile_bytes']:>12,}{1e3 * row['seconds']:>9.1f}"
            )
