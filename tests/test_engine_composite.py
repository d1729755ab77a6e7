"""Composites (``groupby=`` / ``fuse=``) and record properties (``with_properties=``) in
the xarray engine and ``get_xarray``, against NumPy reductions over rasterio reads of
the files and over the engine's own un-composited cube, the AOI mosaics (bit for bit),
the collection's table, and the object server's request log."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import shapely
import xarray as xr
from affine import Affine

from _testcollections import make_collection, rasterio_read, record, write_cog
from rasteret.backend.composite import CompositeError
from rasteret.index.grouping import Period, group_keys, parse_period
from rasteret.read import get_xarray
from rasteret.samples import make_sentinel2_like
from rasteret.testing.objserver import ObjectServer

ORIGIN = (300000.0, 5000000.0)  # EPSG:32633, near 12.3 E: solar time = UTC + ~49 min
SIZE = 64
UTC = dt.UTC
# (id, datetime): a / b are on different solar days although 30 min apart (b's local
# time is past midnight); b and c share one; months: Jan a-d, Feb e-f, Mar g
RECORDS = [
    ("a", dt.datetime(2024, 1, 5, 23, 0, tzinfo=UTC)),
    ("b", dt.datetime(2024, 1, 5, 23, 30, tzinfo=UTC)),
    ("c", dt.datetime(2024, 1, 6, 10, 0, tzinfo=UTC)),
    ("d", dt.datetime(2024, 1, 20, 10, 0, tzinfo=UTC)),
    ("e", dt.datetime(2024, 2, 2, 10, 0, tzinfo=UTC)),
    ("f", dt.datetime(2024, 2, 15, 10, 0, tzinfo=UTC)),
    ("g", dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
]
MONTHS = [[0, 1, 2, 3], [4, 5], [6]]
SOLAR_DAYS = [[0], [1, 2], [3], [4], [5], [6]]
PROPERTIES: dict[str, list[Any]] = {
    "eo:cloud_cover": [10.5, 20.0, 0.0, 3.25, 99.0, 50.0, 1.0],
    "platform": ["S2A", "S2A", "S2A", "S2A", "S2A", "S2B", "S2B"],
    "orbit": [7, 7, 7, 7, 9, 9, 11],
    "quality": [1, 2, None, 4, 5, 6, 7],
    "processed": [dt.datetime(2024, 4, day) for day in range(1, 8)],
}


def _pixels(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 1000, (SIZE, SIZE)).astype(np.uint16)
    data[rng.random((SIZE, SIZE)) < 0.3] = 0  # nodata
    data[:8, :8] = 0  # no record has these pixels
    return data


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("composite")
    paths = [
        write_cog(root / f"{rid}.tif", _pixels(k), nodata=0, blocksize=32)
        for k, (rid, _) in enumerate(RECORDS)
    ]
    with ObjectServer(root) as server:

        def href(path: Path) -> str:
            return server.url_for(path.relative_to(root))

        rows = [
            record(
                rid,
                when,
                {"red": path},
                href_of=href,
                extra={name: values[k] for name, values in PROPERTIES.items()},
            )
            for k, ((rid, when), path) in enumerate(zip(RECORDS, paths, strict=True))
        ]
        yield server, make_collection(rows, ["red"]), paths


def _oracle(paths: list[Path]) -> np.ndarray:
    """GDAL's pixels of every record, nodata (0) as NaN: ``(records, y, x)`` float64."""
    cube = np.stack([rasterio_read(p)[0] for p in paths]).astype(np.float64)
    cube[cube == 0] = np.nan
    return cube


def _reduce(cube: np.ndarray, groups: list[list[int]], how: Any) -> np.ndarray:
    """``how`` (a NaN-aware NumPy reduction) over each group of ``cube``'s time steps."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are expected
        return np.stack([how(cube[members], axis=0) for members in groups])


def _open(collection, **kwargs: Any) -> xr.Dataset:  # type: ignore[no-untyped-def]
    return xr.open_dataset(collection, engine="rasteret", **kwargs)


@pytest.mark.parametrize(("fuse", "how"), [("median", np.nanmedian), ("mean", np.nanmean)])
def test_monthly_composite_equals_numpy_over_gdal_and_over_the_cube(served, fuse, how) -> None:  # type: ignore[no-untyped-def]
    _, collection, paths = served
    ds = _open(collection, groupby="P1M", fuse=fuse)
    assert ds["red"].dims == ("time", "y", "x") and ds["red"].dtype == np.float64
    assert list(ds["time"].values) == [np.datetime64(f"2024-0{m}-01", "ns") for m in (1, 2, 3)]
    assert list(ds["group"].values) == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert list(ds["record_ids"].values) == ["a, b, c, d", "e, f", "g"]
    assert np.isnan(ds["red"].attrs["nodata"])
    composite = ds["red"].values
    expected = _reduce(_oracle(paths), MONTHS, how)
    np.testing.assert_array_equal(composite, expected)  # bit for bit, NaN where none valid
    assert np.isnan(composite[:, :8, :8]).all() and not np.isnan(composite[0]).all()
    # the same reduction over the engine's own (un-composited) cube
    cube = _open(collection)["red"].values.astype(np.float64)
    cube[cube == 0] = np.nan
    np.testing.assert_array_equal(composite, _reduce(cube, MONTHS, how))
    facade = collection.to_xarray("red", groupby="P1M", fuse=fuse)  # the engine's options
    np.testing.assert_array_equal(facade["red"].values, composite)


@pytest.mark.parametrize("fuse", ["first", "last", "min", "max"])
def test_solar_day_mosaics_equal_the_aoi_mosaics(served, fuse) -> None:  # type: ignore[no-untyped-def]
    _, collection, paths = served
    ds = _open(collection, groupby="solar_day", fuse=fuse)
    assert ds["red"].dtype == np.uint16 and ds["red"].attrs["nodata"] == 0
    assert list(ds["record_ids"].values) == ["a", "b, c", "d", "e", "f", "g"]
    keys = group_keys(collection, np.arange(len(RECORDS)), "solar_day")
    assert list(ds["group"].values) == list(dict.fromkeys(keys))
    assert list(ds["group"].values)[:2] == ["2024-01-05", "2024-01-06"]
    # the time of a mosaic is its first record's
    assert ds["time"].values[1] == np.datetime64("2024-01-05T23:30", "ns")
    mosaic = ds["red"].values
    # the AOI mosaic of the whole grid, fused by rasteret.read.mosaic
    left, top = ORIGIN
    everything = shapely.box(left, top - SIZE * 10, left + SIZE * 10, top)
    aoi = get_xarray(
        collection, everything, "red", geometry_crs=32633, groupby="solar_day", fuse=fuse
    )
    np.testing.assert_array_equal(mosaic, aoi["red"].isel(geometry=0).values)
    assert list(aoi["group"].values) == list(ds["group"].values)
    # and NumPy over GDAL's reads (first valid pixel in (datetime, id) order...)
    cube = _oracle(paths)
    if fuse in ("first", "last"):
        order = (lambda m: m) if fuse == "first" else (lambda m: m[::-1])
        expected = np.stack([_first_valid(cube[order(m)]) for m in SOLAR_DAYS])
    else:
        expected = _reduce(cube, SOLAR_DAYS, np.nanmin if fuse == "min" else np.nanmax)
    np.testing.assert_array_equal(mosaic, np.nan_to_num(expected, nan=0).astype(np.uint16))


def _first_valid(stack: np.ndarray) -> np.ndarray:
    out = np.full(stack.shape[1:], np.nan)
    for plane in stack:
        take = np.isnan(out) & ~np.isnan(plane)
        out[take] = plane[take]
    return out


def test_composites_are_lazy_and_read_no_more_than_the_cube(served) -> None:  # type: ignore[no-untyped-def]
    server, collection, _ = served
    server.reset()
    lazy = _open(collection, groupby="P1M", fuse="median")
    chunked = _open(collection, groupby="P1M", fuse="median", chunks={})
    assert server.requests == 0  # opening reads nothing but the table
    assert chunked["red"].chunks is not None
    assert chunked["red"].data.chunksize[1:] == (SIZE, SIZE)  # whole tiles per chunk
    server.reset()
    march = lazy["red"].isel(time=2).values  # one group: only its record's file is read
    assert {r.path for r in server.records(method="GET")} == {"g.tif"}
    server.reset()
    composite = lazy["red"].values
    composite_log = (server.requests, server.bytes_sent)
    server.reset()
    _open(collection)["red"].values  # noqa: B018 - the un-composited cube
    assert composite_log[0] <= server.requests and composite_log[1] <= server.bytes_sent
    with dask.config.set(scheduler="threads"):
        np.testing.assert_array_equal(chunked["red"].values, composite)
    np.testing.assert_array_equal(march, composite[2])


def test_properties_are_coordinates_with_their_types(served) -> None:  # type: ignore[no-untyped-def]
    _, collection, _ = served
    ds = _open(collection, with_properties=True)
    table = collection.table
    assert ds["eo:cloud_cover"].dims == ("time",)
    assert ds["eo:cloud_cover"].values.tolist() == table["eo:cloud_cover"].to_pylist()
    assert ds["platform"].dtype.kind == "U"
    assert ds["platform"].values.tolist() == table["platform"].to_pylist()
    assert ds["orbit"].dtype == np.int64
    assert ds["orbit"].values.tolist() == table["orbit"].to_pylist()
    quality = ds["quality"].values  # an integer column with a null: float64, NaN
    assert quality.dtype == np.float64 and np.isnan(quality[2])
    assert quality[[0, 1, 3]].tolist() == [1.0, 2.0, 4.0]
    assert ds["processed"].dtype == np.dtype("datetime64[ns]")
    assert list(ds["processed"].values) == [
        np.datetime64(v, "ns") for v in table["processed"].to_pylist()
    ]
    for absent in ("geometry", "bbox", "assets", "red_metadata", "datetime"):
        assert absent not in ds.coords
    only = _open(collection, with_properties=["orbit"])
    assert "orbit" in only.coords and "platform" not in only.coords
    with pytest.raises(ValueError, match="no column 'orbits'"):
        _open(collection, with_properties=["orbits"])
    with pytest.raises(ValueError, match="'red_metadata' is struct"):
        _open(collection, with_properties=["red_metadata"])


def test_group_properties_are_kept_only_when_constant(served) -> None:  # type: ignore[no-untyped-def]
    _, collection, _ = served
    ds = _open(collection, groupby="P1M", fuse="max", with_properties=True)
    assert ds["orbit"].values.tolist() == [7, 9, 11]
    for differs in ("platform", "eo:cloud_cover", "processed", "quality"):
        assert differs not in ds.coords
        assert differs in ds.attrs["rasteret_omitted_coordinates"]
    daily = _open(collection, groupby="solar_day", with_properties=["platform", "orbit"])
    assert daily["platform"].values.tolist() == ["S2A", "S2A", "S2A", "S2A", "S2B", "S2B"]


def test_get_xarray_periods_and_properties(served) -> None:  # type: ignore[no-untyped-def]
    _, collection, _ = served
    left, top = ORIGIN
    box = shapely.box(left + 100, top - 500, left + 400, top - 100)
    aoi = get_xarray(
        collection,
        box,
        "red",
        geometry_crs=32633,
        groupby="P1M",
        fuse="median",
        with_properties=True,
        with_mask=False,
    )
    assert list(aoi["time"].values) == [np.datetime64(f"2024-0{m}-01", "ns") for m in (1, 2, 3)]
    assert aoi["orbit"].values.tolist() == [7, 9, 11]
    assert "platform" in aoi.attrs["rasteret_omitted_coordinates"]
    engine = _open(collection, groupby="P1M", fuse="median")
    np.testing.assert_array_equal(  # the box is pixels 10..40 x 10..50 of the grid
        aoi["red"].isel(geometry=0).values, engine["red"].values[:, 10:50, 10:40]
    )
    per_record = get_xarray(collection, box, "red", geometry_crs=32633, with_properties="orbit")
    assert per_record["orbit"].values.tolist() == PROPERTIES["orbit"]


def test_bad_options_are_clear_errors(served) -> None:  # type: ignore[no-untyped-def]
    server, collection, _ = served
    server.reset()
    with pytest.raises(ValueError, match="fuse= needs groupby="):
        _open(collection, fuse="median")
    with pytest.raises(ValueError, match="fuse='mode': use one of"):
        _open(collection, groupby="P1M", fuse="mode")
    with pytest.raises(ValueError, match="period 'P1M15D'"):
        _open(collection, groupby="P1M15D")
    with pytest.raises(ValueError, match="groupby='weekly'"):
        _open(collection, groupby="weekly")
    assert server.requests == 0


def test_internal_masks_exclude_pixels_of_the_records_that_have_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    first = rng.integers(1, 100, (SIZE, SIZE)).astype(np.uint16)  # no nodata anywhere
    second = rng.integers(100, 200, (SIZE, SIZE)).astype(np.uint16)
    mask = np.full((SIZE, SIZE), 255, np.uint8)
    mask[:, :20] = 0  # the first record's mask hides its left columns
    paths = [
        _masked_cog(tmp_path / "m0.tif", first, mask),
        _masked_cog(tmp_path / "m1.tif", second, None),
    ]
    when = dt.datetime(2024, 8, 1, 10, tzinfo=UTC)
    rows = [record(f"m{k}", when + dt.timedelta(minutes=k), {"b": p}) for k, p in enumerate(paths)]
    collection = make_collection(rows, ["b"])
    ds = _open(collection, groupby="solar_day")  # first valid pixel
    assert "b_mask" not in ds  # consumed by its band
    expected = np.where(rasterio_read(paths[0], masked=True).mask[0], second, first)
    np.testing.assert_array_equal(ds["b"].values[0], expected)
    left, top = ORIGIN
    everything = shapely.box(left, top - SIZE * 10, left + SIZE * 10, top)
    aoi = get_xarray(collection, everything, "b", geometry_crs=32633, groupby="solar_day")
    np.testing.assert_array_equal(aoi["b"].isel(geometry=0).values[0], expected)


def _masked_cog(path: Path, data: np.ndarray, mask: np.ndarray | None) -> Path:
    """A COG written by GDAL with an internal (per-dataset) mask."""
    import rasterio
    import rasterio.shutil

    source = path.with_suffix(".src.tif")
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 1}
    profile.update(
        dtype=data.dtype,
        crs="EPSG:32633",
        transform=Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]),
    )
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(source, "w", **profile) as dst:
            dst.write(data, 1)
            if mask is not None:
                dst.write_mask(mask)
        rasterio.shutil.copy(source, path, driver="COG", BLOCKSIZE=32, COMPRESS="DEFLATE")
    source.unlink()
    return path


def test_different_scales_in_a_group_are_not_fused_raw(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for k, scale in enumerate((1.0, 1.0, 0.5)):  # the third record is scaled differently
        data = rng.integers(0, 500, (SIZE, SIZE)).astype(np.uint16)
        path = write_cog(tmp_path / f"s{k}.tif", data, nodata=0, blocksize=32, scales=[scale])
        when = dt.datetime(2024, 5, 1 + k, 10, tzinfo=UTC)
        rows.append(record(f"s{k}", when, {"red": path}))
    collection = make_collection(rows, ["red"])
    with pytest.raises(CompositeError, match=r"group '2024-05-01'.*scale_factor.*mask_and_scale"):
        _open(collection, groupby="P1M")
    decoded = _open(collection, groupby="P1M", fuse="mean", mask_and_scale=True)["red"].values
    cube = _open(collection, mask_and_scale=True)["red"].values.astype(np.float64)
    np.testing.assert_array_equal(decoded[0], _reduce(cube, [[0, 1, 2]], np.nanmean)[0])


def test_bands_without_nodata_use_each_records_coverage(tmp_path: Path) -> None:
    """Target grid, no nodata: zeros inside a record are data, pixels outside it are not."""
    rng = np.random.default_rng(9)
    shifts = [(0, 0), (16, 32), (0, 0)]  # (rows, cols) of each record's origin, in pixels
    days = [1, 1, 2]
    rows, planes = [], []
    for k, ((dr, dc), day) in enumerate(zip(shifts, days, strict=True)):
        data = rng.integers(0, 4, (SIZE, SIZE)).astype(np.uint8)  # many zeros, all data
        transform = Affine(10.0, 0.0, ORIGIN[0] + dc * 10, 0.0, -10.0, ORIGIN[1] - dr * 10)
        path = write_cog(tmp_path / f"n{k}.tif", data, transform=transform, blocksize=32)
        rows.append(record(f"n{k}", dt.datetime(2024, 7, day, 10, tzinfo=UTC), {"b": path}))
        planes.append((dr, dc, data))
    collection = make_collection(rows, ["b"])
    height, width = SIZE + 16, SIZE + 32
    cube = np.full((3, height, width), np.nan)
    for k, (dr, dc, data) in enumerate(planes):
        cube[k, dr : dr + SIZE, dc : dc + SIZE] = data
    for fuse, how in (("min", np.nanmin), ("mean", np.nanmean)):
        ds = _open(collection, crs="EPSG:32633", resolution=10, groupby="time", fuse=fuse)
        assert ds["b"].shape == (2, height, width) and "b_coverage" not in ds
        with dask.config.set(scheduler="threads"):
            got = ds["b"].values
        expected = _reduce(cube, [[0, 1], [2]], how)
        if fuse == "min":  # no nodata: where no record is, the fill (0)
            expected = np.nan_to_num(expected, nan=0).astype(np.uint8)
        np.testing.assert_array_equal(got, expected)


def test_two_utm_zones_composite_on_a_target_grid(tmp_path: Path) -> None:
    scenes = make_sentinel2_like(
        tmp_path, scenes=4, size=128, bands=("B04",), zones=(32632, 32633), tile=64, overviews=()
    )
    days = [(6, 3), (6, 20), (7, 9), (8, 1)]  # June holds one scene of each zone
    with ObjectServer(tmp_path) as server:
        rows = [
            record(
                s["id"],
                dt.datetime(2024, month, day, 10, tzinfo=UTC),
                {"B04": Path(s["hrefs"]["B04"])},
                href_of=lambda p: server.url_for(Path(p).relative_to(tmp_path.resolve())),
                extra={"epsg": s["epsg"]},
            )
            for s, (month, day) in zip(scenes, days, strict=True)
        ]
        collection = make_collection(rows, ["B04"])
        grid = {"crs": "EPSG:32633", "resolution": 20, "chunks": {}}
        cube_ds = _open(collection, with_properties=True, **grid)
        composite = _open(collection, groupby="P1M", fuse="median", with_properties=True, **grid)
        assert server.requests == 0
        assert cube_ds["epsg"].values.tolist() == [32632, 32633, 32632, 32633]
        assert "epsg" in composite.attrs["rasteret_omitted_coordinates"]  # June mixes zones
        with dask.config.set(scheduler="threads"):
            cube = cube_ds["B04"].values.astype(np.float64)
            cube_log = (server.requests, server.bytes_sent)
            server.reset()
            got = composite["B04"].values
        assert cube_log[0] > 0  # read over HTTP
        assert server.requests <= cube_log[0] and server.bytes_sent <= cube_log[1]
    cube[cube == 0] = np.nan
    np.testing.assert_array_equal(got, _reduce(cube, [[0, 1], [2], [3]], np.nanmedian))
    assert np.isfinite(got[0]).mean() > 0.5


def test_periods_follow_the_calendar() -> None:
    rng = np.random.default_rng(0)
    seconds = rng.integers(0, 60 * 365 * 86400, 500)
    times = np.datetime64("1990-01-01", "us") + seconds.astype("timedelta64[s]")
    days = [dt.date.fromisoformat(str(t.astype("datetime64[D]"))) for t in times]

    def starts(text: str) -> list[dt.date]:
        period = parse_period(text)
        assert isinstance(period, Period) and period.text == text
        return [dt.date.fromisoformat(str(d)) for d in period.starts(times)]

    assert starts("P1D") == days
    mondays = [d - dt.timedelta(days=d.weekday()) for d in days]
    assert starts("P1W") == mondays and starts("P7D") == mondays
    epoch = dt.date(1970, 1, 5)  # fortnights are counted from this Monday
    for start, day in zip(starts("P2W"), days, strict=True):
        assert (start - epoch).days % 14 == 0 and 0 <= (day - start).days < 14
    assert starts("P1M") == [d.replace(day=1) for d in days]
    assert starts("P3M") == [dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1) for d in days]
    assert starts("P1Y") == [dt.date(d.year, 1, 1) for d in days]
    assert starts("P10Y") == [dt.date(d.year // 10 * 10, 1, 1) for d in days]
    assert parse_period("solar_day") is None
    for bad in ("P0D", "P1M15D", "PT12H", "P1.5M"):
        with pytest.raises(ValueError, match="period"):
            parse_period(bad)


def test_open_datatree_composites_every_group(served) -> None:  # type: ignore[no-untyped-def]
    """``groupby`` / ``fuse`` / ``with_properties`` apply to each node of the tree as
    ``open_dataset`` applies them to one group (same composites, numpy over GDAL)."""
    _, collection, paths = served
    tree = xr.open_datatree(
        collection, engine="rasteret", groupby="P1M", fuse="mean", with_properties=["orbit"]
    )
    nodes = [node for node in tree.subtree if "red" in node.ds]
    assert nodes
    expected = _reduce(_oracle(paths), MONTHS, np.nanmean)
    for node in nodes:
        name = node.path.strip("/")
        one = _open(collection, group=name, groupby="P1M", fuse="mean", with_properties=["orbit"])
        xr.testing.assert_identical(node.to_dataset(), one)
        assert list(node.ds["record_ids"].values) == ["a, b, c, d", "e, f", "g"]
    np.testing.assert_allclose(nodes[0].ds["red"].values, expected)
    with pytest.raises(ValueError, match="groupby='weekly'"):
        xr.open_datatree(collection, engine="rasteret", groupby="weekly")
