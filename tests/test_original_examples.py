"""The code examples of the original system's documents run against this implementation.

Every example is kept as the document has it (checked: the code must appear in the
document, whitespace aside) and run with only the local-data changes listed next to it:
``stac_api=`` pointing ``rasteret.build`` at a local STAC API (``rustac serve``) over
generated scenes with the examples' own places and dates (tests/_originaldata.py), local
URLs for the COGs, and names the documents leave undefined (``my_bounds``...). Outcomes
are checked against GDAL (rasterio) reads of the same files.

This module: 000 (migrating from rasterio), 001 (README, without TorchGeo), 002
(concepts), 004 (collection management, Python). TorchGeo and the blog (001, 003):
test_original_examples_ml.py; the command lines (001, 004): test_original_examples_cli.py.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from _originaldata import (
    CONCEPTS,
    EXAMPLE_MARKS,
    LOCAL_STAC,
    MANAGEMENT,
    MIGRATING,
    README,
    RES,
    World,
    assert_dataset_pixels,
    assert_stack_pixels,
    dated,
    evaluate,
    example_namespace,
    gdal_served,
    original_world,
    run,
    sample_oracle,
    scene_ids,
)

pytestmark = EXAMPLE_MARKS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with original_world(tmp_path_factory.mktemp("original")) as built:
        yield built


@pytest.fixture
def ns(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return example_namespace(world, tmp_path, monkeypatch)


# ----------------------------------------------------------------------------- 000 migrating

RASTERIO_SHAPE = """
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pystac_client
import rasterio
from rasterio.windows import from_bounds

catalog = pystac_client.Client.open("https://earth-search.aws.element84.com/v1")
search = catalog.search(
    collections=["sentinel-2-l2a"],
    bbox=(-122.5, 37.7, -122.4, 37.8),
    datetime="2024-01-01/2024-06-30",
)
items = list(search.items())


def read_band(item, bounds):
    href = item.assets["red"].href
    with rasterio.open(href) as src:
        # Real code also needs CRS alignment and bounds checks here.
        window = from_bounds(*bounds, transform=src.transform)
        return src.read(1, window=window)


with ThreadPoolExecutor(max_workers=10) as pool:
    arrays = list(pool.map(lambda item: read_band(item, my_bounds), items))

data = np.stack(arrays)
"""

RASTERET_SHAPE = """
import rasteret

collection = rasteret.build(
    "earthsearch/sentinel-2-l2a",
    name="s2-training",
    bbox=(-122.5, 37.7, -122.4, 37.8),
    date_range=("2024-01-01", "2024-06-30"),
)

# OR if you have your own COGs
collection = rasteret.build_from_table(
    "path/to/table_with_cogs_metadata.parquet",
    name="my-cogs",
    enrich_cog=True,
)

filtered = collection.subset(cloud_cover_lt=20)

data = filtered.get_numpy(
    geometries=(-122.5, 37.7, -122.4, 37.8),
    bands=["B04", "B08"],
)
"""


def test_migrating_rasterio_shape_matches_rasteret(world: World, ns: dict) -> None:
    # my_bounds is left undefined by the document ("real code also needs CRS alignment"):
    # the example's bbox in the rasters' CRS (UTM 10N), snapped to their 50 m grid
    west, south, east, north = transform_bounds(4326, 32610, -122.5, 37.7, -122.4, 37.8)
    snap = np.array([np.floor(west / RES), np.floor(south / RES), np.ceil(east / RES)])
    my_bounds = (*(snap * RES), np.ceil(north / RES) * RES)
    ns["my_bounds"] = my_bounds
    with gdal_served(world) as (_, api):  # GDAL reads from a server in another process
        run(MIGRATING, "Manual rasterio shape", RASTERIO_SHAPE, ns,
            ("https://earth-search.aws.element84.com/v1", api.url))  # fmt: skip
        assert api.searches  # pystac_client searched the local API
    items, data = ns["items"], ns["data"]
    assert sorted(i.id for i in items) == sorted(scene_ids(world, 32610, lambda r: True))
    width = round((my_bounds[2] - my_bounds[0]) / RES)
    height = round((my_bounds[3] - my_bounds[1]) / RES)
    assert data.shape == (2, height, width) and data.dtype == np.uint16

    import rasteret  # the same window through rasteret, record by record

    collection = rasteret.build(
        "earthsearch/sentinel-2-l2a", stac_api=world.stac_url, name="sf",
        bbox=(-122.5, 37.7, -122.4, 37.8), date_range=("2024-01-01", "2024-06-30"),
    )  # fmt: skip
    for item, pixels in zip(items, data, strict=True):
        ours = collection.read_window(
            bands="B04", bounds=my_bounds, res=RES, crs="EPSG:32610", records=[item.id]
        )
        np.testing.assert_array_equal(ours[0], pixels)


def test_migrating_rasteret_shape(world: World, ns: dict) -> None:
    # the "own COGs" table the example reads: one row per San Francisco scene
    scenes = world.scenes(32610)
    path = Path("path/to/table_with_cogs_metadata.parquet")
    path.parent.mkdir(parents=True)
    table = pa.table(
        {
            "id": [r["id"] for r in scenes],
            "datetime": [r["datetime"] for r in scenes],
            "eo:cloud_cover": [r["eo:cloud_cover"] for r in scenes],
            "assets": [
                {b: {"href": world.href(r["hrefs"][b])} for b in ("B04", "B08")} for r in scenes
            ],
        }
    )
    pq.write_table(table, path)
    run(MIGRATING, "Rasteret shape", RASTERET_SHAPE, ns, LOCAL_STAC)
    from rasteret import Collection

    built = {c["name"]: c["size"] for c in Collection.list_collections()}
    dates = ("2024-01-01", "2024-06-30")
    stac = Collection.create_name("s2-training", dates, "earthsearch/sentinel-2-l2a")
    assert built == {stac: 2, "my-cogs": 2}  # both builds ran and were cached
    filtered, data = ns["filtered"], ns["data"]
    assert filtered.record_ids == scene_ids(world, 32610, lambda r: r["eo:cloud_cover"] < 20)
    assert data.shape[:2] == (1, 2) and data.dtype == np.uint16
    assert assert_stack_pixels(world, filtered, data, ["B04", "B08"]) > 0.9 * data[0, 0].size


# ----------------------------------------------------------------------------- 001 README

README_BUILD = """
import rasteret
collection = rasteret.build(
"earthsearch/sentinel-2-l2a",
name="s2_training",
bbox=(77.5, 12.9, 77.7, 13.1),
date_range=("2024-01-01", "2024-06-30"),
)
"""
README_INSPECT = """
collection # Collection('s2_training', source='sentinel-2-l2a', bands=13, records=42, crs=32643)
collection.bands # ['B01', 'B02', ..., 'B12', 'SCL']
len(collection) # 42
# Filter in memory, no network calls
filtered = collection.subset(cloud_cover_lt=15, date_range=("2024-03-01", "2024-06-01"))
"""
README_XARRAY = """
ds = collection.get_xarray(
geometries=(77.55, 13.01, 77.58, 13.08), # bbox, Arrow array, Shapely, or WKB
bands=["B04", "B08"],
)
ndvi = (ds.B08 - ds.B04) / (ds.B08 + ds.B04)
"""
README_NUMPY = """
arr = collection.get_numpy(
geometries=(77.55, 13.01, 77.58, 13.08),
bands=["B04", "B08"],
)
# shape: [N, C, H, W] for multi-band, [N, H, W] for single-band
"""
README_POINTS = """
from shapely.geometry import Point
samples = collection.sample_points(
points=[Point(77.56, 13.03), Point(77.57, 13.04)],
bands=["B04", "B08"],
geometry_crs=4326,
)
"""


def test_readme_quick_start(world: World, ns: dict) -> None:
    run(README, "Quick start / Build a Collection", README_BUILD, ns, LOCAL_STAC)
    run(README, "Inspect and filter", README_INSPECT, ns)
    collection = ns["collection"]
    assert len(collection) == 6 and collection.bands == ["B02", "B03", "B04", "B08", "SCL"]
    assert all(s in repr(collection) for s in ("'s2_training'", "records=6", "crs=32643"))
    expected = scene_ids(world, 32643, lambda r: r["eo:cloud_cover"] < 15)
    expected = [
        i for i in expected if i in scene_ids(world, 32643, dated("2024-03-01", "2024-06-01"))
    ]
    assert ns["filtered"].record_ids == expected and len(expected) == 2

    run(README, "Analysis (xarray)", README_XARRAY, ns)
    ds, ndvi = ns["ds"], ns["ndvi"]
    assert list(ds["id"].values) == collection.record_ids  # every date, time-ordered
    assert_dataset_pixels(world, collection, ds, ["B04", "B08"])
    # the README's NDVI is computed on the native uint16 bands, as the original returned
    # them: B08 - B04 wraps where red > NIR; the blog's version (astype(float)) does not
    b04, b08 = ds.B04.values, ds.B08.values
    valid = ds.B04_valid.values & ds.B08_valid.values
    with np.errstate(invalid="ignore", divide="ignore"):
        expected_ndvi = (b08 - b04) / (b08 + b04)
    np.testing.assert_allclose(ndvi.values[valid], expected_ndvi[valid])

    run(README, "Fast arrays (NumPy)", README_NUMPY, ns)
    arr = ns["arr"]
    assert arr.shape == (6, 2, *ds.B04.shape[2:])
    assert assert_stack_pixels(world, collection, arr, ["B04", "B08"]) > 0

    run(README, "Point sampling", README_POINTS, ns)
    samples = ns["samples"]
    assert samples.num_rows == 2 * 2 * 6  # one row per (point, band, record)
    points = [(77.56, 13.03), (77.57, 13.04)]
    for row in samples.to_pylist():
        one = collection.select_records([row["record_id"]])
        path = world.path_of(one.hrefs(row["band"])[0])
        assert row["value"] == sample_oracle(path, *points[row["point_index"]]), row

    # "Going further": collection.export("path/") then rasteret.load("path/")
    run(README, "Share a Collection", 'collection.export("path/")', ns)
    reloaded = evaluate(README, "Share a Collection", 'rasteret.load("path/")', ns)
    assert reloaded.record_ids == collection.record_ids


# ----------------------------------------------------------------------------- 002 concepts

CONCEPTS_RASTERIO = """
import rasterio
with rasterio.open("s3://sentinel-cogs/scene.tif") as src:
    data = src.read(window=...)
"""
CONCEPTS_BUILD = """
import rasteret

# First run: parses COG headers, writes to Parquet cache
collection = rasteret.build(
    "earthsearch/sentinel-2-l2a",
    name="training",
    bbox=(77.5, 12.9, 77.7, 13.1),
    date_range=("2024-01-01", "2024-06-30"),
)

# Subsequent runs: loads in milliseconds from Parquet
collection = rasteret.build(...)  # instant cache hit
"""
CONCEPTS_STRUCT = """
{
  "tile_offsets": [1234567, 2345678, ...],      # byte positions in COG
  "tile_byte_counts": [65536, 65536, ...],      # compressed tile sizes
  "tile_width": 512,
  "tile_height": 512,
  "dtype": "uint16",
  "transform": [10.0, 0.0, 300000.0, ...],      # affine georeferencing
  "width": 10980,
  "height": 10980,
  "crs": 32643,
  "nodata": 0
}
"""
CONCEPTS_IO = """
url = asset["href"]
offset = tile_offsets[tile_index]
size = tile_byte_counts[tile_index]
raw_bytes = http_get_range(url, offset, offset + size)
tile = imagecodecs.jpeg_decode(raw_bytes)  # no GDAL
"""


def _http_get_range(url: str, start: int, end: int) -> bytes:
    """The document's undefined ``http_get_range``: one ranged GET (``end`` exclusive)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-{end - 1}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def test_concepts_cache_struct_and_tile_io(world: World, ns: dict) -> None:
    # "rasteret.build(...)": the same arguments again
    again = ("rasteret.build(...)", "rasteret.build(" + LOCAL_STAC[1] + ' name="training", '
             'bbox=(77.5, 12.9, 77.7, 13.1), date_range=("2024-01-01", "2024-06-30"))')  # fmt: skip
    searches = len(world.api.searches)
    run(CONCEPTS, "Rasteret's Solution", CONCEPTS_BUILD, ns, LOCAL_STAC, again)
    assert len(world.api.searches) == searches + 1  # the second build did not search
    # a later run is a cache hit too: no STAC query and no header read (counted by the
    # servers, not timed)
    requests = world.server.requests
    line = "collection = rasteret.build(...)  # instant cache hit"
    run(CONCEPTS, "Rasteret's Solution", line, ns, again)
    assert (len(world.api.searches), world.server.requests) == (searches + 1, requests)
    collection = ns["collection"]
    assert len(collection) == 6
    first = collection.select_records([collection.record_ids[0]])

    # "What gets cached": the document's struct, against ours (the original stored the
    # size as image_width / image_height and the CRS beside the struct; we keep epsg too)
    run(CONCEPTS, "What Gets Cached", CONCEPTS_STRUCT, {})
    example = eval(compile(CONCEPTS_STRUCT.strip(), CONCEPTS, "eval"))
    ours = first.table["B04_metadata"][0].as_py()
    renamed = {"width": "image_width", "height": "image_height", "crs": "epsg"}
    assert {renamed.get(k, k) for k in example} <= set(ours)
    assert (ours["tile_width"], ours["dtype"], ours["epsg"], ours["nodata"]) == (
        256, "uint16", 32643, 0.0,
    )  # fmt: skip
    assert ours["image_width"] == 600 and len(ours["tile_offsets"]) == 9

    # "Rasteret's custom I/O (simplified)": our COGs are deflate + predictor 2, not JPEG
    import imagecodecs

    ns.update(
        asset=first.table["assets"][0].as_py()["B04"],
        tile_offsets=ours["tile_offsets"],
        tile_byte_counts=ours["tile_byte_counts"],
        tile_index=4,  # row 1, column 1
        http_get_range=_http_get_range,
        imagecodecs=imagecodecs,
    )
    run(CONCEPTS, "Under the Hood", CONCEPTS_IO, ns,
        ("imagecodecs.jpeg_decode", "imagecodecs.zlib_decode"))  # fmt: skip
    tile = np.cumsum(np.frombuffer(ns["tile"], "<u2").reshape(256, 256), axis=1, dtype=np.uint16)
    path = world.path_of(ns["url"])
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(tile, src.read(1, window=Window(256, 256, 256, 256)))

    # "The Cold Start Problem": rasterio reading the same object over HTTP (from a
    # server in another process: GDAL holds the GIL while it reads)
    ns["Window"] = Window
    with gdal_served(world) as (url, _):
        run(CONCEPTS, "The Cold Start Problem", CONCEPTS_RASTERIO, ns,
            ("s3://sentinel-cogs/scene.tif", ns["url"].replace(world.server.url, url)),
            ("window=...", "window=Window(256, 256, 256, 256)"))  # fmt: skip
    np.testing.assert_array_equal(ns["data"][0], tile)


# ----------------------------------------------------------------------------- 004 management

MANAGE_BUILD = """
import rasteret

collection = rasteret.build(
    "earthsearch/sentinel-2-l2a",
    name="bangalore",
    bbox=(77.55, 13.01, 77.58, 13.08),
    date_range=("2024-01-01", "2024-06-30"),
)
"""
MANAGE_INSPECT = """
summary = collection.describe()
summary["bands"]
summary.data
"""
MANAGE_CHECKS = """
collection.bands
collection.bounds
collection.epsg
len(collection)
"""
MANAGE_LIST = """
from pathlib import Path

from rasteret import Collection

for item in Collection.list_collections(Path.home() / "rasteret_workspace"):
    print(item["name"], item["kind"], item["size"])
"""
MANAGE_SUBSET = """
train = collection.subset(
    cloud_cover_lt=15,
    date_range=("2024-03-01", "2024-04-30"),
    bbox=(77.55, 13.03, 77.57, 13.06),
    split="train",
)
"""
MANAGE_WHERE = """
import pyarrow.dataset as ds

clear = collection.where(ds.field("eo:cloud_cover") < 5.0)
"""
MANAGE_READ = """
arr = clear.get_numpy(
    geometries=(77.55, 13.03, 77.57, 13.06),
    bands=["B04", "B08"],
)
"""


def test_collection_management(world: World, ns: dict, capsys: pytest.CaptureFixture) -> None:
    run(MANAGEMENT, "Python Entry Points", MANAGE_BUILD, ns, LOCAL_STAC)
    run(MANAGEMENT, "Inspect A Collection", "collection.describe()", ns)
    run(MANAGEMENT, "Inspect A Collection", MANAGE_INSPECT, ns)
    run(MANAGEMENT, "Inspect A Collection", MANAGE_CHECKS, ns)
    collection, summary = ns["collection"], ns["summary"]
    assert summary["bands"] == collection.bands == ["B02", "B03", "B04", "B08", "SCL"]
    assert summary.data["records"] == len(collection) == 6 and collection.epsg == [32643]
    west, south, east, north = collection.bounds
    assert west < 77.55 and east > 77.58 and south < 13.01 and north > 13.08
    compared = evaluate(MANAGEMENT, "Inspect A Collection", "collection.compare_to_catalog()", ns)
    assert compared["catalog"]["id"] == "earthsearch/sentinel-2-l2a"
    assert "B01" in compared["bands_not_indexed"]

    run(MANAGEMENT, "Export And Reload", 'collection.export("./bangalore_collection")', ns)
    run(MANAGEMENT, "Export And Reload", 'reloaded = rasteret.load("./bangalore_collection")', ns)
    assert ns["reloaded"].record_ids == collection.record_ids
    capsys.readouterr()
    run(MANAGEMENT, "List Cached Collections", MANAGE_LIST, ns)
    listed = capsys.readouterr().out.split()
    assert listed[1:] == ["stac", "6"] and listed[0].startswith("bangalore_")

    # the subset example filters on a split column, which the document's collection
    # has ("labels/splits you added"): add one
    import rasteret

    splits = pa.array(["train", "val"] * 3)
    collection = rasteret.as_collection(collection.table.append_column("split", splits))
    ns["collection"] = collection
    run(MANAGEMENT, "Filter Metadata Before Reading", MANAGE_SUBSET, ns)
    march = scene_ids(world, 32643, dated("2024-03-01", "2024-04-30"))
    expected = [i for k, i in enumerate(collection.record_ids) if k % 2 == 0 and i in march]
    expected = [
        i for i in expected if i in scene_ids(world, 32643, lambda r: r["eo:cloud_cover"] < 15)
    ]
    assert ns["train"].record_ids == expected and expected

    run(MANAGEMENT, "Filter Metadata Before Reading", MANAGE_WHERE, ns)
    run(MANAGEMENT, "Filter Metadata Before Reading", MANAGE_READ, ns)
    clear, arr = ns["clear"], ns["arr"]
    assert clear.record_ids == scene_ids(world, 32643, lambda r: r["eo:cloud_cover"] < 5.0)
    assert arr.shape[:2] == (2, 2)
    assert assert_stack_pixels(world, clear, arr, ["B04", "B08"]) > 0.9 * arr[0, 0].size
