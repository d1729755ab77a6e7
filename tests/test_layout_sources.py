"""The layout's per-record sources, built on first use (``rasteret.store.sources``).

Oracle: the layout's row-by-row path (one ``BandLevels`` and one ``TileSource`` per
record, band and level), which the whole-column path must equal source for source —
href, block tables, JPEG tables, object identity and the origin named in errors — on
records that share a structure, records that do not (other tile sizes, grids, masks,
overviews) and a band missing from some records. Also: the sequence behaves as the
list it replaces, builds each source once (threads included) and an open builds none.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import numpy as np
import pytest

from _testcollections import make_table, record, smooth_image, write_cog
from rasteret.store import layout as layout_module
from rasteret.store.layout import StoreLayout, build_layout
from rasteret.store.sources import SourceList, TileSource


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("sources")
    records = []
    for i in range(9):
        kinds = {"blocksize": 256 if i % 3 else 512, "overviews": 2 if i < 6 else 0}
        if i == 4:
            kinds["compress"] = "JPEG"  # JPEG tables per record
            kinds["predictor"] = None
        data = smooth_image((2, 1024, 1024), "uint8" if i == 4 else "uint16", seed=i)
        b1 = write_cog(root / f"r{i}_b1.tif", data[0], **kinds)
        assets = {"b1": b1}
        if i != 7:  # a record without b2
            assets["b2"] = write_cog(root / f"r{i}_b2.tif", data[1], blocksize=512)
        when = dt.datetime(2024, 1, 1 + (i * 5) % 9, tzinfo=dt.UTC)  # not in row order
        records.append(record(f"r{i}", when, assets))
    return make_table(records, ["b1", "b2"])


def _row_by_row(table) -> StoreLayout:  # type: ignore[no-untyped-def]
    """The layout built record by record (the whole-column path declined)."""
    original = layout_module._add_band_by_signature
    layout_module._add_band_by_signature = lambda *args: False
    try:
        return build_layout(table)
    finally:
        layout_module._add_band_by_signature = original


def _fields(source: TileSource | None) -> tuple | None:  # type: ignore[type-arg]
    if source is None:
        return None
    return (
        source.href,
        source.offsets.tolist(),
        source.byte_counts.tolist(),
        source.jpeg_tables,
        source.size,
        source.etag,
        source.last_modified,
        source.origin,
    )


def test_whole_column_sources_equal_the_row_by_row_ones(table) -> None:  # type: ignore[no-untyped-def]
    lazy, eager = build_layout(table), _row_by_row(table)
    assert list(lazy.groups) == list(eager.groups)
    compared = 0
    for name, group in eager.groups.items():
        assert list(lazy.groups[name].arrays) == list(group.arrays)
        for array_name, array in group.arrays.items():
            mine = lazy.groups[name].arrays[array_name]
            assert isinstance(mine.sources, SourceList)
            assert mine.present.tolist() == [s is not None for s in array.sources]
            assert mine.records == array.records
            assert [_fields(s) for s in mine.sources] == [_fields(s) for s in array.sources]
            compared += int(mine.present.sum())
    assert compared > 20  # levels of several records, JPEG tables and a missing band among them
    jpeg = [s for g in lazy.groups.values() for a in g.arrays.values() for s in a.sources if s]
    assert any(s.jpeg_tables for s in jpeg)


def test_a_source_list_is_the_sequence_it_replaces(table) -> None:  # type: ignore[no-untyped-def]
    group = build_layout(table).groups[build_layout(table).grid_groups[0]]
    sources = next(a for a in group.arrays.values() if a.band == "b2").sources
    assert isinstance(sources, SourceList)
    as_list = [sources[t] for t in range(len(sources))]
    assert list(sources) == as_list and sources == as_list  # the same objects
    assert sources[-1] is as_list[-1] and sources[1:3] == as_list[1:3]
    assert sources[0] is sources[0]
    with pytest.raises(IndexError):
        sources[len(sources)]
    assert None in as_list  # the record without b2
    assert sources.present.tolist() == [s is not None for s in as_list]
    assert "steps" in repr(sources)


def test_concurrent_first_uses_build_each_source_once(table) -> None:  # type: ignore[no-untyped-def]
    layout = build_layout(table)
    sources = next(a for a in layout.groups[layout.grid_groups[0]].arrays.values()).sources
    barrier = threading.Barrier(8)
    seen: list[list[TileSource | None]] = []

    def take() -> None:
        barrier.wait()
        seen.append([sources[t] for t in range(len(sources))])

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(all(a is b for a, b in zip(s, seen[0], strict=True)) for s in seen)


def test_opening_the_engine_builds_no_source(table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An open reads no pixel and needs no record's block table: the sources of records
    added like another stay unbuilt (one per structure is built to lay it out)."""
    import xarray as xr

    from rasteret import as_collection

    built: list[int] = []
    original = SourceList._build

    def counting(self: SourceList, t: int) -> TileSource | None:
        built.append(t)
        return original(self, t)

    SourceList._build = counting  # type: ignore[method-assign]
    try:
        ds = xr.open_dataset(as_collection(table), engine="rasteret", chunks={})
        assert built == []
        values = ds["b2"].isel(time=0).values  # one record read: its sources only
    finally:
        SourceList._build = original  # type: ignore[method-assign]
    assert values.shape == (1024, 1024) and np.isfinite(values).any()
    assert 0 < len(built) <= 2  # that record's b2 (and at most its mask)
