"""The large-index generator of ``benchmarks/large_index.py`` on small sizes: its tables
are valid collections that ``rasteret.load`` accepts (single file and hive directory),
with realistic per-record block tables, and the xarray engine opens a subset lazily
(no byte of the made-up COGs is fetched)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import rasteret
from rasteret.index import validate_table

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def li() -> Any:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module("large_index")


@pytest.fixture
def no_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any byte-range read or HEAD request fails the test."""
    from rasteret.fetch.reader import RangeReader

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("open_dataset fetched data; it must stay lazy")

    monkeypatch.setattr(RangeReader, "_transport", refuse)  # every GET and HEAD goes through it


def _offsets(column: pa.ChunkedArray) -> list[tuple[int, ...]]:
    return [tuple(v) for v in column.combine_chunks().field("tile_offsets").to_pylist()]


def test_three_band_file_loads_subsets_and_opens_lazily(
    li: Any, tmp_path: Path, no_fetch: None
) -> None:
    import xarray as xr

    spec = li.Spec(records=500, bands=li.parse_bands("3"))
    out = tmp_path / "s2.parquet"
    result = li.write_index(spec, out)
    assert result.rows == 500 and result.files == 1 and result.bytes == out.stat().st_size

    collection = rasteret.load(out)
    assert len(collection) == 500
    assert collection.bands == ["B02", "B03", "B04"]
    table = collection.table
    validate_table(table, source="generated")  # schema + content checks
    assert table["id"].combine_chunks().unique().to_pylist().__len__() == 500
    times = table["datetime"].combine_chunks().to_numpy()
    assert (np.diff(times) >= np.timedelta64(0, "us")).all()
    assert times.min() >= np.datetime64("2017-12-31") and times.max() < np.datetime64("2026")
    assert set(table["split"].combine_chunks().unique().to_pylist()) <= {"train", "val", "test"}
    cloud = table["eo:cloud_cover"].combine_chunks().to_numpy()
    assert ((cloud >= 0) & (cloud <= 100)).all()

    band = table["B04_metadata"].combine_chunks()
    first = band[0].as_py()
    assert (first["image_width"], first["tile_width"], len(first["tile_offsets"])) == (
        10980,
        1024,
        121,
    )
    assert [o["image_width"] for o in first["overviews"]] == [5490, 2745, 1373, 687]
    assert (first["compression"], first["predictor"], first["nodata"]) == (8, 2, 0.0)
    assert first["crs_wkt"].startswith("PROJCRS[") and 32601 <= first["epsg"] <= 32760
    assert first["etag"].startswith('"') and first["last_modified"].endswith(" GMT")
    offsets = np.array(first["tile_offsets"])
    counts = np.array(first["tile_byte_counts"])
    assert (np.diff(offsets) > 0).all()
    assert first["file_size"] >= offsets[-1] + counts[-1]
    assert 150_000 < np.median(counts) < 900_000
    # every record's file has its own block table
    assert len(set(_offsets(table["B04_metadata"]))) == 500

    subset = collection.subset(date_range=("2020-01-01", "2020-03-31"))
    assert 0 < len(subset) < 500
    one_tile = subset.where(pc.field("grid:code") == subset.table["grid:code"][0].as_py())
    ds = xr.open_dataset(one_tile, engine="rasteret")
    assert set(ds.data_vars) == {"B02", "B03", "B04"}
    assert dict(ds.sizes) == {"time": len(one_tile), "y": 10980, "x": 10980}
    assert not isinstance(ds["B04"].variable._data, np.ndarray)  # lazily indexed


def test_thirteen_bands_in_chunks(li: Any, tmp_path: Path, no_fetch: None) -> None:
    import xarray as xr

    spec = li.Spec(records=200, bands=li.parse_bands("13"), size=1024, tile=256, chunks=7)
    out = tmp_path / "s2_13.parquet"
    result = li.write_index(spec, out)
    assert result.rows == 200 and result.row_groups == 7

    collection = rasteret.load(out)
    assert len(collection) == 200
    assert collection.bands == list(li.S2_BANDS)
    table = collection.table
    assert table["id"].num_chunks == 7
    validate_table(table, source="generated")
    widths = {
        b: table[f"{b}_metadata"].combine_chunks().field("image_width")[0].as_py()
        for b in ("B04", "B8A", "B01")
    }
    assert widths == {"B04": 1024, "B8A": 512, "B01": 171}
    assert len(set(_offsets(table["B8A_metadata"]))) == 200

    subset = collection.subset(date_range=("2018-01-01", "2019-12-31"))
    one_tile = subset.where(pc.field("grid:code") == subset.table["grid:code"][0].as_py())
    ds = xr.open_dataset(one_tile, engine="rasteret", bands=["B8A", "B11"])
    assert dict(ds.sizes) == {"time": len(one_tile), "y": 512, "x": 512}


def test_hive_directory_has_the_export_layout(li: Any, tmp_path: Path) -> None:
    import datetime as dt

    spec = li.Spec(
        records=120,
        bands=("B04",),
        chunks=4,
        start=dt.date(2024, 1, 1),
        end=dt.date(2024, 3, 31),
    )
    out = tmp_path / "s2_dir"
    result = li.write_index(spec, out, hive=True)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert files == [f"year=2024/month={m}/part-0.parquet" for m in (1, 2, 3)]
    assert result.files == 3 and result.row_groups >= 4

    loaded = rasteret.load(out)
    assert len(loaded) == 120 and loaded.bands == ["B04"]
    assert "year" not in loaded.table.column_names  # derived partition columns dropped
    generated = li.generate_table(spec)
    assert loaded.table.select(generated.column_names).equals(generated)
    # rasteret's own export of the same table writes the same files
    loaded.export(tmp_path / "exported")
    exported = sorted(p.relative_to(tmp_path / "exported").as_posix()
                      for p in (tmp_path / "exported").rglob("*.parquet"))  # fmt: skip
    assert exported == files
    ours = pq.read_schema(out / files[0])
    theirs = pq.read_schema(tmp_path / "exported" / files[0])
    assert ours.remove_metadata() == theirs.remove_metadata()
    assert set(ours.metadata) == set(theirs.metadata)


def test_chunks_change_the_delivery_not_the_content(li: Any, tmp_path: Path) -> None:
    whole = li.generate_table(li.Spec(records=300, bands=("B04",)))
    pieces = li.generate_table(li.Spec(records=300, bands=("B04",), chunks=11, batch_rows=20))
    assert pieces["id"].num_chunks > 11 and whole["id"].num_chunks == 1
    assert pieces.equals(whole)
    rasteret.as_collection(pieces)

    out = tmp_path / "chunked.parquet"
    li.write_index(li.Spec(records=300, bands=("B04",), chunks=11), out)
    assert pq.ParquetFile(out).metadata.num_row_groups == 11
    assert rasteret.load(out).table["id"].num_chunks == 11
