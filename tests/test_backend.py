"""The ``rasteret`` xarray engine, against rasterio reads of the same files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dask
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin
from rasterio.windows import from_bounds

from _testcollections import make_collection, rasterio_read, record, smooth_image, write_cog
from rasteret import load
from rasteret.backend import RasteretBackendEntrypoint, preferred_chunks
from rasteret.store import open_store

T0 = dt.datetime(2024, 6, 1, 10, 30)


@pytest.fixture(scope="module")
def collection_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three records on one grid (scale/offset set) exported to GeoParquet."""
    root = tmp_path_factory.mktemp("backend")
    records = []
    for k in range(3):
        path = root / f"scene{k}.tif"
        data = smooth_image((1, 1100, 1300), seed=k)
        write_cog(path, data, nodata=0, overviews=1, scales=[0.5], offsets=[-10.0])
        records.append(record(f"s{k}", T0 + dt.timedelta(days=k), {"B1": path}))
    make_collection(records, ["B1"]).export(root / "collection.parquet")
    return root / "collection.parquet"


def test_engine_is_registered_and_guesses(collection_path: Path, tmp_path: Path) -> None:
    engine = xr.backends.list_engines()["rasteret"]
    assert isinstance(engine, RasteretBackendEntrypoint)
    assert engine.description and engine.url
    assert engine.guess_can_open(collection_path)
    assert engine.guess_can_open(str(collection_path))
    assert engine.guess_can_open(load(collection_path))
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), plain)
    assert not engine.guess_can_open(plain)
    assert not engine.guess_can_open(tmp_path / "missing.parquet")
    assert not engine.guess_can_open("scene.nc")
    detected = xr.open_dataset(collection_path)  # no engine=: xarray asks guess_can_open
    assert detected.B1.shape == (3, 1100, 1300)


def test_defaults_native_dtype_lazy_and_cf_attrs(collection_path: Path) -> None:
    ds = xr.open_dataset(collection_path, engine="rasteret")
    assert ds.B1.dtype == np.uint16 and ds.B1.chunks is None  # lazy, not yet dask
    # raw values: nodata as rioxarray/odc-stac read it, scale/offset as coordinates, no
    # CF packing anywhere (it would re-scale or mask derived results written out)
    assert ds.B1.attrs["nodata"] == 0 and "_FillValue" not in ds.B1.encoding
    assert not {"_FillValue", "scale_factor", "add_offset"} & set(ds.B1.attrs)
    assert (ds.B1_scale_factor.values == 0.5).all() and (ds.B1_add_offset.values == -10).all()
    assert ds.B1_scale_factor.dims == ("time",) and "B1_scale_factor" in ds.coords
    assert list(ds["id"].values) == ["s0", "s1", "s2"]
    raw = rasterio_read(collection_path.parent / "scene2.tif")[0]
    np.testing.assert_array_equal(ds.B1.isel(time=2).values, raw)
    scaled = xr.open_dataset(collection_path, engine="rasteret", mask_and_scale=True)
    values = scaled.B1.isel(time=2).values
    assert values.dtype.kind == "f"
    np.testing.assert_allclose(values[raw != 0], raw[raw != 0] * 0.5 - 10.0)
    assert np.isnan(values[raw == 0]).all()
    # packing in encoding (as xarray's own backends put it), so writes re-pack exactly
    assert scaled.B1.encoding["scale_factor"] == 0.5 and scaled.B1.encoding["_FillValue"] == 0
    assert "B1_scale_factor" not in scaled.coords


def test_dask_chunks_are_tile_multiples(collection_path: Path) -> None:
    ds = xr.open_dataset(collection_path, engine="rasteret", chunks={})
    time_chunks, y_chunks, x_chunks = ds.B1.chunks
    assert sum(time_chunks) == 3 and y_chunks == (1100,) and x_chunks == (1300,)
    with dask.config.set({"array.chunk-size": "1MiB"}):  # smaller than a scene
        auto = xr.open_dataset(
            collection_path, engine="rasteret", chunks="auto", chunk_bytes=512 * 512 * 2
        )
    _, y_auto, x_auto = auto.B1.chunks
    assert len(y_auto) * len(x_auto) > 1
    assert all(c % 512 == 0 for c in y_auto[:-1] + x_auto[:-1])
    np.testing.assert_array_equal(ds.B1.values, auto.B1.values)


def test_preferred_chunks_group_whole_tiles(collection_path: Path) -> None:
    store = open_store(load(collection_path))
    array = store.layout.groups[store.groups[0]].arrays["B1"]
    pair = preferred_chunks(array, target_bytes=2 * 512 * 512 * 2)  # two tiles per chunk
    assert pair["time"] == 1 and pair["y"] % 512 == 0 and pair["x"] % 512 == 0
    assert (pair["y"] // 512) * (pair["x"] // 512) == 2
    one = preferred_chunks(array, target_bytes=1)  # never less than one tile
    assert (one["y"], one["x"]) == (512, 512)


def test_rio_accessor_and_clip_box(collection_path: Path) -> None:
    ds = xr.open_dataset(collection_path, engine="rasteret")
    scene = collection_path.parent / "scene1.tif"
    with rasterio.open(scene) as src:
        assert ds.rio.crs == src.crs
        assert ds.rio.transform() == src.transform
        assert ds.B1.rio.nodata == src.nodata
        bounds = (
            src.bounds.left + 1000,
            src.bounds.bottom + 2000,
            src.bounds.left + 6000,
            src.bounds.top - 3000,
        )
        expected = src.read(1, window=from_bounds(*bounds, transform=src.transform))
    clipped = ds.B1.isel(time=1).rio.clip_box(*bounds)
    np.testing.assert_array_equal(clipped.values, expected)


def test_groups_datatree_and_errors(collection_path: Path) -> None:
    groups = xr.open_groups(collection_path, engine="rasteret")
    assert set(groups) == {"/", "/epsg32633_10m", "/epsg32633_10m_overview_0"}
    tree = xr.open_datatree(collection_path, engine="rasteret")
    overview = tree["epsg32633_10m_overview_0"].to_dataset()
    expected = rasterio_read(collection_path.parent / "scene0.tif", overview_level=0)[0]
    np.testing.assert_array_equal(overview.B1.isel(time=0).values, expected)
    with pytest.raises(ValueError, match="groups: epsg32633_10m, epsg32633_10m_overview_0"):
        xr.open_dataset(collection_path, engine="rasteret", group="nope")
    with pytest.raises(ValueError, match=r"no overview level 3 \(levels: \[0\]"):
        xr.open_dataset(collection_path, engine="rasteret", overview_level=3)
    with pytest.raises(KeyError, match="B7"):
        xr.open_dataset(collection_path, engine="rasteret", bands=["B7"])


def test_two_grids_need_a_group(tmp_path: Path) -> None:
    records = []
    for zone in (32, 33):
        path = write_cog(
            tmp_path / f"z{zone}.tif",
            smooth_image((1, 300, 300), seed=zone),
            crs=f"EPSG:326{zone}",
            transform=from_origin(500000, 5000000, 30, 30),
            nodata=0,
        )
        records.append(record(f"z{zone}", T0, {"B1": path}))
    collection = make_collection(records, ["B1"])
    with pytest.raises(
        ValueError, match="2 grids; choose one with group=: epsg32632_30m, epsg32633_30m"
    ):
        xr.open_dataset(collection, engine="rasteret")
    tree = xr.open_datatree(collection, engine="rasteret")
    assert {node.name for node in tree.children.values()} == {"epsg32632_30m", "epsg32633_30m"}
    ds = xr.open_dataset(
        collection, engine="rasteret", group="epsg32632_30m", drop_variables=["id"]
    )
    assert "id" not in ds.variables
    np.testing.assert_array_equal(ds.B1.values[0], rasterio_read(tmp_path / "z32.tif")[0])
