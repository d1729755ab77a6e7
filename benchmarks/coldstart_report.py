"""Checks and tables of ``coldstart.py``: pixel agreement between tools, lower bounds,
and the Markdown tables (also used by ``make_table.py``)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from coldstart_data import CONCURRENCY, ranges_for

TOOL_ORDER = (
    "rasteret",
    "rasteret-xarray",
    "gdal",
    "odc-stac",
    "rioxarray",
    "rasteret-upstream",
    "lazycogs",
)


# -- pixel agreement --------------------------------------------------------------------------
def load_outputs(npz: Path, outputs: list[list[Any]]) -> dict[str, tuple[np.ndarray, tuple]]:
    with np.load(npz) as arrays:
        return {key: (arrays[f"a{i}"], tuple(t)) for i, (key, t) in enumerate(outputs)}


def _inside(scenario: dict[str, Any], key: str, records: dict[str, Any], shape, transform):
    """(pixels of ``key``'s window inside its AOI polygon as GDAL's ``transform_geom``
    gives it, pixels on its edge); on the target grid every pixel is inside and none is an
    edge pixel.

    The edge is the pixels the polygon's outline touches plus those between it and the
    densified lon/lat box: ``transform_geom`` joins the box's projected corners by straight
    lines, while lines of constant longitude / latitude are curves in UTM, and rasteret
    (like any densifying tool) masks the curved box.
    """
    if scenario["grid"] == "target":
        return np.ones(shape, bool), np.zeros(shape, bool)
    import rasterio.features
    import rasterio.warp
    import shapely
    from pyproj import Transformer
    from rasterio import Affine

    scene, aoi = key.split("|")
    w, s, e, n = scenario["aois"][int(aoi)]
    ring = [(w, s), (e, s), (e, n), (w, n), (w, s)]
    crs = f"EPSG:{records[scene]['epsg']}"
    polygon = {"type": "Polygon", "coordinates": [ring]}
    geom = rasterio.warp.transform_geom("EPSG:4326", crs, polygon)
    affine = Affine(*transform)
    inside = rasterio.features.geometry_mask([geom], shape, affine, invert=True)
    line = {"type": "LineString", "coordinates": geom["coordinates"][0]}
    edge = rasterio.features.geometry_mask([line], shape, affine, invert=True, all_touched=True)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    curved = shapely.transform(
        shapely.segmentize(shapely.box(w, s, e, n), 1e-4),
        lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])),
    )
    curved_inside = rasterio.features.geometry_mask([curved], shape, affine, invert=True)
    return inside, edge | (curved_inside != inside)


def compare(reference: dict, other: dict, scenario: dict[str, Any], records: dict) -> dict:
    """Compare ``other`` with ``reference`` on the reference's pixels inside each AOI, on
    the overlap of the two windows (tools that clip to the AOI's bounding box return
    larger or shifted windows; only whole-pixel shifts are accepted)."""
    stats = {"outputs": len(reference), "missing": 0, "extra": 0, "compared": 0}
    stats |= {"uncovered": 0, "different": 0, "different_off_edge": 0, "max_abs_diff": 0}
    stats["extra"] = len(set(other) - set(reference))
    for key, (ref, rt) in reference.items():
        if key not in other:
            stats["missing"] += 1
            continue
        arr, at = other[key]
        dx, dy = (at[2] - rt[2]) / rt[0], (at[5] - rt[5]) / rt[4]
        if abs(dx - round(dx)) > 1e-6 or abs(dy - round(dy)) > 1e-6 or at[0] != rt[0]:
            stats["different"] += int(ref.size)
            continue
        dx, dy = round(dx), round(dy)
        inside, edge = _inside(scenario, key, records, ref.shape[-2:], rt)
        covered = np.zeros_like(inside)
        r0, r1 = max(0, dy), min(ref.shape[-2], dy + arr.shape[-2])
        c0, c1 = max(0, dx), min(ref.shape[-1], dx + arr.shape[-1])
        if r1 > r0 and c1 > c0:
            covered[r0:r1, c0:c1] = True
            a = arr[..., r0 - dy : r1 - dy, c0 - dx : c1 - dx].astype(np.float64)
            b = ref[..., r0:r1, c0:c1].astype(np.float64)
            sel = inside[r0:r1, c0:c1]
            diff = (a != b) & sel
            stats["different"] += int(diff.sum())
            stats["different_off_edge"] += int((diff & ~edge[r0:r1, c0:c1]).sum())
            stats["compared"] += int(sel.sum()) * ref.shape[0]
            if diff.any():
                stats["max_abs_diff"] = max(
                    stats["max_abs_diff"], float(np.nan_to_num(np.abs(a - b)[diff], nan=-1).max())
                )
        stats["uncovered"] += int((inside & ~covered).sum()) * ref.shape[0]
    return stats


def verdict(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "reference"
    bad = stats["missing"] + stats["extra"] + stats["uncovered"]
    if bad == 0 and stats["different"] == 0:
        return "identical"
    share = stats["different"] / max(1, stats["compared"])
    parts = (
        [
            f"{stats['different']} px ({share:.3%}) differ, max {stats['max_abs_diff']:g} DN"
            + ("" if stats["different_off_edge"] else ", all on the AOI edge")
        ]
        if stats["different"]
        else []
    )
    if stats["missing"] or stats["extra"]:
        parts.append(f"{stats['missing']} missing / {stats['extra']} extra windows")
    if stats["uncovered"]:
        parts.append(f"{stats['uncovered']} AOI px not returned")
    return "; ".join(parts)


# -- lower bounds -----------------------------------------------------------------------------
def scenario_floor(
    root: Path, scenario: dict[str, Any], records: dict, reference: dict
) -> dict[str, Any]:
    """Tiles, contiguous byte runs and bytes the scenario must fetch (no header reads)."""
    windows: dict[str, list[tuple[int, int, int, int]]] = {}
    if scenario["grid"] == "target":
        from pyproj import Transformer

        for scene in scenario["scenes"]:
            r = records[scene]
            t = Transformer.from_crs(32632, r["epsg"], always_xy=True)
            left, bottom, right, top = t.transform_bounds(
                *scenario["target_bounds"], densify_pts=21
            )
            a, _, c, _, e, f = r["transform"]
            col0, col1 = math.floor((left - c) / a), math.ceil((right - c) / a)
            row0, row1 = math.floor((top - f) / e), math.ceil((bottom - f) / e)
            windows[scene] = [(max(row0, 0), row1, max(col0, 0), col1)]
    else:
        for key, (ref, rt) in reference.items():
            scene = key.split("|")[0]
            a, _, c, _, e, f = records[scene]["transform"]
            col0, row0 = round((rt[2] - c) / a), round((rt[5] - f) / e)
            windows.setdefault(scene, []).append(
                (row0, row0 + ref.shape[-2], col0, col0 + ref.shape[-1])
            )
    tiles = runs = nbytes = files = 0
    for scene, wins in windows.items():
        for band in scenario["bands"]:
            t, n, b = ranges_for(root / records[scene]["hrefs"][band], wins)
            tiles, runs, nbytes, files = tiles + t, runs + n, nbytes + b, files + 1
    return {"files": files, "tiles": tiles, "runs": runs, "bytes": nbytes}


def floors(floor: dict[str, Any], latency: float, tile_seconds: float, cores: int) -> dict:
    latency_floor = latency * math.ceil(floor["runs"] / CONCURRENCY)
    decode_floor = floor["tiles"] * tile_seconds / max(1, cores)
    return {"latency_floor": latency_floor, "decode_floor": decode_floor}


# -- tables -----------------------------------------------------------------------------------
def summarise(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (latency, scenario, tool): medians over the repeats, ratios to GDAL."""
    rows = []
    keys = sorted({(c["latency_ms"], c["scenario"], c["tool"]) for c in cases}, key=_order)
    for latency, scenario, tool in keys:
        runs = [
            c
            for c in cases
            if (c["latency_ms"], c["scenario"], c["tool"]) == (latency, scenario, tool)
        ]
        rows.append(
            {
                "latency_ms": latency,
                "scenario": scenario,
                "title": runs[0]["title"],
                "tool": tool,
                "median": statistics.median(r["wall"] for r in runs),
                "best": min(r["wall"] for r in runs),
                "cpu": statistics.median(r["cpu"] for r in runs),
                "requests": statistics.median(r["http_requests"] for r in runs),
                "mb": statistics.median(r["http_bytes"] for r in runs) / 1e6,
                "pixels": runs[0].get("pixels", "-"),
                "repeats": len(runs),
            }
        )
    for row in rows:
        gdal = [
            r
            for r in rows
            if r["tool"] == "gdal"
            and r["scenario"] == row["scenario"]
            and r["latency_ms"] == row["latency_ms"]
        ]
        row["x_gdal"] = row["median"] / gdal[0]["median"] if gdal else None
        row["x_gdal_best"] = row["best"] / gdal[0]["best"] if gdal else None
    return rows


def _order(key: tuple[float, str, str]) -> tuple:
    latency, scenario, tool = key
    scen = ("single", "multi", "crosscrs", "ndvi")
    return (
        latency,
        scen.index(scenario) if scenario in scen else 9,
        TOOL_ORDER.index(tool) if tool in TOOL_ORDER else 9,
    )


def markdown(report: dict[str, Any]) -> str:
    """The results table and the lower-bound table, as in ``docs/benchmarks.md``."""
    lines = [
        "| latency | scenario | tool | wall s (median) | best s | CPU s | requests | HTTP MB "
        "| × GDAL (median / best) | pixels vs GDAL |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in summarise(report["cases"]):
        ratio = "–" if r["x_gdal"] is None else f"{r['x_gdal']:.2f} / {r['x_gdal_best']:.2f}"
        lines.append(
            f"| {r['latency_ms']:.0f} ms | {r['title']} | {r['tool']} | {r['median']:.3f} | "
            f"{r['best']:.3f} | {r['cpu']:.2f} | {r['requests']:.0f} | {r['mb']:.1f} | "
            f"{ratio} | {r['pixels']} |"
        )
    lines += [
        "",
        "| latency | scenario | files | tiles | byte runs | tile MB | latency floor s "
        "| decode floor s | rasteret s | rasteret ÷ max(floors) | index build s (requests) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows = {(r["latency_ms"], r["scenario"], r["tool"]): r for r in summarise(report["cases"])}
    for latency in report["latencies_ms"]:
        build = report["index_build"].get(str(latency)) or report["index_build"].get(latency)
        for name, floor in report["floors"].items():
            f = floors(floor, latency / 1e3, report["tile_decode_s"], report["machine"]["cores"])
            ours = rows.get((latency, name, "rasteret"))
            bound = max(f["latency_floor"], f["decode_floor"])
            gap = f"{ours['median'] / bound:.1f}" if ours and bound > 0 else "–"
            built = f"{build['wall']:.2f} ({build['http_requests']})" if build else "–"
            lines.append(
                f"| {latency:.0f} ms | {report['titles'][name]} | {floor['files']} | "
                f"{floor['tiles']} | {floor['runs']} | {floor['bytes'] / 1e6:.1f} | "
                f"{f['latency_floor']:.2f} | {f['decode_floor']:.2f} | "
                f"{ours['median']:.3f} | {gap} | {built} |"
                if ours
                else f"| {latency:.0f} ms | {report['titles'][name]} | {floor['files']} | "
                f"{floor['tiles']} | {floor['runs']} | {floor['bytes'] / 1e6:.1f} | "
                f"{f['latency_floor']:.2f} | {f['decode_floor']:.2f} | – | – | {built} |"
            )
    peers = report.get("peer_index_build") or {}
    if peers:
        lines += [
            "",
            "| latency | tool | one-time input s | CPU s | requests | what |",
            "|---:|---|---:|---:|---:|---|",
        ]
        for latency in report["latencies_ms"]:
            build = report["index_build"].get(str(latency)) or report["index_build"].get(latency)
            if build:
                lines.append(_build_row(latency, "rasteret", build))
            for key, build in peers.items():
                if key.split("|")[0] == f"{latency:.0f}":
                    lines.append(_build_row(latency, key.split("|", 1)[1], build))
    return "\n".join(lines)


_BUILD_WHAT = {
    "rasteret": "index: every header read over HTTP, written as Parquet",
    "rasteret-upstream": "`build_from_table(enrich_cog=True)`: every header, Parquet collection",
    "lazycogs": "STAC items written as stac-geoparquet (`rustac`; no HTTP)",
}


def _build_row(latency: float, tool: str, build: dict[str, Any]) -> str:
    return (
        f"| {latency:.0f} ms | {tool} | {build['wall']:.2f} | {build['cpu']:.2f} | "
        f"{build['http_requests']} | {_BUILD_WHAT.get(tool, '')} |"
    )


def machine_line(report: dict[str, Any]) -> str:
    m = report["machine"]
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']}, Python {m['python']}, "
        f"numpy {m['numpy']}, imagecodecs {m['imagecodecs']}, rasterio {m['rasterio']} / "
        f"GDAL {m['gdal']}, zarr {m['zarr']}, xarray {m['xarray']}, odc-stac "
        f"{m.get('odc-stac', '-')}, rioxarray {m.get('rioxarray', '-')}"
        f"{_peer_versions(m)}; rasteret "
        f"{m['rasteret']} ({m['rasteret_commit']}); {m.get('huge_pages', '-')}. "
        f"Scenes: {report['scenes']} × "
        f"{report['size']}² px, {report['tile']}-px tiles; {report['repeat']} fresh process(es) "
        f"per case, {'bytecode cached' if report.get('bytecode', True) else 'no bytecode'}; "
        f"load average {report['load_before']} before, {report['load_after']} after."
    )


def _peer_versions(machine: dict[str, Any]) -> str:
    """``, rasteret-upstream 0.4.1, lazycogs 0.7.0`` (tools from competitor_envs.py)."""
    names = ("rasteret-upstream", "lazycogs")
    return "".join(f", {n} {machine[n]} (own venv)" for n in names if machine.get(n, "-") != "-")
