"""build_from_stac against a real STAC API (rustac serve) loaded with real Earth Search and
Planetary Computer items whose assets are generated COGs on a local object server.

Oracles: rasterio reads of the served files (pixels), the corpus items (ids, properties),
the object server's request log (what was fetched) and the API proxy's log (searches).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import xarray as xr

from rasteret.ingest import build_report
from rasteret.ingest.stac import build_from_stac, update_collection
from rasteret.testing.objserver import ObjectServer
from stac_server import StacApi, corpus_items, serve_assets

ES_MAP = {"B04": "red", "B08": "nir", "SCL": "scl"}
EVERYWHERE = (-180.0, -90.0, 180.0, 90.0)
ALL_DATES = ("2015-01-01", "2026-12-31")


@pytest.fixture(scope="module")
def es_items(objects) -> list[dict]:
    items = corpus_items("earth-search-v1/sentinel-2-l2a.ndjson")
    return serve_assets(items, list(ES_MAP.values()), objects.root / "es", objects)


@pytest.fixture(scope="module")
def es_api(es_items, tmp_path_factory):
    with StacApi(es_items, tmp_path_factory.mktemp("es_api")) as api:
        yield api


@pytest.fixture(scope="module")
def pc_items(objects) -> list[dict]:
    items = corpus_items("planetary-computer/sentinel-2-l2a.ndjson")
    return serve_assets(items, ["B04", "visual"], objects.root / "pc", objects)


@pytest.fixture(scope="module")
def pc_api(pc_items, tmp_path_factory):
    with StacApi(pc_items, tmp_path_factory.mktemp("pc_api")) as api:
        yield api


def local_file(objects: ObjectServer, href: str) -> Path:
    return objects.root / urllib.parse.unquote(urllib.parse.urlsplit(href).path).lstrip("/")


def assert_pixels_equal_rasterio(collection, band: str, objects: ObjectServer) -> int:
    """Every record's pixels of ``band`` (xarray engine) equal rasterio's read of the file."""
    assets = collection.table["assets"].to_pylist()
    checked = 0
    for rid, asset in zip(collection.record_ids, assets, strict=True):
        if asset[band] is None:
            continue
        one = collection.select_records([rid]).select_bands([band])
        ds = xr.open_dataset(one, engine="rasteret")
        with rasterio.open(local_file(objects, asset[band]["href"])) as src:
            expected = src.read((asset[band]["band_index"] or 0) + 1)
            assert ds.rio.crs == src.crs
        np.testing.assert_array_equal(ds[band].isel(time=0).values, expected)
        checked += 1
    return checked


def test_build_from_stac_pixels_properties_crs(es_api, es_items, objects, tmp_path):
    collection = build_from_stac(
        name="es_s2",
        stac_api=es_api.url,
        collection="sentinel-2-l2a",
        band_map=ES_MAP,
        bbox=EVERYWHERE,
        date_range=ALL_DATES,
        workspace_dir=tmp_path,
    )
    assert Path(collection.uri) == tmp_path / "es-s2_201501-202612_sentinel_stac"
    assert sorted(collection.record_ids) == sorted(i["id"] for i in es_items)
    assert collection.bands == ["B04", "B08", "SCL"]
    assert build_report(collection).ok and build_report(collection).indexed == 21
    table = collection.table.to_pylist()
    by_id = {i["id"]: i for i in es_items}
    for row in table:
        item = by_id[row["id"]]
        scalars = {
            k: v
            for k, v in item["properties"].items()
            if isinstance(v, str | int | float) and k not in ("datetime", "created", "updated")
        }
        assert scalars and {k: row[k] for k in scalars} == scalars  # properties kept as columns
        assert row["proj:epsg"] == item["properties"]["proj:epsg"]
        assert row["crs"] == f"EPSG:{item['properties']['proj:epsg']}"
        stac_red = item["assets"]["red"]["raster:bands"][0]
        assert row["raster:bands"]["B04"]["scale"] == stac_red["scale"]
        assert row["raster:bands"]["B04"]["offset"] == stac_red["offset"]
        assert row["raster:bands"]["SCL"]["data_type"] == "uint8"
        assert row["assets"]["B04"]["href"] == item["assets"]["red"]["href"]
        assert row["B04_metadata"]["dtype"] == "uint16" and row["SCL_metadata"]["dtype"] == "uint8"
    assert assert_pixels_equal_rasterio(collection, "B04", objects) == 7
    assert assert_pixels_equal_rasterio(collection, "SCL", objects) == 7


def test_multiband_asset_band_index_and_proj_code(pc_api, pc_items, objects, tmp_path):
    collection = build_from_stac(
        name="pc",
        stac_api=pc_api.url,
        collection="sentinel-2-l2a",
        band_map={"B04": "B04", "R": "visual", "G": "visual", "B": "visual"},
        band_index_map={"R": 0, "G": 1, "B": 2},
        bbox=EVERYWHERE,
        date_range=ALL_DATES,
        workspace_dir=tmp_path,
        max_items=4,
    )
    assert len(collection) == 4
    rows = collection.table.select(["assets", "G_metadata"]).to_pylist()
    assert {r["assets"]["G"]["band_index"] for r in rows} == {1}
    assert {r["G_metadata"]["band_index"] for r in rows} == {1}
    for band in ("R", "G", "B", "B04"):
        assert assert_pixels_equal_rasterio(collection, band, objects) == 4
    # one asset file, three bands: each header was fetched once
    visual = [r for r in objects.records() if r.path.startswith("pc/") and "visual" in r.path]
    assert visual


def test_proj_code_and_wkt2_give_the_record_crs(pc_items, objects, tmp_path):
    from pyproj import CRS

    items = json.loads(json.dumps(pc_items[:3]))
    epsg = [i["properties"].pop("proj:epsg") for i in items]
    items[0]["properties"]["proj:code"] = f"EPSG:{epsg[0]}"
    items[1]["properties"]["proj:wkt2"] = CRS.from_epsg(epsg[1]).to_wkt()
    # items[2]: no projection info at all -> the header's CRS
    with StacApi(items, tmp_path / "api") as api:
        collection = build_from_stac(
            name="proj",
            stac_api=api.url,
            collection="sentinel-2-l2a",
            band_map={"B04": "B04"},
            workspace_dir=tmp_path,
        )
    by_id = dict(zip(collection.record_ids, collection.table["crs"].to_pylist(), strict=True))
    assert [by_id[i["id"]] for i in items] == [f"EPSG:{e}" for e in epsg]
    assert collection.epsg == sorted(set(epsg))


def test_filters_bbox_dates_query_cql2_max_items(es_api, es_items, tmp_path):
    common = {"stac_api": es_api.url, "collection": "sentinel-2-l2a", "band_map": ES_MAP}
    brazil = build_from_stac(
        name="bbox", bbox=(-41.0, -6.0, -37.0, -3.0), date_range=ALL_DATES, **common,
        workspace_dir=tmp_path,
    )  # fmt: skip
    assert sorted(brazil.record_ids) == sorted(i["id"] for i in es_items if "_24M" in i["id"])
    old = build_from_stac(
        name="dates", bbox=EVERYWHERE, date_range=("2023-10-01", "2023-10-08"), **common,
        workspace_dir=tmp_path,
    )  # fmt: skip
    assert old.record_ids == ["S2A_13TDE_20231008_0_L2A"]  # the end day is included
    expected = sorted(i["id"] for i in es_items if i["properties"]["eo:cloud_cover"] < 30)
    es_api.log.clear()
    queried = build_from_stac(
        name="query", query={"eo:cloud_cover": {"lt": 30}}, **common, workspace_dir=tmp_path
    )
    assert sorted(queried.record_ids) == expected
    # the API does not advertise the Query extension: the query was applied locally
    assert all(b"eo:cloud_cover" not in (body or b"") for _, _, body, _ in es_api.searches)
    cql2 = {"op": "<", "args": [{"property": "eo:cloud_cover"}, 30]}
    filtered = build_from_stac(name="cql2", filter=cql2, **common, workspace_dir=tmp_path)
    assert sorted(filtered.record_ids) == expected
    text = build_from_stac(
        name="cql2t", filter='"eo:cloud_cover" < 30', **common, workspace_dir=tmp_path
    )
    assert sorted(text.record_ids) == expected
    capped = build_from_stac(name="cap", max_items=2, **common, workspace_dir=tmp_path)
    assert len(capped) == 2


def test_cache_hits_depend_on_query_and_force_replaces(es_api, objects, tmp_path):
    args = {
        "name": "cache",
        "stac_api": es_api.url,
        "collection": "sentinel-2-l2a",
        "band_map": ES_MAP,
        "bbox": EVERYWHERE,
        "date_range": ALL_DATES,
        "workspace_dir": tmp_path,
    }
    first = build_from_stac(**args)
    es_api.log.clear()
    objects.reset()
    again = build_from_stac(**args)
    assert (es_api.log, objects.requests) == ([], 0)  # cache hit: no search, no header
    assert sorted(again.record_ids) == sorted(first.record_ids)
    narrower = build_from_stac(**{**args, "query": {"eo:cloud_cover": {"lt": 30}}})
    assert es_api.searches and len(narrower) < len(first)  # same dir, other query: rebuilt
    assert Path(narrower.uri) == Path(first.uri)
    objects.reset()
    forced = build_from_stac(**args, force=True)
    assert objects.requests > 0 and len(forced) == len(first)
    files = list(Path(forced.uri).rglob("*.parquet"))
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == len(first)


def test_append_and_update_read_only_new_headers(es_api, objects, tmp_path):
    args = {
        "name": "grow",
        "stac_api": es_api.url,
        "collection": "sentinel-2-l2a",
        "band_map": ES_MAP,
        "bbox": EVERYWHERE,
        "workspace_dir": tmp_path,
    }
    first = build_from_stac(**args, date_range=("2023-01-01", "2023-12-31"))
    assert first.record_ids == ["S2A_13TDE_20231008_0_L2A"]
    objects.reset()
    grown = update_collection(first.uri, date_range=("2023-01-01", "2025-12-31"))
    assert len(grown) == 7 and Path(grown.uri) == Path(first.uri)
    fetched = {r.path.split("/")[1] for r in objects.records()}
    assert "S2A_13TDE_20231008_0_L2A" not in fetched and len(fetched) == 6
    assert assert_pixels_equal_rasterio(grown, "B08", objects) == 7
    objects.reset()
    same = update_collection(first.uri, date_range=("2023-01-01", "2025-12-31"))
    assert len(same) == 7 and objects.requests == 0  # nothing new: no header read


def test_missing_and_broken_assets_are_recorded_per_asset(es_items, objects, tmp_path):
    items = json.loads(json.dumps(es_items))
    del items[0]["assets"]["nir"]
    items[1]["assets"]["red"]["href"] = objects.url_for("es/missing/B04.tif")
    with StacApi(items, tmp_path / "api") as api:
        collection = build_from_stac(
            name="broken",
            stac_api=api.url,
            collection="sentinel-2-l2a",
            band_map=ES_MAP,
            workspace_dir=tmp_path,
        )
    assert len(collection) == 7
    rows = {r["id"]: r for r in collection.table.to_pylist()}
    no_nir = rows[items[0]["id"]]
    assert no_nir["B08_metadata"] is None and "has no asset 'nir'" in no_nir["B08_error"]
    assert no_nir["B04_metadata"] is not None
    gone = rows[items[1]["id"]]
    assert gone["B04_metadata"] is None and "es/missing/B04.tif" in gone["B04_error"]
    report = build_report(collection)
    assert report.failed == 2 and report.indexed == 19


def test_no_credentials_or_signatures_are_saved(es_items, objects, tmp_path):
    items = json.loads(json.dumps(es_items[:2]))
    signed = items[0]["assets"]["red"]["href"] + "?sv=2021-06-08&se=2030-01-01&sig=SECRET1%3D"
    items[0]["assets"]["red"]["href"] = signed
    items[1]["assets"]["red"]["href"] = items[1]["assets"]["red"]["href"].replace(
        "http://", "http://user:SECRET2@"
    )

    def sign(url: str) -> str:
        return url + ("&" if "?" in url else "?") + "token=SECRET3"

    with StacApi(items, tmp_path / "api") as api:
        collection = build_from_stac(
            name="signed",
            stac_api=api.url,
            collection="sentinel-2-l2a",
            band_map={"B04": "red"},
            workspace_dir=tmp_path,
            sign=sign,
        )
    assert build_report(collection).ok  # fetched with the signed URLs
    for file in Path(collection.uri).rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert b"SECRET" not in data, file
    assert all("?" not in h and "@" not in h for h in collection.hrefs("B04"))
