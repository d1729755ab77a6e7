"""Samples per second: rasteret's TorchGeo dataset vs TorchGeo's ``RasterDataset``.

Both read the same Sentinel-2-like COGs (per-band files, deflate, 256-px tiles) from the
local object server (``rasteret.testing.objserver``) with injected first-byte latency;
TorchGeo through GDAL ``/vsicurl/`` (tuned: no directory listing, HTTP multiplexing, a
merged-range read strategy), rasteret through its collection index. Both datasets are
built first (TorchGeo opens every file, rasteret indexes every header); the clock covers
the same ``RandomGeoSampler`` queries in batches as a DataLoader fetches them
(``__getitems__`` when the dataset has one — rasteret's reads a batch's samples
together — else ``dataset[query]`` per sample), and the samples are checked to be
identical. Figures are ratios from one run on this machine, not targets.

    python benchmarks/torchgeo_samples.py [--latency 0 30] [--samples 40] [--size 256] [--batch 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa

GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
    "GDAL_CACHEMAX": "512",
}
BANDS = ("B04", "B08")


def _datasets(records: list[dict], urls: dict[tuple[str, str], str]):  # type: ignore[no-untyped-def]
    from torchgeo.datasets import RasterDataset

    from rasteret.ingest import build_from_table
    from rasteret.integrations.torchgeo import to_torchgeo_dataset

    table = pa.table(
        {
            "id": [r["id"] for r in records],
            "datetime": [r["datetime"] for r in records],
            "assets": [{b: {"href": urls[(r["id"], b)]} for b in BANDS} for r in records],
        }
    )
    collection = build_from_table(table, workspace_dir=tempfile.mkdtemp())
    ours = to_torchgeo_dataset(collection, bands=list(BANDS))

    files = sorted("/vsicurl/" + urls[(r["id"], "B04")] for r in records)

    class Scenes(RasterDataset):
        filename_glob = "B04.tif"
        filename_regex = r"^(?P<band>B04|B08)\.tif$"
        separate_files = True
        all_bands = BANDS

        @property
        def files(self) -> list[str]:
            return files

    theirs = Scenes(paths=files, bands=list(BANDS))
    return ours, theirs


def run(
    latency_ms: float, samples: int, size: int, scenes: int, root: Path, batch: int = 8
) -> dict:
    import torch
    from torchgeo.samplers import RandomGeoSampler

    from rasteret.samples import make_sentinel2_like
    from rasteret.testing.objserver import ObjectServer

    data = root / "data"
    if not data.exists():
        make_sentinel2_like(data, scenes=scenes, size=2048, bands=BANDS, zones=(32633,),
                            tile=256, overviews=())  # fmt: skip
    first = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    scene_dirs = sorted(p for p in data.iterdir() if p.is_dir())
    records = [
        {"id": d.name, "datetime": first + dt.timedelta(days=i)} for i, d in enumerate(scene_dirs)
    ]
    with ObjectServer(data) as server:
        urls = {(r["id"], b): server.url_for(f"{r['id']}/{b}.tif") for r in records for b in BANDS}
        ours, theirs = _datasets(records, urls)
        server.latency = latency_ms / 1000.0
        generator = torch.Generator().manual_seed(0)
        sampler = RandomGeoSampler(ours, size=size, length=samples, generator=generator)
        queries = [(x, y, slice(None)) for x, y, _ in sampler]  # all times: a mosaic
        out: dict = {"latency_ms": latency_ms, "samples": samples, "size": size}
        results = {}
        # what a DataLoader does per batch: ``__getitems__`` when the dataset has it
        # (rasteret: the batch's reads in flight together), else one sample at a time
        modes = (("rasteret", ours, batch), ("rasteret, one by one", ours, 1),
                 ("torchgeo", theirs, 1))  # fmt: skip
        for name, dataset, size_of_batch in modes:
            server.reset()
            start = time.perf_counter()
            images = []
            for k in range(0, len(queries), size_of_batch):
                chunk = queries[k : k + size_of_batch]
                got = (
                    dataset.__getitems__(chunk)
                    if size_of_batch > 1
                    else map(dataset.__getitem__, chunk)
                )
                images += [sample["image"] for sample in got]
            results[name] = images
            wall = time.perf_counter() - start
            out[name] = {
                "samples_per_s": samples / wall,
                "requests": server.requests,
                "MB": server.bytes_sent / 1e6,
            }
        same = all(
            torch.equal(a.float(), b.float())
            for mode in ("rasteret", "rasteret, one by one")
            for a, b in zip(results[mode], results["torchgeo"], strict=True)
        )
        out["identical"] = same
        out["ratio"] = out["rasteret"]["samples_per_s"] / out["torchgeo"]["samples_per_s"]
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 30.0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8, help="DataLoader batch size")
    args = parser.parse_args()
    os.environ.update(GDAL_ENV)
    root = Path(tempfile.mkdtemp(prefix="rasteret-torchgeo-bench-"))
    for latency in args.latency:
        result = run(latency, args.samples, args.size, args.scenes, root, args.batch)
        r, t = result["rasteret"], result["torchgeo"]
        single = result["rasteret, one by one"]["samples_per_s"]
        print(
            f"latency {latency:4.0f} ms, {args.samples} samples of {args.size}x{args.size} px x "
            f"{len(BANDS)} bands, batches of {args.batch}: rasteret {r['samples_per_s']:6.1f}/s "
            f"(one by one {single:6.1f}/s; {r['requests']} req, "
            f"{r['MB']:.1f} MB) | TorchGeo RasterDataset {t['samples_per_s']:6.1f}/s "
            f"({t['requests']} req, {t['MB']:.1f} MB) | ratio {result['ratio']:.1f}x | "
            f"identical samples: {result['identical']}"
        )


if __name__ == "__main__":
    main()
