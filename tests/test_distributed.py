"""dask.distributed: the xarray engine's arrays compute on a ``LocalCluster`` of worker
processes, workers read no headers, a store's fetch settings travel with it (never
changing a worker's default reader), and
the graph of a 1,000-scene collection stays small (the store travels by reference)."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import pytest
import xarray as xr

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

from _testcollections import make_table, record  # noqa: E402
from rasteret import as_collection  # noqa: E402
from rasteret.fetch import FetchConfig, RangeReader, configure, default_reader  # noqa: E402
from rasteret.samples import make_sentinel2_like  # noqa: E402
from rasteret.testing.objserver import ObjectServer  # noqa: E402

#: Bound on the pickled dask array (graph + store reference) of a 1,000-scene collection.
GRAPH_BYTES_1000_SCENES = 20_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("distributed")
    data = root / "data"
    records = make_sentinel2_like(
        data, scenes=4, size=512, bands=("B04", "SCL"), zones=(32633,), tile=256, overviews=()
    )
    with ObjectServer(data) as server:
        rows = [
            record(
                r["id"],
                r["datetime"],
                {b: Path(h) for b, h in r["hrefs"].items()},
                href_of=lambda p: server.url_for(Path(p).resolve().relative_to(data.resolve())),
            )
            for r in records
        ]
        stored = as_collection(make_table(rows, ("B04", "SCL"))).export(root / "s2.parquet")
        yield server, stored, rows


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_cluster_compute_equals_local_without_header_reads(served, client) -> None:  # type: ignore[no-untyped-def]
    server, stored, _ = served
    ds = xr.open_dataset(stored.uri, engine="rasteret", chunks={})
    local = ds["B04"].astype("float64").mean("time").compute(scheduler="sync")
    series = ds["SCL"].max(("y", "x")).compute(scheduler="sync")
    server.reset()
    remote = client.compute(ds["B04"].astype("float64").mean("time")).result()
    remote_series = client.compute(ds["SCL"].max(("y", "x"))).result()
    xr.testing.assert_identical(remote, local)
    xr.testing.assert_identical(remote_series, series)
    assert server.requests > 0  # the workers read the tiles ...
    assert all(r.start not in (0, None) for r in server.log)  # ... and never a header
    assert {r.method for r in server.log} == {"GET"}  # no HEAD either


def worker_settings(store, url: str) -> tuple:  # type: ignore[no-untyped-def]
    """Runs on a worker after it unpickled ``store``: the settings the store reads with,
    and whether the worker's own default reader still has its environment's settings."""
    config = store.reader.config
    own_default = default_reader().config == FetchConfig.from_env()
    return (config.max_in_flight, config.coalesce_gap, config.store_options(url), own_default)


def configure_worker(config: FetchConfig) -> None:
    configure(config)


def test_fetch_settings_reach_workers(served, client) -> None:  # type: ignore[no-untyped-def]
    server, stored, _ = served
    from rasteret.store import open_store

    settings = FetchConfig.from_env().with_(
        max_in_flight=7,
        coalesce_gap=123_456,
        stores={server.url: {"client_options": {"timeout": "20s"}}},
    )
    store = open_store(stored, ["B04"], reader=RangeReader(settings))
    found = client.submit(worker_settings, store, server.url, pure=False).result()
    # the store's settings travel with it; the worker's default reader is left alone
    assert found == (7, 123_456, settings.store_options(server.url), True)
    # a store with the default settings reads with the worker's own default reader
    plain = open_store(stored, ["B04"])
    own = FetchConfig.from_env().with_(max_in_flight=3)
    client.run(configure_worker, own)
    try:
        found_plain = client.submit(worker_settings, plain, server.url, pure=False).result()
        found = client.submit(worker_settings, store, server.url, pure=False).result()
    finally:
        client.run(configure_worker, FetchConfig.from_env())
    assert found_plain[0] == 3
    assert found[:2] == (7, 123_456)  # explicit settings win over the worker's default


def test_settings_configured_before_opening_travel(served, client) -> None:  # type: ignore[no-untyped-def]
    server, stored, _ = served
    from rasteret.store import open_store

    configure(FetchConfig.from_env().with_(max_in_flight=5))
    try:
        store = open_store(stored, ["SCL"])  # takes the default reader once, now
    finally:
        configure(FetchConfig.from_env())
    assert store.reader.config.max_in_flight == 5
    found = client.submit(worker_settings, store, server.url, pure=False).result()
    assert found[0] == 5 and found[3] is True


def test_graph_of_1000_scenes_is_small(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, rows = served
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    many = [
        {**rows[0], "id": f"scene{k:04d}", "datetime": start + dt.timedelta(days=k)}
        for k in range(1000)
    ]
    collection = as_collection(make_table(many, ("B04", "SCL")))
    stored = collection.export(tmp_path / "many.parquet")
    ds = xr.open_dataset(stored.uri, engine="rasteret", chunks={})
    assert ds.sizes["time"] == 1000
    array = ds["B04"].data
    graph_bytes = len(pickle.dumps(array))
    materialised = len(pickle.dumps(dict(array.__dask_graph__())))
    # what the graph would carry if the store embedded its index instead of the URI
    from rasteret.store.reference import _embed

    embedded = len(_embed(collection.table, ("B04",)))
    print(
        f"1000 scenes: pickled array {graph_bytes} B, materialised graph {materialised} B, "
        f"embedded index {embedded} B"
    )
    assert graph_bytes < GRAPH_BYTES_1000_SCENES, graph_bytes
    assert materialised < GRAPH_BYTES_1000_SCENES, materialised
    assert graph_bytes * 5 < embedded


def test_build_on_a_cluster_equals_the_local_build(
    served, client, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """#15: a file build's header fetches run on the workers, part by part; the merged
    collection equals the one built in this process."""
    import rasteret.ingest.checkpoint as checkpoint
    from rasteret.ingest import build_from_files

    server, _, rows = served
    urls = [a["href"] for r in rows for a in r["assets"].values()]
    monkeypatch.setattr(checkpoint, "PART_RECORDS", 3)  # several parts (8 files)

    def group(url: str) -> tuple[str, str]:
        return next((r["id"], b) for r in rows for b, a in r["assets"].items() if a["href"] == url)

    server.reset()
    on_cluster = build_from_files(
        urls, name="cluster", workspace_dir=tmp_path, group_by=group, client=client
    )
    cluster_requests = server.requests
    local = build_from_files(urls, name="local", workspace_dir=tmp_path, group_by=group)
    assert cluster_requests == len(urls)  # one header GET per file, on the workers
    assert on_cluster.record_ids == local.record_ids
    for band in ("B04", "SCL"):
        strip = [
            {k: v for k, v in m.items() if k != "last_modified"}
            for m in on_cluster.table[f"{band}_metadata"].to_pylist()
        ]
        assert strip == [
            {k: v for k, v in m.items() if k != "last_modified"}
            for m in local.table[f"{band}_metadata"].to_pylist()
        ]
