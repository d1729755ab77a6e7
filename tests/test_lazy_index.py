"""A loaded collection reads nothing but its schema; filters are pushed down to the files
and only the selected rows are read (issue 15). Bytes read are counted by the kernel
(``/proc/self/io`` ``rchar``: every ``read``/``pread`` of this process)."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import xarray as xr

import rasteret
from index_tables import make_table
from rasteret.errors import CollectionSchemaError

RECORDS = 4000
START = dt.datetime(2019, 1, 1, 10, 0)


def _records(n: int) -> list[dict]:
    return [
        {
            "id": f"s{k:05d}",
            "datetime": START + dt.timedelta(hours=k),  # 4000 h: Jan-Jun 2019
            "bbox": (10.0 + (k % 50) * 0.1, 45.0, 10.5 + (k % 50) * 0.1, 45.5),
            "eo:cloud_cover": float(k % 100),
            "split": ("train", "val", "test")[k % 3],
        }
        for k in range(n)
    ]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("lazy")
    table = make_table(_records(RECORDS))
    collection = rasteret.as_collection(table, name="big")
    hive = root / "big_records"
    single = root / "big.parquet"
    rasteret.as_collection(table, name="big").export(hive)
    collection.export(single)
    return {"table": table, "hive": hive, "single": single}


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.rglob("*.parquet"))


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in _files(path))


def _footers(path: Path) -> int:
    """What reading only the files' footers costs: Arrow reads the last 64 KiB first."""
    total = 0
    for f in _files(path):
        footer = pq.ParquetFile(f).metadata.serialized_size + 8
        total += min(f.stat().st_size, max(64 * 1024, footer) + 4096)
    return total


pytestmark = pytest.mark.skipif(
    not Path("/proc/self/io").exists(), reason="counts bytes read with /proc/self/io (Linux)"
)


@pytest.mark.parametrize("layout", ["hive", "single"])
def test_load_len_and_bands_read_no_rows(exported, layout) -> None:
    path = exported[layout]
    len(rasteret.load(path))  # warm-up: first imports read modules (rchar counts them)
    before = _rchar()
    collection = rasteret.load(path)
    assert len(collection) == RECORDS and collection.bands == ["B04", "B08"]
    assert not collection.is_read
    read = _rchar() - before
    assert read <= _footers(path), (read, _footers(path), _size(path))


@pytest.mark.parametrize("layout", ["hive", "single"])
def test_subset_reads_only_what_it_selects(exported, layout) -> None:
    path = exported[layout]
    collection = rasteret.load(path)
    before = _rchar()
    week = collection.subset(date_range=("2019-03-01", "2019-03-07"), split="train")
    assert not week.is_read
    table = week.table  # the selected rows, read and validated now
    read = _rchar() - before
    expected = exported["table"].filter(
        (pc.field("datetime") >= dt.datetime(2019, 3, 1))
        & (pc.field("datetime") < dt.datetime(2019, 3, 8))
        & (pc.field("split") == "train")
    )
    assert sorted(table["id"].to_pylist()) == sorted(expected["id"].to_pylist())
    assert 0 < table.num_rows < 60
    # hive: partition pruning (one month of six); one file: row-group statistics of the
    # sorted datetime column cannot help with one row group, so columns are all it saves
    limit = 0.3 if layout == "hive" else 1.1
    assert read < limit * _size(path), (read, _size(path))


def test_band_selection_reads_only_its_columns(exported) -> None:
    collection = rasteret.load(exported["hive"])
    one = collection.select_bands(["B04"]).subset(date_range=("2019-04-01", "2019-04-30"))
    assert "B08_metadata" not in one.schema.names
    assert "B08_metadata" not in one.table.column_names and one.bands == ["B04"]


def test_reading_some_bands_reads_only_their_columns(exported) -> None:
    """The surfaces' ``bands=`` narrow a selection not read yet to those bands' columns
    (no ``select_bands`` needed): one band of two reads about half the bytes."""
    collection = rasteret.load(exported["single"])
    window = ("2019-03-01", "2019-03-31")
    xr.open_dataset(collection.subset(date_range=window), engine="rasteret", bands=["B04"])
    reads = {}
    for bands in (["B04"], ["B04", "B08"]):
        selection = rasteret.load(exported["single"]).subset(date_range=window)
        before = _rchar()
        xr.open_dataset(selection, engine="rasteret", bands=bands)
        reads[len(bands)] = _rchar() - before
        assert selection.is_read == (len(bands) == 2)  # one band: a narrowed view was read
    assert reads[1] < 0.7 * reads[2]


def test_open_dataset_and_pickle_follow_the_selection(exported) -> None:
    collection = rasteret.load(exported["hive"])
    warm = collection.subset(date_range=("2019-05-01", "2019-05-02"))
    xr.open_dataset(warm, engine="rasteret", bands=["B04"])  # imports (rchar counts them)
    month = collection.subset(date_range=("2019-02-01", "2019-02-03"))
    before = _rchar()
    ds = xr.open_dataset(month, engine="rasteret", bands=["B04"])
    read = _rchar() - before
    assert ds.sizes["time"] == len(month) > 0
    assert read < 0.3 * _size(exported["hive"])
    from rasteret.store import open_store

    store = open_store(month, ["B04"])
    blob = pickle.dumps(store)
    assert len(blob) < 4000  # the files' stamp and the filter, not the records
    assert pickle.loads(blob).token == store.token


def test_row_problems_are_reported_when_the_rows_are_read(tmp_path) -> None:
    table = make_table(_records(20))
    column = table["B04_metadata"].combine_chunks()
    rows = column.to_pylist()
    rows[7]["tile_offsets"] = rows[7]["tile_offsets"][:3]  # shorter than the grid needs
    table = table.set_column(
        table.column_names.index("B04_metadata"), "B04_metadata", pa.array(rows, column.type)
    )
    path = tmp_path / "broken.parquet"
    pq.write_table(table, path)
    collection = rasteret.load(path)  # the schema is fine: nothing else is read
    fine = collection.where(pc.field("id") != "s00007")
    assert len(fine.table) == 19  # the other rows are valid
    with pytest.raises(CollectionSchemaError, match=str(path)) as info:
        collection.table  # noqa: B018
    assert "s00007" in str(info.value)


def test_lazy_view_matches_an_eager_one(exported) -> None:
    lazy = rasteret.load(exported["single"]).subset(bbox=(10.0, 45.0, 10.6, 46.0))
    eager = rasteret.as_collection(exported["table"]).subset(bbox=(10.0, 45.0, 10.6, 46.0))
    assert lazy.record_ids == eager.record_ids
    assert lazy.date_range == eager.date_range and lazy.bounds == eager.bounds
    assert os.fspath(lazy.uri) == os.fspath(exported["single"])


def test_export_of_a_table_from_many_appends_is_well_formed(tmp_path) -> None:
    table = make_table(_records(2000))
    pieces = pa.concat_tables([table.slice(k, 10) for k in range(0, 2000, 10)])  # 200 chunks
    assert pieces.column("id").num_chunks == 200
    shuffled = pieces.take(pa.array(list(range(1999, -1, -1))))  # newest first
    single = rasteret.as_collection(shuffled, name="appends").export(tmp_path / "a.parquet")
    metadata = pq.ParquetFile(tmp_path / "a.parquet").metadata
    assert metadata.num_row_groups == 1  # not 200
    on_disk = pq.read_table(tmp_path / "a.parquet", columns=["datetime", "bbox"])
    months = [(t.year, t.month) for t in on_disk["datetime"].to_pylist()]
    assert months == sorted(months)  # month, then place, for pruning (test_export_order)
    times = rasteret.load(tmp_path / "a.parquet").datetimes.tolist()
    assert times == sorted(times)  # listed in time order once loaded
    columns = {
        metadata.row_group(0).column(i).path_in_schema: i for i in range(metadata.num_columns)
    }
    stats = metadata.row_group(0).column(columns["datetime"])
    assert stats.is_stats_set
    assert not metadata.row_group(0).column(columns["B04_metadata.crs_wkt"]).is_stats_set
    single.export(tmp_path / "hive")
    for path in (tmp_path / "hive").rglob("*.parquet"):
        assert pq.ParquetFile(path).metadata.num_row_groups == 1
    again = rasteret.load(tmp_path / "hive")
    assert sorted(again.record_ids) == sorted(table["id"].to_pylist())


@pytest.mark.parametrize(("source", "target"), [("hive", "out.parquet"), ("single", "out_dir")])
def test_export_of_a_loaded_collection_streams_in_parts(
    exported, tmp_path, source, target, monkeypatch
):
    import rasteret.index.lazy

    monkeypatch.setattr(rasteret.index.lazy, "PART_ROWS", 97)  # many parts, not one
    loaded = rasteret.load(exported[source]).select_bands(["B04"])
    spring = loaded.subset(date_range=("2019-03-01", "2019-05-31"))
    expected_ids = sorted(spring.record_ids)
    spring.export(tmp_path / target)  # a part at a time: the rows are never all in memory
    assert not spring.is_read
    again = rasteret.load(tmp_path / target)
    assert sorted(again.record_ids) == expected_ids and again.bands == ["B04"]
    eager = rasteret.as_collection(exported["table"]).select_records(expected_ids)
    by_id = dict(zip(eager.record_ids, eager.table["B04_metadata"].to_pylist(), strict=True))
    for rid, meta in zip(again.record_ids, again.table["B04_metadata"].to_pylist(), strict=True):
        assert meta["tile_offsets"] == by_id[rid]["tile_offsets"]
    times = again.table["datetime"].to_pylist()
    if target.endswith(".parquet"):
        assert times == sorted(times)


def test_a_rebuilt_collection_read_through_an_old_load_is_stale(tmp_path) -> None:
    """Rows are read after load(): files replaced meanwhile raise StaleIndexError naming
    the path and the fix, never a raw FileNotFoundError (#14)."""
    from rasteret.errors import StaleIndexError

    table = make_table(_records(40))
    rasteret.as_collection(table, name="r").export(tmp_path / "r_records")
    old = rasteret.load(tmp_path / "r_records")
    rasteret.as_collection(table.slice(0, 20), name="r").export(tmp_path / "r_records")
    with pytest.raises(StaleIndexError, match="load it again") as info:
        old.table  # noqa: B018
    assert str(tmp_path / "r_records") in str(info.value)
    assert len(rasteret.load(tmp_path / "r_records").table) == 20


def test_leftovers_of_a_killed_export_are_cleaned_at_the_next_export(tmp_path) -> None:
    """``kill -9`` during an export leaves ``.tmp-`` / ``.old-`` copies (#14): the next
    export there removes the old ones and leaves a fresh one (maybe another export's)."""
    table = make_table(_records(10))
    stale_dir = tmp_path / ".c_records.tmp-deadbeef"
    stale_old = tmp_path / ".c_records.old-cafebabe"
    stale_file = tmp_path / ".c.parquet.tmp-0badf00d"
    fresh = tmp_path / ".c_records.tmp-12345678"
    for path in (stale_dir, stale_old, fresh):
        (path / "year=2019" / "month=1").mkdir(parents=True)
        (path / "year=2019" / "month=1" / "part-0.parquet").write_bytes(b"partial")
    stale_file.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    for path in (stale_dir, stale_old, stale_file):
        os.utime(path, (hour_ago, hour_ago))
    rasteret.as_collection(table, name="c").export(tmp_path / "c_records")
    rasteret.as_collection(table, name="c").export(tmp_path / "c.parquet")
    assert not stale_dir.exists() and not stale_old.exists() and not stale_file.exists()
    assert fresh.exists()
    assert len(rasteret.load(tmp_path / "c_records")) == 10


def test_readers_racing_a_rebuild_see_the_old_or_the_new_collection(tmp_path) -> None:
    """#14: while a rebuild swaps the export in and out, a reader loading it in a loop
    opens the old or the new collection — never a FileNotFoundError, never a mix — and
    reads it, or (when a swap came between its load and its read) gets StaleIndexError
    saying to load it again."""
    import threading
    from collections import Counter

    from rasteret.errors import StaleIndexError

    small, large = make_table(_records(40)), make_table(_records(1000))  # 1 vs 2 months
    ids = {len(t): sorted(t["id"].to_pylist()) for t in (small, large)}
    target = tmp_path / "r_records"
    rasteret.as_collection(small, name="r").export(target)
    done = threading.Event()

    def rebuild() -> None:
        try:
            for k in range(40):
                rasteret.as_collection(large if k % 2 == 0 else small, name="r").export(target)
        finally:
            done.set()

    seen: Counter[str] = Counter()
    writer = threading.Thread(target=rebuild)
    writer.start()
    try:
        while not done.is_set() or not seen:
            collection = rasteret.load(target)
            assert len(collection) in ids  # the footers of one whole export
            try:
                table = collection.table
            except StaleIndexError as exc:
                assert "load it again" in str(exc)
                seen["stale"] += 1
                continue
            assert sorted(table["id"].to_pylist()) == ids[len(collection)]
            seen[str(len(collection))] += 1
    finally:
        writer.join()
    assert seen["40"] + seen["1000"] > 0, seen
