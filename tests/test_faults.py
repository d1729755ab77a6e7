"""Faults injected by the object server, seen end to end through the xarray engine.

Transient faults (500/503, slow first byte, reset connection, truncated body, wrong
Content-Range) must give GDAL's pixels after retries; persistent ones a typed
:class:`FetchError` naming the URL and byte range, within a bounded time; nothing is
filled silently. Coalescing: a whole 4×4-tile scene is one request, and the client's
counters equal the server's tally.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import xarray as xr

from _cloudscenes import NAMES, assert_pixels, fetch_settings, oracle, write_scenes
from rasteret.errors import FetchError
from rasteret.fetch import track
from rasteret.ingest import build_from_files
from rasteret.testing.objserver import ObjectServer

FAST = {"max_retries": 3, "backoff_initial": 0.01, "backoff_max": 0.05}


@pytest.fixture
def served(object_server: ObjectServer, tmp_path: Path):
    """Two 4×4-tile COGs on the object server, indexed; the server log starts empty."""
    paths = write_scenes(tmp_path)
    with fetch_settings(**FAST):
        collection = build_from_files([object_server.url_for(n) for n in NAMES])
    object_server.reset()
    return collection, [paths[n] for n in NAMES]


def read_all(collection) -> xr.Dataset:
    ds = xr.open_dataset(collection, engine="rasteret")
    ds["b1"].load()
    return ds


def test_whole_scene_is_one_request_and_counters_match(object_server: ObjectServer, served):
    collection, paths = served
    with fetch_settings(**FAST), track() as t:
        ds = read_all(collection)
    assert_pixels(ds, paths)
    gets = object_server.records(method="GET")
    assert len(gets) == object_server.requests == 2  # one per 16-tile scene, no HEAD
    assert sorted(r.path for r in gets) == sorted(NAMES)
    assert all(r.start and r.start > 0 and r.status == 206 for r in gets)  # no header read
    assert (t.requests, t.bytes, t.retries) == (2, object_server.bytes_sent, 0)


def test_gap_zero_splits_only_where_tiles_are_not_adjacent(object_server: ObjectServer, served):
    collection, paths = served
    with fetch_settings(**FAST, coalesce_gap=0), track() as t:
        assert_pixels(read_all(collection), paths)
    assert t.requests == object_server.requests >= 2
    assert t.bytes == object_server.bytes_sent


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("status", {"status": 500, "times": 2}),
        ("status", {"status": 503, "times": 2}),
        ("slow", {"delay": 2.0}),
        ("reset", {}),
        ("truncate", {}),
        ("bad_range", {}),
    ],
)
def test_transient_faults_give_identical_pixels(
    object_server: ObjectServer, served, kind: str, params: dict
) -> None:
    collection, paths = served
    fault = object_server.inject(NAMES[0], kind, **params)  # type: ignore[arg-type]
    with fetch_settings(**FAST, request_timeout=0.5), track() as t:
        assert_pixels(read_all(collection), paths)
    assert fault.hits >= 1 and t.retries == fault.hits
    assert t.requests == object_server.requests and t.errors == 0


@pytest.mark.parametrize("kind", ["status", "reset", "truncate"])
def test_persistent_faults_raise_a_typed_error_in_bounded_time(
    object_server: ObjectServer, served, kind: str
) -> None:
    collection, _ = served
    object_server.inject(NAMES[1], kind, times=None)  # type: ignore[arg-type]
    url = object_server.url_for(NAMES[1])
    t0 = time.perf_counter()
    with fetch_settings(**(FAST | {"max_retries": 2})), pytest.raises(FetchError) as info:
        read_all(collection)
    assert time.perf_counter() - t0 < 10
    error = info.value
    assert error.url == url and error.byte_range is not None
    assert url in str(error) and f"bytes {error.byte_range[0]}-" in str(error)
    assert "3 attempts" in str(error)


def test_a_failed_scene_does_not_fill_silently_but_others_read(
    object_server: ObjectServer, served
) -> None:
    collection, paths = served
    object_server.inject(NAMES[1], "status", status=500, times=None)
    ds = xr.open_dataset(collection, engine="rasteret")
    with fetch_settings(**(FAST | {"max_retries": 1})):
        first = ds["b1"].isel(time=0).values  # the healthy scene reads
        with pytest.raises(FetchError):
            ds["b1"].isel(time=1).values  # noqa: B018 (the failing one raises)
    assert (first == oracle(paths[0])).all()
