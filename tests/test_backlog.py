"""``rasteret.store.backlog``: a loop holds at most its bound of fetched, undecoded bytes;
reads over HTTP wait for it (request counts from the object server) and read the same
pixels as rasterio."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path

import numpy as np
import pytest
import rasterio

from _testcollections import make_collection, record, write_cog
from rasteret.geo import Window
from rasteret.store import backlog, open_tiles
from rasteret.store.backlog import ByteBacklog, loop_backlog
from rasteret.store.window_read import ArrayWindow, read_array_windows


def test_never_holds_more_than_its_limit_and_serves_in_order() -> None:
    rng = random.Random(3)
    sizes = [rng.randint(1, 40) for _ in range(60)]
    budget = ByteBacklog(100)
    started: list[int] = []

    async def part(i: int) -> None:
        async with budget.hold(sizes[i]):
            started.append(i)
            assert budget.held <= 100
            await asyncio.sleep(rng.random() / 1000)

    async def main() -> None:
        await asyncio.gather(*(part(i) for i in range(len(sizes))))

    asyncio.run(main())
    assert started == list(range(len(sizes)))  # first come, first served
    assert budget.held == 0
    assert 100 - 40 < budget.peak <= 100


def test_a_part_above_the_limit_runs_alone() -> None:
    budget = ByteBacklog(10)
    seen: list[tuple[str, int]] = []

    async def part(name: str, size: int) -> None:
        async with budget.hold(size):
            seen.append((name, budget.held))
            await asyncio.sleep(0.01)

    async def main() -> None:
        await asyncio.gather(part("small", 4), part("huge", 50), part("after", 4))

    asyncio.run(main())
    assert seen == [("small", 4), ("huge", 50), ("after", 4)]
    assert budget.held == 0


def test_a_cancelled_waiter_frees_nothing_it_did_not_hold() -> None:
    budget = ByteBacklog(10)

    async def main() -> None:
        release = asyncio.Event()

        async def holder() -> None:
            async with budget.hold(8):
                await release.wait()

        async def waiter(size: int) -> int:
            async with budget.hold(size):
                return budget.held

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(waiter(5))
        later = asyncio.create_task(waiter(2))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        assert budget.held == 8
        release.set()
        await first
        assert await later == 2
        with pytest.raises(asyncio.CancelledError):
            await cancelled

    asyncio.run(main())
    assert budget.held == 0


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        ByteBacklog(0)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Six single-tile scenes on the object server (200 ms first-byte latency)."""
    from rasteret.testing.objserver import ObjectServer

    root = tmp_path_factory.mktemp("backlog")
    rng = np.random.default_rng(11)
    arrays = [rng.integers(1, 60000, (256, 256), dtype=np.uint16) for _ in range(6)]
    files = [write_cog(root / f"s{i}.tif", a, blocksize=256) for i, a in enumerate(arrays)]
    with ObjectServer(root, latency=0.2) as server:
        t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        records = [
            record(
                f"r{i}",
                t0 + dt.timedelta(days=i),
                {"B1": f},
                href_of=lambda p: server.url_for(Path(p).name),
            )
            for i, f in enumerate(files)
        ]
        yield server, make_collection(records, ["B1"]), files


def _read_all(collection, files: list[Path]) -> tuple[list[np.ndarray], int]:  # type: ignore[no-untyped-def]
    """Every scene's whole tile, read in a fresh event loop; and the loop's peak backlog."""
    tiles = open_tiles(collection)
    group = tiles.groups[0]
    requests = [ArrayWindow(f"{group}/B1", t, Window(0, 0, 256, 256)) for t in range(len(files))]

    async def main() -> tuple[list[np.ndarray], int]:
        arrays = await read_array_windows(tiles.layout, tiles.reader, requests)
        return arrays, loop_backlog().peak

    return asyncio.run(main())


def test_reads_wait_for_the_backlog(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, collection, files = served
    tile_bytes = [Path(f).stat().st_size for f in files]  # a tile is most of its file
    # a bound below one tile: the six requests go one after another, each decoded first
    monkeypatch.setattr(backlog, "BACKLOG_BYTES_PER_CORE", 1)
    server.reset()
    arrays, peak = _read_all(collection, files)
    assert server.max_in_flight == 1
    assert peak <= max(tile_bytes)
    for array, path in zip(arrays, files, strict=True):
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(array, src.read(1))
    # the default bound holds all six at once: every request in flight together
    monkeypatch.undo()
    server.reset()
    again, _ = _read_all(collection, files)
    assert server.max_in_flight == len(files)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, again, strict=True))
