"""Hostile collections: a Parquet index whose band structs lie is refused when loaded.

The collection is built from real files (``rasteret.samples.write_cog`` + build_from_files),
one field of one record is then corrupted, the table is written to Parquet and loaded
again: ``load`` (and ``as_collection``) must raise CollectionSchemaError naming the record
id, the band and the problem; nothing reaches the decoder. The unmodified collection
loads and reads the file's pixels (the control).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rasteret import as_collection, load
from rasteret.errors import CollectionSchemaError, RasteretError
from rasteret.index.content import content_problems
from rasteret.ingest import build_from_files
from rasteret.samples import write_cog

TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("hostile")
    pixels = {}
    for name, seed in (("scene_a_20240101", 1), ("scene_b_20240201", 2)):
        array = np.random.default_rng(seed).integers(1, 4000, (70, 90), dtype=np.uint16)
        write_cog(root / f"{name}.tif", array, transform=TRANSFORM, epsg=32633, tile=32)
        pixels[name] = array
    collection = build_from_files(root, workspace_dir=root / "ws")
    return collection, pixels


def _corrupt(table: pa.Table, row: int, band: str, change) -> pa.Table:
    name = f"{band}_metadata"
    column = table[name]
    values = column.to_pylist()
    values[row] = change(dict(values[row]))
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(name), pa.array(values, type=column.type))


def _refused(tmp_path: Path, table: pa.Table, *expected: str) -> str:
    path = tmp_path / "hostile.parquet"
    pq.write_table(table, path)
    with pytest.raises(CollectionSchemaError) as caught:
        load(path).table  # noqa: B018  (rows are validated when read, before any pixel)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a valid rasteret collection")
    for text in expected:
        assert text in message, message
    with pytest.raises(CollectionSchemaError):
        as_collection(table)
    return message


def _set(field: str, value: Any):
    def change(struct: dict) -> dict:
        struct[field] = value
        return struct

    return change


def _first_overview(field: str | None, value: Any, edit: Any = None):
    def change(struct: dict) -> dict:
        if edit is not None:
            struct["overviews"][0] = edit(dict(struct["overviews"][0]))
        else:
            struct["overviews"][0][field] = value
        return struct

    return change


def test_the_unmodified_collection_loads_and_reads(tmp_path: Path, built) -> None:
    collection, pixels = built
    path = tmp_path / "ok.parquet"
    pq.write_table(collection.table, path)
    loaded = load(path, local_roots="any")  # the scenes live in another directory
    assert content_problems(loaded.table) == []
    import xarray as xr

    dataset = xr.open_dataset(loaded, engine="rasteret", bands=["b1"])
    ids = [str(i) for i in dataset["id"].values]
    for i, record in enumerate(ids):
        np.testing.assert_array_equal(dataset["b1"].isel(time=i).values, pixels[record])


def _shift(field: str, index: int, value: int):
    def change(struct: dict) -> dict:
        struct[field] = list(struct[field])
        struct[field][index] = value if value is not None else struct[field][index]
        return struct

    return change


def _onto_tile(moved: int, onto: int):
    """Tile ``moved`` now starts a few bytes into tile ``onto``."""

    def change(struct: dict) -> dict:
        struct["tile_offsets"] = list(struct["tile_offsets"])
        struct["tile_offsets"][moved] = struct["tile_offsets"][onto] + 5
        return struct

    return change


def _past_end(struct: dict) -> dict:
    struct["tile_offsets"] = list(struct["tile_offsets"])
    struct["tile_offsets"][3] = struct["file_size"] - 10  # 10 bytes left, count is larger
    return struct


def _into_next(tile: int):  # type: ignore[no-untyped-def]
    """Tile ``tile``'s byte count grown to reach into the next tile (offsets stay in order)."""

    def change(struct: dict) -> dict:
        offsets, counts = struct["tile_offsets"], list(struct["tile_byte_counts"])
        assert offsets[tile] < offsets[tile + 1]  # stored in tile order
        counts[tile] = offsets[tile + 1] - offsets[tile] + 1
        return {**struct, "tile_byte_counts": counts}

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_past_end, "tile 3 (bytes"),
        (_shift("tile_offsets", 0, 2**40), "lies past the end of the object"),
        (_shift("tile_byte_counts", 2, -5), "tile 2 has a negative offset or byte count"),
        (_shift("tile_offsets", 1, -1), "tile 1 has a negative offset or byte count"),
        (_shift("tile_byte_counts", 0, 2**40), "beyond the 1073741824 limit"),
        (lambda s: {**s, "tile_offsets": s["tile_offsets"][:-1]}, "tile offsets / "),
        (lambda s: {**s, "tile_byte_counts": []}, "0 byte counts for a grid of 9 tiles"),
        (_set("compression", 12345), "an unknown compression (compression 12345)"),
        (_set("predictor", 7), "an unknown predictor (predictor 7)"),
        (_set("dtype", "float32"), "dtype 'float32' disagrees with 16-bit SampleFormat 1"),
        (_set("dtype", "garbage"), "dtype 'garbage' is not a numeric sample type"),
        (_set("dtype", "object"), "dtype 'object' is not a numeric sample type"),
        (_set("byte_order", "x"), "byte order 'x'"),
        (_set("band_index", 3), "band_index 3 of a 1-sample file"),
        (_set("samples_per_pixel", 0), "invalid samples per pixel: 0"),
        (_set("planar_configuration", 9), "invalid planar configuration: 9"),
        (_set("tile_width", 0), "sizes must be positive"),
        (_set("image_height", -70), "sizes must be positive"),
        (_set("tile_width", 2**31 - 1), "beyond the 1073741824-byte block limit"),
        (_set("image_width", 2**31 - 1), "tile offsets / "),
        (_set("transform", [10.0, 0.0, math.nan, 0.0, -10.0, 5300000.0]), "non-finite"),
        (_set("transform", [math.inf, 0.0, 0.0, 0.0, -10.0, 0.0]), "non-finite"),
        (_set("transform", [0.0, 0.0, 500000.0, 0.0, 0.0, 5300000.0]), "degenerate"),
        (_set("transform", [1.0, 2.0, 3.0]), "transform has 3 values"),
        (_first_overview("tile_offsets", []), "overview 0: 0 tile offsets"),
        (_first_overview("image_width", 10_000), "overview 0: is 10000 x 35"),
        (_first_overview("tile_height", 0), "overview 0: image 45 x 35 in tiles of 32 x 0"),
        (_onto_tile(4, 1), "tiles 1 (bytes"),  # an offset edited into another tile
        (_into_next(1), "tiles 1 (bytes"),  # a byte count running into the next tile
        (_first_overview(None, None, _onto_tile(1, 0)), "overview 0: tiles 0 (bytes"),
    ],
)
def test_hostile_band_struct_is_refused_naming_record_and_band(
    tmp_path: Path, built, change, expected: str
) -> None:
    collection, _ = built
    table = collection.table
    row = 1
    record = table["id"][row].as_py()
    message = _refused(tmp_path, _corrupt(table, row, "b1", change), expected)
    assert f"record {record!r} band 'b1'" in message


def test_problems_are_listed_per_record_and_capped(tmp_path: Path, built) -> None:
    collection, _ = built
    table = pa.concat_tables([collection.table] * 30)
    table = table.set_column(0, "id", pa.array([f"r{i}" for i in range(len(table))]))
    for row in range(0, len(table), 2):
        table = _corrupt(table, row, "b1", _set("compression", 99))
    message = _refused(tmp_path, table, "record 'r0' band 'b1'", "record 'r2' band 'b1'")
    assert "... and 10 more content problem(s)" in message


def test_every_row_of_every_disagreeing_dtype_is_named(tmp_path: Path, built) -> None:
    collection, _ = built
    table = pa.concat_tables([collection.table] * 4)
    table = table.set_column(0, "id", pa.array([f"r{i}" for i in range(len(table))]))
    edits = {1: "float32", 4: "int16", 6: "float32", 7: "uint8"}  # others stay uint16
    for row, dtype in edits.items():
        table = _corrupt(table, row, "b1", _set("dtype", dtype))
    message = _refused(
        tmp_path,
        table,
        *(f"record 'r{row}' band 'b1'" for row in edits),
        "dtype 'float32' disagrees with 16-bit SampleFormat 1 (uint16)",
        "dtype 'int16' disagrees with 16-bit SampleFormat 1 (uint16)",
        "dtype 'uint8' disagrees with 16-bit SampleFormat 1 (uint16)",
    )
    named = {int(part.split("'")[0]) for part in message.split("record 'r")[1:]}
    assert named == set(edits)  # the agreeing rows are not named


@pytest.fixture(scope="module")
def uncompressed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, np.ndarray]:
    root = tmp_path_factory.mktemp("hostile_raw")
    array = np.random.default_rng(5).integers(1, 4000, (70, 90), dtype=np.uint16)
    write_cog(root / "raw_20240101.tif", array, transform=TRANSFORM, epsg=32633, tile=32,
              compression="none")  # fmt: skip
    return build_from_files(root, workspace_dir=root / "ws"), array


def test_uncompressed_tiles_have_their_exact_size(tmp_path: Path, uncompressed) -> None:
    """Raw tiles cannot fail to decode: an edited byte count or offset is caught before."""
    collection, array = uncompressed
    import xarray as xr

    dataset = xr.open_dataset(collection, engine="rasteret", bands=["b1"])
    np.testing.assert_array_equal(dataset["b1"].isel(time=0).values, array)  # the control
    table = collection.table
    _refused(
        tmp_path,
        _corrupt(table, 0, "b1", _shift("tile_byte_counts", 2, 1000)),
        "record 'raw_20240101' band 'b1': uncompressed tile 2 holds 1000 bytes where its 32 x 32 "
        "block needs 2048",
    )
    _refused(tmp_path, _corrupt(table, 0, "b1", _onto_tile(2, 3)), "tiles 3 (bytes")


def test_a_shifted_tile_is_not_decoded_as_garbage(tmp_path: Path, built) -> None:
    """Offsets inside the object but off by a few bytes: the codec refuses the payload."""
    collection, _ = built
    import xarray as xr

    table = _corrupt(
        collection.table,
        0,
        "b1",
        lambda s: {**s, "tile_offsets": [o + 3 for o in s["tile_offsets"]]},
    )
    loaded = as_collection(table)  # plausible values: the index cannot know
    dataset = xr.open_dataset(loaded, engine="rasteret", bands=["b1"])
    with pytest.raises(RasteretError, match="cannot decode"):
        dataset["b1"].values  # noqa: B018
