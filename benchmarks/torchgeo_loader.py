"""Training throughput with DataLoader workers: rasteret's TorchGeo dataset vs TorchGeo's
``RasterDataset``, one epoch with fresh worker processes.

    python benchmarks/torchgeo_loader.py [--latency-ms 30] [--samples 96] [--batch 8]
        [--workers 2] [--context fork] [--workdir DIR] [--json out.json]

The scenes are the cold-start benchmark's (``coldstart_data.make_scenes``: 5490² px,
1024-px deflate tiles, B02/B03/B04/B08; the 15 scenes of UTM zone 33N), served by the
loopback object server with first-byte latency. Each tool runs in its own fresh process,
which builds its dataset untimed — rasteret loads an index built beforehand by another
process (the one-time header read), TorchGeo's ``RasterDataset`` lists the ``/vsicurl/``
URLs with GDAL's remote-COG settings — and then times one epoch of
``DataLoader(dataset, sampler=<the same random 256² queries>, batch_size, num_workers,
collate_fn=stack_samples)``. Without ``persistent_workers`` every epoch starts new
worker processes, so the clock covers their start and their first reads (TorchGeo's
workers open each file again; rasteret's read no header). Samples are checked identical
(a digest per sample, computed after the epoch's clock stops). Bytecode is cached (in
``<workdir>/pycache``, filled by one untimed import of each tool's modules) as on a normal
installation, also where ``PYTHONDONTWRITEBYTECODE`` is set. Figures are ratios from
one run on this machine, not targets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from coldstart import worker_env
from coldstart_data import make_scenes
from torchgeo_samples import GDAL_ENV as SAMPLES_GDAL_ENV

GDAL_ENV = {**SAMPLES_GDAL_ENV, "GDAL_NUM_THREADS": "ALL_CPUS"}  # RasterDataset's settings
BANDS = ("B02", "B03", "B04", "B08")
#: Modules a forkserver imports once, so each worker starts as a fork of a clean process
#: (GDAL's HTTP connections do not survive a fork from a process that used them).
PRELOAD = {
    "rasteret": ["torch", "torchgeo.datasets", "rasteret.integrations.torchgeo"],
    "torchgeo": ["torch", "torchgeo.datasets", "rasterio"],
}
ZONE = 32633

CHILD = textwrap.dedent(
    """
    import hashlib, json, pickle, sys, time
    import torch
    from torch.utils.data import DataLoader
    from torchgeo.datasets import RasterDataset, stack_samples

    class Scenes(RasterDataset):  # module level: spawned workers unpickle it by name
        filename_glob = "*_B02.tif"
        filename_regex = r"^S2L_\\w+?_(?P<date>\\d{8})_\\d+_L2A_(?P<band>B0[2348])\\.tif$"
        date_format = "%Y%m%d"
        separate_files = True
        all_bands = ("B02", "B03", "B04", "B08")
        listed: list = []

        @property
        def files(self):
            return self.listed

    def main():
        config = json.loads(sys.argv[1])
        queries = pickle.loads(open(config["queries"], "rb").read())
        bands = config["bands"]
        if config["tool"] == "rasteret":
            import rasteret
            from rasteret.integrations.torchgeo import to_torchgeo_dataset
            dataset = to_torchgeo_dataset(rasteret.load(config["index"]), bands=bands)
        else:
            Scenes.listed = sorted(config["files"])
            dataset = Scenes(paths=Scenes.listed, bands=bands)
        workers, context = config["workers"], None
        if workers:
            import multiprocessing
            context = multiprocessing.get_context(config["context"])
            if config["context"] == "forkserver":  # what each worker would import
                context.set_forkserver_preload(config["preload"])
        loader = DataLoader(dataset, sampler=queries, batch_size=config["batch"],
                            num_workers=workers, collate_fn=stack_samples,
                            multiprocessing_context=context)
        epochs = []
        for _ in range(config["epochs"]):  # every epoch starts new worker processes
            images = []
            start = time.perf_counter()
            for batch in loader:
                images.append(batch["image"])  # checked after the clock: not the loader's work
            epochs.append(time.perf_counter() - start)
            digests = [
                hashlib.sha1(image.to(torch.float32).numpy().tobytes()).hexdigest()
                for batch in images
                for image in batch
            ]
        print(json.dumps({"walls": epochs, "samples": len(digests), "digests": digests}))

    if __name__ == "__main__":
        main()
    """
)


def _queries(index: str, samples: int, size: int, sampler: str) -> list:  # type: ignore[type-arg]
    """The same random queries for both tools (TorchGeo's sampler over rasteret's dataset):
    ``scene``: ``RandomGeoSampler`` (each chip from the scene it was drawn in: x, y and
    that scene's time); ``patch``: ``RandomPatchSampler`` (x and y only: every scene
    there, merged first-valid-wins — TorchGeo's spatial sampler since 0.8)."""
    import warnings

    import numpy as np
    import torch
    from torchgeo import samplers

    import rasteret
    from rasteret.integrations.torchgeo import to_torchgeo_dataset

    dataset = to_torchgeo_dataset(rasteret.load(index), bands=list(BANDS))
    if sampler == "patch":
        chosen = samplers.RandomPatchSampler(
            dataset, size=size, length=samples, generator=np.random.default_rng(0)
        )
    else:
        with warnings.catch_warnings():  # deprecated in favour of RandomPatchSampler
            warnings.simplefilter("ignore", DeprecationWarning)
            generator = torch.Generator().manual_seed(0)
            chosen = samplers.RandomGeoSampler(
                dataset, size=size, length=samples, generator=generator
            )
    return list(chosen)


def _flat(root: Path, record: dict, band: str) -> str:
    """``flat/<id>_<band>.tif``: a hard link to the scene's band file whose name carries
    the date, so TorchGeo's ``RasterDataset`` indexes each file at its time (it parses
    only the file name) and a chip of one scene reads that scene only, as rasteret's does."""
    name = f"flat/{record['id']}_{band}.tif"
    link = root / name
    if not link.exists():
        link.parent.mkdir(exist_ok=True)
        os.link(root / record["hrefs"][band], link)
    return name


def _build_index(records: list[dict], root: Path, server, out: Path) -> None:  # type: ignore[no-untyped-def]
    """The one-time header read, in its own process (so no obstore runtime is inherited)."""
    spec = {
        "ids": [r["id"] for r in records],
        "datetimes": [r["datetime"] for r in records],
        "hrefs": [{b: server.url_for(_flat(root, r, b)) for b in BANDS} for r in records],
        "out": str(out),
    }
    script = textwrap.dedent(
        """
        import datetime as dt, json, sys
        import pyarrow as pa
        from rasteret.ingest import build_from_table
        spec = json.loads(sys.argv[1])
        table = pa.table({
            "id": spec["ids"],
            "datetime": [dt.datetime.fromisoformat(t) for t in spec["datetimes"]],
            "assets": [{b: {"href": h} for b, h in row.items()} for row in spec["hrefs"]],
        })
        build_from_table(table).export(spec["out"])
        """
    )
    subprocess.run([sys.executable, "-c", script, json.dumps(spec)], check=True)


def run(args: argparse.Namespace) -> dict:
    from rasteret.testing.objserver import ObjectServer

    work = Path(args.workdir)
    data = work / f"data-{args.size}-{args.tile}-{args.scenes}"
    records = make_scenes(data, size=args.size, tile=args.tile, scenes=args.scenes)
    records = [r for r in records if r["epsg"] == ZONE]
    report: dict = {
        "latency_ms": args.latency_ms, "scenes": len(records), "bands": list(BANDS),
        "sampler": args.sampler, "batch": args.batch, "workers": args.workers,
        "context": args.context, "chip": args.chip,
    }  # fmt: skip
    with ObjectServer(data) as server:
        index = work / "loader_index.parquet"
        _build_index(records, data, server, index)
        queries = _queries(str(index), args.samples, args.chip, args.sampler)
        query_file = work / "loader_queries.pkl"
        query_file.write_bytes(pickle.dumps(queries))
        files = ["/vsicurl/" + server.url_for(_flat(data, r, "B02")) for r in records]
        server.latency = args.latency_ms / 1000.0
        # Bytecode cached as on a normal installation (also where PYTHONDONTWRITEBYTECODE
        # is set): one untimed import of each tool's modules fills the cache first.
        env = {**worker_env(work / "pycache"), **GDAL_ENV}
        for tool in ("rasteret", "torchgeo"):
            imports = "; ".join(f"import {name}" for name in PRELOAD[tool])
            subprocess.run([sys.executable, "-c", imports], env=env, check=True)
        child = work / "torchgeo_loader_child.py"  # a file: spawned workers import it
        child.write_text(CHILD)
        for tool in ("rasteret", "torchgeo"):
            config = {
                "tool": tool, "index": str(index), "files": files, "queries": str(query_file),
                "bands": list(BANDS), "batch": args.batch, "workers": args.workers,
                "context": args.context, "epochs": args.epochs, "preload": PRELOAD[tool],
            }  # fmt: skip
            server.reset()
            done = subprocess.run(
                [sys.executable, str(child), json.dumps(config)],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"{tool} failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            report[tool] = {
                "samples_per_s": result["samples"] / result["walls"][0],
                "epoch_s": result["walls"],
                "later_samples_per_s": [result["samples"] / w for w in result["walls"][1:]],
                "requests": server.requests,
                "MB": server.bytes_sent / 1e6,
                "digest": hashlib.sha1("".join(result["digests"]).encode()).hexdigest(),
                "samples": result["samples"],
            }
    report["identical"] = report["rasteret"]["digest"] == report["torchgeo"]["digest"]
    report["ratio"] = report["rasteret"]["samples_per_s"] / report["torchgeo"]["samples_per_s"]
    return report


def _rates(result: dict) -> str:
    return ", ".join(f"{rate:.1f}/s" for rate in result["later_samples_per_s"]) or "-"


def _ratios(report: dict) -> str:
    pairs = zip(
        report["rasteret"]["later_samples_per_s"],
        report["torchgeo"]["later_samples_per_s"],
        strict=True,
    )
    return ", ".join(f"{a / b:.1f}x" for a, b in pairs) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--chip", type=int, default=256, help="chip size in pixels")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sampler", default="scene", choices=("scene", "patch"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--context",
        default="forkserver",
        choices=("fork", "spawn", "forkserver"),
        help="worker start method (fork: GDAL's connections opened by RasterDataset's "
        "listing break in forked workers)",
    )
    parser.add_argument("--epochs", type=int, default=2, help="the first starts the forkserver")
    parser.add_argument("--size", type=int, default=5490)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--scenes", type=int, default=30, help="half of them in UTM 33N")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "rasteret-bench"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args)
    r, t = report["rasteret"], report["torchgeo"]
    print(
        f"{args.latency_ms:.0f} ms, {r['samples']} chips of {args.chip}² x {len(BANDS)} bands, "
        f"{args.sampler} sampler, batches of {args.batch}, {args.workers} {args.context} "
        f"workers: rasteret "
        f"{r['samples_per_s']:.1f}/s, then {_rates(r)} ({r['requests']} req, {r['MB']:.0f} MB)"
        f" | TorchGeo RasterDataset {t['samples_per_s']:.1f}/s, then {_rates(t)} "
        f"({t['requests']} req, {t['MB']:.0f} MB) | ratio {report['ratio']:.1f}x first epoch, "
        f"{_ratios(report)} later | identical: {report['identical']}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
