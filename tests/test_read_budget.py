"""The read byte budget refuses over-budget reads before fetching, with the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

import rasteret
from rasteret.read.budget import ReadBudgetExceeded, read_budget
from rasteret.samples import make_sentinel2_like

AOI = (11.995, 46.995, 12.005, 47.005)  # lon/lat, on the 32N/33N boundary


@pytest.fixture(scope="module")
def two_zones(tmp_path_factory: pytest.TempPathFactory) -> rasteret.Collection:
    root = tmp_path_factory.mktemp("zones")
    make_sentinel2_like(root, scenes=2, size=1024, bands=("B04",), zones=(32632, 32633))
    return rasteret.build_from_files(root, group_by=lambda p: (Path(p).parent.name, Path(p).stem))


def test_explain_with_bbox_crs_plans_every_zone(two_zones: rasteret.Collection) -> None:
    plan = two_zones.explain("B04", bbox=AOI, bbox_crs="EPSG:4326")
    assert len(plan.groups) == 2  # one grid per UTM zone, each box transformed into it
    assert len(plan.objects) == 2 and 0 < plan.bytes < two_zones.explain("B04").bytes


def test_over_budget_reads_are_refused_before_fetching(two_zones: rasteret.Collection) -> None:
    from rasteret.fetch import track

    plan = two_zones.explain("B04", bbox=AOI, bbox_crs="EPSG:4326")
    with track() as counts, read_budget(plan.bytes - 1):
        with pytest.raises(ReadBudgetExceeded, match="read refused") as refused:
            two_zones.get_numpy(AOI, "B04", target_crs="EPSG:32633", resolution=10)
        with pytest.raises(ReadBudgetExceeded):
            two_zones.read_window(bounds=AOI, res=0.0001, crs="EPSG:4326", bands="B04")
    assert counts.requests == 0
    assert refused.value.plan.bytes == plan.bytes
    with read_budget(plan.bytes):
        stack = two_zones.get_numpy(AOI, "B04", target_crs="EPSG:32633", resolution=10)
    assert stack.data.shape[0] == 2


# -- every surface: the xarray engine, sample_points, TorchGeo samples ---------------------
# Two 4 × 4-tile COGs served over HTTP: the object server counts every request, so
# "refused before any fetch" is checked on the wire.


@pytest.fixture
def served(object_server, tmp_path: Path) -> rasteret.Collection:  # type: ignore[no-untyped-def]
    from _cloudscenes import NAMES, write_scenes

    write_scenes(tmp_path)
    collection = rasteret.build_from_files([object_server.url_for(n) for n in NAMES])
    object_server.reset()
    return collection


#: Two points in the first tile of both scenes (EPSG:32633, origin 300000, 5000000, 10 m).
POINTS = [(300_005.0, 4_999_995.0), (300_105.0, 4_999_895.0)]


def test_xarray_engine_checks_the_whole_dataset_when_opened(object_server, served) -> None:  # type: ignore[no-untyped-def]
    import xarray as xr

    whole = served.explain("b1")
    with read_budget(whole.bytes - 1):
        with pytest.raises(ReadBudgetExceeded, match="opening the dataset refused") as refused:
            xr.open_dataset(served, engine="rasteret")
        with pytest.raises(ReadBudgetExceeded, match="opening the dataset refused"):
            xr.open_dataset(served, engine="rasteret", crs="EPSG:32633", resolution=10)
        with pytest.raises(ReadBudgetExceeded):
            xr.open_datatree(served, engine="rasteret")
        # a target grid over one tile plans only that tile of each scene
        small = xr.open_dataset(
            served, engine="rasteret", bbox=(300_000, 4_997_440, 302_560, 5_000_000), resolution=10
        )
    assert object_server.requests == 0  # refused (and opened) without a single fetch
    assert refused.value.plan.bytes == whole.bytes  # the same plan explain() shows
    assert "bands=" in str(refused.value)  # how to open less
    assert small["b1"].shape == (2, 256, 256) and int(small["b1"].max()) > 0
    with read_budget(whole.bytes):
        ds = xr.open_dataset(served, engine="rasteret")
    assert ds["b1"].values.shape == (2, 1024, 1024)


def test_zarr_store_is_checked_whole_when_opened(object_server, served) -> None:  # type: ignore[no-untyped-def]
    import zarr

    from rasteret.store import open_store

    whole = served.explain("b1")  # full resolution (the store has overviews too, if any)
    with read_budget(whole.bytes - 1), pytest.raises(ReadBudgetExceeded) as refused:
        open_store(served)
    assert object_server.requests == 0
    assert "opening the Zarr store refused" in str(refused.value)
    assert "bands=" in str(refused.value) and refused.value.plan.bytes >= whole.bytes
    with read_budget(refused.value.plan.bytes):
        store = open_store(served)
    root = zarr.open_group(store, mode="r")
    group = next(iter(store.tiles.groups))
    assert int(root[f"{group}/b1"][0].max()) > 0


def test_sample_points_are_checked_against_their_tiles(object_server, served) -> None:  # type: ignore[no-untyped-def]
    tiles = served.explain("b1", window=((0, 256), (0, 256)))  # tile (0, 0) of both scenes
    with read_budget(tiles.bytes - 1), pytest.raises(ReadBudgetExceeded) as refused:
        served.sample_points(POINTS, bands="b1", geometry_crs=32633)
    assert object_server.requests == 0
    assert refused.value.plan.bytes == tiles.bytes and refused.value.plan.tiles == 2
    with read_budget(tiles.bytes):  # exactly the tiles holding points, not the points' box
        samples = served.sample_points(POINTS, bands="b1", geometry_crs=32633)
    assert samples.num_rows == 4 and object_server.requests == 2


def test_torchgeo_samples_are_checked_before_their_fetch(object_server, served) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torchgeo", reason="the torchgeo extra is not installed")
    dataset = served.to_torchgeo_dataset(bands=["b1"])
    query = (slice(300_000, 300_320, 10), slice(4_999_680, 5_000_000, 10))  # in tile (0, 0)
    tiles = served.explain("b1", window=((0, 256), (0, 256)))
    with read_budget(tiles.bytes - 1), pytest.raises(ReadBudgetExceeded) as refused:
        dataset[query]
    assert object_server.requests == 0
    assert refused.value.plan.bytes == tiles.bytes
    with read_budget(tiles.bytes):
        sample = dataset[query]
    assert tuple(sample["image"].shape) == (1, 32, 32)
    # the budget counts both records; the mosaic fetches the first, which covers the chip
    assert object_server.requests == 1
