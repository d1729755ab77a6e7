"""Exports are written month, then place, then time (rasteret.index.ordering), so a
selection of one place over a few months reads about one row group per month; loaded
collections still list their records in time order (issue 15)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import rasteret
import rasteret.index.parquet_write as parquet_write
from index_tables import make_table
from rasteret.index.ordering import hilbert_index, sort_records

PLACES = 8  # an 8 x 8 grid of footprints, 2 degrees apart
MONTHS = 4
PER_PLACE_MONTH = 5
ROWS_PER_GROUP = 64


def _records() -> list[dict]:
    records = []
    for month in range(MONTHS):
        for visit in range(PER_PLACE_MONTH):
            for place in range(PLACES * PLACES):
                day = 1 + visit * 5 + place % 5  # places interleaved in time
                col, row = place % PLACES, place // PLACES
                x, y = 10.0 + 2 * col, 40.0 + 2 * row
                records.append(
                    {
                        "id": f"p{place:02d}-m{month}-v{visit}",
                        "datetime": dt.datetime(2021, 1 + month, day, 10, place % 60),
                        "bbox": (x, y, x + 1.0, y + 1.0),
                    }
                )
    return records


@pytest.fixture(scope="module")
def table():
    return make_table(_records(), bands=("B04",))


def _groups_read(path: Path, expression) -> int:  # type: ignore[no-untyped-def]
    """Row groups Arrow's statistics cannot rule out for ``expression``."""
    fragments = ds.dataset(path).get_fragments()
    return sum(len(f.split_by_row_group(expression)) for f in fragments)


def test_hilbert_index_is_a_continuous_curve() -> None:
    order = 4
    side = 1 << order
    x, y = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    d = hilbert_index(x.ravel(), y.ravel(), order=order)
    assert sorted(d.tolist()) == list(range(side * side))  # every cell once
    walk = np.argsort(d)
    steps = np.abs(np.diff(x.ravel()[walk])) + np.abs(np.diff(y.ravel()[walk]))
    assert (steps == 1).all()  # each step of the curve moves to a neighbouring cell


def test_one_place_over_two_months_reads_about_a_row_group_per_month(
    table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet_write, "ROW_GROUP_SIZE", ROWS_PER_GROUP)
    path = tmp_path / "ordered.parquet"
    rasteret.as_collection(table, name="ordered").export(path)
    groups = pq.ParquetFile(path).metadata.num_row_groups
    assert groups == len(table) // ROWS_PER_GROUP

    bbox = (12.2, 42.2, 12.8, 42.8)  # inside the footprint of place (col 1, row 1)
    window = ("2021-02-01", "2021-03-31")
    selected = rasteret.load(path).subset(bbox=bbox, date_range=window)
    expected = rasteret.as_collection(table).subset(bbox=bbox, date_range=window)
    assert len(selected) == 2 * PER_PLACE_MONTH
    assert selected.record_ids == expected.record_ids  # same records, time order
    times = selected.datetimes.tolist()
    assert times == sorted(times)

    expression = selected.stored_selection.filter
    ordered = _groups_read(path, expression)
    assert ordered <= 4  # two months: one row group each, two if a run straddles

    # the same rows sorted by time alone: every row group of those months matches
    by_time = tmp_path / "by_time.parquet"
    pq.write_table(
        table.sort_by([("datetime", "ascending"), ("id", "ascending")]),
        by_time,
        row_group_size=ROWS_PER_GROUP,
    )
    month_groups = PLACES * PLACES * PER_PLACE_MONTH // ROWS_PER_GROUP
    assert _groups_read(by_time, expression) == 2 * month_groups  # 10, against <= 4


def test_disk_order_is_month_place_time_and_loaded_order_is_time(table, tmp_path: Path) -> None:
    hive = tmp_path / "hive"
    rasteret.as_collection(table, name="hive").export(hive)
    files = sorted(hive.rglob("*.parquet"))
    assert len(files) == MONTHS  # one year=/month= partition each
    for file in files:
        ids = pq.read_table(file, columns=["id"])["id"].to_pylist()
        places = [int(i[1:3]) for i in ids]
        # each place's records are one run (a place is never revisited in the file)
        runs = [p for k, p in enumerate(places) if k == 0 or places[k - 1] != p]
        assert sorted(runs) == list(range(PLACES * PLACES))

    loaded = rasteret.load(hive)
    in_time = table.sort_by([("datetime", "ascending"), ("id", "ascending")])
    assert loaded.record_ids == in_time["id"].to_pylist()
    assert loaded.table["id"].to_pylist() == loaded.record_ids  # every read, same order
    assert loaded.head(3)["id"].to_pylist() == loaded.record_ids[:3]
    assert loaded.head(3, columns=["datetime"]).num_columns == 1


def test_records_without_time_or_place_come_last(table) -> None:
    import pyarrow as pa

    rows = table.slice(0, 6)
    datetimes = rows["datetime"].to_pylist()
    datetimes[0] = None
    rows = rows.set_column(
        rows.schema.get_field_index("datetime"),
        "datetime",
        pa.array(datetimes, rows.schema.field("datetime").type),
    )
    bboxes = rows["bbox"].to_pylist()
    bboxes[1] = None
    rows = rows.set_column(
        rows.schema.get_field_index("bbox"),
        "bbox",
        pa.array(bboxes, rows.schema.field("bbox").type),
    )
    ids = sort_records(rows)["id"].to_pylist()
    assert ids[-1] == rows["id"][0].as_py()  # no datetime: last
    assert ids[-2] == rows["id"][1].as_py()  # no bbox: last of its month


def test_streaming_export_writes_the_same_order_as_an_in_memory_one(
    table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rasteret.index.lazy as lazy

    whole = tmp_path / "whole.parquet"
    rasteret.as_collection(table, name="whole").export(whole)
    monkeypatch.setattr(lazy, "PART_ROWS", 50)  # 26 parts of a loaded collection
    streamed = tmp_path / "streamed.parquet"
    loaded = rasteret.load(whole)
    loaded.export(streamed)
    disk = [pq.read_table(p, columns=["id"])["id"].to_pylist() for p in (whole, streamed)]
    assert disk[0] == disk[1] and len(disk[0]) == len(table)


def test_streaming_partitioned_export_writes_one_file_per_month(
    table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rasteret.index.lazy as lazy

    whole = tmp_path / "whole.parquet"
    rasteret.as_collection(table, name="whole").export(whole)
    monkeypatch.setattr(lazy, "PART_ROWS", 50)  # 26 parts, most within one month
    monkeypatch.setattr(parquet_write, "ROW_GROUP_SIZE", ROWS_PER_GROUP)
    hive = tmp_path / "hive"
    rasteret.load(whole).export(hive)
    files = sorted(hive.rglob("*.parquet"))
    assert [f.name for f in files] == ["part-0.parquet"] * MONTHS  # not one per part
    for file in files:  # row groups of the usual size, not one per part
        rows = [
            pq.ParquetFile(file).metadata.row_group(k).num_rows
            for k in range(pq.ParquetFile(file).metadata.num_row_groups)
        ]
        assert rows[:-1] == [ROWS_PER_GROUP] * (len(rows) - 1)
    again = rasteret.load(hive)
    assert again.record_ids == rasteret.load(whole).record_ids
    assert again.table.equals(rasteret.load(whole).table)
