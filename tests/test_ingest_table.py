"""build_from_table: Parquet / Arrow record tables, stac-geoparquet assets, workspace cache."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import shapely

from _testcollections import gdal_bbox, write_ramp_cog
from rasteret.errors import BandNotFoundError, CollectionSchemaError
from rasteret.ingest import build_from_table, build_report

ASSET = pa.struct([("href", pa.string()), ("band_index", pa.int64())])


def write_cog(path: Path, *, count: int = 1, crs: str = "EPSG:32633", size: int = 300) -> Path:
    """A uint8 COG written by GDAL's COG driver on a 20 m grid."""
    return write_ramp_cog(
        path,
        count=count,
        crs=crs,
        origin=(500000.0, 4000000.0),
        res=20.0,
        size=(size, size),
        dtype="uint8",
        modulus=251,
    )


@pytest.fixture
def rgb(tmp_path: Path) -> Path:
    return write_cog(tmp_path / "cogs" / "rgb.tif", count=3)


@pytest.fixture
def singles(tmp_path: Path) -> list[Path]:
    return [write_cog(tmp_path / "cogs" / f"s{i}_B04.tif") for i in range(2)]


def test_missing_required_columns_names_file_and_fix(tmp_path: Path):
    path = tmp_path / "records.parquet"
    pq.write_table(pa.table({"scene": ["a"], "url": ["x.tif"]}), path)
    with pytest.raises(CollectionSchemaError) as info:
        build_from_table(path)
    message = str(info.value)
    assert str(path) in message
    assert "['id', 'datetime', 'assets']" in message
    assert "column_map" in message and "href_column" in message
    with pytest.raises(CollectionSchemaError, match=r"missing required columns \['geometry'\]"):
        build_from_table(
            pa.table({"id": ["a"], "datetime": [2024], "url": ["x.tif"]}),
            href_column="url",
            band_index_map={"b1": 0},
            enrich_cog=False,
        )


def test_href_column_and_band_index_map_on_rgb_cog(rgb: Path, object_server):
    url = object_server.url_for("cogs/rgb.tif")
    table = pa.table({"id": [7], "datetime": [2021], "url": [url], "split": ["train"]})
    object_server.reset()
    collection = build_from_table(
        table, href_column="url", band_index_map={"red": 0, "green": 1, "blue": 2}
    )
    assert object_server.requests <= 2  # one file, shared by three bands
    assert collection.bands == ["red", "green", "blue"]
    row = collection.table.to_pylist()[0]
    assert row["id"] == "7" and row["datetime"] == dt.datetime(2021, 1, 1)
    assert row["split"] == "train" and row["proj:epsg"] == 32633
    assert [row[f"{b}_metadata"]["band_index"] for b in ("red", "green", "blue")] == [0, 1, 2]
    assert row["assets"]["blue"] == {"href": url, "band_index": 2}
    got = [row["bbox"][k] for k in ("xmin", "ymin", "xmax", "ymax")]
    np.testing.assert_allclose(got, gdal_bbox(rgb), atol=1e-7)
    np.testing.assert_allclose(shapely.from_wkb(row["geometry"]).bounds, got, atol=1e-9)


def test_href_column_without_band_map_uses_samples(rgb: Path):
    table = pa.table({"id": ["r"], "datetime": ["2024-03-04"], "href": [str(rgb)]})
    collection = build_from_table(table)  # 'href' is picked up without href_column
    assert collection.bands == ["b1", "b2", "b3"]
    assert collection.table["b3_metadata"][0]["band_index"].as_py() == 2


def _stac_geoparquet(urls: list[str]) -> pa.Table:
    asset = pa.struct(
        [("href", pa.string()), ("type", pa.string()), ("roles", pa.list_(pa.string()))]
    )
    tiff = "image/tiff; application=geotiff; profile=cloud-optimized"
    assets = pa.array(
        [
            {
                "B04": {"href": u, "type": tiff, "roles": ["data"]},
                "thumbnail": {"href": u + ".png", "type": "image/png", "roles": ["thumbnail"]},
            }
            for u in urls
        ],
        pa.struct([("B04", asset), ("thumbnail", asset)]),
    )
    return pa.table(
        {
            "id": [f"item-{i}" for i in range(len(urls))],
            "datetime": pa.array(
                [dt.datetime(2024, 1, 5 + i, 10, tzinfo=dt.UTC) for i in range(len(urls))],
                pa.timestamp("ms", tz="UTC"),
            ),
            "assets": assets,
            "eo:cloud_cover": [12.5] * len(urls),
        }
    )


def test_stac_geoparquet_assets(singles: list[Path], object_server, tmp_path: Path):
    urls = [object_server.url_for(f"cogs/{p.name}") for p in singles]
    path = tmp_path / "items.parquet"
    pq.write_table(_stac_geoparquet(urls), path)
    collection = build_from_table(path)
    assert collection.bands == ["B04"]  # the PNG thumbnail is not indexed
    rows = collection.table.to_pylist()
    assert [r["datetime"] for r in rows] == [
        dt.datetime(2024, 1, 5, 10),
        dt.datetime(2024, 1, 6, 10),
    ]
    assert all(r["B04_metadata"]["image_width"] == 300 for r in rows)
    assert rows[0]["eo:cloud_cover"] == 12.5
    np.testing.assert_allclose(list(rows[1]["bbox"].values()), gdal_bbox(singles[1]), atol=1e-7)
    with pytest.raises(BandNotFoundError, match="Available bands"):
        build_from_table(path, band_codes=["B99"])


def test_column_map_geometry_and_url_rewrite(singles: list[Path], object_server):
    box = shapely.box(14.0, 36.0, 15.0, 37.0)
    table = pa.table(
        {
            "scene": ["one"],
            "acquired": ["2023-07-01T12:00:00+02:00"],
            "footprint": [shapely.to_wkb(box)],
            "files": pa.array(
                [{"red": {"href": "s3://bucket/cogs/s0_B04.tif", "band_index": None}}],
                pa.struct([("red", ASSET)]),
            ),
        }
    )
    collection = build_from_table(
        table,
        column_map={
            "scene": "id",
            "acquired": "datetime",
            "footprint": "geometry",
            "files": "assets",
        },
        url_rewrite_patterns={"s3://bucket/": object_server.url + "/"},
    )
    row = collection.table.to_pylist()[0]
    assert row["id"] == "one" and row["scene"] == "one"  # aliases keep the source column
    assert row["datetime"] == dt.datetime(2023, 7, 1, 10)
    assert shapely.from_wkb(row["geometry"]).equals(box)  # the table's footprint is kept
    assert row["bbox"] == {"xmin": 14.0, "ymin": 36.0, "xmax": 15.0, "ymax": 37.0}
    assert row["assets"]["red"]["href"] == object_server.url_for("cogs/s0_B04.tif")
    assert row["red_metadata"]["image_width"] == 300 and row["red_error"] is None


def test_arrow_sources_filter_and_no_enrichment(singles: list[Path]):
    table = pa.table(
        {
            "id": ["a", "b"],
            "datetime": [dt.date(2024, 1, 1), dt.date(2024, 6, 1)],
            "geometry": [shapely.to_wkb(shapely.box(0, 0, 1, 1))] * 2,
            "href": [str(p) for p in singles],
        }
    )
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    plain = build_from_table(reader, band_index_map={"B04": 0}, enrich_cog=False)
    assert plain.table.column_names[:5] == ["id", "datetime", "geometry", "bbox", "assets"]
    assert "B04_metadata" not in plain.table.column_names

    class Stream:  # any object exporting the Arrow C stream interface
        def __arrow_c_stream__(self, requested_schema=None):
            return table.__arrow_c_stream__(requested_schema)

    filtered = build_from_table(
        Stream(), band_index_map={"B04": 0}, filter_expr=pc.field("id") == "b"
    )
    assert filtered.table["id"].to_pylist() == ["b"]
    assert filtered.table["datetime"].to_pylist() == [dt.datetime(2024, 6, 1)]
    assert build_report(filtered).indexed == 1


def test_workspace_cache_rebuild_and_force(singles: list[Path], object_server, tmp_path, caplog):
    urls = [object_server.url_for(f"cogs/{p.name}") for p in singles]
    path = tmp_path / "items.parquet"
    pq.write_table(_stac_geoparquet(urls), path)
    ws = tmp_path / "ws"
    first = build_from_table(path, name="demo", workspace_dir=ws)
    target = ws / "demo_records"
    assert first.uri == str(target)
    object_server.reset()
    cached = build_from_table(path, name="demo", workspace_dir=ws)
    assert object_server.requests == 0 and len(cached) == 2
    by_id = lambda c: sorted(c.table.select(["id", "B04_metadata"]).to_pylist(), key=str)  # noqa: E731
    assert by_id(cached) == by_id(first)  # the cached collection is what the build returned
    with caplog.at_level(logging.WARNING, logger="rasteret.ingest"):
        only_first = pc.field("id") == "item-0"
        build_from_table(path, name="demo", workspace_dir=ws, filter_expr=only_first)
    assert "different inputs" in caplog.text and object_server.requests > 0
    # the source changes (other year): force=True must leave no stale partition behind
    newer = _stac_geoparquet(urls[:1]).set_column(
        1, "datetime", pa.array([dt.datetime(2025, 3, 1)], pa.timestamp("us"))
    )
    pq.write_table(newer, path)
    object_server.reset()
    forced = build_from_table(path, name="demo", workspace_dir=ws, force=True)
    assert object_server.requests > 0 and len(forced) == 1
    assert sorted(p.name for p in target.iterdir()) == ["year=2025"]
    assert [p.name for p in ws.iterdir()] == ["demo_records"]


def test_workspace_from_environment(rgb: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RASTERET_WORKSPACE", str(tmp_path / "envws"))
    table = pa.table({"id": ["r"], "datetime": [2024], "href": [str(rgb)]})
    collection = build_from_table(table, name="mine", band_index_map={"b1": 0})
    assert collection.uri == str(tmp_path / "envws" / "mine_records")
    assert build_from_table(table, name="mine", band_index_map={"b1": 0}).uri == collection.uri


def test_antimeridian_geometry_and_proj_code(singles: list[Path]):
    split = shapely.MultiPolygon(
        [shapely.box(178.0, 60.0, 180.0, 61.0), shapely.box(-180.0, 60.0, -177.0, 61.0)]
    )
    table = pa.table(
        {
            "id": ["wrap"],
            "datetime": ["2024-01-01T00:00:00Z"],
            "geometry": [shapely.to_wkb(split)],
            "proj:code": ["EPSG:3857"],
            "href": [str(singles[0])],
        }
    )
    row = build_from_table(table, band_index_map={"B04": 0}).table.to_pylist()[0]
    # split at ±180°: the bbox wraps (xmin > xmax) instead of spanning the globe
    assert row["bbox"] == {"xmin": 178.0, "ymin": 60.0, "xmax": -177.0, "ymax": 61.0}
    # the table's own CRS sidecar wins over the header's (EPSG:32633)
    assert row["crs"] == "EPSG:3857" and row["proj:epsg"] == 3857


def test_unenriched_build_is_persisted_and_reused(singles: list[Path], tmp_path: Path):
    table = pa.table(
        {
            "id": ["a"],
            "datetime": [2024],
            "geometry": [shapely.to_wkb(shapely.box(0, 0, 1, 1))],
            "href": [str(singles[0])],
        }
    )
    ws = tmp_path / "ws"
    kwargs = {"band_index_map": {"B04": 0}, "enrich_cog": False, "workspace_dir": ws}
    first = build_from_table(table, name="plain", **kwargs)
    again = build_from_table(table, name="plain", **kwargs)
    assert first.uri == again.uri == str(ws / "plain_records")
    assert again.table["assets"].to_pylist() == first.table["assets"].to_pylist()
