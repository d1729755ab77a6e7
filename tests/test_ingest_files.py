"""build_from_files over local paths and HTTP (object server), with GDAL-written COGs."""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from _testcollections import gdal_bbox, write_ramp_cog
from rasteret.ingest import NothingIndexedError, build_from_files, build_report


@pytest.fixture
def cog_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_ramp_cog(data / "a_20240105.tif")
    write_ramp_cog(
        data / "b_2024-02-10.tif", count=3, crs="EPSG:32632", origin=(600000.0, 5200000.0)
    )
    write_ramp_cog(data / "sub" / "c_20240301.tif", crs="EPSG:4326", origin=(10.0, 50.0), res=0.001)
    (data / "a_20240105.tif.aux.xml").write_text("<PAMDataset/>")  # a GDAL sidecar: skipped
    return data


def rows_by_id(collection) -> dict[str, dict]:
    return {row["id"]: row for row in collection.table.to_pylist()}


def test_folder_of_cogs(cog_dir: Path):
    collection = build_from_files(cog_dir)
    rows = rows_by_id(collection)
    assert set(rows) == {"a_20240105", "b_2024-02-10", "c_20240301"}
    assert collection.bands == ["b1", "b2", "b3"]
    assert rows["a_20240105"]["datetime"] == dt.datetime(2024, 1, 5)
    assert rows["b_2024-02-10"]["datetime"] == dt.datetime(2024, 2, 10)
    assert rows["c_20240301"]["datetime"] == dt.datetime(2024, 3, 1)
    assert rows["a_20240105"]["crs"] == "EPSG:32633"
    assert rows["b_2024-02-10"]["proj:epsg"] == 32632
    assert rows["c_20240301"]["proj:epsg"] == 4326
    files = {
        "a_20240105": cog_dir / "a_20240105.tif",
        "b_2024-02-10": cog_dir / "b_2024-02-10.tif",
        "c_20240301": cog_dir / "sub" / "c_20240301.tif",
    }
    for rid, path in files.items():
        bbox = rows[rid]["bbox"]
        got = (bbox["xmin"], bbox["ymin"], bbox["xmax"], bbox["ymax"])
        np.testing.assert_allclose(got, gdal_bbox(path), atol=1e-7)
        assert rows[rid]["assets"]["b1"]["href"] == str(path)
    # the single-band files have no b2/b3 (absent, not failed); the 3-band file has all three
    a, b = rows["a_20240105"], rows["b_2024-02-10"]
    assert a["assets"]["b2"] is None and a["b2_metadata"] is None and a["b2_error"] is None
    assert [b[f"b{i}_metadata"]["band_index"] for i in (1, 2, 3)] == [0, 1, 2]
    meta = a["b1_metadata"]
    assert (meta["image_width"], meta["image_height"]) == (600, 500)
    assert (meta["tile_width"], meta["tile_height"], meta["dtype"]) == (256, 256, "uint16")
    assert len(meta["tile_offsets"]) == 3 * 2
    assert len(meta["overviews"]) >= 1
    assert meta["file_size"] == files["a_20240105"].stat().st_size
    report = build_report(collection)
    assert (report.assets, report.indexed, report.failed) == (5, 5, 0)


def test_http_build_takes_at_most_two_requests_per_cog(cog_dir: Path, object_server):
    names = ["a_20240105.tif", "b_2024-02-10.tif", "sub/c_20240301.tif"]
    urls = [object_server.url_for(f"data/{n}") for n in names]
    object_server.reset()
    collection = build_from_files(urls, max_concurrent=2)
    assert object_server.requests <= 2 * len(urls)
    assert all(r.method == "GET" for r in object_server.log)  # no extra HEAD
    rows = rows_by_id(collection)
    assert rows["b_2024-02-10"]["assets"]["b3"]["href"] == urls[1]
    np.testing.assert_allclose(
        list(rows["c_20240301"]["bbox"].values()), gdal_bbox(cog_dir / names[2]), atol=1e-7
    )
    meta = rows["a_20240105"]["b1_metadata"]
    assert meta["file_size"] == (cog_dir / names[0]).stat().st_size
    assert meta["etag"]


def _truncate_in_ifd(good: Path, bad: Path) -> None:
    raw = good.read_bytes()
    ifd = struct.unpack("<I", raw[4:8])[0]
    bad.write_bytes(raw[: ifd + 2 + 12 * 4])  # the IFD entry count, then 4 of its entries


@pytest.fixture
def mixed_dir(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    data = tmp_path / "mixed"
    good = write_ramp_cog(data / "good_20240105.tif")
    truncated = data / "truncated.tif"
    _truncate_in_ifd(good, truncated)
    junk = data / "junk.tif"
    junk.write_bytes(b"this is not a TIFF at all\n" * 40)
    return data, {"good": good, "truncated": truncated, "junk": junk}


def _check_bad_assets(collection, paths: dict[str, str]) -> None:
    rows = rows_by_id(collection)
    assert rows["good_20240105"]["b1_metadata"] is not None
    assert rows["good_20240105"]["b1_error"] is None
    for rid, href in paths.items():
        row = rows[rid]
        assert row["b1_metadata"] is None and row["geometry"] is None
        assert href in row["b1_error"], row["b1_error"]
    assert re.search(r"not found|no such|404", rows["missing"]["b1_error"], re.I)
    assert "CorruptTiffError" in rows["truncated"]["b1_error"]
    assert re.search(r"CorruptTiffError|not a TIFF", rows["junk"]["b1_error"])
    report = build_report(collection)
    assert (report.assets, report.indexed, report.failed) == (4, 1, 3)
    assert {e.record_id for e in report.errors} == {"missing", "truncated", "junk"}


def test_bad_local_files_fail_alone(mixed_dir, caplog):
    data, files = mixed_dir
    missing = data / "missing.tif"
    sources = [files["good"], missing, files["truncated"], files["junk"]]
    with caplog.at_level(logging.WARNING, logger="rasteret.ingest"):
        collection = build_from_files(sources)
    assert len(collection) == 4
    _check_bad_assets(
        collection,
        {"missing": str(missing), "truncated": str(files["truncated"]), "junk": str(files["junk"])},
    )
    assert "1 of 4 asset(s) indexed, 3 failed" in caplog.text


def test_bad_remote_files_fail_alone(mixed_dir, object_server):
    _, files = mixed_dir
    urls = {k: object_server.url_for(f"mixed/{p.name}") for k, p in files.items()}
    urls["missing"] = object_server.url_for("mixed/missing.tif")
    collection = build_from_files([urls["good"], urls["missing"], urls["truncated"], urls["junk"]])
    bad = {k: urls[k] for k in ("missing", "truncated", "junk")}
    _check_bad_assets(collection, bad)


def test_nothing_indexed_is_an_error(mixed_dir):
    data, files = mixed_dir
    with pytest.raises(NothingIndexedError, match="none of 2 asset") as info:
        build_from_files([files["truncated"], files["junk"]], name="x", workspace_dir=data / "ws")
    assert str(files["junk"]) in str(info.value)
    assert not (data / "ws").exists()  # nothing was written


def test_group_per_band_files(tmp_path: Path):
    data = tmp_path / "s2"
    for scene in ("T33_20240105", "T33_20240110"):
        write_ramp_cog(data / f"{scene}_B04.tif", size=(300, 300))
    write_ramp_cog(data / "T33_20240105_B08.tif", size=(300, 300))

    def group(path: str) -> tuple[str, str]:
        scene, band = Path(path).stem.rsplit("_", 1)
        return scene, band

    collection = build_from_files(data, group_by=group)
    rows = rows_by_id(collection)
    assert set(rows) == {"T33_20240105", "T33_20240110"}
    assert collection.bands == ["B04", "B08"]
    assert rows["T33_20240105"]["assets"]["B08"]["href"].endswith("T33_20240105_B08.tif")
    assert rows["T33_20240110"]["assets"]["B08"] is None
    assert rows["T33_20240110"]["B04_metadata"]["image_width"] == 300
    assert rows["T33_20240110"]["datetime"] == dt.datetime(2024, 1, 10)


def test_band_names_datetime_callable_and_duplicate_stems(tmp_path: Path, caplog):
    write_ramp_cog(tmp_path / "x" / "scene.tif", count=3, size=(64, 64))
    write_ramp_cog(tmp_path / "y" / "scene.tif", count=3, size=(64, 64))
    write_ramp_cog(tmp_path / "nodate.tif", count=3, size=(64, 64))
    when = {"x": dt.datetime(2020, 5, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))}
    collection = build_from_files(
        [tmp_path / "x", tmp_path / "y" / "scene.tif"],
        bands=["red", "green", "blue"],
        datetime=lambda p: when.get(Path(p).parent.name),
    )
    rows = rows_by_id(collection)
    assert set(rows) == {"x/scene", "y/scene"}
    assert collection.bands == ["red", "green", "blue"]
    assert rows["x/scene"]["datetime"] == dt.datetime(2020, 5, 1, 10)  # UTC, naive
    assert rows["y/scene"]["datetime"] is None
    assert rows["y/scene"]["blue_metadata"]["band_index"] == 2
    with caplog.at_level(logging.WARNING, logger="rasteret.ingest"):
        undated = build_from_files(tmp_path / "nodate.tif")
    assert undated.table["datetime"].null_count == 1
    assert "no datetime" in caplog.text


def test_workspace_cache_and_force(cog_dir: Path, object_server, tmp_path: Path, caplog):
    urls = [object_server.url_for(f"data/{n}") for n in ("a_20240105.tif", "b_2024-02-10.tif")]
    ws = tmp_path / "ws"
    first = build_from_files(urls, name="demo", workspace_dir=ws)
    target = ws / "demo_records"
    assert first.uri == str(target) and target.is_dir()
    object_server.reset()
    again = build_from_files(urls, name="demo", workspace_dir=ws)
    assert object_server.requests == 0
    assert sorted(again.table["id"].to_pylist()) == sorted(first.table["id"].to_pylist())
    with caplog.at_level(logging.WARNING, logger="rasteret.ingest"):
        renamed = build_from_files(urls, name="demo", workspace_dir=ws, bands=["r", "g", "b"])
    assert "different inputs" in caplog.text
    assert object_server.requests > 0
    assert renamed.bands == ["r", "g", "b"]
    object_server.reset()
    forced = build_from_files(urls[:1], name="demo", workspace_dir=ws, force=True)
    assert object_server.requests > 0
    assert len(forced) == 1 and len(forced.table) == 1
    leftovers = [p.name for p in ws.iterdir()]
    assert leftovers == ["demo_records"], leftovers
    stale = [p for p in target.rglob("*") if "month=2" in str(p)]  # b_2024-02-10 is gone
    assert not stale, stale
    shutil.rmtree(ws)


def test_file_filters_and_missing_folder(cog_dir: Path, tmp_path: Path):
    top_only = build_from_files(cog_dir, recursive=False)
    assert sorted(top_only.table["id"].to_pylist()) == ["a_20240105", "b_2024-02-10"]
    globbed = build_from_files(str(cog_dir / "**" / "c_*.tif"))
    assert globbed.table["id"].to_pylist() == ["c_20240301"]
    assert pc.all(pc.is_valid(globbed.table["geometry"])).as_py()
    with pytest.raises(FileNotFoundError):
        build_from_files(str(tmp_path / "nothing-*.tif"))


def test_index_headers_dedupes_and_reports_errors(cog_dir: Path, object_server, capsys):
    from rasteret.ingest import index_headers

    good = object_server.url_for("data/b_2024-02-10.tif")
    missing = object_server.url_for("data/nope.tif")
    object_server.reset()
    results = index_headers([good, missing, good], progress=True)
    assert list(results) == [good, missing]
    assert results[good].ok and results[good].header.full.samples_per_pixel == 3
    assert results[good].info.size == (cog_dir / "b_2024-02-10.tif").stat().st_size
    assert not results[missing].ok and missing in results[missing].error
    assert capsys.readouterr().err == ""  # stderr is not a terminal: no progress line
    # a tiny prefix forces a second read, which must still give the same header
    object_server.reset()
    small = index_headers([good], prefetch=300)[good]  # cuts IFD0 (at byte 192) in two
    assert small.ok and small.requests >= 2 and object_server.requests == small.requests
    big, tiny = results[good].header, small.header
    assert len(tiny.images) == len(big.images) >= 2
    for a, b in zip(tiny.images, big.images, strict=True):
        assert (a.width, a.height, a.kind) == (b.width, b.height, b.kind)
        np.testing.assert_array_equal(a.block_offsets, b.block_offsets)


def test_server_errors_are_per_asset(cog_dir: Path, object_server):
    urls = [object_server.url_for(f"data/{n}") for n in ("a_20240105.tif", "b_2024-02-10.tif")]
    object_server.inject("data/a_*.tif", "status", times=None, status=403)
    object_server.inject("data/b_*.tif", "status", times=1, status=503)  # retried, then fine
    collection = build_from_files(urls)
    rows = rows_by_id(collection)
    assert urls[0] in rows["a_20240105"]["b1_error"] and "403" in rows["a_20240105"]["b1_error"]
    assert rows["b_2024-02-10"]["b3_metadata"] is not None


def test_delete_takes_an_exact_name_inside_the_workspace(tmp_path: Path) -> None:
    """#14: ``delete_collection("sentinel")`` deleted ``sentinel2_bangalore_records`` (a
    prefix match), and any ``*_records`` directory given by path, even outside."""
    from rasteret.ingest.manage import CollectionNotFoundError, delete_collection

    source = tmp_path / "data"
    write_ramp_cog(source / "scene_20240105.tif", size=(64, 64))
    workspace = tmp_path / "ws"
    build_from_files(source, name="sentinel2_bangalore", workspace_dir=workspace)
    kept = workspace / "sentinel2_bangalore_records"
    with pytest.raises(CollectionNotFoundError, match="exactly 'sentinel'"):
        delete_collection("sentinel", workspace)
    assert kept.is_dir()
    elsewhere = build_from_files(source, name="other", workspace_dir=tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="outside the workspace"):
        delete_collection(elsewhere.uri, workspace)
    assert Path(elsewhere.uri).is_dir()
    assert delete_collection("sentinel2_bangalore", workspace) == kept and not kept.exists()
