"""Cold-start worker for the competitors living in their own environments.

    benchmarks/.envs/<tool>/bin/python benchmarks/coldstart_peers.py '<json spec>'

``coldstart.py`` starts this script with the competitor's interpreter (see
``competitor_envs.py``), never with the project's: the upstream release is also called
``rasteret``, so this project's ``src`` must not be importable here (it is removed from
``sys.path`` and the imported package is checked). Same protocol as
``coldstart_tools.py`` (whose numpy-only helpers and ``measure`` are reused): the last
stdout line is the JSON result, arrays go to ``spec["out"]``. Extra spec key:
``peer_inputs`` ({tool: path} of each tool's prepared input). Tools:

* ``rasteret-upstream`` (PyPI ``rasteret`` 0.4.1, the original system). One-time step
  ``rasteret-upstream:index``: ``build_from_table(table, enrich_cog=True,
  workspace_dir=...)`` reads every header and persists the collection (like our index
  build, measured in its own process). Read: ``rasteret.load(dir).where(id in scenes)``
  then ``get_gdf(boxes, bands, geometry_crs=4326)`` — the same read path as
  ``get_numpy``, which cannot be used because it returns neither record ids nor
  transforms and refuses ragged windows (two zones, five AOIs); target grid:
  ``read_window(record_ids, bounds, res=(10, 10), target_crs=32632, group_by="id")``.
  Bytes go through ``rasteret.cloud.ObstoreBackend`` over an obstore ``HTTPStore`` with
  the release's own client options plus ``allow_http`` (its automatic backend refuses
  plain-HTTP URLs such as the loopback server's).
* ``lazycogs`` (0.7): reads always land on a target grid (``lazycogs.open(parquet,
  bbox, crs, resolution, ids, bands)`` -> lazy ``(band, time, y, x)``, then
  ``.values``). One-time step ``lazycogs:index``: the STAC items written as
  stac-geoparquet by ``rustac`` (no HTTP). Native-grid scenarios: one open per (scene
  grid, AOI) on the AOI's bounding box in the scene's UTM zone snapped outward to the
  scene's pixel grid (``lazycogs.align_bbox``), so nearest sampling is an exact copy of
  the native pixels; the AOI polygon is not masked (only pixels inside it are compared).
  Target grid: one open on the EPSG:32632 grid. ``time_period=None`` gives one time
  step per scene (all datetimes differ). Store: obstore ``HTTPStore`` with
  ``allow_http``; DuckDB extensions from the environment's ``duckdb_extensions``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_SRC = (HERE.parent / "src").resolve()
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _SRC]

import numpy as np  # noqa: E402
from coldstart_tools import (  # noqa: E402
    Output,
    _boxes,
    _selected,
    _target_grid,
    _url,
    measure,
    scenario_target_epsg,
)

NOTES: dict[str, str] = {}  # scenario name -> caveat, added to the result


def _http_store(base_url: str, options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    from obstore.store import HTTPStore

    client = {**(options or {}), "allow_http": "true"}
    return HTTPStore.from_url(f"{base_url}/", client_options=client, **kwargs)


def _check_not_this_project(module: Any) -> None:
    where = Path(module.__file__).resolve()
    if _SRC in where.parents:
        raise RuntimeError(f"imported this project's rasteret ({where}), not the competitor's")


# -- rasteret 0.4.1 (upstream) ------------------------------------------------------------
def _upstream_backend(base_url: str) -> Any:
    from rasteret.cloud import ObstoreBackend

    try:  # the options the release gives its own HTTPStores
        from rasteret.fetch.cog import _OBSTORE_CLIENT_OPTIONS, _OBSTORE_RETRY_CONFIG

        store = _http_store(base_url, _OBSTORE_CLIENT_OPTIONS, retry_config=_OBSTORE_RETRY_CONFIG)
    except ImportError:
        store = _http_store(base_url)
    return ObstoreBackend(store, url_prefix=f"{base_url}/")


def upstream_index(spec: dict[str, Any]) -> dict[str, Any]:
    """The one-time cost: parse every header, persist the collection."""
    import shutil

    import pyarrow as pa
    import shapely.geometry

    import rasteret

    _check_not_this_project(rasteret)
    workspace = Path(spec["peer_inputs"]["rasteret-upstream"])
    shutil.rmtree(workspace, ignore_errors=True)  # force=True would keep stale partitions
    records = spec["records"]
    table = pa.table(
        {
            "id": [r["id"] for r in records],
            "datetime": pa.array(
                [dt.datetime.fromisoformat(r["datetime"]) for r in records],
                pa.timestamp("us", tz="UTC"),
            ),
            "geometry": [shapely.geometry.shape(r["geometry"]).wkb for r in records],
            "assets": [{b: {"href": _url(spec, r, b)} for b in r["hrefs"]} for r in records],
        }
    )
    backend = _upstream_backend(spec["base_url"])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    rasteret.build_from_table(
        table, name="coldstart", workspace_dir=workspace, enrich_cog=True, backend=backend
    )
    return {
        "wall": time.perf_counter() - wall0,
        "cpu": time.process_time() - cpu0,
        "import": 0.0,
        "version": rasteret.__version__,
    }


def prepare_upstream() -> Callable[[dict[str, Any]], Output]:
    import geopandas  # noqa: F401
    import obstore  # noqa: F401
    import pyarrow.dataset as pads
    import rasteret.core.collection
    import rasterio  # noqa: F401
    import shapely  # noqa: F401
    import xarray  # noqa: F401

    import rasteret

    _check_not_this_project(rasteret)

    def run(spec: dict[str, Any]) -> Output:
        scenario = spec["scenario"]
        bands = list(scenario["bands"])
        backend = _upstream_backend(spec["base_url"])
        collection = rasteret.load(spec["peer_inputs"]["rasteret-upstream"]).where(
            pads.field("id").isin(list(scenario["scenes"]))
        )
        if scenario["grid"] == "target":
            affine, height, width = _target_grid(scenario)
            ids = list(scenario["scenes"])
            data = collection.read_window(
                record_ids=ids,
                bounds=tuple(scenario["target_bounds"]),
                res=(10.0, 10.0),
                bands=bands,
                target_crs=scenario_target_epsg(),
                group_by="id",
                backend=backend,
            )
            if data.shape[0] != len(ids) or data.shape[-2:] != (height, width):
                raise RuntimeError(f"read_window returned {data.shape} for {len(ids)} scenes")
            if data.dtype != np.uint16:  # scenes of the other zone come back as float32
                holes = int(np.isnan(data).sum()) if data.dtype.kind == "f" else 0
                NOTES[scenario["name"]] = f"{data.dtype} output" + (
                    f", {holes} NaN px where GDAL has 0" if holes else ""
                )
            return {f"{i}|target": (data[t], affine) for t, i in enumerate(ids)}
        gdf = collection.get_gdf(
            geometries=_boxes(scenario), bands=bands, geometry_crs=4326, backend=backend
        )
        pieces: dict[str, dict[str, tuple[np.ndarray, tuple[float, ...]]]] = {}
        for rid, gid, band, data, transform in zip(
            gdf["record_id"],
            gdf["geometry_id"],
            gdf["band"],
            gdf["data"],
            gdf["transform"],
            strict=True,
        ):
            key = f"{rid}|{int(gid) - 1}"  # geometry ids count from 1, in input order
            pieces.setdefault(key, {})[str(band)] = (data, tuple(transform)[:6])
        return {
            key: (np.stack([parts[b][0] for b in bands]), parts[bands[0]][1])
            for key, parts in pieces.items()
        }

    return run


# -- lazycogs -----------------------------------------------------------------------------
def lazycogs_index(spec: dict[str, Any]) -> dict[str, Any]:
    """Write the STAC items as stac-geoparquet (lazycogs' input; no HTTP)."""
    import lazycogs
    import rustac

    with open(spec["items_path"]) as handle:
        items = json.load(handle)
    path = Path(spec["peer_inputs"]["lazycogs"])
    path.unlink(missing_ok=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    rustac.write_sync(str(path), items)
    return {
        "wall": time.perf_counter() - wall0,
        "cpu": time.process_time() - cpu0,
        "import": 0.0,
        "version": getattr(lazycogs, "__version__", None) or _dist_version("lazycogs"),
    }


def _dist_version(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


def _duckdb_client() -> Any:
    """rustac's DuckDB client, loading extensions installed by competitor_envs.py."""
    from rustac import DuckdbClient

    ext = Path(sys.prefix) / "duckdb_extensions"
    if any(ext.glob("v*/*/*.duckdb_extension")):
        return DuckdbClient(extension_directory=ext, install_extensions=False)
    return DuckdbClient()


def prepare_lazycogs() -> Callable[[dict[str, Any]], Output]:
    from urllib.parse import urlparse

    import lazycogs
    import obstore  # noqa: F401
    import pyproj

    def open_values(spec, client, store, bbox, epsg, ids, bands) -> np.ndarray:
        da = lazycogs.open(
            spec["peer_inputs"]["lazycogs"],
            bbox=tuple(bbox),
            crs=f"EPSG:{epsg}",
            resolution=10.0,
            ids=ids,
            bands=bands,
            time_period=None,
            store=store,
            path_from_href=lambda href: urlparse(href).path.lstrip("/"),
            duckdb_client=client,
        )
        if da.sizes["time"] != len(ids):
            raise RuntimeError(f"lazycogs returned {da.sizes['time']} times for {len(ids)} items")
        return da.values  # (band, time, y, x)

    def run(spec: dict[str, Any]) -> Output:
        scenario = spec["scenario"]
        bands = list(scenario["bands"])
        client, store = _duckdb_client(), _http_store(spec["base_url"])
        records = sorted(_selected(spec), key=lambda r: (r["datetime"], r["id"]))
        out: Output = {}
        if scenario["grid"] == "target":
            affine, _, _ = _target_grid(scenario)
            ids = [r["id"] for r in records]
            data = open_values(
                spec, client, store, scenario["target_bounds"], scenario_target_epsg(), ids, bands
            )
            for t, item_id in enumerate(ids):
                out[f"{item_id}|target"] = (data[:, t], affine)
            return out
        NOTES[scenario["name"]] = "AOI bounding box, no polygon mask"
        grids: dict[tuple[int, tuple[float, ...]], list[str]] = {}
        for r in records:
            grids.setdefault((r["epsg"], tuple(r["transform"][:6])), []).append(r["id"])
        for (epsg, transform), ids in grids.items():
            to_utm = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
            for i, aoi in enumerate(scenario["aois"]):
                bbox = lazycogs.align_bbox(transform, to_utm.transform_bounds(*aoi, densify_pts=21))
                data = open_values(spec, client, store, bbox, epsg, ids, bands)
                affine = (10.0, 0.0, bbox[0], 0.0, -10.0, bbox[3])
                for t, item_id in enumerate(ids):
                    out[f"{item_id}|{i}"] = (data[:, t], affine)
        return out

    return run


PEERS: dict[str, Callable[[], Callable[[dict[str, Any]], Output]]] = {
    "rasteret-upstream": prepare_upstream,
    "lazycogs": prepare_lazycogs,
}
INDEXES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "rasteret-upstream:index": upstream_index,
    "lazycogs:index": lazycogs_index,
}


def main(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["tool"] in INDEXES:
        return INDEXES[spec["tool"]](spec)
    result = measure(spec, PEERS)
    if NOTES.get(spec["scenario"]["name"]):
        result["note"] = NOTES[spec["scenario"]["name"]]
    return result


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
