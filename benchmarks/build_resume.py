"""A build of many small COGs, killed and resumed, and the same build on a dask cluster.

    python benchmarks/build_resume.py [--files 10000] [--latency-ms 5] [--json out.json]

``--files`` COGs (256² px, hard links of one written file, each its own name and date)
are served by the loopback object server. A persisted ``build_from_files`` runs in a
child process and is killed (SIGKILL) once two parts are on disk; the rerun in a fresh
process must fetch only the headers no finished part holds (the server counts the
requests). The same build then runs through a ``LocalCluster`` (2 worker processes) and
must give the same collection. Exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import rasteret.ingest.checkpoint as checkpoint
    from rasteret.ingest import build_from_files
    urls = json.loads(open(sys.argv[1]).read())
    checkpoint.PART_RECORDS = int(sys.argv[3])
    client = None
    if sys.argv[4] == "cluster":
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
        client = Client(cluster)
    start = time.perf_counter()
    collection = build_from_files(urls, name=sys.argv[4], workspace_dir=sys.argv[2],
                                  client=client)
    print(json.dumps({"s": time.perf_counter() - start, "records": len(collection),
                      "uri": str(collection.uri)}))
    """
)


def _files(root: Path, count: int) -> list[str]:
    import numpy as np

    from rasteret.samples import write_cog

    first = root / "template.tif"
    if not first.exists():
        value = np.arange(256 * 256, dtype="uint16").reshape(256, 256)
        write_cog(first, value, epsg=32633, transform=(10, 0, 500000, 0, -10, 5200000))
    names = []
    for k in range(count):
        name = f"scene_{20200101 + k % 28:08d}_{k:05d}.tif"
        if not (root / name).exists():
            os.link(first, root / name)
        names.append(name)
    return names


def _child(urls_file: Path, workspace: Path, part: int, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(urls_file), str(workspace), str(part), name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(child: subprocess.Popen, what: str) -> dict:
    """The JSON a build child printed last (exits naming ``what`` when it failed)."""
    out, err = child.communicate()
    if child.returncode:
        raise SystemExit(f"{what} failed:\n{err}")
    return json.loads(out.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict:
    import pyarrow.parquet as pq

    from rasteret.testing.objserver import ObjectServer

    work = Path(args.workdir)
    cogs = work / "cogs"
    cogs.mkdir(parents=True, exist_ok=True)
    names = _files(cogs, args.files)
    workspace = work / "ws"
    report: dict = {"files": args.files, "part_records": args.part, "latency_ms": args.latency_ms}
    with ObjectServer(cogs, latency=args.latency_ms / 1000) as server:
        urls_file = work / "urls.json"
        urls_file.write_text(json.dumps([server.url_for(n) for n in names]))
        for leftover in workspace.glob("*"):
            subprocess.run(["rm", "-rf", str(leftover)], check=True)
        # 1. killed once two parts are written
        child = _child(urls_file, workspace, args.part, "resume")
        pattern = ".resume_records.parts-*/part-*.parquet"
        deadline = time.monotonic() + 600
        while len(list(workspace.glob(pattern))) < 2 and time.monotonic() < deadline:
            if child.poll() is not None:
                raise SystemExit(f"the build ended before it was killed:\n{child.stderr.read()}")
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        parts = sorted(workspace.glob(pattern))
        done = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        report["killed"] = {"parts": len(parts), "records_done": done, "requests": server.requests}
        # 2. resumed in a fresh process
        server.reset()
        resumed = _finish(_child(urls_file, workspace, args.part, "resume"), "resumed build")
        report["resumed"] = {**resumed, "requests": server.requests}
        report["resume_fetched_only_missing"] = server.requests == args.files - done
        # 3. on a LocalCluster
        server.reset()
        cluster = _finish(_child(urls_file, workspace, args.part, "cluster"), "cluster build")
        report["cluster"] = {**cluster, "requests": server.requests}
    a = pq.read_table(resumed["uri"]).sort_by("id")
    b = pq.read_table(cluster["uri"]).sort_by("id")
    report["cluster_equals_local"] = (
        a.select(["id", "datetime"]).equals(b.select(["id", "datetime"]))
        and a["b1_metadata"].to_pylist() == b["b1_metadata"].to_pylist()
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--part", type=int, default=2_000, help="records per part")
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "rasteret-build-bench")
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    ok = report["resume_fetched_only_missing"] and report["cluster_equals_local"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
