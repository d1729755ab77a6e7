"""TorchGeo samples per second: rasteret's dataset vs TorchGeo's ``RasterDataset`` (GDAL).

``setup_cache`` writes 2 Sentinel-2-like scenes × 2 bands (1024², 256-px tiles). Both
datasets read them from a loopback ``rasteret.testing.objserver.ObjectServer`` (TorchGeo
through ``/vsicurl/`` with GDAL's remote-COG settings); both are built in ``setup`` (the
one-time cost: rasteret indexes headers, TorchGeo opens every file). The timings draw the
same 16 ``RandomGeoSampler`` chips of 256² px from each, in this process, same run.
``benchmarks/torchgeo_samples.py`` is the standalone version with latency.

Run without asv: ``python asv_bench/benchmarks/torchgeo_samples.py``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

BANDS = ("B04", "B08")
CHIPS = 16
CHIP = 256
GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
}


def write_scenes(root: Path) -> dict[str, Any]:
    from rasteret.samples import make_sentinel2_like

    records = make_sentinel2_like(root, scenes=2, size=1024, bands=BANDS, tile=256, overviews=())
    return {
        "root": str(root),
        "records": [{"id": r["id"], "datetime": r["datetime"].isoformat()} for r in records],
    }


def make_datasets(state: dict[str, Any], server: Any) -> tuple[Any, Any, list[Any]]:
    import datetime as dt

    import pyarrow as pa
    import torch
    from torchgeo.datasets import RasterDataset
    from torchgeo.samplers import RandomGeoSampler

    from rasteret.ingest import build_from_table
    from rasteret.integrations.torchgeo import to_torchgeo_dataset

    rows = state["records"]
    urls = {(r["id"], b): server.url_for(f"{r['id']}/{b}.tif") for r in rows for b in BANDS}
    table = pa.table(
        {
            "id": [r["id"] for r in rows],
            "datetime": [dt.datetime.fromisoformat(r["datetime"]) for r in rows],
            "assets": [{b: {"href": urls[(r["id"], b)]} for b in BANDS} for r in rows],
        }
    )
    ours = to_torchgeo_dataset(build_from_table(table), bands=list(BANDS))
    files = sorted("/vsicurl/" + urls[(r["id"], "B04")] for r in rows)

    class Scenes(RasterDataset):
        filename_glob = "B04.tif"
        filename_regex = r"^(?P<band>B04|B08)\.tif$"
        separate_files = True
        all_bands = BANDS

        @property
        def files(self) -> list[str]:
            return files

    theirs = Scenes(paths=files, bands=list(BANDS))
    sampler = RandomGeoSampler(
        ours, size=CHIP, length=CHIPS, generator=torch.Generator().manual_seed(0)
    )
    queries = [(x, y, slice(None)) for x, y, _ in sampler]
    return ours, theirs, queries


def draw(dataset: Any, queries: list[Any]) -> list[Any]:
    return [dataset[q]["image"] for q in queries]


class TorchGeoSamples:
    timeout = 600
    number = 1
    repeat = 3

    def setup_cache(self) -> dict[str, Any]:
        return write_scenes(Path(tempfile.mkdtemp(prefix="rasteret-asv-torchgeo-")))

    def setup(self, state: dict[str, Any]) -> None:
        from rasteret.testing.objserver import ObjectServer

        os.environ.update(GDAL_ENV)
        self.server = ObjectServer(state["root"]).start()
        self.ours, self.theirs, self.queries = make_datasets(state, self.server)

    def teardown(self, state: dict[str, Any]) -> None:
        self.server.stop()

    def time_rasteret_chips(self, state: dict[str, Any]) -> None:
        draw(self.ours, self.queries)

    def time_torchgeo_rasterdataset_chips(self, state: dict[str, Any]) -> None:
        draw(self.theirs, self.queries)

    def track_rasteret_samples_per_second(self, state: dict[str, Any]) -> float:
        start = time.perf_counter()
        draw(self.ours, self.queries)
        return CHIPS / (time.perf_counter() - start)

    track_rasteret_samples_per_second.unit = "samples/s"

    def track_torchgeo_samples_per_second(self, state: dict[str, Any]) -> float:
        start = time.perf_counter()
        draw(self.theirs, self.queries)
        return CHIPS / (time.perf_counter() - start)

    track_torchgeo_samples_per_second.unit = "samples/s"

    def track_identical_chips(self, state: dict[str, Any]) -> int:
        """Chips equal between the two datasets (CHIPS when every one matches)."""
        import torch

        pairs = zip(draw(self.ours, self.queries), draw(self.theirs, self.queries), strict=True)
        return sum(torch.equal(a.float(), b.float()) for a, b in pairs)


if __name__ == "__main__":
    bench = TorchGeoSamples()
    state = bench.setup_cache()
    bench.setup(state)
    try:
        bench.time_rasteret_chips(state)  # warm
        print(f"rasteret  {bench.track_rasteret_samples_per_second(state):.1f} samples/s")
        print(f"torchgeo  {bench.track_torchgeo_samples_per_second(state):.1f} samples/s")
        print(f"identical {bench.track_identical_chips(state)}/{CHIPS}")
    finally:
        bench.teardown(state)
