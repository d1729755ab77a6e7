"""sample_points against rasterio's ``sample``, and tile-only reads over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from _testcollections import make_collection, record, smooth_image, write_cog
from rasteret.errors import BandNotFoundError
from rasteret.read import (
    POINT_SAMPLES_SCHEMA,
    GeometryCRSError,
    GeometryError,
    UnsupportedGeometryError,
    sample_points,
)

T0 = dt.datetime(2024, 5, 1, 10, 0)
ORIGIN = (300000.0, 5000000.0)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two dates of one grid and one shifted scene; nodata 0 with a nodata border."""
    root = tmp_path_factory.mktemp("points")
    paths = []
    for k in range(3):
        data = smooth_image((1, 600, 700), seed=k)
        data[0, :, :50] = 0
        transform = from_origin(ORIGIN[0] + (2000 if k == 2 else 0), ORIGIN[1], 10, 10)
        paths.append(
            write_cog(root / f"p{k}.tif", data, nodata=0, blocksize=256, transform=transform)
        )
    records = [record(f"r{k}", T0 + dt.timedelta(days=k), {"B1": p}) for k, p in enumerate(paths)]
    return {"collection": make_collection(records, ["B1"]), "paths": paths}


def _points(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = ORIGIN[0] - 500 + rng.random(n) * 10000  # some outside on both sides
    y = ORIGIN[1] + 300 - rng.random(n) * 7000
    return np.column_stack([x, y])


def test_equals_rasterio_sample(scenes: dict) -> None:
    xy = _points(3000)
    table = sample_points(scenes["collection"], xy, "B1", geometry_crs="EPSG:32633")
    assert table.schema == POINT_SAMPLES_SCHEMA
    got = {
        (p, r): v
        for p, r, v in zip(
            table["point_index"].to_pylist(),
            table["record_id"].to_pylist(),
            table["value"].to_pylist(),
            strict=True,
        )
    }
    expected = {}
    for k, path in enumerate(scenes["paths"]):
        with rasterio.open(path) as src:
            left, bottom, right, top = src.bounds
            inside = (
                (xy[:, 0] >= left) & (xy[:, 0] < right) & (xy[:, 1] > bottom) & (xy[:, 1] <= top)
            )
            values = np.array([v[0] for v in src.sample(xy[inside])])
        for p, v in zip(np.flatnonzero(inside), values, strict=True):
            expected[(int(p), f"r{k}")] = float(v)
    assert got == expected
    assert 0 < sum(v == 0 for v in got.values()) < len(got)  # nodata values kept as-is
    assert len(table) < 3 * len(xy)  # points outside a grid give no row
    # ordered by point, then record time
    assert table["point_index"].to_pylist() == sorted(table["point_index"].to_pylist())
    assert (
        table["point_crs"].to_pylist()[0] == 32633 and table["raster_crs"].to_pylist()[0] == 32633
    )


def test_point_inputs_and_columns(scenes: dict) -> None:
    xy = _points(50, seed=1)
    c = scenes["collection"]
    base = sample_points(c, xy, "B1", geometry_crs=32633)
    shapely_points = list(shapely.points(xy))
    wkb = [shapely.to_wkb(p) for p in shapely_points]
    coords = pa.table({"px": xy[:, 0], "py": xy[:, 1], "label": [f"p{i}" for i in range(50)]})
    geo = pa.table({"geometry": pa.array(wkb), "label": [f"p{i}" for i in range(50)]})
    meta = {
        b"ARROW:extension:name": b"geoarrow.wkb",
        b"ARROW:extension:metadata": json.dumps({"crs": "EPSG:32633"}).encode(),
    }
    geo = geo.cast(
        pa.schema(
            [pa.field("geometry", pa.binary(), metadata=meta), pa.field("label", pa.string())]
        )
    )
    for value, kwargs in [
        (shapely_points, {"geometry_crs": 32633}),
        (wkb, {"geometry_crs": 32633}),
        (coords, {"x_column": "px", "y_column": "py", "geometry_crs": 32633}),
        (geo, {}),
    ]:
        got = sample_points(c, value, "B1", **kwargs)
        assert got.select(base.column_names).equals(base)
    labelled = sample_points(c, geo, "B1")
    assert labelled.column_names[-1] == "label"
    assert labelled["label"].to_pylist() == [f"p{i}" for i in labelled["point_index"].to_pylist()]
    masked = sample_points(c, xy, "B1", geometry_crs=32633, with_mask=True)
    np.testing.assert_array_equal(
        masked["valid"].to_numpy(zero_copy_only=False), masked["value"].to_numpy() != 0
    )


def test_match_latest(scenes: dict) -> None:
    xy = _points(400, seed=2)
    every = sample_points(scenes["collection"], xy, "B1", geometry_crs=32633).to_pylist()
    latest = sample_points(scenes["collection"], xy, "B1", geometry_crs=32633, match="latest")
    assert len(set(latest["point_index"].to_pylist())) == len(latest)
    for row in latest.to_pylist():
        rows = [r for r in every if r["point_index"] == row["point_index"]]
        valid = [r for r in rows if r["value"] != 0]
        best = max(valid or rows, key=lambda r: r["datetime"])
        assert row["record_id"] == best["record_id"]


def test_bad_inputs(scenes: dict) -> None:
    c = scenes["collection"]
    with pytest.raises(GeometryCRSError, match="geometry_crs"):
        sample_points(c, pa.table({"x": [1.0], "y": [2.0]}), "B1", x_column="x", y_column="y")
    with pytest.raises(UnsupportedGeometryError, match="Points"):
        sample_points(c, shapely.box(0, 0, 1, 1), "B1")
    with pytest.raises(GeometryError, match="invalid WKB"):
        sample_points(c, [b"\x00\x01"], "B1")
    with pytest.raises(BandNotFoundError, match="B7"):
        sample_points(c, [(1.0, 2.0)], "B7")
    with pytest.raises(ValueError, match="match="):
        sample_points(c, [(1.0, 2.0)], "B1", match="nearest")


def test_reads_only_tiles_holding_points(object_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rasteret import fetch

    data = smooth_image((1, 1024, 1024), seed=3)
    path = write_cog(
        tmp_path / "big.tif", data, nodata=0, blocksize=256, transform=from_origin(*ORIGIN, 10, 10)
    )
    collection = make_collection(
        [record("h", T0, {"B1": path}, href_of=lambda p: object_server.url_for(p.name))], ["B1"]
    )
    levels = collection.band_levels("B1")[0].full
    # 1000 points in tile (1, 2) and 1000 in tile (3, 0): 2 of 16 tiles
    rng = np.random.default_rng(0)
    xs = np.r_[ORIGIN[0] + (512 + rng.random(1000) * 256) * 10, ORIGIN[0] + rng.random(1000) * 2560]
    ys = np.r_[
        ORIGIN[1] - (256 + rng.random(1000) * 256) * 10,
        ORIGIN[1] - (768 + rng.random(1000) * 256) * 10,
    ]
    previous = fetch.default_reader().config
    fetch.configure(previous.with_(coalesce_gap=0))
    try:
        object_server.reset()
        table = sample_points(collection, np.column_stack([xs, ys]), "B1", geometry_crs=32633)
    finally:
        fetch.configure(previous)
    assert len(table) == 2000
    gets = [r for r in object_server.log if r.method == "GET"]
    wanted = {1 * 4 + 2, 3 * 4 + 0}
    sizes = sum(int(levels.byte_counts[t]) for t in wanted)
    assert len(gets) == 2 and object_server.bytes_sent == sizes
    spans = {
        (int(levels.offsets[t]), int(levels.offsets[t] + levels.byte_counts[t])) for t in wanted
    }
    assert {(r.start, r.end) for r in gets} == spans
    with rasterio.open(path) as src:
        expected = [v[0] for v in src.sample(zip(xs, ys, strict=True))]
    assert table["value"].to_pylist() == [float(v) for v in expected]
