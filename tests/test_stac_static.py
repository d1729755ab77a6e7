"""Static STAC catalogs (on disk and over HTTP, relative hrefs), item collections, and
``build_from_table`` on stac-geoparquet written by rustac, all checked against rasterio."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from rasteret.ingest import build_from_table, build_report
from rasteret.ingest.stac import build_from_stac
from rasteret.ingest.stac_bands import BandMapError
from rasteret.ingest.stac_search import StacSearchError
from rasteret.testing.objserver import ObjectServer
from stac_server import corpus_items, serve_assets

ASSETS = ["red", "nir"]
BAND_MAP = {"B04": "red", "B08": "nir"}


@pytest.fixture(scope="module")
def items(objects) -> list[dict]:
    raw = corpus_items("earth-search-v1/sentinel-2-l2a.ndjson")
    return serve_assets(raw, ASSETS, objects.root / "static", objects)


@pytest.fixture(scope="module")
def catalog(items, objects) -> Path:
    """``static/catalog.json`` → ``sentinel-2-l2a.json`` (collection) and ``other.json``
    (an empty collection) → ``<id>/<id>.json`` items whose asset hrefs are relative."""
    root = objects.root / "static"
    item_links = []
    for item in items:
        doc = json.loads(json.dumps(item))
        doc["links"] = [{"rel": "collection", "href": "../sentinel-2-l2a.json"}]
        for key in ASSETS:
            doc["assets"][key]["href"] = f"./{key}.tif"
        for key, asset in doc["assets"].items():
            if key not in ASSETS:
                asset["href"] = f"./missing-{key}.tif"  # never fetched: not in the band map
        (root / item["id"] / f"{item['id']}.json").write_text(json.dumps(doc))
        item_links.append({"rel": "item", "href": f"./{item['id']}/{item['id']}.json"})
    collection = {
        "type": "Collection",
        "id": "sentinel-2-l2a",
        "stac_version": "1.0.0",
        "description": "test",
        "license": "other",
        "extent": {},
        "links": item_links,
    }
    (root / "sentinel-2-l2a.json").write_text(json.dumps(collection))
    other = {**collection, "id": "other", "links": []}
    (root / "other.json").write_text(json.dumps(other))
    cat = {
        "type": "Catalog",
        "id": "root",
        "stac_version": "1.0.0",
        "description": "root",
        "links": [
            {"rel": "child", "href": "./other.json"},
            {"rel": "child", "href": "./sentinel-2-l2a.json"},
        ],
    }
    (root / "catalog.json").write_text(json.dumps(cat))
    return root / "catalog.json"


def assert_pixels(collection, band: str, resolve) -> None:
    for rid, asset in zip(
        collection.record_ids, collection.table["assets"].to_pylist(), strict=True
    ):
        ds = xr.open_dataset(
            collection.select_records([rid]).select_bands([band]), engine="rasteret"
        )
        with rasterio.open(resolve(asset[band]["href"])) as src:
            np.testing.assert_array_equal(ds[band].isel(time=0).values, src.read(1))


def from_url(objects: ObjectServer):
    def resolve(href: str) -> Path:
        return objects.root / urllib.parse.unquote(urllib.parse.urlsplit(href).path).lstrip("/")

    return resolve


def test_static_catalog_on_disk_relative_hrefs(catalog, items, objects, tmp_path):
    objects.reset()
    collection = build_from_stac(
        name="static",
        stac_api=str(catalog),
        collection="sentinel-2-l2a",
        band_map=BAND_MAP,
        static_catalog=True,
        workspace_dir=tmp_path,
    )
    assert sorted(collection.record_ids) == sorted(i["id"] for i in items)
    hrefs = collection.hrefs("B04")
    assert all(Path(h).is_absolute() and Path(h).is_file() for h in hrefs)
    assert objects.requests == 0  # local files: nothing over HTTP
    assert build_report(collection).ok
    assert_pixels(collection, "B04", Path)
    assert Path(collection.uri).name == "static_sentinel_stac"  # create_name token rule


def test_static_catalog_over_http_with_filters(catalog, items, objects, tmp_path):
    url = objects.url_for("static/catalog.json")
    collection = build_from_stac(
        name="http",
        stac_api=url,
        collection="sentinel-2-l2a",
        band_map=BAND_MAP,
        static_catalog=True,
        bbox=(-41.0, -6.0, -37.0, -3.0),
        date_range=("2025-07-31", "2025-07-31"),
        workspace_dir=tmp_path,
    )
    assert sorted(collection.record_ids) == sorted(i["id"] for i in items if "_24M" in i["id"])
    assert all(h.startswith(objects.url) for h in collection.hrefs("B08"))
    assert_pixels(collection, "B08", from_url(objects))


def test_static_bad_band_map_fails_after_one_item(catalog, objects, tmp_path):
    objects.reset()
    with pytest.raises(BandMapError, match="the first item"):
        build_from_stac(
            name="bad",
            stac_api=objects.url_for("static/catalog.json"),
            collection="sentinel-2-l2a",
            band_map={"B04": "B04"},
            static_catalog=True,
            workspace_dir=tmp_path,
        )
    paths = [r.path for r in objects.records()]
    assert sum(p.endswith(".json") for p in paths) == 4  # catalog, 2 collections, 1 item
    assert not any(p.endswith(".tif") for p in paths)
    with pytest.raises(StacSearchError, match=r"no collection 'nope' \(collections: \['other'"):
        build_from_stac(
            name="bad",
            stac_api=str(catalog),
            collection="nope",
            static_catalog=True,
            workspace_dir=tmp_path,
        )


def test_item_collection_file_and_inferred_band_map(items, objects, tmp_path):
    features = [json.loads(json.dumps(i)) for i in items[:3]]
    for f in features:
        f["assets"] = {k: f["assets"][k] for k in ("red", "nir", "thumbnail", "visual")}
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    collection = build_from_stac(
        name="fc", stac_api=str(path), static_catalog=True, workspace_dir=tmp_path
    )
    assert collection.bands == ["red", "nir"]  # thumbnail (JPEG) and 3-band visual left out
    assert len(collection) == 3 and build_report(collection).ok


def test_build_from_table_on_stac_geoparquet(items, objects, tmp_path):
    rustac = pytest.importorskip("rustac", reason="rustac writes the stac-geoparquet file")
    path = tmp_path / "items.parquet"
    rustac.write_sync(str(path), items)
    collection = build_from_table(
        path, name="geoparquet", band_codes=ASSETS, workspace_dir=tmp_path
    )
    assert sorted(collection.record_ids) == sorted(i["id"] for i in items)
    assert collection.bands == ASSETS and build_report(collection).ok
    by_id = {i["id"]: i for i in items}
    for row in collection.table.select(["id", "eo:cloud_cover"]).to_pylist():
        assert row["eo:cloud_cover"] == by_id[row["id"]]["properties"]["eo:cloud_cover"]
    assert_pixels(collection, "nir", from_url(objects))
