"""Smoke tests of the benchmarks, so they cannot rot: the cold-start and throughput
scripts on tiny data with one repetition (subprocesses, as a user runs them), and every
asv benchmark's ``setup_cache`` / ``setup`` + one call of each ``time_*`` / ``track_*``
method directly from Python (not through the asv runner) with shrunken inputs.
Performance figures are not asserted: only that each benchmark runs and its checks hold
(identical pixels, request counts that are facts of the design)."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASV = ROOT / "asv_bench" / "benchmarks"

#: every benchmark script end to end in fresh processes (about 2 min)
pytestmark = pytest.mark.slow


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_coldstart_quick_runs_and_rasteret_matches_gdal(tmp_path: Path) -> None:
    out = tmp_path / "coldstart.json"
    _run(
        [
            "benchmarks/coldstart.py",
            "--quick",
            "--size", "256", "--tile", "128", "--scenes", "4",
            "--scenarios", "ndvi",
            "--latency-ms", "0",
            "--no-warmup",
            "--workdir", str(tmp_path / "work"),
            "--json", str(out),
        ],
        tmp_path,
    )  # fmt: skip
    report = json.loads(out.read_text())
    tools = {case["tool"] for case in report["cases"]}
    assert {"rasteret", "gdal"} <= tools
    for case in report["cases"]:
        assert case["http_requests"] > 0 and case["wall"] > 0
    ours = [c for c in report["cases"] if c["tool"] == "rasteret"]
    gdal = {c["scenario"]: c for c in report["cases"] if c["tool"] == "gdal"}
    for case in ours:  # no header reads at read time: never more requests than GDAL
        assert case["http_requests"] <= gdal[case["scenario"]]["http_requests"]
    assert report["agreement"]["0|ndvi|rasteret"]["different"] == 0
    assert report["floors"]["ndvi"]["tiles"] > 0
    # one command regenerates the docs table
    page = tmp_path / "page.md"
    page.write_text("# t\n\n<!-- coldstart:begin -->\nold\n<!-- coldstart:end -->\n\nafter\n")
    _run(["benchmarks/make_table.py", str(out), "--docs", str(page)], tmp_path)
    text = page.read_text()
    assert "\nold\n" not in text and "| 0 ms | NDVI series" in text and text.endswith("after\n")


def test_docs_page_holds_the_regenerable_coldstart_table() -> None:
    """The cold-start section of docs/benchmarks.md keeps the markers make_table.py fills."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    begin, end = page.find("<!-- coldstart:begin -->"), page.find("<!-- coldstart:end -->")
    assert 0 < begin < end, "docs/benchmarks.md lost its cold-start table markers"
    block = page[begin:end]
    for scenario in ("single AOI", "multi-AOI", "cross-CRS", "NDVI series"):
        assert f"| {scenario}" in block


def test_throughput_quick_runs(tmp_path: Path) -> None:
    _run(
        [
            "benchmarks/throughput.py",
            "--quick",
            "--size", "512", "--tile", "256",
            "--latency-ms", "0",
            "--writers", "rasteret",
            "--tools", "rasterio,rasteret-xarray,rasteret-index",
            "--workdir", str(tmp_path / "work"),
        ],
        tmp_path,
    )  # fmt: skip


def test_explain_estimate_quick_runs(tmp_path: Path) -> None:
    """The estimate-vs-measured table prints a row per read and latency, and its request
    counts are the plan's."""
    done = _run(["benchmarks/explain_estimate.py", "--quick"], tmp_path)
    rows = [
        line
        for line in done.stdout.splitlines()
        if line.startswith("| one") or line.startswith("| whole")
    ]
    assert len(rows) == 6, done.stdout
    assert all(float(row.split("|")[-2]) > 0 for row in rows)


def test_build_resume_quick_runs(tmp_path: Path) -> None:
    """The 10,000-COG resume / cluster benchmark on 30 files: its own checks hold (the
    rerun fetches only the missing headers, the cluster build equals the local one)."""
    out = tmp_path / "build.json"
    _run(
        [
            "benchmarks/build_resume.py", "--files", "30", "--part", "5",
            "--workdir", str(tmp_path / "work"), "--json", str(out),
        ],
        tmp_path,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["resumed"]["requests"] == 30 - report["killed"]["records_done"]
    assert report["cluster"]["records"] == 30 and report["cluster_equals_local"]


def test_torchgeo_loader_quick_runs(tmp_path: Path) -> None:
    """The DataLoader benchmark on small scenes, in-process loading: samples identical."""
    pytest.importorskip("torchgeo", reason="the TorchGeo extra is not installed")
    out = tmp_path / "loader.json"
    _run(
        [
            "benchmarks/torchgeo_loader.py", "--size", "512", "--tile", "256", "--scenes", "4",
            "--samples", "8", "--workers", "0", "--epochs", "1", "--latency-ms", "0",
            "--workdir", str(tmp_path / "work"), "--json", str(out),
        ],
        tmp_path,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["identical"] and report["rasteret"]["samples"] == 8


# -- asv benchmarks, called directly ----------------------------------------------------------
SHRINK: dict[str, dict[str, Any]] = {
    "decode": {"SIZE": 512, "TILE": 256},
    "header_parsing": {},
    "points": {"POINTS": 20_000, "SIZE": 512},
    "window_io": {"SIZE": 512, "SCENES": 2, "WINDOWS": {"2x2_tiles": ((200, 400), (200, 400)),
                                                         "full_row_strip": ((0, 256), (0, 512))}},
    "index_build": {"SCENES": 2},
    "open_dataset": {"SCENES": 20},
    "index_scale": {"RECORDS": (300,), "BANDS": 3},
    "torchgeo_samples": {"CHIPS": 2, "CHIP": 64},
}  # fmt: skip


#: the first parameters, or these
PARAMS = {"window_io": ["2x2_tiles", "30ms"], "index_scale": [300]}


def _benchmark_classes(module: Any) -> list[type]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
        and any(n.startswith(("time_", "track_")) for n in dir(cls))
    ]


@pytest.mark.parametrize("name", sorted(SHRINK))
def test_asv_benchmark_runs_once(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name == "torchgeo_samples":
        pytest.importorskip("torchgeo", reason="torchgeo extra not installed")
    monkeypatch.syspath_prepend(str(ASV))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    module = importlib.import_module(name)
    for attr, value in SHRINK[name].items():
        monkeypatch.setattr(module, attr, value)
    classes = _benchmark_classes(module)
    assert classes, f"no benchmark class in {name}"
    for cls in classes:
        bench = cls()
        state = bench.setup_cache() if hasattr(bench, "setup_cache") else None
        params = PARAMS.get(name, [p[0] for p in getattr(cls, "params", ())])
        args = ([state] if state is not None else []) + params
        if hasattr(bench, "setup"):
            bench.setup(*args)
        try:
            results = {
                method: getattr(bench, method)(*args)
                for method in sorted(dir(bench))
                if method.startswith(("time_", "track_"))
            }
        finally:
            if hasattr(bench, "teardown"):
                bench.teardown(*args)
        _check(name, results, module)


def _check(name: str, results: dict[str, Any], module: Any) -> None:
    """Facts each benchmark's tracks must show (not timings)."""
    for method, value in results.items():
        if method.startswith("track_"):
            assert value is not None and value >= 0, f"{name}.{method} = {value}"
    if name == "decode":
        assert results["track_requests_per_header"] == 1
        assert (
            results["track_rasteret_requests_whole_scene_http"]
            <= (results["track_rasterio_requests_whole_scene_http"])
        )
    if name == "index_build":
        assert results["track_rasteret_requests_per_file"] == 1
        assert results["track_gdal_requests_per_file"] >= 1
    if name == "open_dataset":
        assert results["track_variables"] == 20 * len(module.BANDS)
    if name == "torchgeo_samples":
        assert results["track_identical_chips"] == module.CHIPS
    if name == "window_io":
        assert results["track_requests_over_objects"] == 1.0
    if name == "points":
        assert results["track_rows"] > 0


def test_aoi_surfaces_quick_runs_and_the_surfaces_agree(tmp_path: Path) -> None:
    """The script exits non-zero when the surfaces return different data."""
    done = _run(["benchmarks/aoi_surfaces.py", "--quick", "--workdir", str(tmp_path)], tmp_path)
    assert "`get_numpy`" in done.stdout and "two zones" in done.stdout
