"""Control-plane costs at scale: load, subset, open, export of a large collection index.

    python benchmarks/index_scale.py /tmp/s2_200k.parquet [--code OLD_SRC ...] [--json out.json]

Each step runs in a fresh process (imports warmed first, so the timings are the steps'
own) and reports seconds, peak RSS and bytes read from disk (``/proc/self/io`` rchar):

* ``load``: ``rasteret.load(path)`` and ``len`` / ``bands``;
* ``subset``: ``.subset(date_range=<10 days>)`` then ``len`` (~1/300 of the records);
* ``open``: ``xr.open_dataset(subset.where(<one grid>), engine="rasteret", bands=[first])``
  (lazy: coordinates and layout only, no pixel read);
* ``place``: ``load(path).subset(bbox=<0.02° around a footprint's centre>, date_range=<91
  days>)`` and ``xr.open_datatree`` of it (every band and grid; lazy) — "one place over a
  few months";
* ``export``: the subset's parent (the whole index) exported to a hive directory
  (``--export``; slow for big indexes).

``--code DIR`` (repeatable) runs the same steps with ``PYTHONPATH=DIR`` — e.g. a git
worktree of an older commit — so the before / after numbers come from one run.
Generate an index with ``benchmarks/large_index.py``. ``--s3`` uploads the
index (a file, or a partitioned directory object by object) to moto's S3 on 127.0.0.1 and
runs the same steps on ``s3://bench/...`` through the fetch layer's stores, reporting
moto's requests and bytes per step (moto reads a whole object for every ranged GET, so
its seconds are moto's; a partitioned index keeps each object small).
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
    def hwm_mb():  # VmHWM: reset by exec (ru_maxrss keeps a forking parent's peak)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    def rchar():
        for line in open("/proc/self/io"):
            if line.startswith("rchar"):
                return int(line.split()[1])
    path, window, export_to = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    out = {}
    endpoint = os.environ.get("INDEX_SCALE_S3_ENDPOINT")
    if endpoint:  # the index lives in moto's S3: same store settings as tile reads
        import rasteret.fetch
        rasteret.fetch.configure(stores={"s3://": {"endpoint": endpoint, "region": "us-east-1"}})
    def boundary(name):  # a request the driver splits moto's log at (S3 only)
        if endpoint:
            try:
                from rasteret._async import run_sync
                reader = rasteret.fetch.default_reader()
                run_sync(reader.stat(f"{path.rsplit('/', 1)[0]}/.step-{name}"))
            except Exception:
                pass
    def mark(name, t0, r0):
        peak = hwm_mb()
        out[name] = {"s": round(time.perf_counter() - t0, 3),
                     "read_mb": round((rchar() - r0) / 2**20, 1), "peak_rss_mb": round(peak)}
    import rasteret.backend.entrypoint, rasteret.store.api  # warm imports (not timed)
    xr.backends.list_engines()
    boundary("load")
    t0, r0 = time.perf_counter(), rchar()
    c = rasteret.load(path); n = len(c); bands = c.bands
    mark("load", t0, r0); out["records"] = n
    boundary("subset")
    t0, r0 = time.perf_counter(), rchar()
    s = c.subset(date_range=tuple(window)); k = len(s)
    mark("subset", t0, r0); out["selected"] = k
    boundary("open")
    t0, r0 = time.perf_counter(), rchar()
    tile = s.to_table(columns=["geometry"])["geometry"][0]  # one column of the selection
    one = s.where(pc.field("geometry") == tile)
    ds = xr.open_dataset(one, engine="rasteret", bands=[bands[0]])
    mark("open", t0, r0); out["opened_records"] = int(ds.sizes["time"])
    boundary("place")
    t0, r0 = time.perf_counter(), rchar()
    box = s.to_table(columns=["bbox"])["bbox"][0].as_py()  # a point of one footprint
    cx, cy = (box["xmin"] + box["xmax"]) / 2, (box["ymin"] + box["ymax"]) / 2
    start = __import__("datetime").date.fromisoformat(window[0])
    months = (str(start), str(start + __import__("datetime").timedelta(days=91)))
    p = c.subset(bbox=(cx - 0.01, cy - 0.01, cx + 0.01, cy + 0.01), date_range=months)
    placed = len(p)
    tree = xr.open_datatree(p, engine="rasteret")  # every band, every grid (lazy)
    mark("place", t0, r0); out["place_records"] = placed
    out["place_grids"] = len(tree.children)
    boundary("end")
    if export_to:
        t0, r0 = time.perf_counter(), rchar()
        c.export(export_to)
        mark("export", t0, r0)
    print(json.dumps(out))
    """
)


def run(
    code: str | None, path: str, window: str, export_to: str, env_extra: dict | None = None
) -> dict:
    env = dict(os.environ, **(env_extra or {}))
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
    parser.add_argument(
        "--s3",
        action="store_true",
        help="upload the index to moto's S3 on 127.0.0.1 and read it from there; "
        "reports the requests and bytes of each step",
    )
    args = parser.parse_args(argv)
    if args.s3:
        return _main_s3(args)
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


def _main_s3(args: argparse.Namespace) -> int:
    """The same steps on ``s3://bench/<file>`` served by moto (``rasteret.testing.moto``),
    with moto's request log split per step."""
    import time

    from boto3.s3.transfer import TransferConfig

    from rasteret.testing.moto import ACCESS_KEY, SECRET_KEY, MotoS3Server

    source = Path(args.path)
    files = [source] if source.is_file() else sorted(source.rglob("*.parquet"))
    if not files:
        raise SystemExit(f"--s3: no Parquet file at {source}")
    single_put = TransferConfig(multipart_threshold=2**40)  # moto joins parts in memory
    with MotoS3Server() as s3:
        s3.create_bucket("bench")
        started = time.perf_counter()
        client = s3.client()
        for file in files:
            key = source.name if file == source else f"{source.name}/{file.relative_to(source)}"
            client.upload_file(str(file), "bench", f"index/{key}", Config=single_put)
        uploaded = time.perf_counter() - started
        s3.reset()
        env = {
            "INDEX_SCALE_S3_ENDPOINT": s3.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }
        here = str(Path(__file__).resolve().parents[1] / "src")
        url = f"s3://bench/index/{source.name}"
        result = run(here, url, args.window, "", env)
        steps: dict[str, dict[str, int]] = {}
        current = None
        for record in s3.records():
            marker = record.path.rpartition("/.step-")
            if marker[1]:
                current = marker[2]
                continue
            if current is not None and current != "end":
                step = steps.setdefault(current, {"requests": 0, "bytes": 0})
                step["requests"] += 1
                step["bytes"] += record.bytes_sent
        for name, counts in steps.items():
            result.setdefault(name, {}).update(counts)
        result["object_bytes"] = sum(f.stat().st_size for f in files)
        result["objects"] = len(files)
        result["upload_s"] = round(uploaded, 1)
    print("s3", json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"s3": result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
