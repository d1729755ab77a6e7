"""The main job on built-in sample data (``rasteret demo``).

Generates a small Sentinel-2-like collection (no download), serves it from a local
range-capable HTTP object server, indexes the headers, opens the index with the xarray
engine, computes a cloud-masked NDVI time series and writes a PNG quick-look.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCL_INVALID = (0, 1, 3, 8, 9, 10)  # no data, saturated, cloud shadow, clouds, cirrus


@dataclass
class DemoSummary:
    """What the demo did, with the request counts that make the point of the index."""

    files: int
    records: int
    bands: list[str]
    build_seconds: float
    build_requests: int
    read_seconds: float
    read_requests: int
    read_bytes: int
    read_header_requests: int
    tiles_read: int
    ndvi: list[tuple[str, float]] = field(default_factory=list)
    collection_path: str = ""
    quicklook_path: str = ""
    server_url: str = ""

    def render(self) -> str:
        per_file = self.build_requests / max(self.files, 1)
        lines = [
            f"rasteret demo: {self.records} scenes x {len(self.bands)} bands "
            f"({', '.join(self.bands)}) served from {self.server_url}",
            f"  index build : {self.files} COG headers in {self.build_seconds:.2f} s, "
            f"{self.build_requests} HTTP requests ({per_file:.1f} per file)",
            f"  NDVI read   : {self.tiles_read} tiles in {self.read_seconds:.2f} s, "
            f"{self.read_requests} HTTP requests, {self.read_bytes / 1e6:.1f} MB, "
            f"{self.read_header_requests} of them header reads",
            "  mean NDVI (cloud-masked):",
            *(f"    {day}  {value:6.3f}" for day, value in self.ndvi),
            f"  collection  : {self.collection_path}",
            f"  quick-look  : {self.quicklook_path}",
        ]
        return "\n".join(lines)


def _tiles(variable) -> int:
    """Number of COG tiles (Zarr chunks) behind a variable."""
    return int(
        np.prod(
            [-(-n // c) for n, c in zip(variable.shape, variable.encoding["chunks"], strict=True)]
        )
    )


def run_demo(
    out: str | Path = "rasteret-demo",
    *,
    scenes: int = 6,
    size: int = 1024,
    latency: float = 0.0,
) -> DemoSummary:
    """Run the demo in ``out`` (replaced if it holds a previous demo) and return its summary."""
    import dask
    import xarray as xr

    from rasteret.fetch import track
    from rasteret.ingest import build_from_files
    from rasteret.read.quicklook import write_quicklook
    from rasteret.samples import make_sentinel2_like
    from rasteret.testing.objserver import ObjectServer

    out = Path(out)
    data_dir, workspace = out / "data", out / "workspace"
    for folder in (data_dir, workspace):
        if folder.exists():
            shutil.rmtree(folder)
    records = make_sentinel2_like(data_dir, scenes=scenes, size=size, bands=("B04", "B08", "SCL"))

    with ObjectServer(data_dir, latency=latency) as server:
        urls = [
            server.url_for(str(Path(href).relative_to(data_dir.resolve())))
            for record in records
            for href in record["hrefs"].values()
        ]
        started = time.perf_counter()
        collection = build_from_files(
            urls,
            name="demo",
            workspace_dir=workspace,
            group_by=lambda url: (url.rsplit("/", 2)[-2], url.rsplit("/", 1)[-1].split(".")[0]),
        )
        build_seconds = time.perf_counter() - started
        build_requests = server.requests
        server.reset()

        started = time.perf_counter()
        with track() as counts:
            ds = xr.open_dataset(
                collection.uri, engine="rasteret", bands=["B04", "B08", "SCL"], chunks={}
            )
            red = ds["B04"].astype("float32")
            nir = ds["B08"].astype("float32")
            valid = (ds["B04"] != 0) & ~ds["SCL"].isin(SCL_INVALID)
            ndvi = (nir - red) / (nir + red).where(valid)
            # one compute: the series and the quick-look share their tile reads
            series, last = dask.compute(ndvi.mean(dim=("y", "x")), ndvi.isel(time=-1))
        read_seconds = time.perf_counter() - started
        tiles = sum(_tiles(ds[band]) for band in ("B04", "B08", "SCL"))

        quicklook = out / "ndvi_quicklook.png"
        write_quicklook(quicklook, last, vmin=-0.2, vmax=0.9, max_size=512)
        return DemoSummary(
            files=len(urls),
            records=len(collection),
            bands=list(collection.bands),
            build_seconds=build_seconds,
            build_requests=build_requests,
            read_seconds=read_seconds,
            read_requests=server.requests,
            read_header_requests=sum(1 for entry in server.log if entry.start == 0),
            read_bytes=counts.bytes,
            tiles_read=tiles,
            ndvi=[
                (str(np.datetime_as_string(t, unit="D")), float(v))
                for t, v in zip(series["time"].values, series.values, strict=True)
            ],
            collection_path=str(collection.uri),
            quicklook_path=str(quicklook),
            server_url=server.url,
        )
