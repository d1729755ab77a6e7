"""Google Cloud Storage end to end through gcp-storage-emulator on 127.0.0.1 (``tests/_gcs.py``).

A public bucket is read anonymously (unsigned requests); a private one answers only a
bearer token the emulator's front knows, so a successful read proves the credentials
(a ``credential_provider``, a ``bearer_token`` in the store config) reached the server.
The oracles: pixels from GDAL (rasterio) reading the local source files, and the
server's request log (what was read, with which ``Authorization``; no header read after
the build).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import shapely

import rasteret
from _cloudscenes import (
    NAMES,
    assert_pixels,
    clear_env,
    fetch_settings,
    open_ds,
    oracle,
    write_scenes,
)
from _gcs import GcsEmulator
from rasteret._async import run_sync
from rasteret.errors import FetchError
from rasteret.fetch import default_reader, track

PUBLIC, PRIVATE = "rasteret-gcs-public", "rasteret-gcs-private"
TOKEN = "ya29.rasteret-test-token"
_GCS_ENV = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_BEARER_TOKEN",
    "GOOGLE_BASE_URL",
    "STORAGE_EMULATOR_HOST",
)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_scenes(tmp_path_factory.mktemp("gcsscenes"))


@pytest.fixture(scope="module")
def buckets(gcs_emulator: GcsEmulator, scenes: dict[str, Path]) -> GcsEmulator:
    gcs_emulator.create_bucket(PUBLIC)
    gcs_emulator.create_bucket(PRIVATE, private=True)
    gcs_emulator.tokens.add(TOKEN)
    for name, path in scenes.items():
        for bucket in (PUBLIC, PRIVATE):
            gcs_emulator.upload(bucket, f"cogs/{name}", path.read_bytes())
    return gcs_emulator


@pytest.fixture
def gcs(buckets: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> GcsEmulator:
    """No Google settings from the environment; the request log starts empty."""
    clear_env(monkeypatch, _GCS_ENV)
    buckets.reset()
    return buckets


def urls(bucket: str) -> list[str]:
    return [f"gs://{bucket}/cogs/{name}" for name in NAMES]


def assert_no_header_reads(gcs: GcsEmulator, collection: rasteret.Collection) -> None:
    """Every request since the last reset read tile bytes only: no HEAD, no range
    outside the span of the file's tiles (the header lies before it)."""
    spans = {}
    for href, meta in zip(
        collection.hrefs("b1"), collection.table["b1_metadata"].to_pylist(), strict=True
    ):
        ends = np.add(meta["tile_offsets"], meta["tile_byte_counts"])
        spans[href.split("/", 3)[3]] = (min(meta["tile_offsets"]), int(ends.max()))
    log = gcs.records()
    assert log, "nothing was read"
    for r in log:
        assert r.method == "GET" and r.start is not None and r.end is not None, r
        low, high = spans[r.path]
        assert low <= r.start and r.end <= high, (r, low, high)


def test_public_bucket_is_read_anonymously(gcs: GcsEmulator, scenes: dict[str, Path]) -> None:
    with fetch_settings(stores={f"gs://{PUBLIC}": {"endpoint": gcs.endpoint}}):
        r = default_reader().route(urls(PUBLIC)[0])
        assert (r.provider, r.bucket, r.path) == ("gcs", PUBLIC, f"cogs/{NAMES[0]}")
        collection = rasteret.build_from_files(urls(PUBLIC))
        assert collection.hrefs("b1") == urls(PUBLIC)
        assert len(gcs.records(PUBLIC)) >= 2  # the headers were read from the emulator
        gcs.reset()
        with track() as t:
            assert_pixels(open_ds(collection), list(scenes.values()))
        assert t.requests == gcs.requests == 2  # one coalesced request per 4×4-tile scene
        assert_no_header_reads(gcs, collection)
        gcs.reset()
        box = shapely.box(301000, 4996440, 303560, 4998000)  # pixel rows 200:356, cols 100:356
        stack = collection.get_numpy(box, "b1", geometry_crs=32633)
        for t, path in enumerate(scenes.values()):
            np.testing.assert_array_equal(stack.data[t], oracle(path)[200:356, 100:356])
        assert_no_header_reads(gcs, collection)
    assert {r.authorization for r in gcs.records()} == {None}  # unsigned


def test_private_bucket_refuses_anonymous_reads(gcs: GcsEmulator) -> None:
    url = urls(PRIVATE)[0]
    stores = {"gs://": {"endpoint": gcs.endpoint}}
    with fetch_settings(stores=stores), pytest.raises(FetchError) as info:
        run_sync(default_reader().read_range(url, 0, 8))
    assert info.value.url == url and "401" in str(info.value)
    assert [r.status for r in gcs.records(PRIVATE)] == [401]


def test_credential_provider_is_called_and_its_token_sent(
    gcs: GcsEmulator, scenes: dict[str, Path]
) -> None:
    """``build_from_table`` on ``gs://`` hrefs with a credential provider configured for the
    bucket: the provider is asked, and every request carries its bearer token."""
    calls: list[int] = []

    def provider() -> dict[str, object]:
        calls.append(1)
        return {"token": TOKEN, "expires_at": None}

    table = pa.table(
        {"id": ["a", "b"], "datetime": ["2024-06-01", "2024-06-11"], "href": urls(PRIVATE)}
    )
    stores = {f"gs://{PRIVATE}": {"endpoint": gcs.endpoint, "credential_provider": provider}}
    with fetch_settings(stores=stores):
        collection = rasteret.build_from_table(table, href_column="href")
        gcs.reset()
        assert_pixels(open_ds(collection), list(scenes.values()))
        assert_no_header_reads(gcs, collection)
    assert calls  # obstore asked the provider (it caches a token without expiry)
    assert {r.authorization for r in gcs.records()} == {f"Bearer {TOKEN}"}


def test_bearer_token_from_config_via_storage_emulator_host(
    gcs: GcsEmulator, scenes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint from ``STORAGE_EMULATOR_HOST`` (no scheme, as Google's libraries take
    it), the token from the store config, https://storage.googleapis.com hrefs: the token
    reaches the server and never a pickle."""
    from rasteret.store import open_store

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"{gcs.host}:{gcs.port}")
    hrefs = [f"https://storage.googleapis.com/{PRIVATE}/cogs/{name}" for name in NAMES]
    with fetch_settings(stores={f"gs://{PRIVATE}": {"config": {"bearer_token": TOKEN}}}):
        collection = rasteret.build_from_files(hrefs)
        assert_pixels(open_ds(collection), list(scenes.values()))
        payload = pickle.dumps(open_store(collection))
    assert TOKEN.encode() not in payload
    assert {r.authorization for r in gcs.records()} == {f"Bearer {TOKEN}"}


def test_collection_index_loads_from_gcs(
    gcs: GcsEmulator, scenes: dict[str, Path], tmp_path: Path
) -> None:
    """A single-file index in the bucket beside the COGs: ``load`` reads its size and
    footer, a selection reads one record's pixels."""
    with fetch_settings(stores={f"gs://{PUBLIC}": {"endpoint": gcs.endpoint}}):
        built = rasteret.build_from_files(urls(PUBLIC))
        built.export(tmp_path / "index.parquet")
        gcs.upload(PUBLIC, "indexes/index.parquet", (tmp_path / "index.parquet").read_bytes())
        gcs.reset()
        loaded = rasteret.load(f"gs://{PUBLIC}/indexes/index.parquet")
        assert len(loaded) == 2 and not loaded.is_read
        assert gcs.requests <= 3  # HEAD + the footer (pyarrow may read it in two ranges)
        one = loaded.where(pc.field("id") == built.record_ids[1])
        assert_pixels(open_ds(one), [scenes[NAMES[1]]])
