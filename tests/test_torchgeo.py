"""TorchGeo dataset: samples equal TorchGeo's own ``RasterDataset`` over the same files,
samplers / Intersection / Union / ``stack_samples`` work, DataLoader workers (fork over
HTTP after obstore was used, spawn with an in-memory collection) train a tiny model."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torchgeo extra is not installed")
pytest.importorskip("torchgeo", reason="the torchgeo extra is not installed")

from torch.utils.data import DataLoader  # noqa: E402
from torchgeo.datasets import RasterDataset, stack_samples  # noqa: E402
from torchgeo.samplers import GridGeoSampler, RandomGeoSampler  # noqa: E402

from _testcollections import make_collection, make_table, record  # noqa: E402
from _windowscenes import BANDS, write_scenes  # noqa: E402
from rasteret import as_collection  # noqa: E402
from rasteret.integrations.torchgeo import RasteretGeoDataset, to_torchgeo_dataset  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: Cross-CRS samples vs RasterDataset (uint16 band, values ~1000..3000, ~7 DN per pixel):
#: TorchGeo warps twice (nearest WarpedVRT onto a default grid, then a bilinear merge),
#: rasteret once (bilinear, as gdalwarp); the results differ by less than one pixel's step.
CROSS_CRS_MAX_DN = 8
CROSS_CRS_MEAN_DN = 2


def _raster_dataset(glob: str, *, is_image: bool = True, bands=("B1", "B2")):  # type: ignore[no-untyped-def]
    class Scenes(RasterDataset):
        filename_glob = glob
        filename_regex = r"^(?P<id>[A-Z])_(?P<date>\d{8})_(?P<band>B1|B2|SCL)\.tif$"
        date_format = "%Y%m%d"
        separate_files = True
        all_bands = tuple(bands)

    Scenes.is_image = is_image
    return Scenes


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("torchgeo")
    records = write_scenes(root)
    collection = make_collection(records, BANDS)
    return {"root": root, "records": records, "collection": collection}


def _queries(dataset, n: int = 12) -> list:  # type: ignore[no-untyped-def]
    generator = torch.Generator().manual_seed(0)
    random = list(RandomGeoSampler(dataset, size=48, length=n, generator=generator))
    grid = list(GridGeoSampler(dataset, size=64, stride=100))
    return random + grid


def test_samples_equal_rasterdataset(scenes: dict) -> None:
    ab = scenes["collection"].select_records(["A", "B"])
    ours = to_torchgeo_dataset(ab, bands=["B1", "B2"])
    theirs = _raster_dataset("[AB]_*_B1.tif")(str(scenes["root"]), bands=["B1", "B2"])
    assert ours.crs == theirs.crs and ours.res == theirs.res
    assert ours.bounds[:2] == theirs.bounds[:2]
    assert list(ours.index["record_id"]) == ["A", "B"]
    assert ours.index.index.name == "datetime" and ours.index.index.closed == "both"
    queries = _queries(theirs)
    assert len(queries) > 20
    for query in queries:
        a, b = ours[query], theirs[query]
        assert a["image"].dtype == torch.float32  # uint16 + float32 bands -> float32
        assert torch.equal(a["image"], b["image"]), query
        assert torch.equal(a["bounds"], b["bounds"])
        assert torch.equal(a["transform"].float(), b["transform"])
    uint16 = to_torchgeo_dataset(ab, bands="B1")[queries[0]]["image"]
    assert uint16.dtype == torch.int32  # torch has no full uint16: TorchGeo's rule


def test_time_series_equals_rasterdataset(scenes: dict) -> None:
    ab = scenes["collection"].select_records(["A", "B"])
    ours = to_torchgeo_dataset(ab, bands=["B1"], time_series=True, label_field="label")
    theirs = _raster_dataset("[AB]_*_B1.tif", bands=("B1",))(
        str(scenes["root"]), bands=["B1"], time_series=True
    )
    for query in _queries(theirs, n=6):
        a, b = ours[query], theirs[query]
        assert a["image"].ndim == 4 and a["image"].shape == b["image"].shape
        assert torch.equal(a["image"].float(), b["image"])
        labels = a["label"].tolist()  # one per time step, in time order
        assert len(labels) == a["image"].shape[0] and labels == sorted(set(labels))
        assert set(labels) <= {1, 2}


def test_mask_dataset_keeps_classes(scenes: dict) -> None:
    """``is_image=False``: nearest resampling, native uint8, channel axis squeezed."""
    c = scenes["collection"]
    ab = c.select_records(["A", "B"])
    ours = to_torchgeo_dataset(ab, bands="SCL", is_image=False)
    theirs = _raster_dataset("[AB]_*_SCL.tif", is_image=False, bands=("SCL",))(
        str(scenes["root"]), bands=["SCL"]
    )
    for query in _queries(theirs, n=6):
        a, b = ours[query], theirs[query]
        assert a["mask"].dtype == torch.uint8 and a["mask"].ndim == 2
        assert torch.equal(a["mask"].long(), b["mask"])
    # on another CRS the classes stay classes (no interpolated values)
    warped = to_torchgeo_dataset(c.select_records(["C"]), bands="SCL", is_image=False,
                                 target_crs=32633, res=10)  # fmt: skip
    values = set(np.unique(warped[_queries(warped, n=2)[0]]["mask"].numpy()).tolist())
    assert values <= set(range(10))


def test_cross_crs_within_tolerance(scenes: dict) -> None:
    c = scenes["collection"].select_records(["C"])  # EPSG:32632
    ours = to_torchgeo_dataset(c, bands=["B1"], target_crs="EPSG:32633", res=10)
    theirs = _raster_dataset("C_*_B1.tif", bands=("B1",))(
        str(scenes["root"]), crs="EPSG:32633", res=10, bands=["B1"]
    )
    assert ours.crs == theirs.crs
    worst, means = 0.0, []
    for query in list(GridGeoSampler(theirs, size=64, stride=64)):
        a, b = ours[query]["image"].double(), theirs[query]["image"].double()
        both = (a[0] > 0) & (b[0] > 0)
        if not both.any():
            continue
        diff = (a - b).abs()[:, both]
        worst = max(worst, float(diff.max()))
        means.append(float(diff.mean()))
    assert len(means) > 10
    assert worst <= CROSS_CRS_MAX_DN and np.mean(means) <= CROSS_CRS_MEAN_DN, (worst, means)


def test_intersection_union_and_stack_samples(scenes: dict) -> None:
    c = scenes["collection"]
    image = to_torchgeo_dataset(c, bands=["B1", "B2"])  # A, B and C (reprojected)
    assert image.crs.to_epsg() == 32633  # the CRS most records are in; C is kept
    assert sorted(image.index["record_id"]) == ["A", "B", "C"]
    mask = to_torchgeo_dataset(c.select_records(["A", "B"]), bands="SCL", is_image=False)
    both = image & mask
    union = to_torchgeo_dataset(c.select_records(["A"]), bands="B1") | to_torchgeo_dataset(
        c.select_records(["B"]), bands="B1"
    )
    sampler = RandomGeoSampler(both, size=32, length=8, generator=torch.Generator().manual_seed(1))
    loader = DataLoader(both, sampler=sampler, batch_size=4, collate_fn=stack_samples)
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["image"].shape == (4, 2, 32, 32)
    assert batches[0]["mask"].shape == (4, 32, 32)
    query = next(iter(GridGeoSampler(union, size=32, stride=32)))
    assert union[query]["image"].shape == (1, 32, 32)


@pytest.mark.parametrize("label", [False, True])
def test_intersection_with_a_raster_dataset_in_both_orders(scenes: dict, label: bool) -> None:
    """Instant records compose with TorchGeo's right-closed time queries (issue 13.7)."""
    import pyarrow as pa

    table = scenes["collection"].table
    table = table.drop_columns([c for c in table.column_names if c == "label"])
    labelled = as_collection(table.append_column("label", pa.array([7, 8, 9])), name="l")
    ours = to_torchgeo_dataset(
        labelled.select_records(["A"]), bands="B1", label_field="label" if label else None
    )
    theirs = _raster_dataset("A_*_B2.tif", bands=("B2",))(
        str(scenes["root"]), crs="EPSG:32633", res=10
    )
    for both, first in ((ours & theirs, 0), (theirs & ours, 1)):
        generator = torch.Generator().manual_seed(3)
        queries = list(RandomGeoSampler(both, size=32, length=4, generator=generator))
        for query in queries:
            sample = both[query]
            assert sample["image"].shape == (2, 32, 32)
            np.testing.assert_array_equal(sample["image"][first], ours[query]["image"][0])
            if label:
                assert sample["label"].tolist() == [7]
        loader = DataLoader(both, sampler=queries, batch_size=2, collate_fn=stack_samples)
        batch = next(iter(loader))
        assert batch["image"].shape == (2, 2, 32, 32)
        if label:
            assert batch["label"].shape == (2, 1)


def test_pickles_small_by_reference(scenes: dict, tmp_path: Path) -> None:
    """300 records: the pickle carries the URI (+ index and labels), not the tile tables;
    an in-memory collection embeds its table and still unpickles."""
    import datetime as dt

    many = [
        {**r, "id": f"{r['id']}{k:03d}", "datetime": r["datetime"] + dt.timedelta(days=365 * k)}
        for k in range(100)
        for r in scenes["records"]
    ]
    stored = as_collection(make_table(many, BANDS)).export(tmp_path / "many.parquet")
    in_memory = as_collection(make_table(many, BANDS))
    assert in_memory.uri is None
    by_uri = to_torchgeo_dataset(stored, bands=["B1", "B2"], label_field="label")
    embedded = to_torchgeo_dataset(in_memory, bands=["B1", "B2"], label_field="label")
    payload, inline = pickle.dumps(by_uri), pickle.dumps(embedded)
    assert len(payload) < 64_000 and len(payload) * 4 < len(inline), (len(payload), len(inline))
    query = _queries(by_uri, n=1)[0]
    for blob, original in ((payload, by_uri), (inline, embedded)):
        clone = pickle.loads(blob)
        a, b = original[query], clone[query]
        assert torch.equal(a["image"], b["image"]) and a["label"] == b["label"]


def _train(loader: DataLoader) -> int:
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Conv2d(4, 1, 1))
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-6)
    steps = 0
    for batch in loader:
        image = batch["image"].float() / 3000.0
        loss = torch.nn.functional.mse_loss(model(image), image[:, :1])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        assert torch.isfinite(loss)
        steps += 1
    return steps


def _served_collection(tmp_path: Path, object_server):  # type: ignore[no-untyped-def]
    """The test scenes written under ``tmp_path`` and read over the object server."""
    records = write_scenes(tmp_path / "data")
    http = [
        record(
            r["id"],
            r["datetime"],
            {b: Path(r["assets"][b]["href"]) for b in ("B1", "B2")},
            href_of=lambda p: object_server.url_for(Path(p).relative_to(tmp_path)),
        )
        for r in records
    ]
    return as_collection(make_table(http, ("B1", "B2")))


@pytest.mark.parametrize(
    "context",
    ["fork", pytest.param("forkserver", marks=pytest.mark.slow)],  # a fresh server: ~15 s
)
def test_dataloader_workers_train(
    scenes: dict,
    tmp_path: Path,
    object_server,
    context: str,  # type: ignore[no-untyped-def]
) -> None:
    """fork: HTTP collection, obstore already used by the parent (children use the
    fork-safe transport); forkserver: the dataset is pickled to fresh processes (as with
    spawn) and its collection exists only in memory (the Arrow table travels as IPC)."""
    if context == "fork":
        collection = _served_collection(tmp_path, object_server)
    else:
        collection = scenes["collection"]
    dataset = to_torchgeo_dataset(collection, bands=["B1", "B2"])
    sampler = RandomGeoSampler(
        dataset, size=32, length=8, generator=torch.Generator().manual_seed(2)
    )
    first = dataset[next(iter(sampler))]  # the parent reads first (obstore now in use)
    assert first["image"].shape == (2, 32, 32)
    ctx = multiprocessing.get_context(context)
    if context == "forkserver":  # import torch once in the server, not in every worker
        ctx.set_forkserver_preload(["torch", "rasteret.integrations.torchgeo"])
    loader = DataLoader(
        dataset,
        sampler=sampler,
        batch_size=2,
        num_workers=2,
        collate_fn=stack_samples,
        multiprocessing_context=ctx,
        timeout=120,  # a hung worker fails the test instead of hanging it
    )
    assert _train(loader) == 4
    if context == "fork":
        assert all(r.start != 0 for r in object_server.log)  # workers read no headers
    assert isinstance(dataset, RasteretGeoDataset)


def test_a_batch_reads_its_samples_together(tmp_path: Path, object_server) -> None:  # type: ignore[no-untyped-def]
    """``__getitems__`` (what a DataLoader calls per batch): the samples equal
    ``dataset[i]`` one by one, and their requests overlap at the object server (a batch
    costs about one round trip, not one per sample)."""
    dataset = to_torchgeo_dataset(_served_collection(tmp_path, object_server), bands=["B1"])
    queries = list(
        RandomGeoSampler(dataset, size=32, length=8, generator=torch.Generator().manual_seed(5))
    )
    object_server.latency = 0.05
    try:
        object_server.reset()
        one_by_one = [dataset[q] for q in queries]
        alone = object_server.max_in_flight
        object_server.reset()
        loader = DataLoader(dataset, sampler=queries, batch_size=8, collate_fn=list)
        (batch,) = list(loader)
        together = object_server.max_in_flight
    finally:
        object_server.latency = 0.0
    assert len(batch) == 8
    for got, expected in zip(batch, one_by_one, strict=True):
        assert torch.equal(got["image"], expected["image"])
        assert torch.equal(got["bounds"], expected["bounds"])
    assert alone == 1 and together > 1, (alone, together)
