"""No silent wrong data (issue 13): a band whose records differ stays one variable with
every record's true pixels; CF packing never corrupts a written result; STAC
``raster:bands`` and ``proj:*`` are applied. Pixels are compared with rasterio."""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr
from affine import Affine

import rasteret
from _testcollections import rasterio_read, smooth_image, write_cog
from rasteret.ingest.stac import build_from_stac
from stac_server import corpus_items

TRANSFORM = Affine(10.0, 0.0, 399960.0, 0.0, -10.0, 6800040.0)
SHAPE = (600, 700)  # rows, cols


def _item(relpath: str, index: int, asset_key: str, href: Path) -> dict:
    """A real corpus item moved onto the test grid, its red asset pointing at ``href``."""
    item = copy.deepcopy(corpus_items(relpath)[index])
    asset = copy.deepcopy(item["assets"][asset_key])
    asset.update(
        {
            "href": str(href),
            "proj:shape": list(SHAPE),
            "proj:transform": list(TRANSFORM)[:6],
        }
    )
    item["assets"] = {"red": asset}
    item["properties"]["proj:epsg"] = 32606
    item["properties"].pop("proj:code", None)
    return item


@pytest.fixture(scope="module")
def baseline_change(tmp_path_factory) -> dict:
    """Sentinel-2 L2A across the processing-baseline change: a 2019 record (baseline 02.12,
    no offset; Planetary Computer item) and a 2023 record (baseline 05.09, scale 0.0001,
    offset -0.1 in ``raster:bands``; Earth Search item), written with different codecs
    and tile sizes on one grid."""
    root = tmp_path_factory.mktemp("baseline")
    old = smooth_image((1, *SHAPE), seed=1)
    new = smooth_image((1, *SHAPE), seed=2)
    old[0, :40, :50] = 0  # nodata 0 in both
    new[0, -30:, -60:] = 0
    old_path = write_cog(
        root / "old.tif",
        old,
        crs="EPSG:32606",
        transform=TRANSFORM,
        nodata=0,
        blocksize=256,
        compress="DEFLATE",
    )
    new_path = write_cog(
        root / "new.tif",
        new,
        crs="EPSG:32606",
        transform=TRANSFORM,
        nodata=0,
        blocksize=512,
        compress="LZW",
    )
    items = [
        _item("planetary-computer/sentinel-2-l2a.raster-ext.odc-stac.ndjson", 0, "B04", old_path),
        _item("earth-search-v1/sentinel-2-l2a.ndjson", 6, "red", new_path),
    ]
    assert items[1]["properties"]["datetime"].startswith("2023")
    path = root / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    collection = build_from_stac(
        name="baseline",
        stac_api=str(path),
        static_catalog=True,
        band_map={"B04": "red"},
        workspace_dir=root,
    )
    return {"collection": collection, "paths": [old_path, new_path], "items": items}


def test_split_band_is_one_variable_with_every_records_pixels(baseline_change) -> None:
    collection = baseline_change["collection"]
    ds = xr.open_dataset(collection, engine="rasteret")
    assert list(ds.data_vars) == ["B04"]  # not B04 + B04__2 each zero-filled
    assert ds.B04.dtype == np.uint16 and ds.B04.attrs["records"] == 2
    for t, path in enumerate(baseline_change["paths"]):
        np.testing.assert_array_equal(ds.B04.isel(time=t).values, rasterio_read(path)[0])
    # per-record radiometry from STAC raster:bands, as coordinates along time
    np.testing.assert_array_equal(ds.B04_scale_factor.values, [1.0, 0.0001])
    np.testing.assert_array_equal(ds.B04_add_offset.values, [0.0, -0.1])
    assert ds.B04.attrs["nodata"] == 0


def test_split_band_mask_and_scale_applies_each_records_values(baseline_change) -> None:
    collection = baseline_change["collection"]
    ds = xr.open_dataset(collection, engine="rasteret", mask_and_scale=True)
    raw = [rasterio_read(p)[0].astype("float64") for p in baseline_change["paths"]]
    expected = np.stack(
        [np.where(raw[0] == 0, np.nan, raw[0]), np.where(raw[1] == 0, np.nan, raw[1] * 1e-4 - 0.1)]
    )
    values = ds.B04.values
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6)
    # the time mean the user computes: both records count, none as zeros
    mean = ds.B04.mean("time").values
    np.testing.assert_allclose(mean, np.nanmean(expected, axis=0), rtol=1e-5, atol=1e-5)
    # a windowed and strided read goes through the same per-record decoding
    part = ds.B04.isel(y=slice(10, 300, 3), x=slice(500, 20, -7)).values
    np.testing.assert_allclose(part, expected[:, 10:300:3, 500:20:-7], rtol=1e-6, atol=1e-6)


def test_split_band_on_a_target_grid(baseline_change) -> None:
    collection = baseline_change["collection"]
    ds = xr.open_dataset(collection, engine="rasteret", resolution=10)
    assert list(ds.data_vars) == ["B04"]
    for t, path in enumerate(baseline_change["paths"]):
        np.testing.assert_array_equal(ds.B04.isel(time=t).values, rasterio_read(path)[0])
    np.testing.assert_array_equal(ds.B04_add_offset.values, [0.0, -0.1])


@pytest.mark.parametrize("form", ["raster:bands", "stac-1.1-bands"])
def test_stac_raster_bands_fill_what_the_tiff_lacks(tmp_path, form) -> None:
    data = smooth_image((1, 64, 80), seed=3)
    data[0, :5, :5] = 0
    path = write_cog(tmp_path / "plain.tif", data, blocksize=256)  # no nodata / scale
    item = corpus_items("earth-search-v1/sentinel-2-l2a.ndjson")[0]
    item = copy.deepcopy(item)
    red = item["assets"]["red"]
    if form == "stac-1.1-bands":  # STAC 1.1: "bands", raster fields prefixed
        entry = red.pop("raster:bands")[0]
        red["bands"] = [
            {"name": "red", "nodata": entry["nodata"], "data_type": entry["data_type"],
             "raster:scale": entry["scale"], "raster:offset": entry["offset"]}
        ]  # fmt: skip
        red.pop("eo:bands", None)
    red.update({"href": str(path), "proj:shape": [64, 80]})
    red["proj:transform"] = [10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0]
    item["assets"] = {"red": red}
    item["properties"]["proj:epsg"] = 32633
    (tmp_path / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": [item]})
    )
    collection = build_from_stac(
        name="rb",
        stac_api=str(tmp_path / "items.json"),
        static_catalog=True,
        workspace_dir=tmp_path,
    )
    ds = xr.open_dataset(collection, engine="rasteret", mask_and_scale=True)
    expected = np.where(data[0] == 0, np.nan, data[0] * 1e-4 - 0.1)
    np.testing.assert_allclose(ds.red.isel(time=0).values, expected, rtol=1e-6, atol=1e-6)
    assert ds.red.encoding["scale_factor"] == 0.0001 and ds.red.encoding["add_offset"] == -0.1


def test_stac_geoparquet_raster_bands_are_extracted(baseline_change, tmp_path) -> None:
    rustac = pytest.importorskip("rustac", reason="rustac writes the stac-geoparquet file")
    path = tmp_path / "items.parquet"
    rustac.write_sync(str(path), baseline_change["items"])
    collection = rasteret.build_from_table(
        path, name="geoparquet", band_codes=["red"], workspace_dir=tmp_path
    )
    ds = xr.open_dataset(collection, engine="rasteret")
    np.testing.assert_array_equal(ds.red_scale_factor.values, [1.0, 0.0001])
    np.testing.assert_array_equal(ds.red_add_offset.values, [0.0, -0.1])


def test_proj_metadata_georeferences_a_bare_tiff(tmp_path) -> None:
    data = smooth_image((1, 64, 80), seed=4)
    path = tmp_path / "bare.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=80, height=64, count=1, dtype="uint16",
        tiled=True, blockxsize=32, blockysize=32,
    ) as dst:  # fmt: skip
        dst.write(data)
    transform = [20.0, 0.0, 500000.0, 0.0, -20.0, 4000000.0]
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": "bare",
        "geometry": {"type": "Point", "coordinates": [9.0, 36.1]},
        "bbox": [9.0, 36.1, 9.0, 36.1],
        "properties": {"datetime": "2024-05-01T00:00:00Z", "proj:code": "EPSG:32632"},
        "assets": {
            "b": {"href": str(path), "type": "image/tiff", "proj:transform": transform,
                  "proj:shape": [64, 80]}
        },
        "links": [],
    }  # fmt: skip
    (tmp_path / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": [item]})
    )
    collection = build_from_stac(
        name="bare",
        stac_api=str(tmp_path / "items.json"),
        static_catalog=True,
        workspace_dir=tmp_path,
    )
    ds = xr.open_dataset(collection, engine="rasteret")
    assert ds.rio.crs.to_epsg() == 32632
    assert tuple(ds.rio.transform())[:6] == tuple(transform)
    np.testing.assert_array_equal(ds.b.isel(time=0).values, data[0])


def test_proj_metadata_that_disagrees_with_the_tiff_is_an_error(tmp_path) -> None:
    data = smooth_image((1, 64, 80), seed=5)
    path = write_cog(tmp_path / "geo.tif", data, blocksize=256)  # origin 300000, 5000000
    good = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "good",
        "geometry": None,
        "properties": {"datetime": "2024-05-02T00:00:00Z", "proj:epsg": 32633},
        "assets": {"b": {"href": str(path), "type": "image/tiff"}},
        "links": [],
    }
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "shifted",
        "geometry": None,
        "properties": {"datetime": "2024-05-01T00:00:00Z", "proj:epsg": 32633},
        "assets": {
            "b": {"href": str(path), "type": "image/tiff",
                  "proj:transform": [10.0, 0.0, 300100.0, 0.0, -10.0, 5000000.0],
                  "proj:shape": [64, 80]}
        },
        "links": [],
    }  # fmt: skip
    features = [item, good]
    (tmp_path / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    collection = build_from_stac(
        name="shift", stac_api=str(tmp_path / "items.json"), static_catalog=True,
        workspace_dir=tmp_path,
    )  # fmt: skip
    errors = dict(zip(collection.record_ids, collection.table["b_error"].to_pylist(), strict=True))
    assert errors["good"] is None
    assert "geo.tif" in errors["shifted"] and "proj:transform" in errors["shifted"]
    assert "300100.0" in errors["shifted"] and "300000.0" in errors["shifted"]


# ----------------------------------------------------------------------------- writes


@pytest.fixture(scope="module")
def scaled(tmp_path_factory) -> rasteret.Collection:
    """Two bands with nodata 0, scale 0.0001 and offset -0.1 in the TIFFs, two records."""
    from _testcollections import make_collection, record

    root = tmp_path_factory.mktemp("scaled")
    records = []
    for k in range(2):
        assets = {}
        for b, band in enumerate(("B04", "B08")):
            data = smooth_image((1, 300, 400), seed=10 * k + b)
            data[0, :20, :30] = 0
            assets[band] = write_cog(
                root / f"{band}_{k}.tif", data, nodata=0, scales=[1e-4], offsets=[-0.1]
            )
        records.append(record(f"r{k}", datetime.datetime(2024, 1, 1 + k), assets))
    return make_collection(records, ["B04", "B08"])


def _roundtrip(ds: xr.Dataset, path: Path, **open_kwargs) -> xr.Dataset:
    ds.to_zarr(path, mode="w", consolidated=False)
    return xr.open_zarr(path, consolidated=False, **open_kwargs).load()


def _stored(path: Path) -> xr.Dataset:
    return xr.open_zarr(path, consolidated=False, mask_and_scale=False)


def test_readme_ndvi_written_with_to_zarr_reads_back_the_same(scaled, tmp_path) -> None:
    ds = xr.open_dataset(scaled, engine="rasteret", bands=["B04", "B08"], chunks={})
    red, nir = ds.B04.astype("float32"), ds.B08.astype("float32")
    ndvi = ((nir - red) / (nir + red)).where(ds.B04 != 0)
    expected = ndvi.values
    back = _roundtrip(ndvi.to_dataset(name="ndvi"), tmp_path / "ndvi.zarr")
    np.testing.assert_array_equal(back.ndvi.values, expected)  # NaN == NaN here
    assert float(back.ndvi.mean()) == pytest.approx(float(np.nanmean(expected)))


@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_engine_output_round_trips_bit_exactly(scaled, tmp_path, mask_and_scale) -> None:
    ds = xr.open_dataset(scaled, engine="rasteret", mask_and_scale=mask_and_scale).load()
    back = _roundtrip(ds, tmp_path / "engine.zarr", mask_and_scale=mask_and_scale)
    for band in ("B04", "B08"):
        assert back[band].dtype == ds[band].dtype
        np.testing.assert_array_equal(back[band].values, ds[band].values)
    raw = rasterio_read(Path(scaled.hrefs("B04")[0]))[0]
    if mask_and_scale:  # packing in encoding: the store holds the original integers
        stored = _stored(tmp_path / "engine.zarr")
        np.testing.assert_array_equal(stored.B04.isel(time=0).values, raw)
    else:
        np.testing.assert_array_equal(back.B04.isel(time=0).values, raw)


def test_split_band_output_round_trips(baseline_change, tmp_path) -> None:
    collection = baseline_change["collection"]
    for mask_and_scale in (False, True):
        ds = xr.open_dataset(collection, engine="rasteret", mask_and_scale=mask_and_scale).load()
        back = _roundtrip(ds, tmp_path / f"split{mask_and_scale}.zarr")
        np.testing.assert_array_equal(back.B04.values, ds.B04.values)


def test_target_grid_and_get_xarray_round_trip(scaled, tmp_path) -> None:
    cube = xr.open_dataset(scaled, engine="rasteret", crs="EPSG:4326", resolution=0.001).load()
    assert not {"_FillValue", "scale_factor", "add_offset"} & set(cube.B04.attrs)
    back = _roundtrip(cube, tmp_path / "cube.zarr")
    np.testing.assert_array_equal(back.B04.values, cube.B04.values)
    assert cube.B04.rio.nodata == 0
    small = shapely.box(300500.0, 4998000.0, 302500.0, 4999500.0)  # inside, in EPSG:32633
    ds = scaled.get_xarray([small], bands=["B04", "B08"], geometry_crs="EPSG:32633")
    assert ds.B04.rio.nodata == 0  # rioxarray reads the nodata attribute
    band = ds.B04.isel(time=0, geometry=0).rio.write_crs(ds.rio.crs)
    reprojected = band.rio.reproject("EPSG:4326")  # failed with _FillValue in encoding
    assert reprojected.dtype == band.dtype and reprojected.rio.nodata == 0
    back = _roundtrip(ds.drop_vars(["B04_valid", "B08_valid"]), tmp_path / "aoi.zarr")
    np.testing.assert_array_equal(back.B04.values, ds.B04.values)


# ----------------------------------------------------------------------------- failed assets


def test_asset_that_failed_at_build_raises_at_read_until_refreshed(object_server, tmp_path) -> None:
    from _cloudscenes import NAMES, oracle, write_scenes
    from rasteret.errors import UnindexedAssetError

    paths = write_scenes(object_server.root)
    object_server.inject(NAMES[1], "status", times=None, status=503)  # a transient outage
    built = rasteret.build_from_files(
        [object_server.url_for(n) for n in NAMES], name="flaky", workspace_dir=tmp_path
    )
    error = built.table["b1_error"][1].as_py()
    assert "503" in error and built.table["b1_metadata"][1].as_py() is None
    object_server.clear_faults()  # the outage is over; the index still has a hole

    with pytest.raises(UnindexedAssetError, match="scene_20240611") as info:
        xr.open_dataset(built, engine="rasteret")
    assert "refresh()" in str(info.value) and "errors='skip'" in str(info.value)
    bbox = tuple(built.table["bbox"][0].as_py().values())
    for read in (
        lambda **kw: built.get_numpy(shapely.box(*bbox), bands=["b1"], **kw),
        lambda **kw: built.sample_points([shapely.box(*bbox).centroid], bands=["b1"], **kw),
    ):
        with pytest.raises(UnindexedAssetError):
            read()
    # explicit opt-in: read without the record (never as a nodata-filled record)
    ds = xr.open_dataset(built, engine="rasteret", errors="skip")
    assert list(ds["id"].values) == [built.record_ids[0]]
    np.testing.assert_array_equal(ds.b1.isel(time=0).values, oracle(paths[NAMES[0]]))
    with pytest.raises(ValueError, match="errors="):
        xr.open_dataset(built, engine="rasteret", errors="ignore")
    # refresh re-indexes the asset once it is reachable
    repaired = built.refresh()
    assert repaired.table["b1_error"][1].as_py() is None
    ds = xr.open_dataset(repaired, engine="rasteret")
    for t, name in enumerate(NAMES):
        np.testing.assert_array_equal(ds.b1.isel(time=t).values, oracle(paths[name]))


def test_a_record_without_the_asset_is_not_a_failure(tmp_path) -> None:
    from _testcollections import make_collection, record

    a = write_cog(tmp_path / "a.tif", smooth_image((1, 64, 64), seed=1), nodata=0)
    b = write_cog(tmp_path / "b.tif", smooth_image((1, 64, 64), seed=2), nodata=0)
    records = [
        record("both", datetime.datetime(2024, 1, 1), {"p": a, "q": b}),
        record("only-p", datetime.datetime(2024, 1, 2), {"p": a}),
    ]
    collection = make_collection(records, ["p", "q"])
    ds = xr.open_dataset(collection, engine="rasteret")  # no href for q: no data, no error
    assert (ds.q.isel(time=1).values == 0).all()
    np.testing.assert_array_equal(ds.q.isel(time=0).values, rasterio_read(b)[0])


# ----------------------------------------------------------------------------- resampling


@pytest.fixture(scope="module")
def noisy_zone32(tmp_path_factory):
    """A 1024² uint16 scene in EPSG:32632 with strong pixel noise (σ 300 DN): kernel
    differences show up as large DN differences, not hidden by a smooth surface."""
    from _testcollections import make_collection, record

    root = tmp_path_factory.mktemp("noisy")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1024, 0:1024]
    wave = 1500 + 400 * np.sin(xx / 17) * np.cos(yy / 23) + rng.normal(0, 300, (1024, 1024))
    data = wave.clip(1, 5000).astype("uint16")
    transform = Affine(10, 0, 700000, 0, -10, 5210000)
    path = write_cog(
        root / "n.tif", data[None], crs="EPSG:32632", transform=transform, nodata=0, blocksize=256
    )
    collection = make_collection([record("n", datetime.datetime(2024, 1, 1), {"b": path})], ["b"])
    return rasteret.as_collection(collection.table, name="noisy"), data, transform


@pytest.mark.parametrize("resampling", ["bilinear", "cubic"])
def test_cross_crs_aoi_kernels_against_gdal(noisy_zone32, resampling) -> None:
    """An AOI in the next UTM zone is rotated ~2.5° against the source: GDAL widens the
    kernel by its source-window ratio (< 0.95 here), and so do we (measured in docs/grids.md)."""
    from pyproj import Transformer
    from rasterio.warp import Resampling, reproject

    collection, data, transform = noisy_zone32
    cx, cy = Transformer.from_crs(32632, 32633, always_xy=True).transform(705120, 5204880)
    aoi = shapely.box(cx - 1500, cy - 1200, cx + 1500, cy + 1200)
    stack = collection.get_numpy(
        aoi, bands=["b"], geometry_crs="EPSG:32633", target_crs="EPSG:32633",
        resolution=10, resampling=resampling,
    )  # fmt: skip
    grid = stack.grids[0]
    gdal = np.zeros(grid.shape, "uint16")
    reproject(
        data, gdal, src_transform=transform, src_crs="EPSG:32632",
        dst_transform=Affine(*grid.transform[:6]), dst_crs="EPSG:32633",
        resampling=getattr(Resampling, resampling), src_nodata=0, dst_nodata=0,
    )  # fmt: skip
    ok = stack.mask[0] & (gdal != 0)
    assert ok.mean() > 0.9
    diff = np.abs(stack.data[0].astype(int) - gdal.astype(int))[ok]
    assert np.percentile(diff, 99) <= 6 and diff.max() <= 15, (np.percentile(diff, 99), diff.max())


def test_resampling_is_applied_as_asked_whatever_the_band_name(tmp_path) -> None:
    from rasterio.warp import Resampling, reproject

    from _testcollections import make_collection, record

    data = np.random.default_rng(1).integers(1, 12, (1, 128, 128)).astype("uint8")
    transform = Affine(10, 0, 300000, 0, -10, 5000000)
    path = write_cog(tmp_path / "scl.tif", data, transform=transform, nodata=0, blocksize=256)
    collection = make_collection(
        [record("s", datetime.datetime(2024, 1, 1), {"SCL": path})], ["SCL"]
    )
    ds = xr.open_dataset(collection, engine="rasteret", resolution=40, resampling="mode")
    assert ds.SCL.attrs["resampling"] == "mode"  # not silently nearest for a class band
    grid = ds.rio.transform()
    gdal = np.zeros(ds.SCL.shape[1:], "uint8")
    reproject(
        data[0], gdal, src_transform=transform, src_crs="EPSG:32633", dst_transform=grid,
        dst_crs="EPSG:32633", resampling=Resampling.mode, src_nodata=0, dst_nodata=0,
    )  # fmt: skip
    np.testing.assert_array_equal(ds.SCL.isel(time=0).values, gdal)


def test_get_xarray_across_two_zones_reprojects_to_the_most_common_crs(tmp_path) -> None:
    from rasteret.samples import make_sentinel2_like

    make_sentinel2_like(tmp_path, scenes=3, size=1024, bands=("B04",), zones=(32632, 32633))
    collection = rasteret.build_from_files(
        tmp_path, group_by=lambda p: (Path(p).parent.name, Path(p).stem)
    )
    crs_of = dict(zip(collection.record_ids, collection.table["crs"].to_pylist(), strict=True))
    aoi = (11.995, 46.995, 12.005, 47.005)  # lon/lat, on the 32N/33N boundary
    ds = collection.get_xarray(shapely.box(*aoi), "B04", geometry_crs="EPSG:4326")
    counts = {c: list(crs_of.values()).count(c) for c in set(crs_of.values())}
    winner = max(counts, key=counts.get)
    assert ds.rio.crs.to_string() == winner
    assert sorted(ds["id"].values) == sorted(collection.record_ids)  # every zone's record
    explicit = collection.get_xarray(
        shapely.box(*aoi), "B04", geometry_crs="EPSG:4326", target_crs=winner, resolution=10
    )
    np.testing.assert_array_equal(ds.B04.values, explicit.B04.values)
    stack = collection.get_numpy(shapely.box(*aoi), "B04", geometry_crs="EPSG:4326")
    assert {g.crs.to_string() for g in stack.grids} == {winner}


def test_zarr_view_of_a_split_band_is_one_array(baseline_change) -> None:
    import zarr

    from rasteret.store import open_store

    collection = baseline_change["collection"]
    store = open_store(collection)
    group_name = store.groups[0]
    group = zarr.open_group(store, mode="r")[group_name]
    names = sorted(k for k in group.array_keys() if k.startswith("B04"))
    assert names == ["B04", "B04_add_offset", "B04_scale_factor"]  # no zero-filled B04__2
    for t, path in enumerate(baseline_change["paths"]):
        np.testing.assert_array_equal(group["B04"][t], rasterio_read(path)[0])
    ds = xr.open_zarr(store, group=group_name, consolidated=False, mask_and_scale=False)
    engine = xr.open_dataset(collection, engine="rasteret")
    np.testing.assert_array_equal(ds.B04.values, engine.B04.values)
    np.testing.assert_array_equal(ds.B04_add_offset.values, [0.0, -0.1])


def test_mask_and_scale_on_a_target_grid(scaled) -> None:
    """mask_and_scale=True was ignored onto a target grid (raw integers came back)."""
    raw = xr.open_dataset(scaled, engine="rasteret", resolution=10)
    ds = xr.open_dataset(scaled, engine="rasteret", resolution=10, mask_and_scale=True)
    assert ds.B04.dtype == np.float32 and "B04_scale_factor" not in ds.coords
    values = raw.B04.values.astype("float64")
    expected = np.where(values == 0, np.nan, values * 1e-4 - 0.1)
    np.testing.assert_allclose(ds.B04.values, expected, rtol=1e-6, atol=1e-6)
