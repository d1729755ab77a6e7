"""A replaced object raises StaleIndexError (from the headers of the range request made
anyway: no extra request); ``refresh`` re-indexes exactly the changed assets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from _cloudscenes import NAMES, assert_pixels, oracle, write_scenes
from _testcollections import smooth_image, write_cog
from rasteret.errors import StaleIndexError
from rasteret.ingest import build_from_files
from rasteret.ingest.refresh import check_assets, refresh, refresh_with_report
from rasteret.testing.objserver import ObjectServer


def replace_scene(path: Path, seed: int, same_size: bool = False) -> None:
    """Overwrite ``path`` with a different COG (new content, new mtime → new ETag)."""
    tmp = path.parent / "replacement"
    tmp.mkdir(exist_ok=True)
    new = write_cog(tmp / path.name, smooth_image((1, 1024, 1024), seed=seed), blocksize=256)
    if same_size:  # same byte count, different bytes: only the ETag can tell
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        new.write_bytes(bytes(data))
    os.replace(new, path)
    shutil.rmtree(tmp)


@pytest.fixture
def served(object_server: ObjectServer, tmp_path: Path):
    paths = write_scenes(tmp_path)
    collection = build_from_files([object_server.url_for(n) for n in NAMES])
    object_server.reset()
    return collection, [paths[n] for n in NAMES]


@pytest.mark.parametrize("same_size", [False, True])
def test_replaced_object_raises_without_extra_requests(
    object_server: ObjectServer, served, same_size: bool
) -> None:
    collection, paths = served
    replace_scene(paths[1], seed=99, same_size=same_size)
    ds = xr.open_dataset(collection, engine="rasteret")
    np.testing.assert_array_equal(ds["b1"].isel(time=0).values, oracle(paths[0]))
    with pytest.raises(StaleIndexError) as info:
        ds["b1"].isel(time=1).values  # noqa: B018
    url = object_server.url_for(NAMES[1])
    assert info.value.url == url and url in str(info.value)
    assert ("ETag" if same_size else "bytes but the index recorded") in str(info.value)
    assert {r.method for r in object_server.log} == {"GET"}  # the check costs no request
    assert object_server.requests == 2  # one per scene: no HEAD, no retry


def test_local_files_are_checked_by_size_and_mtime(tmp_path: Path) -> None:
    paths = write_scenes(tmp_path / "scenes")
    collection = build_from_files([str(paths[n]) for n in NAMES])
    copy = tmp_path / "copy.tif"  # a copy that keeps size and mtime (cp -p): still valid
    shutil.copy2(paths[NAMES[0]], copy)
    os.replace(copy, paths[NAMES[0]])
    replace_scene(paths[NAMES[1]], seed=43, same_size=True)  # same size, other bytes
    indexed = collection.table["b1_metadata"][1]["file_size"].as_py()
    assert paths[NAMES[1]].stat().st_size == indexed
    ds = xr.open_dataset(collection, engine="rasteret")
    np.testing.assert_array_equal(ds["b1"].isel(time=0).values, oracle(paths[NAMES[0]]))
    with pytest.raises(StaleIndexError, match="modified at") as info:
        ds["b1"].isel(time=1).values  # noqa: B018
    assert NAMES[1] in str(info.value)
    report = check_assets(collection)
    assert [Path(c.href).name for c in report.changed] == [NAMES[1]]


def test_refresh_reindexes_only_changed_assets(object_server: ObjectServer, served) -> None:
    collection, paths = served
    assert not check_assets(collection).stale
    assert object_server.requests == 2 and {r.method for r in object_server.log} == {"HEAD"}
    replace_scene(paths[1], seed=7)
    object_server.reset()
    report = check_assets(collection)
    assert report.checked == 2 and [c.href for c in report.changed] == [
        object_server.url_for(NAMES[1])
    ]
    object_server.reset()
    refreshed, report = refresh_with_report(collection)
    assert report.reindexed == 1 and not report.failed and "1 changed" in report.summary()
    heads = object_server.records(method="HEAD")
    gets = object_server.records(method="GET")
    assert len(heads) == 2 and [(r.path, r.start) for r in gets] == [(NAMES[1], 0)]
    assert_pixels(xr.open_dataset(refreshed, engine="rasteret"), paths)  # the new pixels
    assert refresh(refreshed) is refreshed  # nothing changed any more


def test_refresh_reports_missing_objects(object_server: ObjectServer, served) -> None:
    collection, paths = served
    paths[0].unlink()
    refreshed, report = refresh_with_report(collection)
    assert refreshed is collection and not report.changed
    assert [(c.href, c.reason) for c in report.failed] == [
        (object_server.url_for(NAMES[0]), "object not found")
    ]


def test_stale_errors_say_how_to_fix_them(served) -> None:  # type: ignore[no-untyped-def]
    collection, paths = served
    replace_scene(paths[1], seed=5)
    with pytest.raises(StaleIndexError) as info:
        xr.open_dataset(collection, engine="rasteret")["b1"].isel(time=1).values  # noqa: B018
    message = str(info.value)
    assert "collection.refresh()" in message and "force=True" in message
    assert "To fix" not in info.value.reason  # the bare cause, as refresh() reports it


def test_a_same_name_rebuild_over_http_is_not_served_from_a_cache(
    object_server: ObjectServer, served, tmp_path: Path
) -> None:
    """A rebuilt collection file of the same size, written within the same second (HTTP
    and S3 modification times have whole seconds), is still a new collection: its ETag
    tells it apart, so its fingerprint changes and workers do not reuse the old load."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import rasteret
    from rasteret.store.reference import make_reference

    collection, _ = served
    path, url = tmp_path / "c.parquet", object_server.url_for("c.parquet")
    second = 1_700_000_000 * 10**9

    def publish(quality: float, ns: int) -> None:
        column = pa.array([quality] * len(collection), pa.float64())
        table = collection.table.append_column("quality", column)
        pq.write_table(table, path, compression="none", use_dictionary=False)
        os.utime(path, ns=(ns, ns))

    publish(0.5, second + 1_000)
    first = rasteret.load(url)
    old = make_reference(first, ("b1",), "token")
    assert old.collection().table["quality"].to_pylist() == [0.5, 0.5]  # a worker's load
    size = path.stat().st_size
    publish(0.25, second + 2_000)  # same name, same size, same second: another ETag
    assert path.stat().st_size == size
    again = rasteret.load(url)
    assert again.fingerprint != first.fingerprint
    new = make_reference(again, ("b1",), "token")
    assert new.collection().table["quality"].to_pylist() == [0.25, 0.25]
