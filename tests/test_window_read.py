"""``rasteret.store.window_read``: windows read straight from the layout equal zarr's
read of the same ``VirtualStore`` and rasterio's, with the fetch counts of one batch."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import zarr
from rasterio.windows import Window as RioWindow

from _testcollections import make_collection, record, write_cog
from rasteret.fetch import track
from rasteret.geo import Window
from rasteret.store import open_store, open_tiles
from rasteret.store.window_read import ArrayWindow, read_array_windows_sync


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("window_read")
    rng = np.random.default_rng(7)
    first = rng.integers(1, 4000, (700, 900), dtype=np.uint16)
    first[:256, :512] = 0  # all-nodata tiles: written sparse
    second = rng.integers(1, 4000, (700, 900), dtype=np.uint16)
    return {
        "a": write_cog(root / "a.tif", first, nodata=0, blocksize=256, sparse=True),
        "b": write_cog(root / "b.tif", second, nodata=0, blocksize=256),
        "c": write_cog(root / "c.tif", second[:, ::-1].copy(), nodata=0, blocksize=256),
    }


@pytest.fixture(scope="module")
def collection(files: dict[str, Path]):  # type: ignore[no-untyped-def]
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    records = [
        record("r0", t0, {"B04": files["a"], "B08": files["b"]}),
        record("r1", t0 + dt.timedelta(days=1), {"B04": files["b"]}),  # no B08: fill
        record("r2", t0 + dt.timedelta(days=2), {"B04": files["c"], "B08": files["c"]}),
    ]
    return make_collection(records, ["B04", "B08"])


WINDOWS = [
    Window(0, 0, 700, 900),  # whole image: edge tiles
    Window(100, 200, 300, 350),  # sparse and data tiles
    Window(650, 850, 50, 50),  # the corner tile only
    Window(255, 255, 2, 2),  # four tiles, two pixels each way
    Window(10, 10, 0, 5),  # empty
]


def _every_window(tiles, windows: list[Window]) -> list[ArrayWindow]:  # type: ignore[no-untyped-def]
    """Each window of each band at each of the three time steps."""
    group = tiles.groups[0]
    return [
        ArrayWindow(f"{group}/{band}", t, w)
        for band in ("B04", "B08")
        for t in range(3)
        for w in windows
    ]


def test_windows_equal_zarr_and_rasterio(collection, files) -> None:  # type: ignore[no-untyped-def]
    tiles = open_tiles(collection)
    requests = _every_window(tiles, WINDOWS)
    got = read_array_windows_sync(tiles.layout, tiles.reader, requests)
    root = zarr.open_group(open_store(collection), mode="r")
    for request, array in zip(requests, got, strict=True):
        expected = root[request.path][(request.t, *request.window.slices)]
        assert array.dtype == expected.dtype
        np.testing.assert_array_equal(array, expected, err_msg=str(request))
    # and the files themselves (r0's B04 is file a; its sparse tiles read as nodata 0)
    with rasterio.open(files["a"]) as src:
        w = WINDOWS[1]
        window = RioWindow(w.col_off, w.row_off, w.width, w.height)
        np.testing.assert_array_equal(got[1], src.read(1, window=window))


def test_one_batch_fetches_each_tile_once(collection) -> None:  # type: ignore[no-untyped-def]
    tiles = open_tiles(collection)
    group = tiles.groups[0]
    same = [ArrayWindow(f"{group}/B04", 1, Window(0, 0, 300, 300)) for _ in range(5)]
    with track() as stats:
        arrays = read_array_windows_sync(tiles.layout, tiles.reader, same)
    assert all(np.array_equal(a, arrays[0]) for a in arrays)
    source = tiles.layout.groups[group].arrays["B04"].sources[1]
    wanted = [source.byte_counts[n] for n in (0, 1, 4, 5)]  # tiles (0,0) (0,1) (1,0) (1,1)
    assert stats.bytes == sum(int(v) for v in wanted)  # local: gap 0, exact ranges


def test_each_window_reports_once_when_complete(collection) -> None:  # type: ignore[no-untyped-def]
    """``on_done`` sees every request exactly once, its pixels already final: windows
    sharing tiles, sparse (no tile) windows and a record without the band included."""
    import threading

    tiles = open_tiles(collection)
    requests = _every_window(tiles, [*WINDOWS, Window(0, 0, 256, 256), Window(0, 0, 300, 300)])
    seen: dict[int, np.ndarray] = {}
    threads: set[str] = set()
    lock = threading.Lock()

    def done(index: int, output: np.ndarray) -> None:
        with lock:
            assert index not in seen
            seen[index] = output.copy()  # a snapshot: must already be final
            threads.add(threading.current_thread().name)

    got = read_array_windows_sync(tiles.layout, tiles.reader, requests, on_done=done)
    assert sorted(seen) == list(range(len(requests)))
    for index, array in enumerate(got):
        np.testing.assert_array_equal(seen[index], array, err_msg=str(requests[index]))
    assert any(name.startswith("rasteret-decode") for name in threads)


def test_bad_requests_name_the_array(collection) -> None:  # type: ignore[no-untyped-def]
    tiles = open_tiles(collection)
    group = tiles.groups[0]
    with pytest.raises(KeyError, match="no array"):
        read_array_windows_sync(tiles.layout, tiles.reader, [ArrayWindow("x/y", 0, WINDOWS[0])])
    with pytest.raises(IndexError, match="outside"):
        read_array_windows_sync(
            tiles.layout, tiles.reader, [ArrayWindow(f"{group}/B04", 0, Window(0, 0, 701, 10))]
        )


def test_allocated_windows_equal_the_default_and_are_checked(collection) -> None:  # type: ignore[no-untyped-def]
    """Windows decoded into arrays from ``allocate`` hold the same pixels (sparse tiles
    filled too); an allocator returning the wrong shape fails the read, naming the array."""
    tiles = open_tiles(collection)
    requests = _every_window(tiles, WINDOWS)
    expected = read_array_windows_sync(tiles.layout, tiles.reader, requests)
    given: list[np.ndarray] = []

    def allocate(shape, dtype):  # type: ignore[no-untyped-def]
        given.append(np.full(shape, 12345, dtype))  # garbage a read must overwrite
        return given[-1]

    got = read_array_windows_sync(tiles.layout, tiles.reader, requests, allocate=allocate)
    assert given and all(any(a is g for g in given) for a in got if a.size)
    for request, a, b in zip(requests, got, expected, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=str(request))
    group = tiles.groups[0]
    with pytest.raises(ValueError, match=f"{group}/B04: allocate returned an array of shape"):
        read_array_windows_sync(
            tiles.layout, tiles.reader, [ArrayWindow(f"{group}/B04", 1, WINDOWS[1])],
            allocate=lambda shape, dtype: np.empty((1, 1), dtype),
        )  # fmt: skip


def test_read_surfaces_do_not_import_zarr(collection, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.parquet"
    collection.export(path)
    code = (
        "import sys, rasteret\n"
        f"c = rasteret.load({str(path)!r}, local_roots='any')\n"
        "box = c.bounds\n"
        "c.get_numpy(box, 'B04')\n"
        "c.sample_points([(box[0] + 1e-4, box[1] + 1e-4)], 'B04')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'zarr'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_objects_are_fetched_in_parts_only_when_a_read_touches_few(
    files: dict[str, Path], tmp_path: Path, object_server, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Over HTTP (the server's request log is the oracle), a read touching few objects
    fetches each in parts, decoded as they arrive; one touching many fetches each
    object's tiles in one request (coalesced, never cut)."""
    from rasteret.store import window_read

    monkeypatch.setattr(window_read, "OBJECT_PART_BYTES", 64 * 1024)  # tiles ~70 KB each
    many = window_read.SPLIT_BELOW_OBJECTS_PER_THREAD * window_read.decode_threads()
    links = []
    for k in range(many):  # distinct objects, the same bytes
        links.append(tmp_path / f"b{k}.tif")
        links[-1].hardlink_to(files["b"])
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    records = [
        record(
            f"r{k}",
            t0 + dt.timedelta(days=k),
            {"B04": p},
            href_of=lambda p: object_server.url_for(p.name),
        )
        for k, p in enumerate(links)
    ]
    tiles = open_tiles(make_collection(records, ["B04"]))
    group = tiles.groups[0]
    whole = Window(0, 0, 700, 900)
    with rasterio.open(files["b"]) as src:
        expected = src.read(1)

    object_server.reset()
    (got,) = read_array_windows_sync(
        tiles.layout, tiles.reader, [ArrayWindow(f"{group}/B04", 0, whole)]
    )
    np.testing.assert_array_equal(got, expected)
    assert object_server.requests > 1  # 12 tiles of one object: several parts

    object_server.reset()
    requests = [ArrayWindow(f"{group}/B04", t, whole) for t in range(many)]
    for array in read_array_windows_sync(tiles.layout, tiles.reader, requests):
        np.testing.assert_array_equal(array, expected)
    assert object_server.requests == many  # one request per object
