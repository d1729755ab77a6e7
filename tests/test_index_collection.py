"""Collection: filters, selections, summaries, Arrow access."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import shapely

from index_tables import make_table, sample_records
from rasteret import Collection, as_collection
from rasteret.errors import BandNotFoundError


@pytest.fixture
def collection() -> Collection:
    return as_collection(make_table(sample_records()), name="demo", data_source="test-src")


def ids(c: Collection) -> list[str]:
    return sorted(c.record_ids)


# ---------------------------------------------------------------- date ranges


@pytest.mark.parametrize(
    "end",
    [
        "2024-01-31",
        dt.date(2024, 1, 31),
        dt.datetime(2024, 1, 31),
        pd.Timestamp("2024-01-31"),
        np.datetime64("2024-01-31"),
        "2024-01",
    ],
)
def test_date_range_includes_the_whole_end_day(collection: Collection, end: object) -> None:
    # r1 is at 2024-01-31T15:00, r2 at 2024-02-01T00:00 (the next day)
    assert ids(collection.subset(date_range=("2024-01-01", end))) == ["r0", "r1"]


def test_date_range_with_an_explicit_end_time_is_an_inclusive_instant(collection: Collection):
    assert ids(collection.subset(date_range=("2024-01-01", "2024-01-31T15:00:00"))) == [
        "r0",
        "r1",
    ]
    assert ids(collection.subset(date_range=("2024-01-01", "2024-01-31T14:59:59"))) == ["r0"]
    # timezone-aware bounds are converted to UTC: 16:00+01:00 is 15:00Z
    aware = dt.datetime(2024, 1, 31, 16, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert ids(collection.subset(date_range=(dt.date(2024, 1, 2), aware))) == ["r1"]
    # the end instant of a day-long end: 23:59:59.999999 is still inside
    assert ids(collection.subset(date_range=("2024-02-15", "2024-02-15"))) == ["r3"]
    assert ids(collection.subset(date_range=("2024", "2024"))) == ["r0", "r1", "r2", "r3", "r4"]


def test_date_range_on_a_timezone_aware_column(collection: Collection) -> None:
    table = collection.table
    aware = table.set_column(
        table.schema.get_field_index("datetime"),
        "datetime",
        table["datetime"].cast(pa.timestamp("us", tz="UTC")),
    )
    c = as_collection(aware)
    assert ids(c.subset(date_range=("2024-01-01", "2024-01-31"))) == ["r0", "r1"]
    assert c.datetimes.dtype == np.dtype("datetime64[us]")
    assert c.datetimes[1] == np.datetime64("2024-01-31T15:00")


def test_bad_date_ranges_raise(collection: Collection) -> None:
    with pytest.raises(ValueError, match="after its end"):
        collection.subset(date_range=("2024-02-01", "2024-01-01"))
    with pytest.raises(ValueError, match="cannot parse"):
        collection.subset(date_range=("yesterday", "2024-01-01"))
    with pytest.raises(ValueError, match="pair"):
        collection.subset(date_range=("2024-01-01",))


# ---------------------------------------------------------------- space, cloud, split


def test_bbox_overlap(collection: Collection) -> None:
    assert ids(collection.subset(bbox=(10.9, 45.9, 12.0, 47.0))) == ["r0", "r1"]
    assert ids(collection.subset(bbox=(11.5, 46.5, 12.0, 47.0))) == ["r1"]  # touching counts
    assert ids(collection.subset(bbox=(30.0, 30.0, 31.0, 31.0))) == []
    # a box crossing the antimeridian (minx > maxx) covers both sides
    assert ids(collection.subset(bbox=(170.0, -5.0, -10.5, 5.0))) == ["r5"]
    with pytest.raises(ValueError, match="miny > maxy"):
        collection.subset(bbox=(0, 10, 1, 0))


def test_geometries_are_or_ed(collection: Collection) -> None:
    geoms = [
        (20.5, 10.5, 20.6, 10.6),  # r3
        shapely.Point(-10.5, -0.5).buffer(0.1),  # r5
        shapely.box(14.1, 45.1, 14.2, 45.2).wkb,  # r2
    ]
    assert ids(collection.subset(geometries=geoms)) == ["r2", "r3", "r5"]
    assert ids(collection.subset(geometries=shapely.box(14.1, 45.1, 14.2, 45.2))) == ["r2"]
    assert ids(collection.subset(geometries=(20.5, 10.5, 20.6, 10.6))) == ["r3"]
    geojson = {
        "type": "Polygon",
        "coordinates": [[[20.5, 10.5], [20.6, 10.5], [20.6, 10.6], [20.5, 10.5]]],
    }
    assert ids(collection.subset(geometries=geojson)) == ["r3"]
    with pytest.raises(ValueError, match="empty"):
        collection.subset(geometries=[])


def test_cloud_cover(collection: Collection) -> None:
    assert ids(collection.subset(cloud_cover_lt=12.5)) == ["r0", "r5"]
    assert ids(collection.subset(cloud_cover_lt=13)) == ["r0", "r2", "r5"]  # null never matches
    for bad in (-1, 101, "10", True):
        with pytest.raises(ValueError, match="Invalid cloud_cover_lt"):
            collection.subset(cloud_cover_lt=bad)
    no_cloud = as_collection(collection.table.drop_columns(["eo:cloud_cover"]))
    with pytest.raises(ValueError, match="eo:cloud_cover"):
        no_cloud.subset(cloud_cover_lt=10)


def test_split_and_combined_filters(collection: Collection) -> None:
    assert ids(collection.subset(split="val")) == ["r2", "r4"]
    assert ids(collection.subset(split=["val", "test"])) == ["r2", "r3", "r4"]
    assert ids(collection.select_split("train")) == ["r0", "r1", "r5"]
    assert ids(
        collection.subset(split="train", date_range=("2024-01-01", "2024-12-31"), cloud_cover_lt=10)
    ) == ["r0"]
    renamed = as_collection(
        collection.table.rename_columns(
            ["fold" if n == "split" else n for n in collection.table.column_names]
        )
    )
    assert ids(renamed.subset(split="val", split_column="fold")) == ["r2", "r4"]
    with pytest.raises(ValueError, match="'split'"):
        renamed.subset(split="val")
    with pytest.raises(ValueError, match="No filters provided"):
        collection.subset()


def test_where_and_views_share_buffers(collection: Collection) -> None:
    view = collection.where(pc.field("label") == 1)
    assert ids(view) == ["r0", "r2"]
    assert ids(view.where(pc.field("proj:epsg") == 32634)) == ["r2"]
    assert len(collection) == 6  # the original is untouched
    assert (view.name, view.data_source) == ("demo", "test-src")
    selected = collection.select_bands(["B08"])

    def address(c: Collection) -> int:
        return c.table["B08_metadata"].chunk(0).field("tile_offsets").buffers()[1].address

    assert address(selected) == address(collection)
    with pytest.raises(TypeError, match="Expression"):
        collection.where("label == 1")


# ---------------------------------------------------------------- selections and records


def test_select_bands(collection: Collection) -> None:
    selected = collection.select_bands(["B08"])
    assert selected.bands == ["B08"]
    assert "B04_metadata" not in selected.table.column_names
    assert selected.hrefs("B08")[0] == "https://example.com/r0/B08.tif"
    with pytest.raises(BandNotFoundError) as info:
        collection.select_bands(["B08", "B99"])
    assert str(info.value) == "Band(s) not found: ['B99']. Available bands: ['B04', 'B08']"


def test_select_records_and_record_helpers(collection: Collection) -> None:
    picked = collection.select_records(["r3", "r0"])
    assert picked.record_ids == ["r0", "r3"]  # table order
    with pytest.raises(KeyError, match="nope"):
        collection.select_records(["r0", "nope"])
    assert collection.datetimes.dtype == np.dtype("datetime64[us]")
    assert collection.datetimes[1] == np.datetime64("2024-01-31T15:00:00")
    levels = collection.band_levels("B04")
    assert len(levels) == 6 and levels[0].full.width == 1000
    assert levels[0].overviews[0].transform == (20.0, 0.0, 500000.0, 0.0, -20.0, 5000000.0)


# ---------------------------------------------------------------- summaries


def test_summary_properties(collection: Collection) -> None:
    assert collection.bands == ["B04", "B08"]
    assert len(collection) == 6
    assert collection.bounds == (-11.0, -1.0, 21.0, 46.5)
    assert collection.epsg == [32633, 32634]
    assert collection.crs == ["EPSG:32633", "EPSG:32634"]
    assert collection.date_range == (dt.datetime(2023, 12, 31, 23), dt.datetime(2024, 3, 1))
    assert repr(collection) == (
        "Collection('demo', source='test-src', bands=2, records=6, crs=[32633, 32634], "
        "2023-12-31..2024-03-01)"
    )
    one = collection.subset(split="test")
    assert repr(one) == (
        "Collection('demo', source='test-src', bands=2, records=1, crs=32634, "
        "2024-02-15..2024-02-15)"
    )
    empty = collection.subset(bbox=(50, 50, 51, 51))
    assert empty.bounds is None and empty.date_range is None
    assert repr(empty) == "Collection('demo', source='test-src', bands=2, records=0)"


def test_user_defined_crs_is_kept_as_wkt() -> None:
    from pyproj import CRS

    wkt = CRS.from_proj4("+proj=aea +lat_1=29.5 +lat_2=45.5 +lon_0=-96 +ellps=GRS80").to_wkt()
    records = sample_records()[:2]
    records[1] = {**records[1], "epsg": None, "crs": wkt, "band_kwargs": {"crs_wkt": wkt}}
    c = as_collection(make_table(records))
    assert c.epsg == [32633]
    assert c.crs == ["EPSG:32633", wkt]
    assert "<1 non-EPSG>" in repr(c)
    described = c.describe()
    assert described["crs"] == [32633]
    assert described["crs_wkt"] == [CRS.from_wkt(wkt).name]
    # without record CRS columns, the band headers are used
    bare = as_collection(c.table.drop_columns(["crs", "proj:epsg"]))
    assert bare.crs == ["EPSG:32633", wkt]


def test_describe(collection: Collection) -> None:
    summary = collection.describe()
    assert summary.data == {
        "name": "demo",
        "records": 6,
        "bands": ["B04", "B08"],
        "bounds": (-11.0, -1.0, 21.0, 46.5),
        "crs": [32633, 32634],
        "dates": ("2023-12-31T23:00:00", "2024-03-01T00:00:00"),
        "source": "test-src",
    }
    assert summary["bands"] == ["B04", "B08"]
    text = repr(summary)
    assert "records  6" in text and "B04, B08" in text
    assert "<th style='text-align:left'>records</th>" in summary._repr_html_()
    errors = collection.table.append_column(
        "B04_error", pa.array([None, "HTTP 404", None, None, "timeout", None])
    )
    assert as_collection(errors).describe()["errors"] == {"B04": 2}


# ---------------------------------------------------------------- Arrow access


def test_arrow_access(collection: Collection) -> None:
    assert collection.head(2).num_rows == 2
    assert collection.head(2, columns=["id"]).column_names == ["id"]
    assert collection.to_table(["id", "split"]).num_rows == 6
    streamed = pa.table(collection)  # through __arrow_c_stream__
    assert streamed.num_rows == 6
    field = streamed.schema.field("geometry")
    assert field.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
    assert b"OGC:CRS84" in field.metadata[b"ARROW:extension:metadata"]
    assert sum(b.num_rows for b in collection) == 6


def test_as_collection_accepts_arrow_objects(collection: Collection) -> None:
    table = collection.table
    assert len(as_collection(table.to_batches()[0])) == 6
    assert (
        len(as_collection(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))) == 6
    )
    assert as_collection(collection).name == "demo"
    named = as_collection(table.replace_schema_metadata({"name": "from-meta"}))
    assert named.name == "from-meta"
