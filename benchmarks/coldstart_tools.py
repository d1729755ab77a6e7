"""One cold-start measurement per process: ``python coldstart_tools.py '<json spec>'``.

Started by ``coldstart.py`` once per (tool, scenario, repeat), so nothing is warm: no
GDAL block cache, no HTTP connection, no thread pool. Each tool's libraries are imported
before the clock starts (import time is reported separately as ``import``); the clock
covers opening the inputs (rasteret: loading the prebuilt index; GDAL/rioxarray:
opening every file over HTTP; odc-stac: the STAC items, already in memory) and reading
every window into numpy arrays (and, for the NDVI scenario, the per-scene mean NDVI).

Spec keys: ``tool``, ``scenario`` (a :class:`coldstart_data.Scenario` as a dict),
``records`` (scene records, ``hrefs`` relative to ``base_url``), ``base_url``,
``collection`` (rasteret's index, Parquet), ``out`` (``.npz`` for the arrays),
``profile`` (cProfile output path, optional), ``threads`` (GDAL / rioxarray pool size).
The last stdout line is a JSON result: ``wall``, ``cpu``, ``import``, ``outputs`` (key,
transform) and ``ndvi`` (key → mean).
"""

from __future__ import annotations

import cProfile
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

Output = dict[str, tuple[np.ndarray, tuple[float, ...]]]  # key -> ([C, h, w], affine 6)

#: GDAL's recommended settings for cloud-optimised GeoTIFFs over HTTP.
GDAL_REMOTE_ENV = {
    "GDAL_NUM_THREADS": "ALL_CPUS",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
}


def _boxes(scenario: dict[str, Any]) -> list[Any]:
    import shapely

    return [shapely.box(*aoi) for aoi in scenario["aois"]]


def _target_grid(scenario: dict[str, Any]) -> tuple[tuple[float, ...], int, int]:
    left, bottom, right, top = scenario["target_bounds"]
    return (
        (10.0, 0.0, left, 0.0, -10.0, top),
        round((top - bottom) / 10),
        round((right - left) / 10),
    )


def _url(spec: dict[str, Any], record: dict[str, Any], band: str) -> str:
    return f"{spec['base_url']}/{record['hrefs'][band]}"


def _selected(spec: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = set(spec["scenario"]["scenes"])
    return [r for r in spec["records"] if r["id"] in wanted]


# -- rasteret -----------------------------------------------------------------------------------
def prepare_rasteret() -> Callable[[dict[str, Any]], Output]:
    import pyarrow.dataset
    import pyarrow.parquet  # noqa: F401
    import pyproj  # noqa: F401
    import shapely  # noqa: F401
    import zarr  # noqa: F401

    import rasteret.store  # noqa: F401
    from rasteret import load
    from rasteret.read import read_aoi_windows
    from rasteret.read.window import read_window_info

    def run(spec: dict[str, Any]) -> Output:
        scenario = spec["scenario"]
        collection = load(spec["collection"]).select_records(scenario["scenes"])
        bands = list(scenario["bands"])
        if scenario["grid"] == "target":
            read = read_window_info(
                collection,
                bands=bands,
                bounds=scenario["target_bounds"],
                res=10.0,
                crs=f"EPSG:{scenario_target_epsg()}",
                group_by="id",
                resampling="nearest",
            )
            affine = tuple(read.grid.transform)
            return {f"{g}|target": (read.data[i], affine) for i, g in enumerate(read.groups)}
        windows = read_aoi_windows(collection, _boxes(scenario), bands, geometry_crs="EPSG:4326")
        return {
            f"{w.record_id}|{w.geometry_id}": (w.data, tuple(w.grid.transform)) for w in windows
        }

    return run


def prepare_rasteret_xarray() -> Callable[[dict[str, Any]], Output]:
    """The xarray engine onto a target grid (lazy, dask, then computed): the scenario's
    target grid for cross-CRS; for AOI scenarios, each AOI's pixel window of each native
    grid (nearest on the native pixels: the values GDAL reads), one engine open per
    (native grid, AOI), all computed together."""
    import dask
    import dask.array
    import pyarrow.dataset
    import pyarrow.parquet  # noqa: F401
    import pyproj  # noqa: F401
    import xarray as xr

    # the engine's own modules, imported before the clock as the rasteret tool's are
    import rasteret
    import rasteret.backend.grid_array
    import rasteret.backend.target_grid
    import rasteret.store
    from rasteret.geo import GridSpec

    # xarray loads every installed engine's entry point on its first open_dataset (here
    # rioxarray's too): a library import, counted with the imports like the other tools'
    xr.backends.list_engines()
    from xarray.namedarray.parallelcompat import list_chunkmanagers

    list_chunkmanagers()  # xarray's chunk-manager discovery: an entry-point scan, once
    dask.base.get_scheduler()  # dask's first compute imports distributed when installed

    def run(spec: dict[str, Any]) -> Output:
        scenario = spec["scenario"]
        collection = rasteret.load(spec["collection"]).select_records(scenario["scenes"])
        bands = list(scenario["bands"])
        opened: list[tuple[str, xr.Dataset]] = []
        if scenario["grid"] == "target":
            affine, height, width = _target_grid(scenario)
            grid = GridSpec(f"EPSG:{scenario_target_epsg()}", affine, (height, width))
            ds = xr.open_dataset(collection, engine="rasteret", bands=bands, grid=grid, chunks={})
            opened.append(("target", ds))
        else:
            for zone in collection.epsg:
                members = collection.where(_epsg_expression(collection, zone))
                native = _native_grid(members, bands[0])
                for i, aoi in enumerate(scenario["aois"]):
                    grid = _aoi_grid(native, aoi)
                    if grid is None:
                        continue
                    ds = xr.open_dataset(
                        members, engine="rasteret", bands=bands, grid=grid, chunks={}
                    )
                    opened.append((str(i), ds))
        # dask's threaded scheduler on the same pool size as GDAL's and odc-stac's
        # (``threads``): a chunk's task mostly waits for the store
        computed = dask.compute(
            *(ds[bands] for _, ds in opened), num_workers=spec.get("threads", 16)
        )
        out: Output = {}
        for (label, _), ds in zip(opened, computed, strict=True):
            grid = GridSpec.from_xarray(ds[bands[0]])
            values = [ds[b].values for b in bands]  # the engine's own layout: per band
            for t, record_id in enumerate(ds["id"].values):
                # the record's bands as views (stacked only when saved for the check)
                out[f"{record_id}|{label}"] = ([v[t] for v in values], tuple(grid.transform))
        return out

    return run


def _epsg_expression(collection: Any, epsg: int) -> Any:
    import pyarrow.compute as pc

    column = "proj:epsg" if "proj:epsg" in collection.table.column_names else "crs"
    if column == "crs":
        return pc.field("crs") == f"EPSG:{epsg}"
    return pc.field("proj:epsg") == epsg


def _native_grid(collection: Any, band: str) -> Any:
    from rasteret.geo import GridSpec

    levels = collection.band_levels(band)[0]
    full = levels.levels[0]
    return GridSpec(levels.crs, full.transform, (full.height, full.width))


def _aoi_grid(native: Any, aoi: list[float]) -> Any:
    """The native pixels covering a lon/lat box (rasterio's geometry_window rule)."""
    import math

    from rasteret.geo import transform_bounds

    left, bottom, right, top = transform_bounds(tuple(aoi), "EPSG:4326", native.crs)
    a, _, c, _, e, f = native.transform
    col0, col1 = math.floor((left - c) / a), math.ceil((right - c) / a)
    row0, row1 = math.floor((top - f) / e), math.ceil((bottom - f) / e)
    row0, col0 = max(row0, 0), max(col0, 0)
    row1, col1 = min(row1, native.height), min(col1, native.width)
    if row1 <= row0 or col1 <= col0:
        return None
    from rasteret.geo import Window

    return native.crop(Window(row0, col0, row1 - row0, col1 - col0))


def scenario_target_epsg() -> int:
    return 32632


# -- rasterio / GDAL ----------------------------------------------------------------------------
def prepare_gdal() -> Callable[[dict[str, Any]], Output]:
    import rasterio
    import rasterio.mask
    import rasterio.vrt
    import rasterio.warp
    from rasterio.enums import Resampling

    def read_file(spec: dict[str, Any], record: dict[str, Any], band: str) -> Output:
        scenario = spec["scenario"]
        out: Output = {}
        with rasterio.open(_url(spec, record, band)) as src:
            if scenario["grid"] == "target":
                affine, height, width = _target_grid(scenario)
                with rasterio.vrt.WarpedVRT(
                    src,
                    crs=f"EPSG:{scenario_target_epsg()}",
                    transform=rasterio.Affine(*affine),
                    width=width,
                    height=height,
                    resampling=Resampling.nearest,
                ) as vrt:
                    out[f"{record['id']}|target|{band}"] = (vrt.read(1), affine)
                return out
            for i, aoi in enumerate(scenario["aois"]):
                geom = rasterio.warp.transform_geom("EPSG:4326", src.crs, _box_geojson(aoi))
                data, transform = rasterio.mask.mask(src, [geom], crop=True, filled=True)
                out[f"{record['id']}|{i}|{band}"] = (data[0], tuple(transform)[:6])
        return out

    return _file_pool_runner(read_file)


def _file_pool_runner(
    read_file: Callable[[dict[str, Any], dict[str, Any], str], Output],
) -> Callable[[dict[str, Any]], Output]:
    """Run ``read_file(spec, record, band)`` for every selected (record, band) on a thread
    pool of ``spec["threads"]`` inside GDAL's remote-COG environment; stack the bands."""

    def run(spec: dict[str, Any]) -> Output:
        import rasterio

        jobs = [(r, b) for r in _selected(spec) for b in spec["scenario"]["bands"]]
        with (
            rasterio.Env(**GDAL_REMOTE_ENV),
            ThreadPoolExecutor(spec.get("threads", 16)) as pool,
        ):
            parts = list(pool.map(lambda job: read_file(spec, *job), jobs))
        return _stack_bands(parts, spec["scenario"]["bands"])

    return run


def _box_geojson(aoi: list[float]) -> dict[str, Any]:
    w, s, e, n = aoi
    return {"type": "Polygon", "coordinates": [[(w, s), (e, s), (e, n), (w, n), (w, s)]]}


def _stack_bands(parts: list[Output], bands: list[str]) -> Output:
    """``{scene|aoi|band: 2-D}`` pieces -> ``{scene|aoi: [C, h, w]}`` in band order."""
    flat: Output = {k: v for part in parts for k, v in part.items()}
    out: Output = {}
    for key in sorted({k.rsplit("|", 1)[0] for k in flat}):
        pieces = [flat[f"{key}|{b}"] for b in bands]
        out[key] = (np.stack([p[0] for p in pieces]), pieces[0][1])
    return out


# -- rioxarray ----------------------------------------------------------------------------------
def prepare_rioxarray() -> Callable[[dict[str, Any]], Output]:
    import rasterio
    import rioxarray
    from rasterio.enums import Resampling

    def read_file(spec: dict[str, Any], record: dict[str, Any], band: str) -> Output:
        scenario = spec["scenario"]
        da = rioxarray.open_rasterio(_url(spec, record, band), lock=False)
        if scenario["grid"] == "target":
            affine, height, width = _target_grid(scenario)
            crs = f"EPSG:{scenario_target_epsg()}"
            clipped = da.rio.clip_box(*scenario["target_bounds"], crs=crs)
            warped = clipped.rio.reproject(
                crs,
                shape=(height, width),
                transform=rasterio.Affine(*affine),
                resampling=Resampling.nearest,
                nodata=0,
            )
            return {f"{record['id']}|target|{band}": (warped.values[0], affine)}
        out: Output = {}
        for i, aoi in enumerate(scenario["aois"]):
            clipped = da.rio.clip_box(*aoi, crs="EPSG:4326")
            out[f"{record['id']}|{i}|{band}"] = (
                clipped.values[0],
                tuple(clipped.rio.transform())[:6],
            )
        return out

    return _file_pool_runner(read_file)


# -- odc-stac -----------------------------------------------------------------------------------
def prepare_odc() -> Callable[[dict[str, Any]], Output]:
    import odc.stac
    import pystac
    import rasterio
    from odc.geo.geobox import GeoBox

    def load(items: list[Any], bands: list[str], geobox: Any) -> Any:
        return odc.stac.load(
            items, bands=bands, geobox=geobox, groupby="id", resampling="nearest", pool=16
        )

    def run(spec: dict[str, Any]) -> Output:
        scenario = spec["scenario"]
        bands = list(scenario["bands"])
        wanted = set(scenario["scenes"])
        items = [pystac.Item.from_dict(i) for i in spec["items"] if i["id"] in wanted]
        out: Output = {}
        with rasterio.Env(**GDAL_REMOTE_ENV):
            if scenario["grid"] == "target":
                affine, height, width = _target_grid(scenario)
                box = GeoBox(
                    (height, width), rasterio.Affine(*affine), f"EPSG:{scenario_target_epsg()}"
                )
                ds = load(items, bands, box)
                for t, item_id in enumerate(_ids_of(ds, items)):
                    data = np.stack([ds[b].values[t] for b in bands])
                    out[f"{item_id}|target"] = (data, affine)
                return out
            by_zone: dict[int, list[Any]] = {}
            for item in items:
                props = item.properties
                epsg = props.get("proj:epsg") or props["proj:code"].split(":")[-1]
                by_zone.setdefault(int(epsg), []).append(item)
            for epsg, zone_items in sorted(by_zone.items()):
                props = zone_items[0].properties
                native = GeoBox(
                    tuple(props["proj:shape"]),
                    rasterio.Affine(*props["proj:transform"][:6]),
                    f"EPSG:{epsg}",
                )
                for i, aoi in enumerate(scenario["aois"]):
                    window = _native_window(native, aoi)
                    ds = load(zone_items, bands, window)
                    affine = tuple(window.affine)[:6]
                    for t, item_id in enumerate(_ids_of(ds, zone_items)):
                        out[f"{item_id}|{i}"] = (np.stack([ds[b].values[t] for b in bands]), affine)
        return out

    return run


def _native_window(native: Any, aoi: list[float]) -> Any:
    """The native-grid sub-GeoBox covering a lon/lat box (pixel-snapped, like rasterio)."""
    from odc.geo.geom import box

    return native.enclosing(box(*aoi, "EPSG:4326").to_crs(native.crs))


def _ids_of(ds: Any, items: list[Any]) -> list[str]:
    """Item ids in the order odc-stac stacked them (groupby="id": sorted by time, id)."""
    ordered = sorted(items, key=lambda i: (i.datetime, i.id))
    if len(ordered) != ds.sizes["time"]:
        raise RuntimeError(f"odc-stac returned {ds.sizes['time']} times for {len(ordered)} items")
    return [i.id for i in ordered]


TOOLS: dict[str, Callable[[], Callable[[dict[str, Any]], Output]]] = {
    "rasteret": prepare_rasteret,
    "rasteret-xarray": prepare_rasteret_xarray,
    "gdal": prepare_gdal,
    "odc-stac": prepare_odc,
    "rioxarray": prepare_rioxarray,
}


def ndvi_means(outputs: Output, bands: list[str]) -> dict[str, float]:
    """Mean NDVI over valid (non-zero) pixels of each output (NaN when none)."""
    red, nir = bands.index("B04"), bands.index("B08")
    means = {}
    for key, (data, _) in outputs.items():
        r, n = data[red].astype(np.float32), data[nir].astype(np.float32)
        valid = (data[red] > 0) & (data[nir] > 0)
        ndvi = (n - r) / np.maximum(n + r, 1)
        means[key] = float(ndvi[valid].mean()) if valid.any() else float("nan")
    return means


def build_index(spec: dict[str, Any]) -> dict[str, Any]:
    """The one-time cost: rasteret reads every header over HTTP and writes the index."""
    import pyarrow as pa

    from rasteret.ingest import build_from_table

    table = pa.table(
        {
            "id": [r["id"] for r in spec["records"]],
            "datetime": [dt.datetime.fromisoformat(r["datetime"]) for r in spec["records"]],
            "assets": [
                {b: {"href": _url(spec, r, b)} for b in r["hrefs"]} for r in spec["records"]
            ],
        }
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    build_from_table(table).export(spec["collection"])
    return {"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0, "import": 0.0}


def measure(
    spec: dict[str, Any],
    tools: dict[str, Callable[[], Callable[[dict[str, Any]], Output]]] | None = None,
) -> dict[str, Any]:
    """Prepare ``spec["tool"]`` (from ``tools``, default :data:`TOOLS`), then time one
    read of ``spec["scenario"]``. ``coldstart_peers.py`` passes its own tools."""
    if spec["tool"] == "index":
        return build_index(spec)
    started = time.perf_counter()
    run = (TOOLS if tools is None else tools)[spec["tool"]]()
    imported = time.perf_counter() - started
    if spec["tool"] == "odc-stac":
        with open(spec["items_path"]) as handle:
            spec["items"] = json.load(handle)
    profiler = cProfile.Profile() if spec.get("profile") else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    outputs = run(spec)
    ndvi = (
        ndvi_means(outputs, list(spec["scenario"]["bands"]))
        if spec["scenario"]["name"] == "ndvi"
        else {}
    )
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if profiler:
        profiler.dump_stats(spec["profile"])
    if spec.get("out"):
        keys = sorted(outputs)
        np.savez(spec["out"], **{f"a{i}": outputs[k][0] for i, k in enumerate(keys)})
    return {
        "wall": wall,
        "cpu": cpu,
        "import": imported,
        "outputs": [[k, list(outputs[k][1])] for k in sorted(outputs)],
        "ndvi": ndvi,
    }


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
