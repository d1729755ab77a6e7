"""``explain().estimate()`` beside the reads it estimates: predicted vs measured seconds.

    python benchmarks/explain_estimate.py [--data DIR] [--scenes 4] [--latency-ms 0,30,100]
    python benchmarks/explain_estimate.py --quick      # small generated scenes (CI smoke)

Serves ``DIR``'s ``flat/*.tif`` (the cold-start data from ``coldstart.py``; default: small
scenes written by ``rasteret.samples`` into a temporary folder) from the loopback object
server with each injected first-byte latency, builds an index of ``--scenes`` scenes
(header reads not timed), then for three reads — one 1,000 px window of one band of one
scene (latency-bound), the same window over every scene and band, and whole scenes of one
band (decode-bound) — prints the plan's requests and bytes, the estimate, the measured
wall time (median of ``--repeat`` in this process, after a warm-up read) and their ratio.
The model is documented in ``rasteret.store.cost``; this shows how far it is from reality.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from rasteret.fetch import configure
from rasteret.ingest import build_from_files
from rasteret.read.explain import explain
from rasteret.testing.objserver import ObjectServer


def _generated(root: Path, scenes: int) -> list[Path]:
    from rasteret.samples import write_cog

    rng = np.random.default_rng(0)
    paths = []
    for k in range(scenes):
        base = rng.integers(0, 3000, (1, 1098, 1098), dtype=np.uint16)
        data = np.cumsum(base, axis=2, dtype=np.uint32).astype(np.uint16)
        path = root / f"S2_33N_202401{k + 1:02d}_B04.tif"
        write_cog(
            path,
            data,
            transform=(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0),
            epsg=32633,
            tile=256,
            compression="deflate",
            predictor=2,
        )
        paths.append(path)
    return paths


def _files(data: Path | None, scenes: int, tmp: Path) -> tuple[Path, list[str]]:
    if data is None:
        return tmp, [p.name for p in _generated(tmp, scenes)]
    flat = data / "flat"
    names = sorted(p.name for p in flat.glob("*.tif"))
    zone = names[0].split("_")[1]  # one grid: scenes of the first UTM zone only
    stems = sorted({n.rsplit("_", 1)[0] for n in names if n.split("_")[1] == zone})[:scenes]
    return flat, [n for n in names if n.rsplit("_", 1)[0] in stems]


def _measure(read, repeat: int) -> float:
    read()  # warm-up: imports, event loop, connections
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="cold-start data directory")
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--latency-ms", default="0,30,100")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 small scenes, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.scenes, args.repeat, args.latency_ms = None, 2, 1, "0,10"
    with tempfile.TemporaryDirectory() as tmp:
        root, names = _files(args.data, args.scenes, Path(tmp))
        print("| read | latency | requests | MB | estimate | measured | est ÷ measured |")
        print("|---|---|---|---|---|---|---|")
        for ms in (float(v) for v in args.latency_ms.split(",")):
            with ObjectServer(root, latency=ms / 1000) as server:
                configure(max_in_flight=16)
                collection = build_from_files([server.url_for(n) for n in names])
                band = collection.bands[0]
                first = collection.where(pc.field("id") == collection.table["id"][0].as_py())
                level = collection.band_levels(band)[0].full
                a, _, c, _, e, f = level.transform[:6]
                w = min(1000, level.width)
                bbox = (c, f + w * e, c + w * a, f)
                reads = {
                    "one window, 1 band, 1 scene": (first, [band], bbox),
                    "one window, all bands and scenes": (collection, None, bbox),
                    "whole scenes, 1 band": (collection, [band], None),
                }
                for label, (selection, bands, box) in reads.items():
                    plan = explain(selection, bands, bbox=box)
                    cost = plan.estimate(ms / 1000, in_flight=16)

                    def read(selection=selection, bands=bands, box=box) -> None:
                        import xarray as xr

                        ds = xr.open_dataset(selection, engine="rasteret", chunks={})
                        for name in bands or selection.bands:
                            for var in ds.data_vars:
                                if var == name or var.startswith(f"{name}__"):
                                    arr = ds[var]
                                    if box is not None:
                                        arr = arr.sel(
                                            x=slice(box[0], box[2]), y=slice(box[3], box[1])
                                        )
                                    arr.load()

                    measured = _measure(read, args.repeat)
                    print(
                        f"| {label} | {ms:.0f} ms | {plan.requests} | {plan.bytes / 1e6:.1f} | "
                        f"{cost.seconds:.3f} s ({cost.bound}) | {measured:.3f} s | "
                        f"{cost.seconds / measured:.2f} |"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
