"""What the first read in a fresh process costs over the second: imports and warm-up.

Every DataLoader or dask worker is a fresh process, often without cached bytecode
(``PYTHONDONTWRITEBYTECODE=1``, as in many containers). This script builds a small
Sentinel-2-like collection served over loopback HTTP (``--latency-ms`` first-byte
latency), then, in fresh processes, times ``import rasteret`` + ``rasteret.load``, the
first read of a surface, and a second identical read in the same process. The
difference between the two reads is what the first read pays once per process for the
modules it imports and the clients it creates (issue #17's bound: 0.15 s); "no
bytecode" runs compile every module from source (an empty ``PYTHONPYCACHEPREFIX``).
Surfaces: ``get_numpy`` (AOI), ``read_window`` (TorchGeo's path), and the xarray engine
(``open_dataset(...).B04[...].values``; the user's ``import xarray`` and xarray's own
discovery of every installed engine, ``list_engines()``, happen before the clock).

    python benchmarks/first_read.py                    # both bytecode modes, 3 processes each
    python benchmarks/first_read.py --repeat 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROBE = r"""
import json, sys, time
start = time.perf_counter()
surface, collection_path, aoi = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

def read():
    if surface == "get_numpy":
        return collection.get_numpy(tuple(aoi), ["B04", "B08"]).data
    if surface == "read_window":
        return collection.read_window(bands=["B04", "B08"], bounds=tuple(aoi_utm), res=10.0)
    ds = xr.open_dataset(collection, engine="rasteret", bands=["B04"])
    return ds["B04"][:, 100:612, 100:612].values

if surface == "xarray":
    import xarray as xr
    xr.backends.list_engines()
import rasteret
collection = rasteret.load(collection_path)
aoi_utm = None
if surface == "read_window":
    from rasteret.geo import transform_bounds
    aoi_utm = transform_bounds(tuple(aoi), "EPSG:4326", collection.crs[0])
loaded = time.perf_counter() - start
t0 = time.perf_counter()
first_data = read()
first = time.perf_counter() - t0
t0 = time.perf_counter()
second_data = read()
second = time.perf_counter() - t0
assert (first_data == second_data).all()
print(json.dumps({"load": loaded, "first": first, "second": second}))
"""


def build(root: Path, base_url: str) -> tuple[str, list[float]]:
    import pyarrow as pa

    import rasteret
    from rasteret.samples import make_sentinel2_like

    records = make_sentinel2_like(root / "data", scenes=4, size=2048, bands=("B04", "B08"))
    table = pa.Table.from_pylist(
        [
            {
                "id": r["id"],
                "datetime": r["datetime"],
                "assets": {
                    b: {"href": f"{base_url}/{Path(h).relative_to(root / 'data')}"}
                    for b, h in r["hrefs"].items()
                },
            }
            for r in records
        ]
    )
    collection = rasteret.build_from_table(table, name="first-read", workspace_dir=root / "ws")
    path = root / "collection.parquet"
    collection.export(path)
    west, south, east, north = collection.bounds
    dx, dy = (east - west) / 4, (north - south) / 4
    return str(path), [west + dx, south + dy, west + 2 * dx, south + 2 * dy]


def measure(surface: str, path: str, aoi: list[float], bytecode: bool) -> dict[str, float]:
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("PYTHONPYCACHEPREFIX", None)
        flags = []
    else:  # an empty cache that is never written: every module compiles from source
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="no-pyc-")
        flags = ["-B"]
    out = subprocess.run(
        [sys.executable, *flags, "-c", PROBE, surface, path, json.dumps(aoi)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode:
        raise RuntimeError(f"{surface} probe failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--json", help="write the measurements to this file")
    args = parser.parse_args(argv)

    from rasteret.testing.objserver import ObjectServer

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        with ObjectServer(root / "data", latency=args.latency_ms / 1000) as server:
            path, aoi = build(root, server.url)
            for bytecode in (True, False):
                if bytecode:  # compile once so the cached-bytecode runs find it
                    measure("get_numpy", path, aoi, True)
                for surface in ("get_numpy", "read_window", "xarray"):
                    runs = [measure(surface, path, aoi, bytecode) for _ in range(args.repeat)]
                    load = statistics.median(r["load"] for r in runs)
                    first = statistics.median(r["first"] for r in runs)
                    second = statistics.median(r["second"] for r in runs)
                    results.append(
                        {
                            "surface": surface,
                            "bytecode": "cached" if bytecode else "none",
                            "load": load,
                            "first": first,
                            "second": second,
                            "overhead": first - second,
                            "runs": runs,
                        }
                    )
    print(
        "| surface | bytecode | import rasteret + load s | first read s | second read s "
        "| first − second s (bound 0.15) |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['surface']} | {r['bytecode']} | {r['load']:.3f} | {r['first']:.3f} "
            f"| {r['second']:.3f} | {r['overhead']:.3f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
