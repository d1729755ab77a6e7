"""The original system's TorchGeo and blog examples (001 "ML training", 003 blog posts).

As tests/test_original_examples.py: each example is the document's code (checked against
the document, whitespace aside), run with only the listed local-data changes, its
outcomes checked against GDAL (rasterio) reads of the same files; TorchGeo samples
against the dataset's mosaic rule applied to those reads.

Not run: the 2024-11 post "Efficient Cloud-Native Raster Data Access": its rasteret code
uses the pre-0.3 ``Rasteret(...)`` processor class, which the original system itself
removed in 0.3, and its rasterio snippet is not valid Python (undefined helpers,
``rasterio.mask(...)`` called as a function).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from pyproj import Transformer

from _originaldata import (
    BLOG,
    EXAMPLE_MARKS,
    LOCAL_STAC,
    README,
    RES,
    World,
    assert_stack_pixels,
    dated,
    example_namespace,
    mosaic_oracle,
    original_world,
    run,
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
README_TORCHGEO = """
from torch.utils.data import DataLoader
from torchgeo.samplers import RandomGeoSampler
from torchgeo.datasets.utils import stack_samples
dataset = collection.to_torchgeo_dataset(
bands=["B04", "B03", "B02", "B08"],
chip_size=256,
)
sampler = RandomGeoSampler(dataset, size=256, length=100)
loader = DataLoader(dataset, sampler=sampler, batch_size=4, collate_fn=stack_samples)
"""


def test_readme_torchgeo(world: World, ns: dict) -> None:
    pytest.importorskip("torchgeo", reason="the torchgeo extra is not installed")
    run(README, "Quick start / Build a Collection", README_BUILD, ns, LOCAL_STAC)
    run(README, "ML training (TorchGeo)", README_TORCHGEO, ns)
    collection, dataset = ns["collection"], ns["dataset"]
    assert dataset.res == (RES, RES) and len(dataset.index) == 6
    batch = next(iter(ns["loader"]))
    images = batch["image"].numpy()
    assert images.shape == (4, 4, 256, 256)
    for i, image in enumerate(images):
        expected = mosaic_oracle(world, collection, ["B04", "B03", "B02", "B08"], batch, i)
        np.testing.assert_array_equal(image, expected)


# ----------------------------------------------------------------------------- 003 blog

BLOG_BUILD = """
import rasteret

collection = rasteret.build(
 "earthsearch/sentinel-2-l2a",
 name="s2_bangalore",
 bbox=(77.5, 12.9, 77.7, 13.1),
 date_range=("2024-01-01", "2024-06-30"),
)
"""
BLOG_SUBSET = 'sub = collection.subset(cloud_cover_lt=15, date_range=("2024-03-01", "2024-06-01"))'
BLOG_SURFACES = """
# NumPy arrays, lightweight, no extra deps
arr = collection.get_numpy(
 geometries=(77.55, 13.01, 77.58, 13.08),
 bands=["B04", "B08"],
)
# shape: [N, C, H, W]

# xarray Dataset, for analysis
ds = collection.get_xarray(geometries=bbox, bands=["B04", "B08"])
ndvi = (ds.B08.astype(float) - ds.B04.astype(float)) / (ds.B08 + ds.B04)

# TorchGeo GeoDataset, for ML training
dataset = collection.to_torchgeo_dataset(bands=["B04", "B08"], chip_size=256)
"""


def test_blog_rasteret_03(world: World, ns: dict) -> None:
    pytest.importorskip("torchgeo", reason="the torchgeo extra is not installed")
    run(BLOG, "Introducing Rasteret 0.3", BLOG_BUILD, ns, LOCAL_STAC)
    run(BLOG, "What changes in practice", BLOG_SUBSET, ns)
    collection = ns["collection"]
    cloud = scene_ids(world, 32643, lambda r: r["eo:cloud_cover"] < 15)
    assert ns["sub"].record_ids == [i for i in cloud if i in scene_ids(world, 32643, dated(
        "2024-03-01", "2024-06-01"))]  # fmt: skip
    ns["bbox"] = (77.55, 13.01, 77.58, 13.08)  # the blog's undefined `bbox`: its AOI above
    run(BLOG, "What changes in practice", BLOG_SURFACES, ns)
    arr, ds, ndvi = ns["arr"], ns["ds"], ns["ndvi"]
    assert arr.shape == (6, 2, *ds.B04.shape[2:])
    assert_stack_pixels(world, collection, arr, ["B04", "B08"])
    b04, b08 = arr.data[:, 0].astype(float), arr.data[:, 1].astype(float)
    valid = arr.mask.all(axis=1)  # (both bands valid: no 0 / 0)
    with np.errstate(invalid="ignore"):  # 0 / 0 outside the valid pixels
        expected = (b08 - b04) / (b08 + b04)
    np.testing.assert_allclose(ndvi.values[:, 0][valid], expected[valid])
    dataset = ns["dataset"]
    assert dataset.crs.to_epsg() == 32643 and dataset.res == (RES, RES)


SHIPS_JOIN = '''
import duckdb
import pyarrow.compute as pc
import rasteret

# load a collection already built before
scenes = rasteret.load("./s2_bangalore/")

# your ship detections parquet
detections = pq.read_table("./ship_detections.geoparquet")

con = duckdb.connect()
con.register("scenes", scenes.dataset.to_table())
con.register("det", detections)

# Join detections to scenes, geometry is now the patch polygon, not the scene footprint
patches = con.sql("""
 SELECT det.patch_id AS id, scenes.datetime, det.geometry,
 scenes.assets, det.label, det.score, det.split
 FROM det JOIN scenes ON det.scene_id = scenes.id
 WHERE det.score > 0.8
""").fetch_arrow_table()

patch_collection = rasteret.build_from_table(
 patches, name="ship_patches", enrich_cog=True
)
'''
SHIPS_FILTER = """
# Arrow-native filtering: high-confidence train patches
train = patch_collection.subset(split="train")
table = train.dataset.to_table(columns=["geometry", "label", "score"])
mask = pc.greater(table.column("score"), 0.9)
hard_patches = pc.filter(table.column("geometry"), mask)

# Arrow WKB geometries go directly to get_numpy -- no Shapely, no Python loop
arr = train.get_numpy(geometries=hard_patches, bands=["B04", "B08"])
# arr.shape: [N, C, H, W]
"""
SHIPS_TORCHGEO = """
dataset = patch_collection.to_torchgeo_dataset(
 bands=["B04", "B08"],
 chip_size=256,
 split="train",
 label_field="label", # each sample["label"] comes from the Parquet column
)
sampler = RandomGeoSampler(dataset, size=256, length=1000)
loader = DataLoader(dataset, sampler=sampler, batch_size=8, collate_fn=stack_samples)

for batch in loader:
 images = batch["image"] # [B, C, H, W]
 labels = batch["label"] # [B]
 ...
"""


def pixel_squares(scene: dict, corners: Sequence[tuple[int, int]], size: int) -> list[bytes]:
    """Lon/lat WKB squares of ``size`` pixels of ``scene``'s grid with their corners on
    pixel centres at pixel ``(col, row)`` offsets (so every square is read as one window
    shape, whatever the rounding of its reprojection)."""
    a, _, c, _, e, f = scene["transform"]
    to_lonlat = Transformer.from_crs(scene["epsg"], 4326, always_xy=True)
    out = []
    for col, row in corners:
        x0, y0 = c + (col + 0.5) * a, f + (row + 0.5) * e
        ring = [(x0, y0), (x0 + size * a, y0), (x0 + size * a, y0 + size * e), (x0, y0 + size * e)]
        out.append(shapely.to_wkb(shapely.Polygon([to_lonlat.transform(*p) for p in ring])))
    return out


def test_blog_ship_patches(world: World, ns: dict) -> None:
    torch = pytest.importorskip("torch", reason="the torchgeo extra is not installed")
    from torch.utils.data import DataLoader
    from torchgeo.datasets.utils import stack_samples
    from torchgeo.samplers import RandomGeoSampler

    run(BLOG, "Introducing Rasteret 0.3", BLOG_BUILD, ns, LOCAL_STAC)
    ns["collection"].export("./s2_bangalore/")  # "a collection already built before"
    scenes = world.scenes(32643)[:3]
    corners = [(40, 60), (300, 100), (120, 400), (450, 450)]
    rows = [
        {"patch_id": f"{s['id']}_p{k}", "scene_id": s["id"], "geometry": wkb,
         "label": k % 2, "score": (0.95, 0.85, 0.7, 0.92)[k], "split": "train" if k < 3 else "val"}
        for s in scenes
        for k, wkb in enumerate(pixel_squares(s, corners, 40))
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), "./ship_detections.geoparquet")
    ns["pq"] = pq  # the blog's code uses pq without importing it
    run(BLOG, "Tag patches, not files", SHIPS_JOIN, ns)
    patches = ns["patch_collection"]
    kept = [r for r in rows if r["score"] > 0.8]
    assert sorted(patches.record_ids) == sorted(r["patch_id"] for r in kept)
    assert patches.bands == ns["scenes"].bands  # the headers were indexed again
    footprints = shapely.from_wkb(patches.table["geometry"].to_pylist())
    got = dict(zip(patches.record_ids, footprints, strict=True))
    for r in kept:  # geometry is the patch polygon, not the scene footprint
        assert got[r["patch_id"]].equals_exact(shapely.from_wkb(r["geometry"]), 1e-9)

    run(BLOG, "Tag patches, not files", SHIPS_FILTER, ns)
    train, arr = ns["train"], ns["arr"]
    hard = [r for r in kept if r["split"] == "train" and r["score"] > 0.9]
    assert len(ns["hard_patches"]) == len(hard) == 3
    assert arr.shape[1:] == (2, 41, 41)  # 40 px squares from pixel centres: 41 px windows
    assert set(arr.records["geometry_id"].to_pylist()) == {0, 1, 2}
    assert assert_stack_pixels(world, train, arr, ["B04", "B08"]) > 0

    ns.update(RandomGeoSampler=RandomGeoSampler, DataLoader=DataLoader, stack_samples=stack_samples)
    torch.manual_seed(0)
    run(BLOG, "TorchGeo interop", SHIPS_TORCHGEO, ns,
        ("length=1000", "length=16"))  # two batches, not 125: the test stays fast  # fmt: skip
    images, labels = ns["images"], ns["labels"]
    assert images.shape == (8, 2, 256, 256) and labels.shape == (8, 1)
    assert set(labels.flatten().tolist()) <= {0, 1}  # from the label column
    expected = mosaic_oracle(world, train, ["B04", "B08"], ns["batch"], 0)
    np.testing.assert_array_equal(images[0].numpy(), expected)


MAJOR_TOM = """
import rasteret

# Build a cache from sentinel 2 scenes
collection = rasteret.build("earthsearch/sentinel-2-l2a",
 name="major-tom-on-the-fly",
 bbox=(-122.55, 37.65, -122.30, 37.90),
 date_range=("2024-01-01", "2024-02-01"))

# Add Major TOM-style columns, grid cells, product IDs, and deterministic splits as Parquet columns
enriched = enrich_major_tom_columns(collection, grid_km=10)

# bring back your pyarrow table/pyarrow dataset into a rasteret collection
# it simply validates that table still has columsn that rasteret internals care about
collection = rasteret.build_from_table(enriched, name="major-tom-on-the-fly")

# Fetch patches as NumPy from Arrow geometry, no payload Parquet needed
subset = collection.subset(split="train")
arr = subset.get_numpy(geometries=geometry_array, bands=["B02", "B08"])
"""


def test_blog_major_tom(world: World, ns: dict) -> None:
    scene = world.scenes(32610)[0]
    cells = {(i, j): pixel_squares(scene, [(i * 200, j * 200)], 199)[0] for i in range(3)
             for j in range(3)}  # fmt: skip

    def enrich_major_tom_columns(collection: Any, grid_km: int) -> pa.Table:
        """The blog's helper (not published with it): one row per (scene, grid cell) with
        the cell as geometry, Major TOM-style cell / product ids and a split per cell."""
        assert grid_km == 10  # 200 px of 50 m
        rows = collection.table.drop_columns(["bbox"]).to_pylist()  # the scene's bbox
        out = [
            {**row, "id": f"{i}D_{j}R_{row['id']}", "geometry": wkb, "major_tom_cell": f"{i}D_{j}R",
             "product_id": row["id"], "split": "val" if (i + j) % 3 == 0 else "train"}
            for row in rows
            for (i, j), wkb in cells.items()
        ]  # fmt: skip
        return pa.Table.from_pylist(out, schema=None)

    ns["enrich_major_tom_columns"] = enrich_major_tom_columns
    train_cells = [wkb for (i, j), wkb in cells.items() if (i + j) % 3 != 0]
    ns["geometry_array"] = pa.array(train_cells[:2], pa.binary())  # WKB, lon/lat
    run(BLOG, "Major-TOM without the image-in-Parquet", MAJOR_TOM, ns, LOCAL_STAC)
    collection, subset, arr = ns["collection"], ns["subset"], ns["arr"]
    assert len(collection) == 2 * 9 and len(subset) == 2 * 6
    assert arr.data.shape[1:] == (2, 200, 200) and arr.data.dtype == np.uint16
    assert set(arr.records["geometry_id"].to_pylist()) == {0, 1}
    assert assert_stack_pixels(world, subset, arr, ["B02", "B08"]) > 0
