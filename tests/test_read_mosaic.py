"""Mosaics (groupby / fusers) against rasterio.merge and NumPy, and read economy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import rasterio.merge
import shapely

from rasteret.fetch import track
from rasteret.ingest import build_from_table
from rasteret.read import get_numpy, get_xarray
from rasteret.samples import make_sentinel2_like

DAY = dt.datetime(2024, 6, 1, 10, 30, tzinfo=dt.UTC)


def _collection(records: list[dict], ids: list[str], times: list[dt.datetime], **extra):
    table = pa.table(
        {"id": ids, "datetime": times, "assets": [r["assets"] for r in records], **extra}
    )
    return build_from_table(table)


@pytest.fixture(scope="module")
def adjacent(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two overlapping scenes of one UTM zone on the same day (different times)."""
    root = tmp_path_factory.mktemp("mosaic")
    a = make_sentinel2_like(
        root / "a",
        scenes=1,
        size=512,
        bands=("B04",),
        zones=(32633,),
        start="2024-06-01",
        center=(15.0, 47.0),
        seed=1,
        overviews=(),
    )
    b = make_sentinel2_like(
        root / "b",
        scenes=1,
        size=512,
        bands=("B04",),
        zones=(32633,),
        start="2024-06-01",
        center=(15.04, 46.985),
        seed=2,
        overviews=(),
    )
    records = a + b
    collection = _collection(
        records, ["A", "B"], [DAY, DAY + dt.timedelta(minutes=7)], tile=["t1", "t2"], orbit=[5, 5]
    )
    return {"collection": collection, "records": records}


def _overlap_box(records: list[dict]) -> shapely.Geometry:
    (_l1, b1, r1, t1), (l2, b2, r2, t2) = (r["bounds"] for r in records)
    # spans both scenes: from inside A to inside B, on pixel edges
    return shapely.box(l2 - 1000, max(b1, b2) + 500, min(r1, r2) + 1500, min(t1, t2) - 200)


def test_solar_day_merges_adjacent_tiles_first_valid(adjacent: dict) -> None:
    aoi = _overlap_box(adjacent["records"])
    merged = get_numpy(adjacent["collection"], aoi, "B04", geometry_crs=32633, groupby="solar_day")
    assert merged.shape[0] == 1
    assert merged.records["group"].to_pylist() == ["2024-06-01"]
    assert merged.records["record_ids"].to_pylist() == [["A", "B"]]
    separate = get_numpy(adjacent["collection"], aoi, "B04", geometry_crs=32633, groupby="time")
    assert separate.shape[0] == 2  # different acquisition times
    # oracle: rasterio.merge "first" (earliest scene painted first) over the same bounds
    grid = merged.grids[0]
    sources = [rasterio.open(r["hrefs"]["B04"]) for r in adjacent["records"]]
    try:
        expected, _ = rasterio.merge.merge(
            sources, bounds=grid.bounds, res=10, nodata=0, method="first"
        )
    finally:
        for src in sources:
            src.close()
    assert merged.mask.all() == bool((expected[0] != 0).all())
    np.testing.assert_array_equal(merged.data[0], expected[0])
    assert merged.mask[0].sum() > merged.mask[0].size * 0.5


def test_first_skips_members_that_are_not_needed(adjacent: dict) -> None:
    _left, bottom, right, _top = adjacent["records"][0]["bounds"]
    inside_a = shapely.box(right - 900, bottom + 2000, right - 400, bottom + 2600)  # A and B
    c = adjacent["collection"]
    with track() as only_a:
        single = get_numpy(c.select_records(["A"]), inside_a, "B04", geometry_crs=32633)
    assert single.mask.all()  # A is valid everywhere there
    with track() as first:
        fused = get_numpy(c, inside_a, "B04", geometry_crs=32633, groupby="solar_day")
    with track() as mean:
        get_numpy(c, inside_a, "B04", geometry_crs=32633, groupby="solar_day", fuse="mean")
    np.testing.assert_array_equal(fused.data, single.data)
    assert first.requests == only_a.requests  # B was never read
    assert mean.requests > first.requests


def test_fusers_equal_numpy(adjacent: dict) -> None:
    aoi = _overlap_box(adjacent["records"])
    c = adjacent["collection"]
    per_id = get_numpy(c, aoi, "B04", geometry_crs=32633, groupby="id")
    assert per_id.records["record_ids"].to_pylist() == [["A"], ["B"]]
    masked = np.ma.MaskedArray(per_id.data, mask=~per_id.mask)
    for fuse, expected in [
        ("min", masked.min(axis=0)),
        ("max", masked.max(axis=0)),
        ("mean", masked.astype(float).mean(axis=0)),
    ]:
        got = get_numpy(c, aoi, "B04", geometry_crs=32633, groupby="orbit", fuse=fuse)
        assert got.shape[0] == 1
        valid = ~np.ma.getmaskarray(expected)
        np.testing.assert_array_equal(got.mask[0], valid)
        np.testing.assert_allclose(got.data[0][valid], np.ma.getdata(expected)[valid])
    last = get_numpy(c, aoi, "B04", geometry_crs=32633, groupby=lambda r: r["orbit"], fuse="last")
    b_first = np.where(per_id.mask[1], per_id.data[1], per_id.data[0])
    np.testing.assert_array_equal(last.data[0], b_first)
    with pytest.raises(ValueError, match="groupby"):
        get_numpy(c, aoi, "B04", geometry_crs=32633, groupby="nope")


def test_mosaic_as_xarray(adjacent: dict) -> None:
    aoi = _overlap_box(adjacent["records"])
    ds = get_xarray(adjacent["collection"], aoi, "B04", geometry_crs=32633, groupby="solar_day")
    assert ds["B04"].dims == ("time", "geometry", "y", "x")
    assert list(ds["group"].values) == ["2024-06-01"]
    np.testing.assert_array_equal(
        ds["B04"].values[0, 0],
        get_numpy(adjacent["collection"], aoi, "B04", geometry_crs=32633, groupby="solar_day").data[
            0
        ],
    )


def test_solar_day_across_zones_on_a_common_grid(tmp_path: Path) -> None:
    records = make_sentinel2_like(
        tmp_path,
        scenes=2,
        size=256,
        bands=("B04",),
        zones=(32632, 32633),
        interval_days=0,
        overviews=(),
    )
    c = _collection(records, ["z32", "z33"], [DAY, DAY + dt.timedelta(minutes=1)])
    aoi = shapely.box(11.995, 46.995, 12.005, 47.005)  # on the zone boundary
    # two zones, one record each: the first in time order's CRS (as the original did)
    auto = get_numpy(c, aoi, "B04", groupby="solar_day")
    same = get_numpy(c, aoi, "B04", groupby="solar_day", target_crs=32632, resolution=10)
    assert {g.crs.to_epsg() for g in auto.grids} == {32632}
    np.testing.assert_array_equal(auto.data, same.data)
    merged = get_numpy(c, aoi, "B04", groupby="solar_day", target_crs=32633, resolution=10)
    assert merged.shape[0] == 1 and merged.records["record_ids"].to_pylist() == [["z32", "z33"]]
    apart = get_numpy(c, aoi, "B04", groupby="id", target_crs=32633, resolution=10)
    expected = np.where(apart.mask[0], apart.data[0], apart.data[1])
    np.testing.assert_array_equal(merged.data[0], expected)
