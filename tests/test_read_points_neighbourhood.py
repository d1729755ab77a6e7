"""sample_points(max_distance_pixels=, return_neighbourhood=): nearest valid pixel and windows.

Oracles: a brute-force numpy/Python search, written independently of
``rasteret.read.points_search`` (a loop over each ring's pixels in scan order), over
rasterio's read of the same file and rasterio's inverse affine; the pixels of the
windows are rasterio's; the tiles read are the object server's request log.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import rasterio
from rasterio.transform import Affine, from_origin

from _testcollections import make_collection, record, smooth_image, write_cog
from rasteret.fetch import FetchConfig, RangeReader
from rasteret.read import POINT_SAMPLES_SCHEMA, sample_points

T0 = dt.datetime(2024, 5, 1, 10, 0)
ORIGIN = (300000.0, 5000000.0)
SEARCH_COLUMNS = ["pixel_row", "pixel_col", "distance_pixels", "distance"]


def _ring_scan(k: int) -> list[tuple[int, int]]:
    """Ring ``k`` in the documented scan order: top row, bottom row, left column, right
    column (rows / columns in increasing order)."""
    top = [(-k, dc) for dc in range(-k, k + 1)]
    bottom = [(k, dc) for dc in range(-k, k + 1)]
    left = [(dr, -k) for dr in range(-k + 1, k)]
    right = [(dr, k) for dr in range(-k + 1, k)]
    return top + bottom + left + right


def _oracle(
    arr: np.ndarray, valid: np.ndarray, transform: Affine, x: float, y: float, n: int
) -> tuple[int, int, int | None, float | None] | None:
    """(row, col, ring, distance) of the pixel used for point (x, y); None outside."""
    fc, fr = ~transform @ (x, y)
    r, c = math.floor(fr), math.floor(fc)
    height, width = arr.shape
    if not (0 <= r < height and 0 <= c < width):
        return None
    if valid[r, c]:
        return r, c, 0, 0.0
    for k in range(1, n + 1):
        best: tuple[float, int, int] | None = None
        for dr, dc in _ring_scan(k):
            rr, cc = r + dr, c + dc
            if not (0 <= rr < height and 0 <= cc < width) or not valid[rr, cc]:
                continue
            pr = min(max(fr, rr), rr + 1) - fr
            pc = min(max(fc, cc), cc + 1) - fc
            dx = transform.a * pc + transform.b * pr
            dy = transform.d * pc + transform.e * pr
            d2 = dx * dx + dy * dy
            if best is None or d2 < best[0]:  # strict: the first in scan order wins ties
                best = (d2, rr, cc)
        if best is not None:
            return best[1], best[2], k, math.sqrt(best[0])
    return r, c, None, None


def _oracle_window(arr: np.ndarray, valid: np.ndarray, r: int, c: int, n: int) -> list:
    out = []
    for rr in range(r - n, r + n + 1):
        for cc in range(c - n, c + n + 1):
            inside = 0 <= rr < arr.shape[0] and 0 <= cc < arr.shape[1]
            out.append(float(arr[rr, cc]) if inside and valid[rr, cc] else None)
    return out


def _gappy(shape: tuple[int, int], seed: int) -> np.ndarray:
    """uint16 data with nodata 0: 35 % scattered holes, a 24 x 24 hole across a tile
    corner (deeper than the searches) and a nodata left edge."""
    data = smooth_image((1, *shape), seed=seed)[0]
    rng = np.random.default_rng(seed)
    data[rng.random(shape) < 0.35] = 0
    data[52:76, 116:140] = 0
    data[:, :3] = 0
    return data


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One 200 x 230 scene, 64-px tiles, non-square 10 x 20 m pixels."""
    root = tmp_path_factory.mktemp("neighbourhood")
    data = _gappy((200, 230), seed=4)
    transform = from_origin(*ORIGIN, 10, 20)
    path = write_cog(root / "g.tif", data, nodata=0, blocksize=64, transform=transform)
    with rasterio.open(path) as src:
        arr = src.read(1)
        assert src.transform == transform
    rng = np.random.default_rng(7)
    xs = ORIGIN[0] - 30 + rng.random(1500) * (230 * 10 + 60)  # some outside each edge
    ys = ORIGIN[1] + 60 - rng.random(1500) * (200 * 20 + 120)
    return {
        "collection": make_collection([record("g", T0, {"B1": path})], ["B1"]),
        "path": path,
        "arr": arr,
        "valid": arr != 0,
        "transform": transform,
        "xy": np.column_stack([xs, ys]),
    }


@pytest.mark.parametrize("n", [1, 4])
def test_nearest_valid_pixel_equals_brute_force(scene: dict, n: int) -> None:
    xy = scene["xy"]
    table = scene["collection"].sample_points(
        xy, "B1", geometry_crs=32633, max_distance_pixels=n, with_mask=True
    )
    assert table.column_names == [*POINT_SAMPLES_SCHEMA.names, *SEARCH_COLUMNS, "valid"]
    got = {row["point_index"]: row for row in table.to_pylist()}
    arr, valid, transform = scene["arr"], scene["valid"], scene["transform"]
    expected = {}
    for i, (x, y) in enumerate(xy):
        found = _oracle(arr, valid, transform, x, y, n)
        if found is not None:
            expected[i] = found
    assert set(got) == set(expected)
    outcomes = {"own": 0, "moved": 0, "none": 0}
    for i, (r, c, ring, distance) in expected.items():
        row = got[i]
        assert (row["pixel_row"], row["pixel_col"]) == (r, c), i
        assert row["value"] == float(arr[r, c])
        assert row["distance_pixels"] == ring
        assert row["valid"] == (ring is not None)
        if distance is None:
            assert row["distance"] is None
            outcomes["none"] += 1
        else:
            assert row["distance"] == pytest.approx(distance, rel=1e-9, abs=1e-9)
            outcomes["own" if ring == 0 else "moved"] += 1
    assert min(outcomes.values()) > 0, outcomes  # every case is exercised
    rings = table["distance_pixels"].drop_null().to_numpy()
    assert rings.max() == n and (rings[rings > 0] <= n).all()


def test_windows_equal_rasterio_pixels(scene: dict) -> None:
    xy, n = scene["xy"][:400], 2
    arr, valid = scene["arr"], scene["valid"]
    always = sample_points(
        scene["collection"],
        xy,
        "B1",
        geometry_crs=32633,
        max_distance_pixels=n,
        return_neighbourhood="always",
    )
    column = always.schema.field("neighbourhood_values")
    assert column.type == pa.list_(pa.float64(), 25)
    assert always.column_names[-1] == "neighbourhood_values"
    fc, fr = ~scene["transform"] @ (xy[:, 0], xy[:, 1])
    for row in always.to_pylist():
        i = row["point_index"]
        r, c = math.floor(fr[i]), math.floor(fc[i])
        assert row["neighbourhood_values"] == _oracle_window(arr, valid, r, c, n)
    on_edge = [row for row in always.to_pylist() if row["pixel_col"] < n or row["pixel_row"] < n]
    assert on_edge and all(None in row["neighbourhood_values"] for row in on_edge)

    centre_only = sample_points(
        scene["collection"],
        xy,
        "B1",
        geometry_crs=32633,
        max_distance_pixels=n,
        return_neighbourhood="if_center_nodata",
    )
    assert centre_only.select(always.column_names[:-1]).equals(
        always.drop_columns(["neighbourhood_values"])
    )
    for full, row in zip(always.to_pylist(), centre_only.to_pylist(), strict=True):
        centre_valid = row["distance_pixels"] == 0
        assert row["neighbourhood_values"] == (
            None if centre_valid else full["neighbourhood_values"]
        )
    assert centre_only["neighbourhood_values"].null_count not in (0, len(centre_only))


def test_corner_point_window_is_missing_outside_the_scene(scene: dict) -> None:
    # the centre of pixel (0, 0): nodata (left edge); 16 of 25 window cells are outside
    x, y = ORIGIN[0] + 5, ORIGIN[1] - 10
    row = sample_points(
        scene["collection"],
        [(x, y)],
        "B1",
        geometry_crs=32633,
        max_distance_pixels=2,
        return_neighbourhood="always",
        with_mask=True,
    ).to_pylist()[0]
    window = row["neighbourhood_values"]
    assert window[:10] == [None] * 10  # rows -2, -1
    assert all(window[k] is None for k in range(10, 25) if k % 5 < 2)  # cols -2, -1
    assert window[12] is None  # the point's own pixel: nodata
    arr = scene["arr"]
    assert window == _oracle_window(arr, scene["valid"], 0, 0, 2)
    # columns 0-2 are nodata: nothing valid within 2 pixels, the own pixel's nodata is
    # returned as such (valid False, no distance), never a neighbour's fill
    assert (row["pixel_row"], row["pixel_col"], row["value"], row["valid"]) == (0, 0, 0.0, False)
    assert row["distance_pixels"] is None and row["distance"] is None
    wider = sample_points(
        scene["collection"], [(x, y)], "B1", geometry_crs=32633, max_distance_pixels=4
    ).to_pylist()[0]
    assert wider["pixel_col"] == 3 and wider["distance_pixels"] == 3
    assert wider["value"] == float(arr[wider["pixel_row"], 3]) != 0


def _tie_scene(tmp_path: Path, holes: list[tuple[int, int]]) -> object:
    data = (np.arange(400, dtype=np.uint16).reshape(20, 20) + 1).copy()
    for r, c in holes:
        data[r, c] = 0
    path = write_cog(
        tmp_path / f"tie{len(holes)}.tif",
        data,
        nodata=0,
        blocksize=16,
        transform=from_origin(0.0, 100.0, 1.0, 1.0),
    )
    return make_collection([record("t", T0, {"B1": path})], ["B1"])


@pytest.mark.parametrize(
    ("holes", "expected"),
    [
        ([], (4, 5)),  # four edge neighbours at 0.5: the top row comes first
        ([(4, 5)], (6, 5)),  # then the bottom row
        ([(4, 5), (6, 5)], (5, 4)),  # then the left column
        ([(4, 5), (6, 5), (5, 4)], (5, 6)),  # then the right column
    ],
)
def test_ties_follow_ring_scan_order(tmp_path: Path, holes: list, expected: tuple) -> None:
    collection = _tie_scene(tmp_path, [(5, 5), *holes])
    # the exact centre of pixel (5, 5) (binary-exact coordinates: true ties)
    row = sample_points(
        collection, [(5.5, 94.5)], "B1", geometry_crs=32633, max_distance_pixels=1
    ).to_pylist()[0]
    assert (row["pixel_row"], row["pixel_col"]) == expected
    assert row["distance"] == 0.5 and row["distance_pixels"] == 1
    assert row["value"] == expected[0] * 20 + expected[1] + 1


def test_corner_point_ties_take_the_top_left(tmp_path: Path) -> None:
    collection = _tie_scene(tmp_path, [(5, 5)])
    # on the top-left corner of pixel (5, 5): (4, 4), (4, 5) and (5, 4) all touch it
    row = sample_points(
        collection, [(5.0, 95.0)], "B1", geometry_crs=32633, max_distance_pixels=1
    ).to_pylist()[0]
    assert (row["pixel_row"], row["pixel_col"], row["distance"]) == (4, 4, 0.0)


def test_ring_comes_before_euclidean_distance(tmp_path: Path) -> None:
    # ring 1 all nodata but the far diagonal (√(0.9² + 0.9²) ≈ 1.27 px away); a ring-2
    # pixel straight across is 1.1 px away: ring 1 wins (upstream / PostGIS rule)
    holes = [(5 + dr, 5 + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (-1, -1)]
    collection = _tie_scene(tmp_path, holes)
    row = sample_points(
        collection, [(5.9, 100 - 5.9)], "B1", geometry_crs=32633, max_distance_pixels=2
    ).to_pylist()[0]
    assert (row["pixel_row"], row["pixel_col"], row["distance_pixels"]) == (4, 4, 1)
    assert row["distance"] == pytest.approx(math.hypot(0.9, 0.9))


def test_float_band_nan_is_not_valid(tmp_path: Path) -> None:
    data = smooth_image((1, 40, 40), dtype="float32", seed=1)[0]
    data[10:13, 10:13] = np.nan
    path = write_cog(
        tmp_path / "f.tif",
        data,
        blocksize=16,
        predictor=None,
        transform=from_origin(*ORIGIN, 10, 10),
    )
    collection = make_collection([record("f", T0, {"B1": path})], ["B1"])
    point = (ORIGIN[0] + 115, ORIGIN[1] - 115)  # pixel (11, 11): NaN, ring 1 is NaN too
    plain = sample_points(collection, [point], "B1", geometry_crs=32633, with_mask=True)
    assert math.isnan(plain["value"][0].as_py()) and plain["valid"].to_pylist() == [False]
    row = sample_points(
        collection, [point], "B1", geometry_crs=32633, max_distance_pixels=2, with_mask=True
    ).to_pylist()[0]
    assert row["distance_pixels"] == 2 and row["valid"]
    assert row["value"] == float(data[row["pixel_row"], row["pixel_col"]])


def test_latest_counts_a_found_neighbour_as_valid(tmp_path: Path) -> None:
    old = np.full((32, 32), 7, np.uint16)
    new = np.full((32, 32), 9, np.uint16)
    new[8, 8] = 0
    paths = [
        write_cog(
            tmp_path / f"d{k}.tif",
            a,
            nodata=0,
            blocksize=16,
            transform=from_origin(*ORIGIN, 10, 10),
        )
        for k, a in enumerate([old, new])
    ]
    collection = make_collection(
        [record(f"d{k}", T0 + dt.timedelta(days=k), {"B1": p}) for k, p in enumerate(paths)],
        ["B1"],
    )
    point = [(ORIGIN[0] + 85, ORIGIN[1] - 85)]  # pixel (8, 8)
    latest = sample_points(collection, point, "B1", geometry_crs=32633, match="latest")
    assert latest["record_id"].to_pylist() == ["d0"] and latest["value"].to_pylist() == [7.0]
    searched = sample_points(
        collection, point, "B1", geometry_crs=32633, match="latest", max_distance_pixels=1
    )
    assert searched["record_id"].to_pylist() == ["d1"] and searched["value"].to_pylist() == [9.0]


def test_reads_only_the_tiles_of_the_search_windows(object_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = smooth_image((1, 256, 256), seed=5)[0]
    data[126:129, 126:129] = 0  # around the corner of tiles (1,1), (1,2), (2,1), (2,2)
    data[224, 32] = 0  # inside tile (3, 0)
    path = write_cog(
        tmp_path / "w.tif", data, nodata=0, blocksize=64, transform=from_origin(*ORIGIN, 10, 10)
    )
    collection = make_collection(
        [record("w", T0, {"B1": path}, href_of=lambda p: object_server.url_for(p.name))], ["B1"]
    )
    levels = collection.band_levels("B1")[0].full
    points = [
        (ORIGIN[0] + 127.5 * 10, ORIGIN[1] - 127.5 * 10),  # pixel (127, 127): nodata
        (ORIGIN[0] + 32.5 * 10, ORIGIN[1] - 224.5 * 10),  # pixel (224, 32): nodata
        (ORIGIN[0] + 190.5 * 10, ORIGIN[1] - 62.5 * 10),  # pixel (62, 190): valid
    ]
    reader = RangeReader(FetchConfig(coalesce_gap=0))  # one request per tile

    def tiles_read(**options: object) -> tuple[set[int], pa.Table]:
        object_server.reset()
        table = sample_points(
            collection, points, "B1", geometry_crs=32633, reader=reader, **options
        )
        gets = [r for r in object_server.log if r.method == "GET"]
        spans = {(r.start, r.end) for r in gets}
        assert len(spans) == len(gets)  # no tile twice
        by_span = {
            (int(levels.offsets[t]), int(levels.offsets[t] + levels.byte_counts[t])): t
            for t in range(len(levels.offsets))
        }
        assert spans <= set(by_span)  # whole tiles, nothing else
        tiles = {by_span[s] for s in spans}
        assert object_server.bytes_sent == sum(int(levels.byte_counts[t]) for t in tiles)
        return tiles, table

    holding = {1 * 4 + 1, 3 * 4 + 0, 0 * 4 + 2}
    assert tiles_read()[0] == holding
    searched = {1 * 4 + 2, 2 * 4 + 1, 2 * 4 + 2}  # the (127, 127) window crosses into these
    valid_window = {0 * 4 + 3, 1 * 4 + 2, 1 * 4 + 3}  # and the (62, 190) window into these
    for mode, expected in [
        ("off", holding | searched),
        ("if_center_nodata", holding | searched),
        ("always", holding | searched | valid_window),
    ]:
        options = {"max_distance_pixels": 2, "return_neighbourhood": mode}
        tiles, table = tiles_read(**options)
        assert tiles == expected, mode
        assert table["distance_pixels"].to_pylist() == [2, 1, 0]
    with rasterio.open(path) as src:
        arr = src.read(1)
    rows = table.to_pylist()
    for row in rows:
        assert row["value"] == float(arr[row["pixel_row"], row["pixel_col"]]) != 0


def test_bad_search_options(scene: dict) -> None:
    c, xy = scene["collection"], [(ORIGIN[0] + 50, ORIGIN[1] - 50)]
    with pytest.raises(ValueError, match=r"max_distance_pixels=-1: must be >= 0"):
        sample_points(c, xy, "B1", geometry_crs=32633, max_distance_pixels=-1)
    with pytest.raises(TypeError, match="must be an int"):
        sample_points(c, xy, "B1", geometry_crs=32633, max_distance_pixels=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be an int"):
        sample_points(c, xy, "B1", geometry_crs=32633, max_distance_pixels=True)
    with pytest.raises(ValueError, match="needs max_distance_pixels > 0"):
        sample_points(c, xy, "B1", geometry_crs=32633, return_neighbourhood="always")
    with pytest.raises(ValueError, match="return_neighbourhood='window'"):
        sample_points(
            c, xy, "B1", geometry_crs=32633, max_distance_pixels=1, return_neighbourhood="window"
        )  # type: ignore[arg-type]
    empty = sample_points(
        c,
        [(0.0, 0.0)],
        "B1",
        geometry_crs=32633,
        max_distance_pixels=1,
        return_neighbourhood="always",
    )
    assert len(empty) == 0
    assert empty.column_names == [
        *POINT_SAMPLES_SCHEMA.names,
        *SEARCH_COLUMNS,
        "neighbourhood_values",
    ]
