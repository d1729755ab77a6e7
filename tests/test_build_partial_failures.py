"""One file whose header parses but cannot be used (a tile past the end of the object,
predictor 255, compression 65535) fails alone: the build indexes the other files, the
bad asset carries a ``{band}_error`` naming the file and the cause, the build summary
lists it, and reading it raises :class:`~rasteret.errors.UnindexedAssetError`."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import xarray as xr

from rasteret import as_collection, load
from rasteret.errors import CollectionSchemaError, UnindexedAssetError
from rasteret.index.content import MAX_COLLECTED, band_problems
from rasteret.index.failed import failed_assets
from rasteret.ingest import build_from_files, build_from_table, build_report
from rasteret.ingest.refresh import refresh_with_report
from rasteret.samples import write_cog

NAMES = ("a_20240101.tif", "b_20240102.tif", "c_20240103.tif")
BAD = "b_20240102"
TILE_OFFSETS, COMPRESSION, PREDICTOR = 324, 259, 317


def _ifd0(raw: bytes) -> dict[int, tuple[int, int, int]]:
    """``{tag: (entry position, type, count)}`` of the first IFD of a little-endian TIFF."""
    first = struct.unpack_from("<I", raw, 4)[0]
    count = struct.unpack_from("<H", raw, first)[0]
    entries = {}
    for i in range(count):
        pos = first + 2 + 12 * i
        tag, kind, n = struct.unpack_from("<HHI", raw, pos)
        entries[tag] = (pos, kind, n)
    return entries


def _set_short(tag: int, value: int) -> Callable[[bytearray], str]:
    def change(raw: bytearray) -> str:
        pos, kind, n = _ifd0(raw)[tag]
        assert (kind, n) == (3, 1)  # one SHORT, stored in the entry
        struct.pack_into("<H", raw, pos + 8, value)
        return f"{'predictor' if tag == PREDICTOR else 'compression'} {value}"

    return change


def _tile_past_end(raw: bytearray) -> str:
    pos, kind, n = _ifd0(raw)[TILE_OFFSETS]
    assert kind == 4 and n > 1  # LONGs, stored out of line
    where = struct.unpack_from("<I", raw, pos + 8)[0]
    struct.pack_into("<I", raw, where, len(raw) + 1000)
    return f"lies past the end of the object ({len(raw)} bytes)"


CORRUPTIONS = {
    "tile_past_eof": _tile_past_end,
    "predictor_255": _set_short(PREDICTOR, 255),
    "compression_65535": _set_short(COMPRESSION, 65535),
}


def _write(folder: Path, corruption: str) -> tuple[dict[str, Path], str]:
    """Three small COGs in ``folder``, the second corrupted; returns the paths by record
    id and the cause its error must name."""
    paths = {}
    for k, name in enumerate(NAMES):
        data = (np.arange(300 * 200, dtype=np.uint16).reshape(300, 200) + 1000 * k) % 65000
        paths[name.removesuffix(".tif")] = folder / name
        write_cog(
            folder / name, data, transform=(10, 0, 300000, 0, -10, 5000000), epsg=32633, tile=128
        )
    raw = bytearray(paths[BAD].read_bytes())
    cause = CORRUPTIONS[corruption](raw)
    paths[BAD].write_bytes(bytes(raw))
    return paths, cause


def _check(collection, paths: dict[str, Path], hrefs: dict[str, str], cause: str) -> None:
    """Every record is there, the good ones read as rasterio does, the bad one fails alone."""
    assert sorted(collection.record_ids) == sorted(paths)
    rows = {row["id"]: row for row in collection.table.to_pylist()}
    error = rows[BAD]["b1_error"]
    assert error and hrefs[BAD] in error and cause in error, error
    assert rows[BAD]["b1_metadata"] is None
    for rid in set(paths) - {BAD}:
        assert rows[rid]["b1_error"] is None and rows[rid]["b1_metadata"] is not None

    report = build_report(collection)
    assert (report.assets, report.indexed, report.failed) == (3, 2, 1)
    assert [(e.record_id, e.href) for e in report.errors] == [(BAD, hrefs[BAD])]
    assert hrefs[BAD] in report.summary() and cause in report.summary()
    failed = failed_assets(collection.table, collection.bands)
    assert [(f.record_id, f.href, f.error) for f in failed] == [(BAD, hrefs[BAD], error)]

    with pytest.raises(UnindexedAssetError, match=BAD):
        xr.open_dataset(collection, engine="rasteret")
    ds = xr.open_dataset(collection, engine="rasteret", errors="skip")
    assert sorted(ds["id"].values) == sorted(set(paths) - {BAD})
    for t, rid in enumerate(ds["id"].values):
        with rasterio.open(paths[str(rid)]) as src:
            np.testing.assert_array_equal(ds.b1.isel(time=t).values, src.read(1))


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_bad_local_file_fails_alone(tmp_path: Path, corruption: str, caplog) -> None:
    paths, cause = _write(tmp_path, corruption)
    with caplog.at_level(logging.WARNING, logger="rasteret.ingest"):
        collection = build_from_files(tmp_path)
    _check(collection, paths, {k: str(p) for k, p in paths.items()}, cause)
    assert "2 of 3 asset(s) indexed, 1 failed" in caplog.text
    assert str(paths[BAD]) in caplog.text and cause in caplog.text


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_bad_remote_file_fails_alone(object_server, corruption: str) -> None:
    paths, cause = _write(object_server.root, corruption)
    urls = {rid: object_server.url_for(p.name) for rid, p in paths.items()}
    collection = build_from_files(list(urls.values()))
    _check(collection, paths, urls, cause)


def test_a_persisted_build_in_parts_keeps_the_other_files(tmp_path: Path) -> None:
    paths, cause = _write(tmp_path, "predictor_255")
    built = build_from_files(tmp_path, name="partial", workspace_dir=tmp_path / "ws")
    _check(built, paths, {k: str(p) for k, p in paths.items()}, cause)
    again = build_from_files(tmp_path, name="partial", workspace_dir=tmp_path / "ws")  # cached
    assert again.table["b1_error"].to_pylist() == built.table["b1_error"].to_pylist()


def test_build_from_table_shares_the_per_asset_checks(tmp_path: Path) -> None:
    paths, cause = _write(tmp_path, "compression_65535")
    records = pa.table(
        {
            "id": list(paths),
            "datetime": pa.array([f"2024-01-0{i + 1}" for i in range(3)]),
            "href": [str(p) for p in paths.values()],
        }
    )
    collection = build_from_table(records, href_column="href", band_index_map={"b1": 0})
    _check(collection, paths, {k: str(p) for k, p in paths.items()}, cause)
    # a table handed in from outside is still refused whole (not screened per asset)
    table = collection.table
    good = table["b1_metadata"][0].as_py()
    hostile = table.set_column(
        table.column_names.index("b1_metadata"),
        "b1_metadata",
        pa.array([good, {**good, "predictor": 255}, good], table["b1_metadata"].type),
    )
    with pytest.raises(CollectionSchemaError, match="predictor 255"):
        as_collection(hostile)


def test_band_problems_finds_every_bad_row_past_the_report_cap(tmp_path: Path) -> None:
    paths, _ = _write(tmp_path, "predictor_255")
    column = build_from_files(paths["a_20240101"]).table["b1_metadata"]
    good = column[0].as_py()
    n = 2 * MAX_COLLECTED + 5
    bad_rows = set(range(1, n, 2)) | {n - 1}  # more bad rows than one pass collects
    structs = pa.array(
        [{**good, "predictor": 255} if i in bad_rows else good for i in range(n)],
        column.type,
    )
    problems = band_problems(structs)
    assert set(problems) == bad_rows
    assert all(m == "an unknown predictor (predictor 255)" for m in problems.values())
    # a check that compares combinations of fields flags every row, not only the first
    twins = pa.array(
        [good, {**good, "dtype": "float32"}, {**good, "dtype": "float32"}], column.type
    )
    assert sorted(band_problems(twins)) == [1, 2]


def test_refresh_of_a_file_that_went_bad_fails_that_asset_alone(tmp_path: Path) -> None:
    paths, _ = _write(tmp_path / "src", "predictor_255")
    good = paths["a_20240101"].read_bytes()
    paths[BAD].write_bytes(good)  # built from three good files...
    collection = build_from_files(tmp_path / "src")
    assert build_report(collection).failed == 0
    raw = bytearray(good)  # ...then one is replaced by a file with predictor 255
    cause = _set_short(PREDICTOR, 255)(raw)
    paths[BAD].write_bytes(bytes(raw) + bytes(8))
    refreshed, report = refresh_with_report(collection)
    assert [(f.record_id, f.href) for f in report.failed] == [(BAD, str(paths[BAD]))]
    assert cause in report.failed[0].reason and report.reindexed == 0
    error = refreshed.table["b1_error"][1].as_py()
    assert str(paths[BAD]) in error and cause in error
    refreshed.export(str(tmp_path / "out"))
    saved = load(tmp_path / "out", local_roots="any")  # refused whole before the fix
    assert saved.table["b1_error"].to_pylist() == refreshed.table["b1_error"].to_pylist()
    with pytest.raises(UnindexedAssetError, match=BAD):
        xr.open_dataset(saved, engine="rasteret")
