"""Whole-scene decode throughput: rasteret against rasterio (GDAL) in one run.

    python benchmarks/throughput.py [--size 5490] [--tile 1024] [--repeat 3]
                                    [--latency-ms 0,30] [--json out.json] [--quick]

Writes a Sentinel-2-like uint16 COG (deflate + predictor 2, square tiles, overviews)
twice into a temporary folder, once with GDAL's COG driver and once with
``rasteret.samples.write_cog`` (same pixels), serves both from a loopback
``rasteret.testing.objserver.ObjectServer`` and reads the full-resolution image of each
with every tool, each measurement in a fresh process (cold start; the OS page cache is
warm for local reads). Tools: rasterio ``src.read(1)`` (local path, and ``/vsicurl/``
with GDAL's remote-COG settings), rasteret's index build, rasteret's xarray engine
(``xr.open_dataset(..., engine="rasteret", chunks={})[band].values``, and without
``chunks``: no dask), rasteret's
reference reader ``rasteret.tiff.read_image``, and two in-memory decode floors.
Every array must equal rasterio's (exit status 1 otherwise). Prints a markdown table;
``--json`` also writes every raw measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_data import BAND, SceneFile, machine_info, make_scene_files  # noqa: E402

from rasteret.testing.objserver import ObjectServer  # noqa: E402

WORKER = HERE / "bench_workers.py"
READ_TOOLS = ("rasterio", "rasteret-xarray", "rasteret-xarray-nodask", "rasteret-read_image")
FLOOR_TOOLS = ("floor-decode_block", "floor-imagecodecs")
LOCAL_GDAL_ENV = {"GDAL_NUM_THREADS": "ALL_CPUS"}
#: GDAL's recommended settings for reading COGs over HTTP.
REMOTE_GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_NUM_THREADS": "ALL_CPUS",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
}


class BenchmarkError(RuntimeError):
    pass


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=None, help="scene width = height (5490)")
    parser.add_argument("--tile", type=int, default=None, help="tile size in pixels (1024)")
    parser.add_argument("--repeat", type=int, default=None, help="fresh processes per case (3)")
    parser.add_argument("--latency-ms", default="0,30", help="server latencies, comma separated")
    parser.add_argument("--json", type=Path, help="write all measurements to this file")
    parser.add_argument(
        "--quick", action="store_true", help="CI smoke: 1024² scene, 256-px tiles, one repeat"
    )
    parser.add_argument("--tools", help="only these tools (comma separated; default: all)")
    parser.add_argument("--writers", default="gdal,rasteret", help="which files to read")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: temp dir)")
    parser.add_argument("--profile", type=Path, help="also write cProfile stats per case here")
    args = parser.parse_args(argv)
    quick = args.quick
    args.size = args.size or (1024 if quick else 5490)
    args.tile = args.tile or (256 if quick else 1024)
    args.repeat = args.repeat or (1 if quick else 3)
    args.latencies = [float(v) for v in str(args.latency_ms).split(",") if v.strip()]
    args.tool_filter = set(args.tools.split(",")) if args.tools else None
    return args


# -- running one measurement ---------------------------------------------------------------------
def run_worker(
    spec: dict[str, Any], server: ObjectServer | None, data_start: int, root: Path
) -> dict:
    """Run one tool in a fresh process; add the server's counters for its requests.
    The collections (in ``root/collections``) may read the scenes under ``root``."""
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env["RASTERET_LOCAL_ROOTS"] = str(root)
    if server is not None:
        server.reset()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchmarkError(
            f"{spec['tool']} on {spec.get('target') or spec.get('collection')} "
            f"failed (exit {done.returncode}):\n"
            f"{done.stderr[-3000:]}"
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start  # spawn to exit: imports included
    if server is not None:
        log = list(server.log)
        result["http_requests"] = server.requests
        result["http_bytes"] = server.bytes_sent
        result["http_header_requests"] = sum(
            1 for r in log if r.method == "HEAD" or r.start is None or r.start < data_start
        )
        result["http_heads"] = sum(1 for r in log if r.method == "HEAD")
    return result


def cases_for(
    scene: SceneFile, access: str, target: str, collection: Path, workspace: Path
) -> list[dict[str, Any]]:
    """The worker specs of one file × access mode (index build first: reads need it)."""
    gdal_env = LOCAL_GDAL_ENV if access == "local" else REMOTE_GDAL_ENV
    rasterio_target = target if access == "local" else f"/vsicurl/{target}"
    specs: list[dict[str, Any]] = [
        {
            "tool": "rasteret-index",
            "target": target,
            "band": BAND,
            "export": str(collection),
            "workspace": str(workspace),
        },
        {"tool": "rasterio", "target": rasterio_target, "gdal_env": gdal_env},
        {"tool": "rasteret-xarray", "collection": str(collection), "band": BAND},
        {"tool": "rasteret-xarray-nodask", "collection": str(collection), "band": BAND},
        {"tool": "rasteret-read_image", "target": target},
    ]
    if access == "local":
        specs += [{"tool": tool, "target": target} for tool in FLOOR_TOOLS]
        for spec in specs[1:]:
            spec["warm"] = True  # a second read in the same process (no HTTP caches involved)
    return specs


def measure(
    args: argparse.Namespace, scenes: dict[str, SceneFile], root: Path, server: ObjectServer
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    accesses = [("local", None)] + [(f"http {ms:g} ms", ms) for ms in args.latencies]
    for writer in args.writers.split(","):
        scene = scenes[writer]
        for access, latency in accesses:
            if latency is None:
                target, srv = str(scene.path), None
            else:
                server.latency = latency / 1000.0
                target, srv = server.url_for(scene.path.relative_to(root)), server
            slug = f"{writer}-{access.replace(' ', '')}"
            collection = root / "collections" / f"{slug}.parquet"
            specs = cases_for(scene, access, target, collection, root / "workspace")
            wanted = args.tool_filter or {s["tool"] for s in specs}
            for repeat in range(args.repeat):
                for spec in specs:
                    index = spec["tool"] == "rasteret-index"
                    if spec["tool"] not in wanted and not (index and repeat == 0):
                        continue  # the reads need the index: it is built at least once
                    try:
                        result = run_worker(spec, srv, scene.data_start, root)
                    except BenchmarkError as error:  # keep going: report it at the end
                        print(f"error: {error}", file=sys.stderr, flush=True)
                        result = {"error": str(error), "wall": float("nan")}
                    runs.append(
                        {
                            "writer": writer,
                            "access": access,
                            "repeat": repeat,
                            **spec,
                            "result": result,
                        }
                    )
                    print(
                        f"  {writer:8s} {access:10s} {spec['tool']:20s} {result['wall']:7.3f} s",
                        file=sys.stderr,
                        flush=True,
                    )
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                for spec in specs[1:]:
                    if spec["tool"] not in wanted:
                        continue
                    profiled = dict(spec, profile=str(args.profile / f"{slug}-{spec['tool']}.prof"))
                    try:
                        run_worker(profiled, srv, scene.data_start, root)
                    except BenchmarkError as error:
                        print(f"error: {error}", file=sys.stderr, flush=True)
    return runs


# -- summarising ---------------------------------------------------------------------------------
def check_arrays(runs: list[dict[str, Any]]) -> list[str]:
    """Every array must equal rasterio's local read of GDAL's file (errors as text)."""
    reference = next(
        (r["result"]["digest"] for r in runs if r["tool"] == "rasterio" and r["access"] == "local"),
        None,
    )
    if reference is None:
        reference = next((r["result"]["digest"] for r in runs if "digest" in r["result"]), None)
    errors = []
    for r in runs:
        got = r["result"].get("digest")
        if got is not None and got != reference:
            errors.append(f"{r['tool']} ({r['writer']} file, {r['access']}): {got} != {reference}")
    return errors


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(runs: list[dict[str, Any]], scenes: dict[str, SceneFile]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in runs:
        if "error" not in r["result"]:
            groups.setdefault((r["writer"], r["access"], r["tool"]), []).append(r["result"])
    rows = []
    for (writer, access, tool), results in groups.items():
        wall = [x["wall"] for x in results]
        row: dict[str, Any] = {
            "writer": writer,
            "access": access,
            "tool": tool,
            "runs": len(results),
            "wall": _median(wall),
            "best": min(wall),
            "open": _median([x.get("open", 0.0) for x in results]),
            "cpu": _median([x["cpu"] for x in results]),
            "process": _median([x["process"] for x in results]),
            "warm": _median([x["warm"] for x in results]) if "warm" in results[0] else None,
        }
        for key in ("http_requests", "http_header_requests", "http_bytes", "rasteret_requests"):
            if key in results[0]:
                row[key] = _median([x[key] for x in results])
        if tool != "rasteret-index":
            row["mb_per_s"] = scenes[writer].decoded_bytes / row["wall"] / 1e6
        rows.append(row)
    for row in rows:
        base = next(
            (
                x
                for x in rows
                if (x["writer"], x["access"], x["tool"])
                == (row["writer"], row["access"], "rasterio")
            ),
            None,
        )
        if base is not None and row["tool"] != "rasteret-index":
            row["vs_rasterio"] = row["wall"] / base["wall"]
            row["vs_rasterio_best"] = row["best"] / base["best"]
    return rows


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "–"
    return format(value, spec)


def _ratio(row: dict[str, Any]) -> str:
    if "vs_rasterio" not in row:
        return "–"
    return f"{row['vs_rasterio']:.2f} / {row['vs_rasterio_best']:.2f}"


def markdown(
    rows: list[dict[str, Any]], scenes: dict[str, SceneFile], machine: dict[str, Any], command: str
) -> str:
    """The summary table, the scene and the machine, as markdown."""
    scene = next(iter(scenes.values()))
    files = ", ".join(f"{s.writer} {s.file_bytes / 1e6:.1f} MB" for s in scenes.values())
    lines = [
        f"Scene: {scene.width} × {scene.height} uint16, {scene.tiles} tiles of {scene.tile}², "
        f"deflate + predictor 2, {scene.decoded_bytes / 1e6:.1f} MB decoded; files: {files}.",
        "",
        "| file | access | tool | cold s | best s | warm s | MB/s | CPU s | requests "
        "| header req. | HTTP MB | × rasterio (median / best) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "http_requests" in row:
            requests = _fmt(row["http_requests"], ".0f")
            header = _fmt(row["http_header_requests"], ".0f")
            mb = _fmt(row["http_bytes"] / 1e6, ".1f")
        else:
            local = row.get("rasteret_requests")
            requests = f"({local:.0f} reads)" if local is not None else "–"
            header, mb = "–", "–"
        lines.append(
            f"| {row['writer']} | {row['access']} | {row['tool']} | {row['wall']:.3f} "
            f"| {row['best']:.3f} | {_fmt(row.get('warm'), '.3f')} "
            f"| {_fmt(row.get('mb_per_s'), '.0f')} | {row['cpu']:.2f} "
            f"| {requests} | {header} | {mb} | {_ratio(row)} |"
        )
    lines += [
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + ".",
        "",
        f"Command: `{command}`",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python benchmarks/throughput.py " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    machine = machine_info()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rasteret-throughput-") as tmp:
        root = (args.workdir or Path(tmp)).resolve()
        print(f"writing {args.size}² scenes ({args.tile}-px tiles) to {root}", file=sys.stderr)
        scenes = make_scene_files(root, args.size, args.tile)
        with ObjectServer(root) as server:
            runs = measure(args, scenes, root, server)
    failed = [r for r in runs if "error" in r["result"]]
    machine["load_average"] = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    rows = summarise(runs, scenes)
    print(markdown(rows, scenes, machine, command.strip()))
    errors = check_arrays(runs)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "machine": machine,
                    "config": {
                        "size": args.size,
                        "tile": args.tile,
                        "repeat": args.repeat,
                        "latency_ms": args.latencies,
                    },
                    "files": {k: {**vars(v), "path": str(v.path)} for k, v in scenes.items()},
                    "summary": rows,
                    "runs": runs,
                    "errors": errors,
                },
                indent=1,
            )
        )
    if failed:
        print(f"\n{len(failed)} measurement(s) failed (see above).", file=sys.stderr)
        return 2
    if errors:
        print("\nARRAYS DIFFER:\n" + "\n".join(errors), file=sys.stderr)
        return 1
    print("\nAll arrays equal rasterio's.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
