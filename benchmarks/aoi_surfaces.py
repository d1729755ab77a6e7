"""The AOI read surfaces in fresh processes: ``get_numpy``, ``get_xarray`` and
``read_aoi_windows`` on the cold-start scenes.

``get_numpy`` stacks its windows and ``get_xarray`` lays them out per band: what those
result arrays cost beyond the per-window read (``read_aoi_windows``, what the cold-start
table's ``rasteret`` tool times) is mostly memory touched for the first time, which only a
fresh process shows. Each surface runs in its own fresh process (``--repeat`` times, the
surfaces interleaved) against a loopback object server with ``--latency-ms`` first-byte
latency, on the single-AOI scenario (one UTM zone) and on the same AOI over the scenes of
both zones (records reprojected to the most common CRS: the target-grid path). The
results are checked equal across surfaces (data and validity). Bytecode is cached as on
a normal installation (``coldstart.worker_env``: a cache outside the source tree even
where ``PYTHONDONTWRITEBYTECODE`` is set, filled by one untimed run of each surface and
case).

    python benchmarks/aoi_surfaces.py                     # 5490² scenes, 3 runs each
    python benchmarks/aoi_surfaces.py --quick             # small scenes: a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from coldstart import worker_env
from coldstart_data import make_scenes

BANDS = ("B02", "B03", "B04", "B08")
AOI = (11.9276091, 46.9456924, 12.1447819, 47.093804)  # the cold-start single AOI
SURFACES = ("read_aoi_windows", "get_numpy", "get_xarray")

CHILD = textwrap.dedent(
    """
    import hashlib, json, resource, sys, time
    import numpy as np, pyarrow.dataset, pyproj, shapely, xarray  # imports off the clock
    import dask.array  # xarray imports it at its first DataArray when installed
    import rasteret
    from rasteret.read import get_numpy, get_xarray, read_aoi_windows
    # the read path's own modules too: the clock measures reading, not compiling
    import rasteret.read.aoi_xarray, rasteret.read.common_grid, rasteret.read.mosaic
    import rasteret.read.native, rasteret.read.grid_tasks, rasteret.geo.warp
    surface, index, ids, aoi, bands = sys.argv[1], sys.argv[2], *map(json.loads, sys.argv[3:6])
    collection = rasteret.load(index).select_records(ids)
    read = {"get_numpy": get_numpy, "get_xarray": get_xarray, "read_aoi_windows": read_aoi_windows}
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = read[surface](collection, tuple(aoi), bands)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    if surface == "get_numpy":
        data, valid = result.data, result.mask
    elif surface == "get_xarray":
        data = np.stack([result[b].values[:, 0] for b in bands], axis=1)
        valid = np.stack([result[f"{b}_valid"].values[:, 0] for b in bands], axis=1)
    elif len({(w.data.shape, str(w.grid.crs)) for w in result}) == 1:  # one stackable grid
        data, valid = np.stack([w.data for w in result]), np.stack([w.mask for w in result])
    else:
        data = valid = None
    digest = None if data is None else hashlib.sha1(data.tobytes() + valid.tobytes()).hexdigest()
    print(json.dumps({
        "wall": wall, "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        "faults": after.ru_minflt - before.ru_minflt, "digest": digest,
    }))
    """
)


def run(args: argparse.Namespace) -> dict:
    from rasteret.ingest import build_from_table
    from rasteret.testing.objserver import ObjectServer

    work = Path(args.workdir)
    data = work / f"data-{args.size}-{args.tile}-{args.scenes}"
    records = make_scenes(data, size=args.size, tile=args.tile, scenes=args.scenes)
    report: dict = {"latency_ms": args.latency_ms, "cases": {}}
    with ObjectServer(data) as server:
        index = work / f"aoi-index-{server.port}.parquet"
        _index(records, server, index, build_from_table)
        server.latency = args.latency_ms / 1000.0
        one_zone = [r["id"] for r in records if r["epsg"] == 32633][: max(1, args.scenes // 2)]
        cases = {
            "single AOI, one zone": one_zone,
            "single AOI, two zones": [r["id"] for r in records],
        }
        env = worker_env(work / "pycache")

        def child(surface: str, ids: list[str]) -> dict:
            done = subprocess.run(
                [sys.executable, "-c", CHILD, surface, str(index), json.dumps(ids),
                 json.dumps(AOI), json.dumps(list(BANDS))],
                capture_output=True, text=True, check=False, env=env,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"{surface} failed:\n{done.stderr[-3000:]}")
            return json.loads(done.stdout.strip().splitlines()[-1])

        for case, ids in cases.items():
            for surface in SURFACES:  # fill the bytecode cache of each path (untimed)
                child(surface, ids)
            runs: dict[str, list[dict]] = {s: [] for s in SURFACES}
            for _ in range(args.repeat):
                for surface in SURFACES:
                    runs[surface].append(child(surface, ids))
            digests = {r["digest"] for s in SURFACES for r in runs[s] if r["digest"]}
            if len(digests) != 1:
                raise SystemExit(f"{case}: the surfaces returned different data ({digests})")
            report["cases"][case] = {
                s: {k: statistics.median(r[k] for r in runs[s]) for k in ("wall", "cpu", "faults")}
                for s in SURFACES
            }
    return report


def _index(records: list[dict], server, out: Path, build) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    import pyarrow as pa

    table = pa.table({
        "id": [r["id"] for r in records],
        "datetime": [dt.datetime.fromisoformat(r["datetime"]) for r in records],
        "assets": [{b: {"href": server.url_for(r["hrefs"][b])} for b in BANDS} for r in records],
    })  # fmt: skip
    build(table).export(str(out))


def table(report: dict) -> str:
    lines = [
        f"| {report['latency_ms']:.0f} ms, medians | surface | wall s | CPU s | page faults |",
        "|---|---|---:|---:|---:|",
    ]
    for case, surfaces in report["cases"].items():
        for surface, m in surfaces.items():
            lines.append(
                f"| {case} | `{surface}` | {m['wall']:.3f} | {m['cpu']:.2f} | {m['faults']:,.0f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=5490)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--scenes", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="512² scenes, 4 of them, 1 run")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "rasteret-aoi"))
    parser.add_argument("--json", help="write the medians to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.tile, args.scenes, args.repeat = 512, 256, 4, 1
    report = run(args)
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
