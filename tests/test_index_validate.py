"""Schema validation errors and the typed BandLevels views over hand-built structs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from index_tables import band_struct, make_table, sample_records
from rasteret import as_collection, load
from rasteret.errors import CollectionSchemaError
from rasteret.index import BandLevels
from rasteret.index.schema import ORIGINAL_BAND_FIELDS


def _error(table: pa.Table, **kwargs: object) -> str:
    with pytest.raises(CollectionSchemaError) as info:
        as_collection(table, **kwargs)
    return str(info.value)


def test_missing_columns_are_all_listed() -> None:
    table = make_table(sample_records()).drop_columns(["datetime", "geometry"])
    message = _error(table, name="mine")
    assert message.startswith("table 'mine': not a valid rasteret collection")
    assert "missing required columns: ['datetime', 'geometry']" in message


def test_mistyped_columns_are_named_with_expected_and_actual_types() -> None:
    table = make_table(sample_records())
    table = table.set_column(1, "datetime", table["datetime"].cast(pa.string()))
    table = table.set_column(0, "id", pa.array(range(6)))
    message = _error(table)
    assert message.startswith("in-memory table:")
    assert "datetime (expected timestamp, got string)" in message
    assert "id (expected string, got int64)" in message


def test_band_struct_fields_missing_or_mistyped() -> None:
    table = make_table(sample_records(), bands=("B04",))
    struct = table["B04_metadata"].combine_chunks()
    names = [f.name for f in struct.type]
    children = [struct.field(i) for i in range(len(names))]
    keep = [i for i, n in enumerate(names) if n not in ("tile_offsets", "dtype")]
    width = names.index("tile_width")
    children[width] = children[width].cast(pa.string())
    broken = pa.StructArray.from_arrays([children[i] for i in keep], [names[i] for i in keep])
    message = _error(
        table.set_column(table.schema.get_field_index("B04_metadata"), "B04_metadata", broken)
    )
    assert "B04_metadata: missing fields ['dtype', 'tile_offsets']" in message
    assert "B04_metadata: mistyped fields: tile_width (expected integer, got string)" in message


def test_band_metadata_requirement_can_be_waived() -> None:
    table = make_table(sample_records()).drop_columns(["B04_metadata", "B08_metadata"])
    assert "No '*_metadata' columns found" in _error(table)
    assert len(as_collection(table, require_band_metadata=False)) == 6


def test_malformed_nested_columns_and_null_ids(tmp_path: Path) -> None:
    table = make_table(sample_records())
    bbox = pa.array([{"xmin": 0.0, "ymin": 0.0, "xmax": 1.0}] * 6)
    assets = pa.array([{"B04": {"url": "x"}}] * 6)
    table = table.set_column(3, "bbox", bbox).set_column(4, "assets", assets)
    table = table.set_column(0, "id", pa.array(["a", None, "c", "d", "e", "f"]))
    path = tmp_path / "broken.parquet"
    pq.write_table(table, path)
    with pytest.raises(CollectionSchemaError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "bbox: missing fields ['ymax']" in message
    assert "assets: malformed entries: B04 (needs a string field 'href')" in message
    assert "column 'id' has 1 null value(s)" in message


def test_original_17_field_structs_are_accepted_and_read() -> None:
    """Tables of the original system (4-value transform, no overviews) stay readable."""
    full = band_struct(width=600, height=500, tile=256)
    legacy = {k: full[k] for k in ORIGINAL_BAND_FIELDS}
    legacy["transform"] = [10.0, 500000.0, -10.0, 5000000.0]
    table = make_table(sample_records()[:1], bands=("B04",))
    column = pa.array([legacy])
    table = table.set_column(table.schema.get_field_index("B04_metadata"), "B04_metadata", column)
    levels = as_collection(table).band_levels("B04")[0]
    assert levels.full.transform == (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)
    assert levels.overviews == () and levels.mask is None
    assert (levels.band_index, levels.byte_order, levels.bits_per_sample) == (0, "<", 16)
    assert levels.sample_format == 1 and levels.full.predictor == 2


def test_band_levels_views() -> None:
    struct = band_struct(width=1000, height=800, tile=256, overviews=2, mask=True)
    levels = BandLevels.from_struct(struct)
    assert [lv.level for lv in levels.levels] == [0, 1, 2]
    assert [(lv.width, lv.height) for lv in levels.levels] == [(1000, 800), (500, 400), (250, 200)]
    assert levels.full.tiles_across == 4 and levels.full.tiles_down == 4
    assert levels.full.offsets.dtype == np.int64 and levels.full.offsets.size == 16
    assert levels.full.block(1, 2) == (struct["tile_offsets"][6], struct["tile_byte_counts"][6])
    with pytest.raises(IndexError):
        levels.full.block(4, 0)
    assert levels.overviews[0].transform == (20.0, 0.0, 500000.0, 0.0, -20.0, 5000000.0)
    assert levels.mask is not None and levels.mask.bits_per_sample == 1
    assert levels.mask_for(levels.full) is levels.mask
    assert levels.mask_for(levels.overviews[0]) is None
    assert levels.crs == "EPSG:32633" and levels.nodata == 0.0
    layout = levels.layout(levels.overviews[1])
    assert (layout.kind, layout.width, layout.block_width, layout.compression) == (
        "overview",
        250,
        256,
        8,
    )
    assert layout.block_offsets is levels.overviews[1].offsets
    bad = {**struct, "tile_offsets": struct["tile_offsets"][:-1]}
    with pytest.raises(ValueError, match="15 offsets"):
        BandLevels.from_struct(bad)
    with pytest.raises(ValueError, match="null"):
        BandLevels.from_struct(None)  # type: ignore[arg-type]


def test_map_typed_assets_are_accepted() -> None:
    table = make_table(sample_records()[:2], bands=("B04",))
    entry = pa.struct([("href", pa.string()), ("band_index", pa.int64())])
    assets = pa.array(
        [[("B04", {"href": "s3://a/B04.tif", "band_index": 0})], []],
        type=pa.map_(pa.string(), entry),
    )
    table = table.set_column(table.schema.get_field_index("assets"), "assets", assets)
    assert as_collection(table).hrefs("B04") == ["s3://a/B04.tif", None]
    bad = pa.array([[("B04", "s3://a")], []], type=pa.map_(pa.string(), pa.string()))
    table = table.set_column(table.schema.get_field_index("assets"), "assets", bad)
    assert "assets: malformed entries: <map values> (expected struct" in _error(table)
