"""``progress=`` of ``get_numpy``, ``get_xarray``, ``read_window`` and ``sample_points``:
a callable hears ``(done, total)`` in tiles — ``done`` strictly increasing, ``total``
fixed and equal to the tiles the read plans (counted here from rasterio's block
windows), the last call ``done == total``; ``True`` draws a line on a terminal,
``False`` nothing."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import pty
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.windows
import shapely
from rasterio.transform import Affine

from _testcollections import make_collection, record, smooth_image, write_cog

T0 = dt.datetime(2024, 6, 1, 10, 30)
TRANSFORM = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0)
CRS = "EPSG:32633"
# rows 300-449, cols 100-299 of the 500 x 600 scenes: 256 px tile row 1, columns 0 and 1
AREA = shapely.box(301000.0, 4995500.0, 303000.0, 4997000.0)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Three records of one band on one grid (600 x 500 px, 256 px tiles), no nodata."""
    root = tmp_path_factory.mktemp("progress")
    paths = []
    for k in range(3):
        path = root / f"s{k}.tif"
        write_cog(path, smooth_image((1, 500, 600), seed=k), transform=TRANSFORM, blocksize=256)
        paths.append(path)
    records = [record(f"s{k}", T0 + dt.timedelta(days=k), {"B1": p}) for k, p in enumerate(paths)]
    return make_collection(records, ["B1"]), paths


def _tiles_of(path: Path, bounds: tuple[float, float, float, float]) -> int:
    """The oracle: how many of the file's blocks the bounds' window touches."""
    with rasterio.open(path) as src:
        window = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        window = window.round_offsets().round_lengths()
        return sum(
            1 for _, block in src.block_windows(1) if rasterio.windows.intersect(block, window)
        )


class Calls:
    """A thread-safe record of ``(done, total)`` calls (they come from read threads)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        with self.lock:
            self.seen.append((done, total))

    def check(self, total: int) -> list[int]:
        """Assert the contract; return the ``done`` values."""
        assert self.seen, "progress was never called"
        assert {t for _, t in self.seen} == {total}, self.seen
        dones = [d for d, _ in self.seen]
        assert all(b > a for a, b in itertools.pairwise(dones)), dones
        assert dones[-1] == total and dones[0] >= 0
        return dones


def test_get_numpy_and_get_xarray_report_every_tile(scenes) -> None:  # type: ignore[no-untyped-def]
    collection, paths = scenes
    tiles = sum(_tiles_of(p, AREA.bounds) for p in paths)
    assert tiles == 6
    calls = Calls()
    stack = collection.get_numpy([AREA], "B1", geometry_crs=CRS, progress=calls)
    assert calls.check(tiles) == list(range(1, tiles + 1))  # each tile, one at a time
    assert stack.data.shape == (3, 150, 200)
    calls = Calls()
    ds = collection.get_xarray([AREA], "B1", geometry_crs=CRS, progress=calls)
    assert calls.check(tiles) == list(range(1, tiles + 1))
    np.testing.assert_array_equal(ds.B1.isel(geometry=0).values, stack.data)


def test_a_mosaic_counts_the_members_it_never_needed_at_the_end(scenes) -> None:  # type: ignore[no-untyped-def]
    collection, paths = scenes
    calls = Calls()  # all records in one group: the first covers the area, the rest unread
    collection.get_numpy([AREA], "B1", geometry_crs=CRS, groupby=lambda r: "all", progress=calls)
    total = sum(_tiles_of(p, AREA.bounds) for p in paths)
    dones = calls.check(total)
    assert dones[:-1] == list(range(1, _tiles_of(paths[0], AREA.bounds) + 1))  # then a jump


def test_read_window_reports_its_tiles(scenes) -> None:  # type: ignore[no-untyped-def]
    collection, paths = scenes
    bounds = AREA.bounds
    calls = Calls()
    data = collection.read_window(
        bands="B1", bounds=bounds, res=10, crs=CRS, progress=calls, group_by="id"
    )
    assert calls.check(sum(_tiles_of(p, bounds) for p in paths)) == list(range(1, 7))
    with rasterio.open(paths[2]) as src:
        window = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        np.testing.assert_array_equal(data[2, 0], src.read(1, window=window))
    calls = Calls()  # a mosaic: records under the first are planned, not read
    collection.read_window(bands="B1", bounds=bounds, res=10, crs=CRS, progress=calls)
    assert calls.check(6)[:-1] == [1, 2]


def test_sample_points_reports_the_tiles_holding_points(scenes) -> None:  # type: ignore[no-untyped-def]
    collection, paths = scenes
    points = [(300105.0, 4999995.0), (300555.0, 4999005.0), (305995.0, 4995005.0)]
    per_record = {(int((5000000 - y) // 2560), int((x - 300000) // 2560)) for x, y in points}
    assert len(per_record) == 2  # two points share tile (0, 0), one is in tile (1, 2)
    calls = Calls()
    table = collection.sample_points(points, "B1", geometry_crs=CRS, progress=calls)
    calls.check(len(per_record) * len(paths))
    assert table.num_rows == len(points) * len(paths)


def test_progress_false_true_and_errors(scenes, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    collection, _ = scenes
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        collection.get_numpy([AREA], "B1", geometry_crs=CRS, progress=False)
        collection.get_numpy([AREA], "B1", geometry_crs=CRS, progress=True)
    shown = _drain(master)
    assert shown.count("reading tiles: 6/6") >= 1 and shown.count("\n") == 1  # one line

    def fail(done: int, total: int) -> None:
        raise RuntimeError(f"stop at {done}/{total}")

    with pytest.raises(RuntimeError, match="stop at 1/6"):
        collection.get_numpy([AREA], "B1", geometry_crs=CRS, progress=fail)
    with pytest.raises(TypeError, match="progress= must be True, False, None or a callable"):
        collection.get_numpy([AREA], "B1", geometry_crs=CRS, progress="yes")


def _drain(master: int) -> str:
    chunks = []
    while True:  # everything written before the slave closed
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the slave side is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks).decode()


def test_options_set_the_default_of_progress(scenes, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The original's ``set_options`` / ``get_options`` / ``options``: what ``progress=None``
    means (a line on a terminal or none); an explicit ``progress=`` always wins; the
    ``with`` block restores the previous value, even when it raises."""
    import rasteret

    collection, _ = scenes
    assert rasteret.get_options() == {"progress": None}
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w") as terminal:
            monkeypatch.setattr(sys, "stderr", terminal)
            collection.get_numpy([AREA], "B1", geometry_crs=CRS)  # few windows: no line
            with rasteret.options(progress=True):
                assert rasteret.get_options() == {"progress": True}
                collection.get_numpy([AREA], "B1", geometry_crs=CRS)  # one line
                collection.get_numpy([AREA], "B1", geometry_crs=CRS, progress=False)
            assert rasteret.get_options() == {"progress": None}
            rasteret.set_options(progress=True)
            with rasteret.options(progress=False):
                collection.get_numpy([AREA], "B1", geometry_crs=CRS)  # none
                calls = Calls()
                collection.get_numpy([AREA], "B1", geometry_crs=CRS, progress=calls)
                calls.check(6)  # an explicit callable still hears every tile
            assert rasteret.get_options() == {"progress": True}
            rasteret.set_options()  # nothing given: nothing changes
            assert rasteret.get_options() == {"progress": True}
            with pytest.raises(ValueError, match="inside"), rasteret.options(progress=False):
                raise ValueError("inside")
            assert rasteret.get_options() == {"progress": True}
    finally:
        rasteret.set_options(progress=None)
    shown = _drain(master)
    assert "reading tiles: 6/6" in shown and shown.count("\n") == 1, shown  # one line
    assert rasteret.get_options() == {"progress": None}
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        rasteret.set_options(progress="yes")
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        rasteret.options(progress=1).__enter__()
