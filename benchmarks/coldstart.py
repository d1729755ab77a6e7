"""Cold-start comparison: rasteret vs rasterio/GDAL, odc-stac, rioxarray, the upstream
rasteret release and lazycogs over HTTP.

Reproduces the original system's scenarios ("single AOI, 15 scenes", "multi-AOI, 30
scenes", "cross-CRS boundary, 12 scenes", "NDVI time series of one field over all
scenes") on generated Sentinel-2-like scenes (4 bands, 1024-px tiles, deflate +
predictor 2, overviews, two UTM zones) served by rasteret's loopback object server with
injected first-byte latency. Every measurement runs in a fresh process; the server counts
its requests and bytes. rasteret reads through an index built beforehand (the one-time
header reads are measured separately, also in a fresh process). The upstream release
(``rasteret-upstream``) and ``lazycogs`` run in their own virtual environments
(``python benchmarks/competitor_envs.py --setup``) through ``coldstart_peers.py``; a tool
whose environment is missing is skipped with a note.

    python benchmarks/coldstart.py                      # 30 scenes of 5490², 0 and 30 ms, 3 repeats
    python benchmarks/coldstart.py --quick              # CI smoke: small scenes, one repeat
    python benchmarks/coldstart.py --json out.json --update-docs docs/benchmarks.md

Exit status 1 when a tool returns different pixels than GDAL beyond the stated
tolerance (cross-CRS nearest resampling: GDAL's approximate transformer may pick the
neighbouring source pixel where a target pixel centre falls within 1/8 px of an edge).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import competitor_envs  # noqa: E402
from bench_data import machine_info  # noqa: E402
from coldstart_data import decode_seconds_per_tile, make_scenes, scenarios, stac_items  # noqa: E402
from coldstart_report import compare, load_outputs, machine_line, markdown, scenario_floor, verdict  # noqa: E402

from rasteret.testing.objserver import ObjectServer  # noqa: E402

WORKER = HERE / "coldstart_tools.py"
PEER_WORKER = HERE / "coldstart_peers.py"
#: tools run by their own environment's interpreter (competitor_envs.py)
PEER_TOOLS = ("rasteret-upstream", "lazycogs")
ALL_TOOLS = ("rasteret", "rasteret-xarray", "gdal", "odc-stac", "rioxarray", *PEER_TOOLS)
TOOL_MODULES = {"odc-stac": "odc.stac", "rioxarray": "rioxarray", "gdal": "rasterio"}
#: cross-CRS pixels may differ where GDAL's warper picks the neighbouring source pixel
CROSS_CRS_TOLERANCE = 0.01


class BenchmarkError(RuntimeError):
    """A worker process failed."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, help="scene width = height in pixels (5490)")
    parser.add_argument("--tile", type=int, help="tile size in pixels (1024)")
    parser.add_argument("--scenes", type=int, help="scenes written (30)")
    parser.add_argument("--repeat", type=int, help="fresh processes per case (3)")
    parser.add_argument("--latency-ms", default="0,30", help="server latencies, comma separated")
    parser.add_argument("--tools", help=f"subset of {','.join(ALL_TOOLS)}")
    parser.add_argument("--scenarios", help="subset of single,multi,crosscrs,ndvi")
    parser.add_argument(
        "--threads",
        type=int,
        default=16,
        help="GDAL/rioxarray file pool size, and rasteret-xarray's dask threads",
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke: 512² scenes, 128-px tiles")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="every worker compiles every module from source (no cached bytecode, as in "
        "containers with PYTHONDONTWRITEBYTECODE=1): lazy imports inside a read count",
    )
    parser.add_argument(
        "--no-warmup", action="store_true", help="skip the unmeasured first run per tool"
    )
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the scenes here")
    parser.add_argument("--json", type=Path, help="write every measurement to this file")
    parser.add_argument(
        "--update-docs", type=Path, help="rewrite the cold-start table in this page"
    )
    parser.add_argument(
        "--profile", type=Path, help="one extra cProfile run per rasteret tool and case"
    )
    args = parser.parse_args(argv)
    args.size = args.size or (512 if args.quick else 5490)
    args.tile = args.tile or (128 if args.quick else 1024)
    args.scenes = args.scenes or 30
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.latencies = [float(v) for v in args.latency_ms.split(",") if v.strip()]
    wanted = args.tools.split(",") if args.tools else list(ALL_TOOLS)
    args.tool_list, args.skipped = [], {}
    for tool in wanted:
        module = TOOL_MODULES.get(tool)
        if tool not in ALL_TOOLS:
            parser.error(f"unknown tool {tool!r}; choose from {ALL_TOOLS}")
        if tool in PEER_TOOLS:
            why = competitor_envs.missing(tool)
            if why:
                args.skipped[tool] = (
                    f"{why}; create it with `python benchmarks/competitor_envs.py --setup`"
                )
            else:
                args.tool_list.append(tool)
            continue
        try:
            if module:
                __import__(module)
            args.tool_list.append(tool)
        except ImportError as exc:
            args.skipped[tool] = f"not installed ({exc}); install the 'bench' extra"
    return args


def worker_env(pycache: Path, bytecode: bool = True) -> dict[str, str]:
    """The workers' environment: loopback without proxy, and compiled bytecode cached in
    ``pycache`` (outside the source tree) even where ``PYTHONDONTWRITEBYTECODE`` is set,
    so a fresh process imports like on a normal installation instead of compiling every
    module from source. ``bytecode=False``: an empty cache that is never written (every
    process compiles every module, as a container with ``PYTHONDONTWRITEBYTECODE=1``)."""
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="rasteret-no-bytecode-")
    return env


WORKER_ENV: dict[str, str] = {}


def _command(tool: str) -> tuple[list[str], dict[str, str]]:
    """Interpreter + worker script and environment of ``tool``'s worker process: peers
    run under their own environment's Python, without ``PYTHONPATH`` (which could make
    this project's ``rasteret`` importable there)."""
    env = WORKER_ENV or dict(os.environ)
    peer = tool.split(":")[0]
    if peer in PEER_TOOLS:
        python = competitor_envs.interpreter(peer)
        if python is None:
            raise BenchmarkError(f"{peer}: {competitor_envs.missing(peer)}")
        env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return [str(python), str(PEER_WORKER)], env
    return [sys.executable, str(WORKER)], env


def run_worker(spec: dict[str, Any], server: ObjectServer) -> dict[str, Any]:
    """Run one measurement in a fresh process; add the server's counters."""
    command, env = _command(spec["tool"])
    server.reset()
    start = time.perf_counter()
    done = subprocess.run(
        [*command, json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchmarkError(
            f"{spec['tool']} on {spec.get('scenario', {}).get('name', 'index')} failed "
            f"(exit {done.returncode}):\n{done.stderr[-4000:]}"
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    result["http_requests"] = server.requests
    result["http_bytes"] = server.bytes_sent
    result["http_max_in_flight"] = server.max_in_flight
    result["http_full_gets"] = sum(1 for r in server.log if r.status == 200)
    return result


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rasteret-coldstart-"))
    data_root = workdir / f"data-{args.size}-{args.tile}-{args.scenes}"
    print(
        f"scenes: {args.scenes} × {args.size}² px, {args.tile}-px tiles in {data_root}", flush=True
    )
    records = make_scenes(data_root, size=args.size, tile=args.tile, scenes=args.scenes)
    by_id = {r["id"]: r for r in records}
    chosen = scenarios(records, args.size)
    if args.scenarios:
        chosen = {k: v for k, v in chosen.items() if k in args.scenarios.split(",")}
    machine = machine_info()
    for dist in ("odc-stac", "rioxarray", "pystac"):
        try:
            machine[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            machine[dist] = "-"
    for tool in PEER_TOOLS:
        machine[tool] = competitor_envs.version(tool) if tool in args.tool_list else "-"
    first_file = data_root / records[0]["hrefs"]["B04"]
    report: dict[str, Any] = {
        "size": args.size,
        "tile": args.tile,
        "scenes": args.scenes,
        "repeat": args.repeat,
        "threads": args.threads,
        "latencies_ms": [v for v in args.latencies],
        "machine": machine,
        "load_before": _load(),
        "tile_decode_s": decode_seconds_per_tile(first_file),
        "titles": {k: s.title for k, s in chosen.items()},
        "skipped": args.skipped,
        "cases": [],
        "index_build": {},
        "peer_index_build": {},
        "notes": {},
        "floors": {},
        "agreement": {},
    }
    scratch = workdir / "runs"
    scratch.mkdir(parents=True, exist_ok=True)
    pycache = Path(tempfile.gettempdir()) / "rasteret-bench-pycache"
    WORKER_ENV.update(worker_env(pycache, bytecode=not args.no_bytecode))
    report["bytecode"] = not args.no_bytecode
    warmed: set[str] = set()
    for latency_ms in args.latencies:
        with ObjectServer(data_root, latency=latency_ms / 1e3) as server:
            base = {"records": records, "base_url": server.url, "threads": args.threads}
            collection = scratch / f"index-{latency_ms:.0f}ms.parquet"
            build = run_worker({**base, "tool": "index", "collection": str(collection)}, server)
            report["index_build"][str(latency_ms)] = build
            print(
                f"[{latency_ms:.0f} ms] index build: {build['wall']:.2f} s, "
                f"{build['http_requests']} requests",
                flush=True,
            )
            items_path = scratch / "items.json"
            items_path.write_text(json.dumps(stac_items(records, server.url)))
            peer_inputs = {
                "rasteret-upstream": str(scratch / f"upstream-{latency_ms:.0f}ms_records"),
                "lazycogs": str(scratch / f"items-{latency_ms:.0f}ms.parquet"),
            }
            for tool in (t for t in args.tool_list if t in PEER_TOOLS):
                spec = {**base, "tool": f"{tool}:index", "items_path": str(items_path)}
                build = run_worker({**spec, "peer_inputs": peer_inputs}, server)
                report["peer_index_build"][f"{latency_ms:.0f}|{tool}"] = build
                print(
                    f"[{latency_ms:.0f} ms] {tool} one-time input: {build['wall']:.2f} s, "
                    f"{build['http_requests']} requests",
                    flush=True,
                )
            for name, scenario in chosen.items():
                spec0 = {
                    **base,
                    "scenario": scenario.__dict__ | {"aois": list(scenario.aois)},
                    "collection": str(collection),
                    "items_path": str(items_path),
                    "peer_inputs": peer_inputs,
                }
                outputs: dict[str, Any] = {}
                for tool in args.tool_list:  # once per tool: fill the bytecode cache
                    if tool not in warmed and not args.no_warmup:
                        run_worker({**spec0, "tool": tool, "out": ""}, server)
                        warmed.add(tool)
                for repeat in range(args.repeat):
                    for tool in args.tool_list:
                        out = scratch / f"{name}-{tool}.npz"
                        spec = {**spec0, "tool": tool, "out": str(out) if repeat == 0 else ""}
                        result = run_worker(spec, server)
                        result |= {
                            "tool": tool,
                            "scenario": name,
                            "title": scenario.title,
                            "latency_ms": latency_ms,
                            "repeat": repeat,
                        }
                        if repeat == 0:
                            outputs[tool] = load_outputs(out, result["outputs"])
                        result.pop("outputs")
                        if result.get("note"):
                            report["notes"][f"{name}|{tool}"] = result["note"]
                        report["cases"].append(result)
                        print(
                            f"[{latency_ms:.0f} ms] {name:<9}{tool:<18} {result['wall']:7.3f} s "
                            f"{result['http_requests']:5d} req "
                            f"{result['http_bytes'] / 1e6:7.1f} MB",
                            flush=True,
                        )
                for tool in ("rasteret", "rasteret-xarray"):
                    if args.profile and tool in args.tool_list:
                        args.profile.mkdir(parents=True, exist_ok=True)
                        prof = args.profile / f"{name}-{tool}-{latency_ms:.0f}ms.prof"
                        run_worker({**spec0, "tool": tool, "out": "", "profile": str(prof)}, server)
                _check(report, name, spec0["scenario"], outputs, by_id, data_root, latency_ms)
    report["load_after"] = _load()
    return report


def _check(report, name, scenario, outputs, by_id, data_root, latency_ms) -> None:
    """Compare every tool's pixels with GDAL's (or rasteret's when GDAL did not run)."""
    ref_tool = next((t for t in ("gdal", "rasteret") if t in outputs), next(iter(outputs)))
    reference = outputs[ref_tool]
    if name not in report["floors"]:
        report["floors"][name] = scenario_floor(data_root, scenario, by_id, reference)
    for tool, out in outputs.items():
        stats = None if tool == ref_tool else compare(reference, out, scenario, by_id)
        report["agreement"][f"{latency_ms:.0f}|{name}|{tool}"] = stats
        note = report["notes"].get(f"{name}|{tool}")
        for case in report["cases"]:
            if (case["scenario"], case["tool"], case["latency_ms"]) == (name, tool, latency_ms):
                case["pixels"] = verdict(stats) + (f" ({note})" if note else "")


def failures(report: dict[str, Any]) -> list[str]:
    bad = []
    for key, stats in report["agreement"].items():
        if stats is None:
            continue
        _, name, tool = key.split("|")
        limit = CROSS_CRS_TOLERANCE if name == "crosscrs" else 0.0
        share = stats["different_off_edge"] / max(1, stats["compared"])
        if tool == "rasteret" and (
            share > limit or stats["missing"] or stats["extra"] or stats["uncovered"]
        ):
            bad.append(f"{key}: {verdict(stats)}")
    return bad


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool, why in args.skipped.items():
        print(f"skipping {tool}: {why}", flush=True)
    report = run(args)
    table = markdown(report)
    print()
    print(table)
    print()
    print(machine_line(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    if args.update_docs:
        from make_table import update_page

        update_page(args.update_docs, report)
    bad = failures(report)
    for line in bad:
        print(f"PIXELS DIFFER: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
