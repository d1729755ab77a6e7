"""The dataset catalog: built-in descriptors checked against real items, ``build("<id>")``
through a real STAC API, user descriptors persisted across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from rasteret.catalog import (
    BUILTIN_DATASETS,
    DatasetDescriptor,
    DatasetRegistry,
    build,
    export_local,
    register,
    register_local,
    unregister_local,
)
from rasteret.ingest.stac_args import StacInputError
from stac_server import StacApi, corpus_items, serve_assets

ORIGINAL_IDS = {
    "earthsearch/sentinel-2-l2a",
    "earthsearch/landsat-c2-l2",
    "earthsearch/naip",
    "earthsearch/cop-dem-glo-30",
    "earthsearch/cop-dem-glo-90",
    "pc/sentinel-2-l2a",
    "pc/io-lulc-annual-v02",
    "pc/alos-dem",
    "pc/nasadem",
    "pc/esa-worldcover",
    "pc/usda-cdl",
    "aef/v1-annual",
}
# catalog id -> corpus file with real items of that collection
CORPUS_FOR = {
    "earthsearch/sentinel-2-l2a": "earth-search-v1/sentinel-2-l2a.ndjson",
    "earthsearch/sentinel-2-c1-l2a": "earth-search-v1/sentinel-2-c1-l2a.ndjson",
    "earthsearch/sentinel-2-l1c": "earth-search-v1/sentinel-2-l1c.ndjson",
    "earthsearch/landsat-c2-l2": "earth-search-v1/landsat-c2-l2.ndjson",
    "earthsearch/sentinel-1-grd": "earth-search-v1/sentinel-1-grd.ndjson",
    "pc/sentinel-2-l2a": "planetary-computer/sentinel-2-l2a.ndjson",
    "pc/landsat-c2-l2": "planetary-computer/landsat-c2-l2.ndjson",
    "pc/io-lulc-annual-v02": "planetary-computer/io-lulc-annual-v02.stac-geoparquet.ndjson",
}
SERVED = ["red", "nir", "scl"]


@pytest.fixture(autouse=True)
def private_registry(tmp_path, monkeypatch):
    """Every test gets its own user registry file."""
    monkeypatch.setenv("RASTERET_LOCAL_DATASETS_PATH", str(tmp_path / "datasets.local.json"))
    DatasetRegistry.reload()
    yield
    DatasetRegistry.reload()


@pytest.fixture(scope="module")
def es_items(objects):
    items = corpus_items("earth-search-v1/sentinel-2-l2a.ndjson")
    return serve_assets(items, SERVED, objects.root / "es", objects, drop_other_tiffs=True)


@pytest.fixture(scope="module")
def mirror(es_items, tmp_path_factory):
    """A local Earth Search mirror (rustac serve) of the real sentinel-2-l2a items."""
    with StacApi(es_items, tmp_path_factory.mktemp("api")) as api:
        yield api


def test_builtins_cover_the_original_twelve_with_licences():
    ids = {d.id for d in BUILTIN_DATASETS}
    assert ids >= ORIGINAL_IDS and "earthsearch/sentinel-2-c1-l2a" in ids
    for d in BUILTIN_DATASETS:
        assert d.license and d.name and d.kind in ("stac", "record_table")
        assert (d.stac_api and d.stac_collection and d.band_map) or d.build_source_uri
    s2 = DatasetRegistry.require("earthsearch/sentinel-2-l2a")
    assert s2.band_map["B04"] == "red" and s2.band_map["B8A"] == "nir08" and len(s2.band_map) == 13
    naip = DatasetRegistry.require("earthsearch/naip")
    assert naip.band_index_map == {"R": 0, "G": 1, "B": 2, "NIR": 3} and naip.requires_auth
    assert DatasetRegistry.require("aef/v1-annual").href_column == "path"


@pytest.mark.parametrize("dataset_id", sorted(CORPUS_FOR))
def test_builtin_band_maps_match_real_items(dataset_id):
    items = corpus_items(CORPUS_FOR[dataset_id])
    keys = {k for item in items for k in item["assets"]}
    mapped = set(DatasetRegistry.require(dataset_id).band_map.values())
    if dataset_id == "earthsearch/sentinel-1-grd":  # polarisations vary by acquisition
        assert mapped & keys
    else:
        assert mapped <= keys, sorted(mapped - keys)


def test_build_catalog_id_through_a_stac_mirror(mirror, es_items, objects, tmp_path):
    collection = build(
        "earthsearch/sentinel-2-l2a",
        name="mirror",
        bbox=(-180, -90, 180, 90),
        date_range=("2023-01-01", "2025-12-31"),
        stac_api=mirror.url,
        workspace_dir=tmp_path,
    )
    # the catalog maps 13 bands; the mirror's items only have red/nir/scl: the rest is dropped
    assert collection.bands == ["B04", "B08", "SCL"]
    assert collection.data_source == "earthsearch/sentinel-2-l2a"
    assert Path(collection.uri).name == "mirror_202301-202512_earthsearch-sentinel-2-l2a_stac"
    assert len(collection) == len(es_items)
    for rid, href in zip(collection.record_ids, collection.hrefs("B08"), strict=True):
        ds = xr.open_dataset(
            collection.select_records([rid]).select_bands(["B08"]), engine="rasteret"
        )
        path = objects.root / urllib.parse.urlsplit(href).path.lstrip("/")
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(ds.B08.isel(time=0).values, src.read(1))


def test_build_errors_name_the_fix():
    with pytest.raises(KeyError, match=r"did you mean \['earthsearch/sentinel-2-l2a'"):
        build("earthsearch/sentinel-2-l2", name="x")
    with pytest.raises(StacInputError, match=r"needs bbox=.*e.g. bbox=\(-122.45"):
        build("earthsearch/sentinel-2-l2a", name="x")


def test_user_descriptors_persist_across_processes(mirror, tmp_path):
    mine = DatasetDescriptor(
        id="mine/s2",
        name="My S2 mirror",
        stac_api=mirror.url,
        stac_collection="sentinel-2-l2a",
        band_map={"NIR": "nir"},
        license="CC0-1.0",
    )
    register_local("mine/s2", mine)
    stored = json.loads(Path(os.environ["RASTERET_LOCAL_DATASETS_PATH"]).read_text())
    assert [d["id"] for d in stored] == ["mine/s2"]
    listed = subprocess.run(
        [sys.executable, "-m", "rasteret.cli", "datasets", "list", "--json", "--search", "mine"],
        capture_output=True,
        text=True,
        check=True,
    )
    entries = json.loads(listed.stdout)
    assert [(e["id"], e["local"], e["license"]) for e in entries] == [("mine/s2", True, "CC0-1.0")]
    collection = build("mine/s2", name="mine", bbox=(-60, -61, -59, -60), date_range=(
        "2025-07-01", "2025-07-31"), workspace_dir=tmp_path)  # fmt: skip
    assert collection.record_ids == ["S2B_20EPT_20250731_0_L2A"] and collection.bands == ["NIR"]
    exported = export_local("mine/s2", tmp_path / "mine.json")
    assert json.loads(exported.read_text())["stac_api"] == mirror.url
    assert unregister_local("mine/s2") is True
    assert DatasetRegistry.get("mine/s2") is None
    assert json.loads(Path(os.environ["RASTERET_LOCAL_DATASETS_PATH"]).read_text()) == []
    with pytest.raises(ValueError, match="built-in dataset id"):
        register(DatasetDescriptor(id="pc/nasadem", name="x", stac_api="http://x"))


def test_register_local_collection_then_build_subsets_it(mirror, tmp_path):
    source = build(
        "earthsearch/sentinel-2-l2a",
        name="local-src",
        bbox=(-180, -90, 180, 90),
        date_range=("2023-01-01", "2025-12-31"),
        stac_api=mirror.url,
        workspace_dir=tmp_path,
    )
    descriptor = register_local("local/s2", source.uri, description="cached mirror build")
    assert (
        descriptor.collection_uri == str(Path(source.uri).resolve())
        and descriptor.kind == "collection"
    )
    assert descriptor.temporal_range[0].startswith("2023-10-08")
    subset = build("local/s2", name="brazil", bbox=(-41.0, -6.0, -37.0, -3.0))
    assert sorted(subset.record_ids) == sorted(r for r in source.record_ids if "_24M" in r)


def test_record_table_descriptor_pushes_filters_down(es_items, tmp_path):
    rustac = pytest.importorskip("rustac", reason="rustac writes the stac-geoparquet table")
    table = tmp_path / "items.parquet"
    rustac.write_sync(str(table), es_items)
    register(DatasetDescriptor(id="table/s2", name="S2 table", record_table_uri=str(table)))
    collection = build(
        "table/s2",
        name="table",
        bbox=(-41.0, -6.0, -37.0, -3.0),
        date_range=("2025-07-31", "2025-07-31"),
        workspace_dir=tmp_path,
    )
    assert sorted(collection.record_ids) == sorted(i["id"] for i in es_items if "_24M" in i["id"])
    assert sorted(collection.bands) == sorted(SERVED)
    assert Path(collection.uri).name == "table_records"
