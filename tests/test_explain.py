"""``explain``: the dry run predicts the requests and bytes of a read exactly (checked
against the object server's tally of the real read), and fetches nothing itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr

from _cloudscenes import BLOCK, NAMES, fetch_settings, write_scenes
from rasteret.fetch import track
from rasteret.ingest import build_from_files
from rasteret.read.explain import explain
from rasteret.testing.objserver import ObjectServer


@pytest.fixture
def collection(object_server: ObjectServer, tmp_path: Path):
    write_scenes(tmp_path)
    built = build_from_files([object_server.url_for(n) for n in NAMES])
    object_server.reset()
    return built


def test_whole_collection(object_server: ObjectServer, collection) -> None:
    plan = explain(collection)
    assert object_server.requests == 0  # a dry run
    assert (len(plan.objects), plan.tiles, plan.requests) == (2, 32, 2)
    assert plan.bytes >= plan.tile_bytes > 0
    ds = xr.open_dataset(collection, engine="rasteret")
    with track() as t:
        ds["b1"].load()
    assert t.requests == object_server.requests == plan.requests
    assert object_server.bytes_sent == plan.bytes
    got = sorted((r.path, r.start, r.end) for r in object_server.log)
    want = sorted((o.href.rsplit("/", 1)[1], s, e) for o in plan.objects for s, e in o.ranges)
    assert got == want
    assert "2 object(s), 2 request(s)" in str(plan)


@pytest.mark.parametrize("gap", [0, 1 << 20])
def test_window_matches_the_server(object_server: ObjectServer, collection, gap: int) -> None:
    rows, cols = (100, 300), (200, 2 * BLOCK + 10)  # 2 tile rows × 3 tile columns
    with fetch_settings(coalesce_gap=gap):
        plan = explain(collection, "b1", window=(rows, cols))
        ds = xr.open_dataset(collection, engine="rasteret")
        ds["b1"].isel(y=slice(*rows), x=slice(*cols)).load()
    assert plan.tiles == 2 * 2 * 3
    # GDAL writes a 4-byte leader before each tile: with gap 0 no two tiles touch
    assert object_server.requests == plan.requests == (plan.tiles if gap == 0 else 2)
    assert object_server.bytes_sent == plan.bytes
    assert sorted((r.start, r.end) for r in object_server.log) == sorted(
        r for o in plan.objects for r in o.ranges
    )


def test_bbox_in_the_grid_crs_equals_its_pixel_window(collection) -> None:
    a, _, c, _, e, f = collection.band_levels("b1")[0].full.transform[:6]
    rows, cols = (100, 300), (200, 522)
    bbox = (c + cols[0] * a, f + rows[1] * e, c + cols[1] * a, f + rows[0] * e)
    by_box = explain(collection, window=None, bbox=bbox)
    by_window = explain(collection, window=(rows, cols))
    assert by_box.objects == by_window.objects and by_box.tiles == 12


def test_local_files_use_the_local_gap(tmp_path: Path) -> None:
    paths = write_scenes(tmp_path)
    collection = build_from_files([str(paths[n]) for n in NAMES])
    plan = explain(collection, window=((0, BLOCK), (0, 4 * BLOCK)))  # one full tile row
    with track() as t:
        ds = xr.open_dataset(collection, engine="rasteret")
        ds["b1"].isel(y=slice(0, BLOCK)).load()
    assert plan.tiles == 8 and t.requests == plan.requests and t.bytes == plan.bytes


def test_the_estimate_follows_the_plans_counts(collection, tmp_path: Path) -> None:
    """Decoded bytes are the fetched tiles' pixels (rasterio's block shape and dtype); the
    seconds follow the documented model from the plan's exact request and byte counts."""
    import math

    import numpy as np
    import rasterio

    from rasteret.store.cost import DECODE_RATES

    with fetch_settings(max_in_flight=3):
        plan = explain(collection, "b1")
    with rasterio.open(tmp_path / NAMES[0]) as src:  # the fixture's files, served
        (bh, bw), itemsize = src.block_shapes[0], np.dtype(src.dtypes[0]).itemsize
        assert src.compression.value == "DEFLATE"
    assert plan.decoded == ((8, plan.tiles * bh * bw * itemsize),)
    assert plan.in_flight == 3
    cost = plan.estimate(0.1, bandwidth=1e6, cores=2)
    assert cost.io_seconds == math.ceil(plan.requests / 3) * 0.1 + plan.bytes / 1e6
    assert cost.decode_seconds == plan.decoded_bytes / DECODE_RATES[8] / 2
    assert cost.seconds == max(cost.io_seconds, cost.decode_seconds)
    assert cost.bound == "bandwidth"  # 1 MB/s dominates
    assert plan.estimate(10.0, cores=2).bound == "latency"
    assert plan.estimate(0.0, bandwidth=1e12, cores=1).bound == "decode"
    html = plan._repr_html_()
    assert "at 30 ms" in html and "at 100 ms" in html and "0 header reads" in html
    assert "estimate: ~" in str(plan)
    with pytest.raises(ValueError, match="in_flight"):
        plan.estimate(0.03, in_flight=0)
