"""``xr.open_dataset(coll, engine="rasteret", crs=, resolution=, bbox=)``: every grid of a
collection (two UTM zones) on one aligned ``(time, y, x)`` grid, read over HTTP from the
object server; coarse targets read the overview (bytes counted by the server)."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from rasterio.warp import Resampling, reproject

from rasteret.geo import GridSpec, transform_bounds
from rasteret.ingest import build_from_files
from rasteret.samples import make_sentinel2_like
from rasteret.testing.objserver import ObjectServer

# an AOI on the 32N / 33N boundary (12 deg E) around the samples' centre (12.0, 47.0)
AOI_LONLAT = (11.985, 46.988, 12.015, 47.012)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("cube")
    data = root / "data"
    records = make_sentinel2_like(
        data, scenes=4, size=512, bands=("B04", "SCL"), zones=(32632, 32633), tile=256
    )
    with ObjectServer(data) as server:
        urls = [
            server.url_for(str(Path(href).relative_to(data.resolve())))
            for record in records
            for href in record["hrefs"].values()
        ]
        collection = build_from_files(
            urls,
            name="cube",
            workspace_dir=root / "workspace",
            group_by=lambda url: (url.rsplit("/", 2)[-2], url.rsplit("/", 1)[-1].split(".")[0]),
        )
        yield server, collection, records


def _open(collection, **kwargs) -> xr.Dataset:  # type: ignore[no-untyped-def]
    return xr.open_dataset(collection, engine="rasteret", chunks={}, **kwargs)


def test_two_zones_become_one_aligned_cube(served) -> None:  # type: ignore[no-untyped-def]
    server, collection, records = served
    assert sorted(set(collection.epsg)) == [32632, 32633]
    ds = _open(collection, crs="EPSG:32633", resolution=10, bbox=AOI_LONLAT, bbox_crs="EPSG:4326")
    expected = GridSpec.from_bbox(
        transform_bounds(AOI_LONLAT, "EPSG:4326", "EPSG:32633"), "EPSG:32633", 10
    )
    assert GridSpec.from_xarray(ds["B04"]) == expected
    assert ds["B04"].dims == ("time", "y", "x") and ds["B04"].dtype == np.uint16
    assert ds["SCL"].dtype == np.uint8 and ds["SCL"].attrs["resampling"] == "nearest"
    assert list(ds["id"].values) == [r["id"] for r in sorted(records, key=lambda r: r["datetime"])]
    assert np.all(np.diff(ds["time"].values).astype(np.int64) > 0)
    assert float(ds.x[0]) % 10 == 5.0  # pixel edges on multiples of 10 m (aligned)
    server.reset()
    with dask.config.set(scheduler="threads"):
        cube = ds["B04"].values
    assert server.requests > 0
    # every record, from either zone, covers the whole AOI
    assert (cube != 0).mean(axis=(1, 2)).min() > 0.95

    # each time step equals GDAL's nearest reprojection of that record's file
    for k, record in enumerate(sorted(records, key=lambda r: r["datetime"])):
        with rasterio.open(record["hrefs"]["B04"]) as src:
            gdal = np.zeros(expected.shape, np.uint16)
            reproject(
                src.read(1),
                gdal,
                src_transform=src.transform,
                src_crs=src.crs,
                dst_transform=Affine(*expected.transform),
                dst_crs="EPSG:32633",
                resampling=Resampling.nearest,
                src_nodata=0,
                dst_nodata=0,
            )
        identical = float((cube[k] == gdal).mean())
        assert identical >= 0.999, f"{record['id']}: nearest identical on {identical:.5f}"


def test_coarse_target_reads_the_overview(served) -> None:  # type: ignore[no-untyped-def]
    server, collection, _ = served
    full = _open(collection, crs="EPSG:32633", resolution=10)
    coarse = _open(collection, crs="EPSG:32633", resolution=40, resampling="average")
    assert "overview_1" in coarse.attrs["rasteret_sources"]  # factor 4 = second overview
    assert "overview" not in full.attrs["rasteret_sources"]
    server.reset()
    with dask.config.set(scheduler="threads"):
        coarse["B04"].load()
    coarse_bytes = server.bytes_sent
    # what the factor-4 overview IFDs of B04 hold, over all records
    overview_bytes = sum(
        int(levels.overviews[1].byte_counts.sum()) for levels in collection.band_levels("B04")
    )
    full_bytes = sum(int(levels.full.byte_counts.sum()) for levels in collection.band_levels("B04"))
    assert coarse_bytes <= overview_bytes * 1.1 + 4096
    assert coarse_bytes < full_bytes / 8
    server.reset()
    with dask.config.set(scheduler="threads"):
        full["B04"].load()
    assert server.bytes_sent > 4 * coarse_bytes


def test_bad_target_parameters_are_clear_errors(served) -> None:  # type: ignore[no-untyped-def]
    _, collection, _ = served
    with pytest.raises(ValueError, match="different CRSs; pass crs="):
        _open(collection, resolution=20)
    with pytest.raises(ValueError, match="cannot be combined"):
        _open(collection, crs="EPSG:32633", group="epsg32633_10m")
    with pytest.raises(ValueError, match="unknown resampling"):
        _open(collection, crs="EPSG:32633", resampling="lanczos")


def test_target_grid_reads_only_the_tiles_under_it(served) -> None:  # type: ignore[no-untyped-def]
    """An AOI target reads the tiles under its footprint in each zone, not whole scenes,
    and as fast as the same read through get_numpy (equal bytes, no tile read twice)."""
    from rasteret.fetch import FetchConfig, RangeReader

    server, collection, _ = served
    exact = RangeReader(FetchConfig(coalesce_gap=0))  # bytes = tile bytes, no gap filling
    ds = xr.open_dataset(
        collection,
        engine="rasteret",
        chunks={},
        crs="EPSG:32633",
        resolution=10,
        bbox=(12.004, 47.002, 12.008, 47.005),  # ~300 m: a tile or two of each scene
        bbox_crs="EPSG:4326",
        reader=exact,
        bands=["B04"],
    )
    server.reset()
    with dask.config.set(scheduler="threads"):
        ds["B04"].load()
    engine_bytes = server.bytes_sent
    # the floor: the tiles of each record under the target's footprint (nearest needs no
    # margin), from the index alone
    target = GridSpec.from_xarray(ds["B04"])
    floor = 0
    for levels in collection.band_levels("B04"):
        full = levels.full
        source = GridSpec(levels.crs, full.transform, (full.height, full.width))
        box = transform_bounds(target.bounds, target.crs, source.crs)
        window = source.window_of(box)
        rows = range(window.row_off // full.tile_height, -(-window.row_stop // full.tile_height))
        cols = range(window.col_off // full.tile_width, -(-window.col_stop // full.tile_width))
        floor += sum(int(full.byte_counts[r * full.tiles_across + c]) for r in rows for c in cols)
    whole = sum(int(levels.full.byte_counts.sum()) for levels in collection.band_levels("B04"))
    assert engine_bytes <= 1.05 * floor, (engine_bytes, floor, whole)
    assert 0 < floor < whole / 2


def test_native_lattice_target_is_a_copy_of_the_pixels(served) -> None:  # type: ignore[no-untyped-def]
    """A target on a zone's own pixel lattice (a crop, reaching past the scene) reads the
    pixels as they are: equal to rasterio's window read, nodata outside the scene."""
    from rasterio.windows import Window as RioWindow

    from rasteret.geo import Window

    _, collection, records = served
    local = {r["id"]: r["hrefs"]["B04"] for r in records}
    zone = collection.where(_epsg_is(collection, 32633))
    levels = zone.band_levels("B04")[0]
    full = levels.full
    native = GridSpec(levels.crs, full.transform, (full.height, full.width))
    crop = native.crop(Window(-20, 100, 300, 250))  # 20 rows above the scene
    ds = xr.open_dataset(zone, engine="rasteret", grid=crop, bands=["B04"], chunks={})
    with dask.config.set(scheduler="threads"):
        values = ds["B04"].values
    assert "warp-coords" not in str(dict(ds["B04"].data.dask))  # no coordinate maps
    for t, record_id in enumerate(ds["id"].values):
        with rasterio.open(local[str(record_id)]) as src:
            inside = src.read(1, window=RioWindow(100, 0, 250, 280))
        np.testing.assert_array_equal(values[t, 20:], inside)
        assert (values[t, :20] == 0).all()  # outside the scene: the band's nodata (0)


def _epsg_is(collection, epsg: int):  # type: ignore[no-untyped-def]
    import pyarrow.compute as pc

    if "proj:epsg" in collection.table.column_names:
        return pc.field("proj:epsg") == epsg
    return pc.field("crs") == f"EPSG:{epsg}"


def test_a_target_grid_band_is_lazily_indexed_and_read_in_one_batch(served) -> None:  # type: ignore[no-untyped-def]
    """Each band on a target grid is a lazily indexed backend array (no dask graph run
    inside a task): not dask without ``chunks``, one task per chunk with ``chunks={}``,
    the same pixels either way, and one load is one batch: every object it touches is
    fetched with one request (its tiles under the AOI coalesced), both zones at once."""
    from rasteret.fetch import track

    server, collection, _ = served
    grid = {"crs": "EPSG:32633", "resolution": 10, "bbox": AOI_LONLAT, "bbox_crs": "EPSG:4326"}
    lazy = xr.open_dataset(collection, engine="rasteret", bands=["B04"], **grid)
    assert lazy["B04"].chunks is None
    chunked = _open(collection, bands=["B04"], **grid)
    assert chunked["B04"].data.npartitions == 1  # a small target: one chunk, one task
    assert not any("warp" in name for name in chunked["B04"].data.dask.layers)
    server.reset()
    with track() as fetched:
        values = lazy["B04"].values
    objects = {entry.path for entry in server.log}
    assert fetched.requests == server.requests == len(objects) >= 4  # 2 zones x 2+ scenes
    with dask.config.set(scheduler="threads"):
        np.testing.assert_array_equal(chunked["B04"].values, values)


def test_records_with_other_nodata_or_dtype_keep_their_own_on_a_lattice_target(
    tmp_path: Path,
) -> None:
    """A band whose records differ in nodata and dtype (split arrays): on a target on
    their pixel lattice, every record reads as GDAL reads it, its nodata pixels as its own
    nodata — never the contents of an unfilled buffer — and outside the scene its fill."""
    from _testcollections import write_cog
    from rasteret.geo import Window

    rng = np.random.default_rng(5)
    transform = Affine(10, 0, 500000, 0, -10, 5200000)
    files = []
    for k, (dtype, nodata) in enumerate([("uint16", 0), ("uint16", 65535), ("int16", -9999)]):
        data = rng.integers(1, 3000, (1, 256, 256)).astype(dtype)
        data[0, 40:90, 10:200] = nodata
        files.append(
            write_cog(
                tmp_path / f"scene_2024010{k + 1}.tif", data, transform=transform,
                nodata=nodata, blocksize=128,
            )
        )  # fmt: skip
    collection = build_from_files([str(p) for p in files])
    native = GridSpec("EPSG:32633", tuple(transform)[:6], (256, 256))
    crop = native.crop(Window(-8, 30, 200, 226))
    ds = xr.open_dataset(collection, engine="rasteret", grid=crop)
    values = ds["b1"].values
    for t, path in enumerate(files):
        with rasterio.open(path) as src:
            expected = src.read(1).astype(values.dtype)
            own = np.asarray(src.nodata).astype(values.dtype)
        np.testing.assert_array_equal(values[t, 8:, :], expected[:192, 30:256], err_msg=str(t))
        assert (values[t, :8] == own).all()  # above the scene: the record's own nodata
