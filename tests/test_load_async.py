"""``await ds.load_async()`` on engine datasets: pixels equal to ``.load()`` and rasterio,
and two datasets awaited together overlap their requests (the object server's in-flight
maximum; each load is one coalesced request, so 2 means they overlapped, 1 that they
ran one after the other)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from _testcollections import smooth_image, write_cog
from rasteret.ingest import build_from_files
from rasteret.testing.objserver import ObjectServer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Two 512 x 512 single-band COGs (four 256 px tiles each) behind 150 ms latency."""
    root = tmp_path_factory.mktemp("async")
    for k, name in enumerate(("a_20240101.tif", "b_20240201.tif")):
        write_cog(root / name, smooth_image((1, 512, 512), seed=k), nodata=0, blocksize=256)
    with ObjectServer(root, latency=0.15) as server:
        yield server, root


def _open(server: ObjectServer, name: str, **kwargs) -> xr.Dataset:  # type: ignore[no-untyped-def]
    return xr.open_dataset(server.url_for(name), engine="rasteret", **kwargs)


def _expected(root: Path, name: str) -> np.ndarray:
    with rasterio.open(root / name) as src:
        return src.read(1)


async def _together(*datasets: xr.Dataset) -> None:
    await asyncio.gather(*(ds.load_async() for ds in datasets))


async def _one_by_one(*datasets: xr.Dataset) -> None:
    for ds in datasets:
        await ds.load_async()


def test_concurrent_load_async_overlaps_and_equals_load(served) -> None:  # type: ignore[no-untyped-def]
    server, root = served
    a, b = _open(server, "a_20240101.tif"), _open(server, "b_20240201.tif")
    server.reset()  # headers were read when opening
    asyncio.run(_together(a, b))
    assert server.requests == 2  # one coalesced request per scene, no header read again
    assert server.max_in_flight == 2  # both in flight at once: the loads overlapped
    for ds, name in ((a, "a_20240101.tif"), (b, "b_20240201.tif")):
        assert isinstance(ds.b1.variable._data, np.ndarray)  # loaded in place
        np.testing.assert_array_equal(ds.b1.values, _expected(root, name))
        np.testing.assert_array_equal(ds.b1.values, _open(server, name).b1.load().values)

    a, b = _open(server, "a_20240101.tif"), _open(server, "b_20240201.tif")
    server.reset()
    asyncio.run(_one_by_one(a, b))  # the control: awaited in turn, never overlapping
    assert server.requests == 2 and server.max_in_flight == 1


def test_load_async_of_a_selection_and_a_collection(served) -> None:  # type: ignore[no-untyped-def]
    server, root = served
    names = ["a_20240101.tif", "b_20240201.tif"]
    collection = build_from_files([server.url_for(n) for n in names])
    ds = xr.open_dataset(collection, engine="rasteret")
    part = ds.b1.isel(y=slice(100, 300), x=slice(250, 512, 3))
    server.reset()
    loaded = asyncio.run(part.load_async())
    assert server.requests == 2  # one per scene, only the tiles the selection touches
    for t, name in enumerate(names):
        np.testing.assert_array_equal(
            loaded.isel(time=t).values, _expected(root, name)[100:300, 250:512:3]
        )
    whole = asyncio.run(xr.open_dataset(collection, engine="rasteret").load_async())
    xr.testing.assert_identical(whole, xr.open_dataset(collection, engine="rasteret").load())


def test_load_async_on_a_target_grid_equals_load(tmp_path: Path) -> None:
    """A dataset on a target grid loads asynchronously too (its bands implement
    ``async_getitem``), with the pixels of ``.load()``."""
    from rasteret.samples import make_sentinel2_like

    records = make_sentinel2_like(tmp_path, scenes=2, size=256, bands=("B04",), tile=128)
    collection = build_from_files([r["hrefs"]["B04"] for r in records])
    grid = {"crs": "EPSG:32633", "resolution": 20}
    expected = xr.open_dataset(collection, engine="rasteret", **grid).load()
    loaded = asyncio.run(xr.open_dataset(collection, engine="rasteret", **grid).load_async())
    assert expected["b1"].shape[0] == 2
    np.testing.assert_array_equal(loaded["b1"].values, expected["b1"].values)
