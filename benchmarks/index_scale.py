"""Control-plane costs at scale: load, subset, open, export of a large collection index.

    python benchmarks/index_scale.py /tmp/s2_200k.parquet [--code OLD_SRC ...] [--json out.json]

Each step runs in a fresh process (imports warmed first, so the timings are the steps'
own) and reports seconds, peak RSS and bytes read from disk (``/proc/self/io`` rchar):

* ``load``: ``rasteret.load(path)`` and ``len`` / ``bands``;
* ``subset``: ``.subset(date_range=<10 days>)`` then ``len`` (~1/300 of the records);
* ``open``: ``xr.open_dataset(subset.where(<one grid>), engine="rasteret", bands=[first])``
  (lazy: coordinates and layout only, no pixel read);
* ``export``: the subset's parent (the whole index) exported to a hive directory
  (``--export``; slow for big indexes).

``--code DIR`` (repeatable) runs the same steps with ``PYTHONPATH=DIR`` — e.g. a git
worktree of an older commit — so the before / after numbers come from one run.
Generate an index with ``benchmarks/large_index.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

STEP = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import pyarrow.compute as pc, xarray as xr
    import rasteret
    def rchar():
        for line in open("/proc/self/io"):
            if line.startswith("rchar"):
                return int(line.split()[1])
    path, window, export_to = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    out = {}
    def mark(name, t0, r0):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out[name] = {"s": round(time.perf_counter() - t0, 3),
                     "read_mb": round((rchar() - r0) / 2**20, 1), "peak_rss_mb": round(peak)}
    import rasteret.backend.entrypoint, rasteret.store.api  # warm imports (not timed)
    xr.backends.list_engines()
    t0, r0 = time.perf_counter(), rchar()
    c = rasteret.load(path); n = len(c); bands = c.bands
    mark("load", t0, r0); out["records"] = n
    t0, r0 = time.perf_counter(), rchar()
    s = c.subset(date_range=tuple(window)); k = len(s)
    mark("subset", t0, r0); out["selected"] = k
    t0, r0 = time.perf_counter(), rchar()
    tile = s.to_table(columns=["geometry"])["geometry"][0]  # one column of the selection
    one = s.where(pc.field("geometry") == tile)
    ds = xr.open_dataset(one, engine="rasteret", bands=[bands[0]])
    mark("open", t0, r0); out["opened_records"] = int(ds.sizes["time"])
    if export_to:
        t0, r0 = time.perf_counter(), rchar()
        c.export(export_to)
        mark("export", t0, r0)
    print(json.dumps(out))
    """
)


def run(code: str | None, path: str, window: str, export_to: str) -> dict:
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code
    result = subprocess.run(
        [sys.executable, "-c", STEP, path, window, export_to],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--code", action="append", default=[], help="PYTHONPATH of a variant")
    parser.add_argument("--window", default="2020-01-01,2020-01-10")
    parser.add_argument("--export", help="export the whole index to this directory too")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    here = str(Path(__file__).resolve().parents[1] / "src")
    variants = {"this": here, **{Path(c).parent.name or c: c for c in args.code}}
    report = {}
    for name, code in variants.items():
        export_to = f"{args.export}-{name}" if args.export else ""
        report[name] = run(code, args.path, args.window, export_to)
        print(name, json.dumps(report[name]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
