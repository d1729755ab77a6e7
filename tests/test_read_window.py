"""``read_window``: mosaics and time series on one grid, against GDAL (rasterio.merge /
rasterio.warp.reproject) over the same files, and read economy over the object server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.merge
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject

from _testcollections import make_collection, record
from _windowscenes import BANDS, RES, write_scenes
from rasteret.fetch import track
from rasteret.read.result import NoDataError
from rasteret.read.window import read_window, read_window_info, target_grid

# A window in EPSG:32633 over A, B (aligned) and C (EPSG:32632), crossing A's nodata hole.
WINDOW = (500_000.0, 5_198_000.0, 502_560.0, 5_199_500.0)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("window")
    records = write_scenes(root)
    return {"root": root, "records": records, "collection": make_collection(records, BANDS)}


def _files(root: Path, ids: str, band: str) -> list[Path]:
    return sorted(p for p in root.glob(f"[{ids}]_*_{band}.tif"))


def _merge(paths: list[Path], bounds, res) -> np.ndarray:  # type: ignore[no-untyped-def]
    sources = [rasterio.open(p) for p in paths]
    try:
        return rasterio.merge.merge(sources, bounds=bounds, res=res, method="first")[0]
    finally:
        for src in sources:
            src.close()


def _warp(path: Path, grid, method: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    with rasterio.open(path) as src:
        out = np.full(grid.shape, src.nodata, dtype=src.dtypes[0])
        reproject(
            rasterio.band(src, 1),
            out,
            dst_transform=Affine(*grid.transform),
            dst_crs="EPSG:32633",
            resampling=Resampling[method],
            dst_nodata=src.nodata,
        )
    return out


def test_aligned_mosaic_equals_rasterio_merge(scenes: dict) -> None:
    c, root = scenes["collection"], scenes["root"]
    got = read_window_info(
        c, bands=["B1", "B2", "SCL"], bounds=WINDOW, res=10, crs=32633, records=["B", "A"]
    )
    assert got.data.shape == (3, 150, 256) and got.data.dtype == np.float32
    assert got.record_ids == (("A", "B"),)  # painted in time order, whatever the order given
    assert got.grid == target_grid(WINDOW, 10, "EPSG:32633")
    for c_index, band in enumerate(["B1", "B2", "SCL"]):
        expected = _merge(_files(root, "AB", band), WINDOW, 10)[0]
        np.testing.assert_array_equal(got.data[c_index], expected.astype(np.float32))
    # the hole in A is filled from B, pixels no scene covers stay nodata and invalid
    b1 = read_window_info(c, bands="B1", bounds=WINDOW, res=10, crs=32633, records=["A", "B"])
    assert b1.data.dtype == np.uint16
    np.testing.assert_array_equal(b1.valid[0], b1.data[0] != 0)
    assert 0 < b1.valid.mean() < 1


def test_time_series_is_one_merge_per_scene(scenes: dict) -> None:
    c, root = scenes["collection"], scenes["root"]
    got = read_window_info(
        c, bands=["B1", "SCL"], bounds=WINDOW, res=10, crs=32633, group_by="datetime"
    )
    assert got.data.shape == (3, 2, 150, 256)
    assert [ids for ids in got.record_ids] == [("A",), ("B",), ("C",)]
    assert list(got.datetimes.astype("datetime64[D]").astype(str)) == [
        "2024-01-01",
        "2024-02-01",
        "2024-03-01",
    ]
    for t, scene in enumerate("AB"):
        for c_index, band in enumerate(["B1", "SCL"]):
            expected = _merge(_files(root, scene, band), WINDOW, 10)[0]
            np.testing.assert_array_equal(got.data[t, c_index], expected)
    # an explicit record that does not reach the window still gets its (empty) time step
    far = read_window_info(
        c, bands="B1", bounds=(503_000, 5_198_000, 503_100, 5_198_100), res=10, crs=32633,
        records=["A", "B"], group_by="id",
    )  # fmt: skip
    assert far.groups == ("A", "B") and far.record_ids == ((), ("B",))
    assert not far.valid[0].any() and far.valid[1].all()


def test_cross_crs_matches_gdal_warp(scenes: dict) -> None:
    """Scene C (EPSG:32632) on an EPSG:32633 grid: nearest is exact, bilinear within 1 DN."""
    c, root = scenes["collection"], scenes["root"]
    grid = target_grid(WINDOW, 10, "EPSG:32633")
    for band, method, atol, exact_share in (
        ("SCL", None, 0, 1.0),  # integer classes: nearest by default
        ("B1", "bilinear", 1, 0.95),
        ("B2", None, 1e-3, 0.0),  # float32: bilinear by default
    ):
        got = read_window_info(
            c, bands=band, grid=grid, records=["C"], resampling=method, overviews=False
        )
        expected = _warp(
            _files(root, "C", band)[0], grid, method or ("nearest" if band == "SCL" else "bilinear")
        )
        ok = got.valid[0]
        assert ok.mean() > 0.95
        diff = np.abs(got.data[0][ok].astype(np.float64) - expected[ok].astype(np.float64))
        assert diff.max() <= atol, (band, diff.max())
        assert (diff == 0).mean() >= exact_share, (band, (diff == 0).mean())


@pytest.mark.parametrize(
    ("records", "resampling", "imported"),
    [
        (["A", "B"], None, []),  # the records' own lattice: block copies
        (["C"], "nearest", []),  # EPSG:32632 onto 32633: nearest maps, no kernel
        (["C"], "bilinear", ["rasteret.geo.warp", "rasteret.geo.kernels"]),
    ],
)
def test_window_reads_import_the_warp_only_for_kernels(
    scenes: dict, records: list[str], resampling: str | None, imported: list[str]
) -> None:
    """A fresh process's read imports the warp and the resampling kernels only when a
    kernel other than nearest runs (so the boundary is real both ways); the pixels equal
    the in-process read's."""
    # beside the scenes: a loaded index reads local files under its own directory only
    path = scenes["root"] / f"window-{''.join(records)}-{resampling}.parquet"
    index = scenes["collection"].export(path).uri
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "import rasteret\n"
        "from rasteret.read.window import read_window_info\n"
        "args = json.loads(sys.argv[1])\n"
        "got = read_window_info(rasteret.load(args['index']), bands='B1',\n"
        "    bounds=tuple(args['window']), res=10, crs=32633, records=args['records'],\n"
        "    resampling=args['resampling'])\n"
        "print(json.dumps({'sum': int(got.data.astype(np.int64).sum()),\n"
        "    'modules': [m for m in ('rasteret.geo.warp', 'rasteret.geo.kernels')\n"
        "                if m in sys.modules]}))\n"
    )
    args = {"index": str(index), "window": WINDOW, "records": records, "resampling": resampling}
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(args)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    here = read_window_info(
        scenes["collection"], bands="B1", bounds=WINDOW, res=10, crs=32633, records=records,
        resampling=resampling,
    )  # fmt: skip
    assert found["sum"] == int(here.data.astype(np.int64).sum()) > 0
    assert found["modules"] == imported


@pytest.mark.parametrize("shift", [(0.3, -0.4), (-0.45, 0.2), (17.3, -21.6)])
def test_sub_pixel_shifted_grid_matches_gdal_warp(scenes: dict, shift) -> None:  # type: ignore[no-untyped-def]
    """Same CRS and pixel size, shifted by a fraction of a pixel (a copy of a block, not a
    gather), one grid reaching past scene A's edge: GDAL's nearest warp, pixel for pixel,
    with its nodata where A has none or no data."""
    from rasteret.geo import GridSpec

    c, root = scenes["collection"], scenes["root"]
    dx, dy = shift
    x0, y0 = 499_980.0 + 40 * RES + dx * RES, 5_200_020.0 - 30 * RES + dy * RES
    grid = GridSpec("EPSG:32633", (RES, 0.0, x0, 0.0, -RES, y0), (200, 240))
    for band in BANDS:
        got = read_window_info(
            c, bands=band, grid=grid, records=["A"], resampling="nearest", overviews=False
        )
        expected = _warp(_files(root, "A", band)[0], grid, "nearest")
        nodata = -9999 if band == "B2" else 0
        np.testing.assert_array_equal(got.valid[0], expected != nodata, err_msg=band)
        np.testing.assert_array_equal(got.data[0][got.valid[0]], expected[expected != nodata])
        assert 0.3 < got.valid[0].mean() < 0.95  # the hole and the edge are both in the grid


def test_sub_pixel_shifted_integer_bands_are_copies_filled_where_invalid(scenes: dict) -> None:
    """An integer band on a grid shifted by a fraction of a pixel is read as a copy,
    decoded straight into the output: GDAL's nearest warp where valid, the caller's
    fill (not the band's nodata) everywhere else."""
    from rasteret.geo import GridSpec
    from rasteret.read.grid_tasks import TaskPlanner
    from rasteret.read.stacks import StoreIndex

    c, root = scenes["collection"], scenes["root"]
    x0, y0 = 499_980.0 + 40 * RES + 0.3 * RES, 5_200_020.0 - 30 * RES - 0.4 * RES
    grid = GridSpec("EPSG:32633", (RES, 0.0, x0, 0.0, -RES, y0), (200, 240))
    a = c.select_records(["A"])
    src = StoreIndex(a, ["B1"]).source("B1", 0)
    assert src is not None
    planned = TaskPlanner({}, grid, src.crs_key, overviews=False).plan(src, "nearest")
    assert planned is not None and planned[2] is not None  # a copy at an offset, no warp
    expected = _warp(_files(root, "A", "B1")[0], grid, "nearest")
    got = read_window_info(
        c, bands="B1", grid=grid, records=["A"], resampling="nearest", fill_value=7
    )
    np.testing.assert_array_equal(got.valid[0], expected != 0)
    np.testing.assert_array_equal(got.data[0], np.where(expected != 0, expected, 7))


def test_copies_into_a_plane_they_cover_in_part_fill_the_rest(scenes: dict) -> None:
    """A grid reaching past scene A on every side: each band's copy writes its box and
    the caller's fill around it and where invalid — decoded in place (B1, the output's
    dtype) or copied (SCL, uint8 into uint16) — GDAL's merge where valid."""
    c, root = scenes["collection"], scenes["root"]
    bounds = (499_500.0, 5_197_000.0, 502_900.0, 5_200_500.0)  # A: 499_980..502_540
    got = read_window_info(
        c, bands=["B1", "SCL"], bounds=bounds, res=10, crs=32633, records=["A"], fill_value=7
    )
    assert got.data.dtype == np.uint16
    for band_index, band in enumerate(["B1", "SCL"]):
        expected = _merge(_files(root, "A", band), bounds, 10)[0]
        valid = expected != 0
        assert 0.3 < valid.mean() < 0.9  # fill around the scene and in its nodata hole
        np.testing.assert_array_equal(got.valid[band_index], valid)
        np.testing.assert_array_equal(got.data[band_index], np.where(valid, expected, 7))


@pytest.mark.parametrize("fill_value", [None, 7])
def test_nearest_warp_inside_the_source_fills_only_its_nodata(scenes: dict, fill_value) -> None:  # type: ignore[no-untyped-def]
    """Scene A (EPSG:32633) warped onto an EPSG:32632 grid that lies wholly inside it,
    across its nodata hole: GDAL's nearest warp where valid, the fill (the band's nodata,
    or ``fill_value``) exactly where A holds nodata."""
    from pyproj import Transformer

    from rasteret.geo import GridSpec

    c, root = scenes["collection"], scenes["root"]
    to_32632 = Transformer.from_crs(32633, 32632, always_xy=True)
    xs, ys = to_32632.transform([501_000, 501_000, 502_400, 502_400], [5_198_800, 5_199_900] * 2)
    left, right = max(xs[0], xs[1]) + 20, min(xs[2], xs[3]) - 20
    bottom, top = max(ys[0], ys[2]) + 20, min(ys[1], ys[3]) - 20
    width, height = int((right - left) // RES), int((top - bottom) // RES)
    grid = GridSpec("EPSG:32632", (RES, 0.0, left, 0.0, -RES, top), (height, width))
    with rasterio.open(_files(root, "A", "B1")[0]) as src:
        expected = np.zeros(grid.shape, dtype=np.uint16)
        reproject(
            rasterio.band(src, 1),
            expected,
            dst_transform=Affine(*grid.transform),
            dst_crs="EPSG:32632",
            resampling=Resampling.nearest,
            dst_nodata=0,
        )
    valid = expected != 0
    assert 0.5 < valid.mean() < 1  # the hole is in the grid
    got = read_window_info(
        c, bands="B1", grid=grid, records=["A"], resampling="nearest", fill_value=fill_value,
        overviews=False,
    )  # fmt: skip
    np.testing.assert_array_equal(got.valid[0], valid)
    np.testing.assert_array_equal(got.data[0], np.where(valid, expected, fill_value or 0))


def test_integer_nearest_warps_imply_their_validity(scenes: dict) -> None:
    """Scene C (EPSG:32632) warped onto an EPSG:32633 grid, nearest, integer bands whose
    nodata is the fill: no validity plane is written — ``valid`` is derived from the
    pixels (an :class:`ImpliedMask`) and equals GDAL's; the pixels equal GDAL's warp
    and ``read_window``'s. A fill other than the nodata, a band converted while read
    (SCL into the uint16 of B1), a float band or a mosaic keep the mask as an array."""
    from rasteret.read.result import ImpliedMask

    c, root = scenes["collection"], scenes["root"]
    grid = target_grid(WINDOW, 10, "EPSG:32633")
    kwargs = dict(grid=grid, records=["C"], resampling="nearest", overviews=False)
    for band in ("B1", "SCL"):
        expected = _warp(_files(root, "C", band)[0], grid, "nearest")
        assert 0.5 < (expected != 0).mean() < 1  # the grid reaches past C
        for group_by in (None, "id"):
            got = read_window_info(c, bands=band, group_by=group_by, **kwargs)
            assert isinstance(got.validity, ImpliedMask), band
            data = got.data if group_by is None else got.data[0]
            valid = got.valid if group_by is None else got.valid[0]
            np.testing.assert_array_equal(data[0], expected, err_msg=band)
            np.testing.assert_array_equal(valid[0], expected != 0, err_msg=band)
            pixels = read_window(c, bands=band, group_by=group_by, **kwargs)
            np.testing.assert_array_equal(pixels, got.data)

    expected = _warp(_files(root, "C", "B1")[0], grid, "nearest")
    seven = read_window_info(c, bands="B1", fill_value=7, **kwargs)
    assert isinstance(seven.validity, np.ndarray)
    np.testing.assert_array_equal(seven.valid[0], expected != 0)
    np.testing.assert_array_equal(seven.data[0], np.where(expected != 0, expected, 7))
    both = read_window_info(c, bands=["B1", "SCL"], **kwargs)
    assert isinstance(both.validity, np.ndarray) and both.data.dtype == np.uint16
    np.testing.assert_array_equal(both.valid[0], expected != 0)
    assert isinstance(read_window_info(c, bands="B2", **kwargs).validity, np.ndarray)
    mosaic = read_window_info(c, bands="B1", grid=grid, records=["A", "C"], resampling="nearest")
    assert isinstance(mosaic.validity, np.ndarray)


def test_coarse_window_reads_the_overview(scenes: dict) -> None:
    c = scenes["collection"]
    kwargs = {"bands": "B1", "bounds": WINDOW, "res": 40, "crs": 32633, "records": ["A"]}
    with track() as full:
        from_full = read_window(c, overviews=False, **kwargs)
    with track() as overview:
        from_overview = read_window(c, **kwargs)
    assert from_full.shape == from_overview.shape == (1, 38, 64)
    assert overview.bytes < full.bytes / 4  # the 4x overview holds 1/16 of the pixels
    # the overview is a nearest decimation: values stay close to the bilinear full read
    both = (from_full > 0) & (from_overview > 0)
    assert np.median(np.abs(from_full[both].astype(int) - from_overview[both])) < 20


def test_defaults_and_errors(scenes: dict) -> None:
    c = scenes["collection"]
    with pytest.raises(ValueError, match="2 CRSs"):
        read_window(c, bands="B1", bounds=WINDOW, res=10)
    ab = c.select_records(["A", "B"])
    np.testing.assert_array_equal(
        read_window(ab, bands="B1", bounds=WINDOW),  # crs and res from the records
        read_window(ab, bands="B1", bounds=WINDOW, res=10, crs="EPSG:32633"),
    )
    with pytest.raises(NoDataError, match="overlaps the window"):
        read_window(c, bands="B1", bounds=(0, 0, 100, 100), res=10, crs=32633)
    with pytest.raises(KeyError, match="nope"):
        read_window(c, bands="B1", bounds=WINDOW, res=10, crs=32633, records=["nope"])
    with pytest.raises(ValueError, match="unknown resampling"):
        read_window(c, bands="B1", bounds=WINDOW, res=10, crs=32633, resampling="lanczos9")


def test_all_reads_of_a_time_series_are_in_flight_together(tmp_path: Path, object_server) -> None:  # type: ignore[no-untyped-def]
    records = write_scenes(tmp_path / "data")
    http = [
        record(
            r["id"],
            r["datetime"],
            {b: Path(r["assets"][b]["href"]) for b in ("B1", "SCL")},
            href_of=lambda p: object_server.url_for(Path(p).relative_to(tmp_path)),
        )
        for r in records
    ]
    collection = make_collection(http, ("B1", "SCL"))
    object_server.latency = 0.2  # wide enough for a loaded machine to issue all six
    object_server.reset()
    got = read_window_info(
        collection, bands=["B1", "SCL"], bounds=WINDOW, res=10, crs=32633, group_by="time"
    )
    assert got.data.shape[:2] == (3, 2)
    files = {r.path for r in object_server.log}
    assert len(files) == 6  # 3 scenes x 2 bands
    assert object_server.max_in_flight >= 6  # every file's request was in flight at once
    assert all(r.start != 0 for r in object_server.log)  # no header reads
    assert object_server.requests <= 12  # tiles of one file coalesce into few requests


def test_mosaic_skips_records_hidden_under_a_complete_one(scenes: dict) -> None:
    """First-valid-wins: where the first record fills the window, the records under it
    can add nothing, so they are not fetched; where it leaves pixels without a value,
    the next ones are read (second wave). Pixels equal rasterio.merge either way."""
    c, root = scenes["collection"], scenes["root"]
    inside = (501_300.0, 5_198_000.0, 501_600.0, 5_198_300.0)  # A and B, no hole of A
    with track() as only_a:
        read_window(c, bands="B1", bounds=inside, res=10, crs=32633, records=["A"])
    with track() as mosaic:
        got = read_window_info(c, bands="B1", bounds=inside, res=10, crs=32633, records=["A", "B"])
    assert mosaic.requests == only_a.requests and mosaic.bytes == only_a.bytes  # B not read
    np.testing.assert_array_equal(got.data[0], _merge(_files(root, "AB", "B1"), inside, 10)[0])
    assert got.valid.all()

    edge = (502_400.0, 5_198_000.0, 502_700.0, 5_198_300.0)  # A ends at x = 502,540
    with track() as only_a:
        read_window(c, bands="B1", bounds=edge, res=10, crs=32633, records=["A"])
    with track() as mosaic:
        got = read_window_info(c, bands="B1", bounds=edge, res=10, crs=32633, records=["A", "B"])
    assert mosaic.requests > only_a.requests  # B fills what A leaves
    np.testing.assert_array_equal(got.data[0], _merge(_files(root, "AB", "B1"), edge, 10)[0])
    assert got.valid.all()


def test_mosaic_waves_put_disjoint_tiles_in_the_first() -> None:
    """Tasks no earlier task of their plane overlaps are all read at once; only tasks an
    earlier one may hide wait for the second wave (warps overlap everything)."""
    from rasteret.geo.window import Window
    from rasteret.read.grid_tasks import GridTask
    from rasteret.read.window import _mosaic_waves

    def task(slot: int, paste: tuple[int, int] | None, size: int = 10) -> GridTask:
        return GridTask(slot, 0, None, Window(0, 0, size, size), paste, "nearest")  # type: ignore[arg-type]

    tasks = [
        task(0, (0, 0)),
        task(0, (0, 10)),  # beside the first: first wave
        task(0, (5, 5)),  # overlaps both: second wave
        task(1, (5, 5)),  # another plane: first wave
        task(1, None),  # a warp under an earlier task: second wave
        task(2, None),  # a warp first in its plane: first wave
        task(2, (0, 0)),  # under a warp: second wave
    ]
    assert _mosaic_waves(tasks) == ([0, 1, 3, 5], [2, 4, 6])


@pytest.mark.parametrize("fill_value", [None, 7])
@pytest.mark.parametrize("ids", [["A"], ["A", "B"]])
def test_pixels_only_reads_equal_gdal_and_the_full_read(scenes: dict, fill_value, ids) -> None:  # type: ignore[no-untyped-def]
    """``read_window`` returns the pixels only: copies whose invalid pixels hold the fill
    (no fill_value: the bands' nodata) are written without validity — decoded in place
    (B1) or converted (SCL, uint8 into uint16) —, a mosaic keeps its merge; the pixels
    equal ``read_window_info``'s and GDAL's merge (fill where invalid)."""
    from rasteret.read.window import WindowReader

    c, root = scenes["collection"], scenes["root"]
    bounds = (499_500.0, 5_197_000.0, 502_900.0, 5_200_500.0)  # past A on every side
    kwargs = dict(bands=["B1", "SCL"], bounds=bounds, res=10, crs=32633, records=ids)
    pixels = read_window(c, fill_value=fill_value, **kwargs)
    full = read_window_info(c, fill_value=fill_value, **kwargs)
    np.testing.assert_array_equal(pixels, full.data)
    for band_index, band in enumerate(["B1", "SCL"]):
        expected = _merge(_files(root, "".join(ids), band), bounds, 10)[0]
        valid = expected != 0
        np.testing.assert_array_equal(full.valid[band_index], valid)
        np.testing.assert_array_equal(
            pixels[band_index], np.where(valid, expected, fill_value or 0)
        )
    reader = WindowReader.of(c, ["B1", "SCL"])
    grid = target_grid(bounds, 10, "EPSG:32633")
    assert reader.read(grid, reader.rows_of(ids), validity=False).valid is None
    assert reader.read(grid, reader.rows_of(ids)).valid is not None


def test_only_tasks_whose_invalid_pixels_hold_the_fill_skip_validity(scenes: dict) -> None:
    from rasteret.read.grid_tasks import GridTask, holds_fill
    from rasteret.read.stacks import StoreIndex

    a = scenes["collection"].select_records(["A"])
    src = StoreIndex(a, ["B1"]).source("B1", 0)
    assert src is not None and src.nodata == 0 and src.dtype == np.uint16
    copy = GridTask(0, 0, src, _window_of(src), (0, 0), "nearest")
    warp = GridTask(0, 0, src, _window_of(src), None, "nearest")
    bilinear = GridTask(0, 0, src, _window_of(src), None, "bilinear")
    assert holds_fill(copy, np.dtype(np.uint16), 0)  # nodata is the fill
    assert not holds_fill(copy, np.dtype(np.uint16), 7)  # the fill replaces nodata
    assert holds_fill(warp, np.dtype(np.uint16), 0)  # gathered: nodata pixels as they are
    assert not holds_fill(warp, np.dtype(np.uint16), 7)
    assert not holds_fill(warp, np.dtype(np.int32), 0)  # converted while gathered
    assert not holds_fill(bilinear, np.dtype(np.uint16), 0)  # new values near nodata


def _window_of(src):  # type: ignore[no-untyped-def]
    from rasteret.geo.window import Window

    return Window(0, 0, src.height, src.width)


def test_warps_decoded_into_reused_buffers_equal_gdal(scenes: dict, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Scene C's bands warped one after another (the read loop's backlog lets one part
    through at a time): a later source window is decoded into the buffer an earlier
    warp gave back, and every band still equals GDAL's nearest warp."""
    from rasteret._async import run_sync
    from rasteret.read.window_buffers import WindowBuffers
    from rasteret.store.backlog import loop_backlog

    async def backlog():  # type: ignore[no-untyped-def]
        return loop_backlog()

    monkeypatch.setattr(run_sync(backlog()), "limit", 1)
    taken: list[np.ndarray] = []
    pools: list[WindowBuffers] = []
    real_take = WindowBuffers.take

    def take(self, shape, dtype):  # type: ignore[no-untyped-def]
        # (on a decode thread) the second window waits for the first one's warp to give
        # its buffer back, as windows further down a long read do
        deadline = time.monotonic() + 5
        while taken and not self._free and time.monotonic() < deadline:
            time.sleep(0.005)
        pools.append(self)
        taken.append(real_take(self, shape, dtype))
        return taken[-1]

    monkeypatch.setattr(WindowBuffers, "take", take)
    c, root = scenes["collection"], scenes["root"]
    grid = target_grid(WINDOW, 10, "EPSG:32633")
    got = read_window_info(
        c,
        bands=["B1", "SCL", "B2"],
        grid=grid,
        records=["C"],
        resampling="nearest",
        overviews=False,
        group_by="id",
    )
    assert len(taken) == 3 and len(set(map(id, pools))) == 1
    # SCL's window (uint8) was decoded into the buffer B1's (uint16) gave back
    assert np.shares_memory(taken[0], taken[1])
    for b, band in enumerate(("B1", "SCL", "B2")):
        expected = _warp(_files(root, "C", band)[0], grid, "nearest")
        nodata = -9999 if band == "B2" else 0
        np.testing.assert_array_equal(got.valid[0, b], expected != nodata, err_msg=band)
        np.testing.assert_array_equal(got.data[0, b][got.valid[0, b]], expected[expected != nodata])
