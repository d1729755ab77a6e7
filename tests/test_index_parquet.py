"""Export / load round trips, GeoParquet metadata, partition replacement, load errors."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from index_tables import make_table, sample_records
from rasteret import Collection, as_collection, load
from rasteret.errors import CollectionSchemaError
from rasteret.index import COLLECTION_VERSION


def _collection() -> Collection:
    return as_collection(
        make_table(sample_records()),
        name="demo",
        data_source="test-source",
        description="six records",
    )


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _assert_same_records(loaded: pa.Table, original: pa.Table) -> None:
    assert loaded.column_names == original.column_names
    for name in original.column_names:
        assert loaded.schema.field(name).type.equals(original.schema.field(name).type), name
    assert loaded.sort_by("id").equals(original.sort_by("id"))


@pytest.mark.parametrize("target", ["single.parquet", "partitioned"])
def test_round_trip_preserves_every_column_type_and_value(tmp_path: Path, target: str) -> None:
    collection = _collection()
    path = tmp_path / target
    assert collection.export(path) is collection
    assert collection.uri == os.fspath(path)
    loaded = load(path)
    _assert_same_records(loaded.table, collection.table)
    assert (loaded.name, loaded.data_source, loaded.description) == (
        "demo",
        "test-source",
        "six records",
    )
    assert loaded.uri == os.fspath(path)
    assert loaded.fingerprint == collection.fingerprint
    assert loaded.bands == ["B04", "B08"]
    mine, theirs = (c.select_records(["r3"]).band_levels("B08")[0] for c in (loaded, collection))
    assert mine.full.offsets.tolist() == theirs.full.offsets.tolist()
    assert mine.overviews[1].byte_counts.tolist() == theirs.overviews[1].byte_counts.tolist()


def test_partitioned_layout_and_schema_metadata(tmp_path: Path) -> None:
    path = tmp_path / "demo_records"
    _collection().export(path)
    assert _files(path) == [
        "year=2023/month=12/part-0.parquet",
        "year=2024/month=1/part-0.parquet",
        "year=2024/month=2/part-0.parquet",
        "year=2024/month=3/part-0.parquet",
    ]
    file = path / "year=2024/month=1/part-0.parquet"
    parquet_meta = pq.ParquetFile(file).metadata
    assert parquet_meta.row_group(0).column(0).compression == "ZSTD"
    schema = pq.read_schema(file)
    assert "year" not in schema.names and "month" not in schema.names
    meta = {k.decode(): v.decode() for k, v in schema.metadata.items()}
    for key in ("name", "data_source", "description", "date_range", "created", "geo"):
        assert key in meta
    assert meta["rasteret_collection_version"] == COLLECTION_VERSION
    assert meta["date_range"] == "2023-12-31T23:00:00,2024-03-01T00:00:00"
    assert dt.datetime.fromisoformat(meta["created"]).tzinfo is not None
    # partitions come back in calendar order (month=2 before month=10 style ordering)
    assert load(path).record_ids == ["r5", "r0", "r1", "r2", "r3", "r4"]


def test_geoparquet_geo_metadata_follows_spec_1_1(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    collection = _collection()
    collection.export(path)
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    assert geo["version"] == "1.1.0"
    assert geo["primary_column"] == "geometry"
    column = geo["columns"]["geometry"]
    assert column["encoding"] == "WKB"
    assert column["geometry_types"] == ["Polygon"]
    assert "crs" not in column  # absent means OGC:CRS84
    assert column["covering"] == {
        "bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}
    }
    assert column["bbox"] == list(collection.bounds)
    # the covering agrees with the geometries
    table = pq.read_table(path)
    for wkb, box in zip(table["geometry"].to_pylist(), table["bbox"].to_pylist(), strict=True):
        assert shapely.from_wkb(wkb).bounds == tuple(box.values())


def test_mixed_geometry_types_are_listed(tmp_path: Path) -> None:
    table = make_table(sample_records()[:2])
    multi = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)]).wkb
    table = table.set_column(2, "geometry", pa.array([multi, table["geometry"][1].as_py()]))
    as_collection(table).export(tmp_path / "m.parquet")
    geo = json.loads(pq.read_schema(tmp_path / "m.parquet").metadata[b"geo"])
    assert geo["columns"]["geometry"]["geometry_types"] == ["MultiPolygon", "Polygon"]


def test_second_export_replaces_all_previous_partitions(tmp_path: Path) -> None:
    path = tmp_path / "cache_stac"
    _collection().export(path)
    assert len(_files(path)) == 4
    newer = make_table([{**sample_records()[0], "id": "only", "datetime": dt.datetime(2025, 6, 1)}])
    as_collection(newer, name="demo").export(path)
    assert _files(path) == ["year=2025/month=6/part-0.parquet"]
    reloaded = load(path)
    assert reloaded.record_ids == ["only"]
    assert reloaded.name == "demo"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_export_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    path = tmp_path / "precious"
    path.mkdir()
    (path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="precious"):
        _collection().export(path)
    assert (path / "notes.txt").read_text() == "keep me"


def test_user_year_month_columns_survive_typed(tmp_path: Path) -> None:
    table = make_table(sample_records())
    table = table.append_column("year", pa.array([1, 1, 2, 2, 3, 3], pa.int16()))
    table = table.append_column("month", pa.array(["a", "b", "a", "b", "a", "b"]))
    path = tmp_path / "custom"
    as_collection(table).export(path)
    assert (path / "year=1" / "month=a").is_dir()
    _assert_same_records(load(path).table, table)


def test_loading_a_plain_hive_directory_types_partition_columns(tmp_path: Path) -> None:
    """A directory written by other tools (no rasteret metadata) still loads."""
    table = make_table(sample_records()).append_column(
        "year", pa.array([2024, 2024, 2024, 2024, 2024, 2023], pa.int32())
    )
    pq.write_to_dataset(table, tmp_path / "foreign", partition_cols=["year"])
    loaded = load(tmp_path / "foreign")
    assert loaded.table.schema.field("year").type == pa.int32()
    assert sorted(loaded.record_ids) == sorted(table["id"].to_pylist())
    assert loaded.name == "foreign"


def test_load_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nothing_here"
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        load(missing)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty_dir"):
        load(empty)
    bad = tmp_path / "bad.parquet"
    pq.write_table(make_table(sample_records()).drop_columns(["assets", "bbox"]), bad)
    with pytest.raises(CollectionSchemaError) as info:
        load(bad)
    message = str(info.value)
    assert str(bad) in message
    assert "missing required columns: ['assets', 'bbox']" in message


def test_name_defaults_to_directory_stem_without_suffix(tmp_path: Path) -> None:
    collection = as_collection(make_table(sample_records()))  # no name
    collection.export(tmp_path / "bangalore_records")
    assert load(tmp_path / "bangalore_records").name == "bangalore"
    assert load(tmp_path / "bangalore_records", name="other").name == "other"


def test_fingerprint_tracks_files_and_selection(tmp_path: Path) -> None:
    path = tmp_path / "fp"
    _collection().export(path)
    first = load(path)
    again = load(path)
    assert first.fingerprint == again.fingerprint
    assert first.subset(split="val").fingerprint == again.subset(split="val").fingerprint
    assert first.subset(split="val").fingerprint != first.fingerprint
    _collection().export(path)  # same content, rewritten files: a new stamp
    assert load(path).fingerprint != first.fingerprint
    assert len(first.fingerprint) == 16
