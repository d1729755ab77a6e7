"""S3 through moto's server on 127.0.0.1: public (anonymous), credentialed and
requester-pays buckets, path-style and virtual-host URLs, region discovery.

The oracle for what reached S3 is the server's own request log (method, range, headers:
``Authorization``'s access key, ``x-amz-request-payer``); pixels are compared with GDAL
(rasterio) reading the local source files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pytest

from _cloudscenes import (
    NAMES,
    assert_pixels,
    clear_env,
    fetch_settings,
    open_ds,
    write_scenes,
)
from rasteret._async import run_sync
from rasteret.errors import FetchError
from rasteret.fetch import default_reader, route, track
from rasteret.fetch.stores import get_store
from rasteret.ingest import build_from_files

moto_server = pytest.importorskip(
    "rasteret.testing.moto", reason="moto[server] is not installed (test extra)"
)
pytest.importorskip("moto", reason="moto[server] is not installed (test extra)")

PUBLIC, PRIVATE, PAYER, EU = "rasteret-public", "rasteret-private", "rasteret-payer", "rasteret-eu"
_AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_scenes(tmp_path_factory.mktemp("s3scenes"))


@pytest.fixture(scope="module")
def s3(scenes: dict[str, Path]) -> Iterator[moto_server.MotoS3Server]:
    with moto_server.MotoS3Server() as server:
        server.create_bucket(PUBLIC, public=True)
        server.create_bucket(PRIVATE)
        server.create_bucket(PAYER, requester_pays=True)
        server.create_bucket(EU, region="eu-west-1")
        for name, path in scenes.items():
            for bucket in (PUBLIC, PRIVATE, PAYER, EU):
                server.put(bucket, f"cogs/{name}", path.read_bytes())
        yield server


@pytest.fixture
def aws(s3: moto_server.MotoS3Server, monkeypatch: pytest.MonkeyPatch) -> moto_server.MotoS3Server:
    """No AWS settings from the environment; the server log starts empty."""
    clear_env(monkeypatch, _AWS_ENV)
    s3.reset()
    return s3


def endpoint_stores(s3: moto_server.MotoS3Server, **more: dict) -> dict[str, dict]:
    return {"s3://": {"endpoint": s3.endpoint, "region": "us-east-1"}, **more}


def urls(bucket: str) -> list[str]:
    return [f"s3://{bucket}/cogs/{name}" for name in NAMES]


def test_public_bucket_is_read_anonymously(aws, scenes: dict[str, Path]) -> None:
    with fetch_settings(stores=endpoint_stores(aws)):
        collection = build_from_files(urls(PUBLIC))
        index_gets = aws.records("GET")
        aws.reset()
        with track() as t:
            assert_pixels(open_ds(collection), list(scenes.values()))
    assert len(index_gets) == 2 and all(r.start == 0 for r in index_gets)  # 1 header GET/file
    log = aws.records()
    assert log and not any(r.signed for r in log + index_gets)  # anonymous: no Authorization
    # a whole 4×4-tile scene is one coalesced request; no header is read again
    assert [r.method for r in log] == ["GET", "GET"]
    assert sorted(r.path for r in log) == [f"{PUBLIC}/cogs/{n}" for n in NAMES]
    assert all(r.start != 0 and r.status == 206 for r in log)
    assert t.requests == aws.requests == 2 and t.bytes == aws.bytes_sent


def test_private_bucket_with_credentials_from_env(
    aws, scenes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    with fetch_settings(stores=endpoint_stores(aws)):
        collection = build_from_files(urls(PRIVATE))
        assert_pixels(open_ds(collection), list(scenes.values()))
    log = aws.records()
    assert log and {r.access_key for r in log} == {"AKIAFROMENVIRONMENT1"}


def test_private_bucket_with_credentials_from_config(aws, scenes: dict[str, Path]) -> None:
    keys = {"access_key_id": "AKIAFROMCONFIG000001", "secret_access_key": "secret-from-config"}
    stores = endpoint_stores(aws, **{f"s3://{PRIVATE}": {"config": keys}})
    with fetch_settings(stores=stores):
        private = build_from_files(urls(PRIVATE))
        public = build_from_files(urls(PUBLIC)[:1])
        assert_pixels(open_ds(private), list(scenes.values()))
        assert_pixels(open_ds(public), list(scenes.values())[:1])
    signed = {r.path.split("/")[0]: r.access_key for r in aws.records()}
    assert signed == {PRIVATE: "AKIAFROMCONFIG000001", PUBLIC: None}  # per-bucket settings


def test_credential_provider_is_called(aws, scenes: dict[str, Path]) -> None:
    calls = []

    def provider() -> dict:
        calls.append(1)
        return {
            "access_key_id": "AKIAFROMPROVIDER0001",
            "secret_access_key": "secret",
            "token": None,
            "expires_at": None,
        }

    stores = endpoint_stores(aws, **{f"s3://{PRIVATE}": {"credential_provider": provider}})
    with fetch_settings(stores=stores):
        data = run_sync(default_reader().read_range(urls(PRIVATE)[0], 0, 8))
    assert data == scenes[NAMES[0]].read_bytes()[:8]
    assert calls and {r.access_key for r in aws.records()} == {"AKIAFROMPROVIDER0001"}


def test_requester_pays_header_reaches_the_server(
    aws, scenes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREQUESTERPAYS001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    url = urls(PAYER)[0]
    with fetch_settings(stores=endpoint_stores(aws)), pytest.raises(FetchError) as info:
        run_sync(default_reader().read_range(url, 0, 8))
    assert url in str(info.value) and "403" in str(info.value)  # S3 refuses without it
    aws.reset()
    stores = endpoint_stores(aws, **{f"s3://{PAYER}": {"requester_pays": True}})
    with fetch_settings(stores=stores):
        collection = build_from_files(urls(PAYER))
        assert_pixels(open_ds(collection), list(scenes.values()))
    log = aws.records()
    assert len(log) == 4  # 2 header reads + 2 coalesced scene reads
    assert all(r.header("x-amz-request-payer") == "requester" for r in log)
    assert all(r.access_key == "AKIAREQUESTERPAYS001" and r.status == 206 for r in log)


def test_requester_pays_needs_credentials(aws) -> None:
    stores = endpoint_stores(aws, **{f"s3://{PAYER}": {"requester_pays": True, "anonymous": True}})
    with fetch_settings(stores=stores), pytest.raises(FetchError, match="need credentials"):
        run_sync(default_reader().read_range(urls(PAYER)[0], 0, 8))
    assert aws.requests == 0


def test_path_style_and_virtual_host_urls(aws, scenes: dict[str, Path]) -> None:
    name = NAMES[0]
    spellings = [
        f"{aws.endpoint}/{PUBLIC}/cogs/{name}",  # path-style on the configured endpoint
        f"https://{PUBLIC}.s3.us-east-1.amazonaws.com/cogs/{name}",  # virtual host
        f"https://{PUBLIC}.s3.amazonaws.com/cogs/{name}",  # legacy global virtual host
        f"https://s3.us-east-1.amazonaws.com/{PUBLIC}/cogs/{name}",  # AWS path-style
    ]
    with fetch_settings(stores=endpoint_stores(aws)):
        reader = default_reader()
        for url in spellings:
            r = reader.route(url)
            assert (r.provider, r.bucket, r.path) == ("s3", PUBLIC, f"cogs/{name}"), url
        collection = build_from_files(spellings[:2], bands=["b1"])
        expected = scenes[name]
        assert_pixels(open_ds(collection), [expected, expected])

        async def first_bytes() -> list[bytes]:
            return await asyncio.gather(*(reader.read_range(u, 0, 4) for u in spellings))

        assert set(run_sync(first_bytes())) == {expected.read_bytes()[:4]}
    assert {r.path for r in aws.records()} == {f"{PUBLIC}/cogs/{name}"}
    # every spelling shares one store: one bucket, one client
    assert len({id(get_store(route(u, (aws.endpoint,)), reader.config)) for u in spellings}) == 1


def test_region_is_discovered_once_per_bucket(
    aws, scenes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREGIONDISCOVERY1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    with fetch_settings(stores={"s3://": {"endpoint": aws.endpoint}}):  # no region anywhere
        collection = build_from_files(urls(EU))
        assert_pixels(open_ds(collection), list(scenes.values()))
    heads = aws.records("HEAD", EU)
    gets = aws.records("GET")
    assert len(heads) == 1  # x-amz-bucket-region, asked once
    scopes = {r.header("authorization").split("/")[2] for r in gets}
    assert scopes == {"eu-west-1"}  # requests are signed for the discovered region


@pytest.mark.parametrize(
    ("bucket", "layout"),
    [(PRIVATE, "index.parquet"), (PRIVATE, "index_dir"), (PUBLIC, "index.parquet")],
)
def test_collection_index_loads_from_s3_reading_only_what_it_selects(
    aws, scenes: dict[str, Path], tmp_path: Path, monkeypatch, bucket: str, layout: str
) -> None:
    """``rasteret.load("s3://...")`` (#15): the index lives in the bucket beside the COGs
    and is read through the same store settings (credentials or anonymous); opening it
    reads footers only, and a selection reads only its rows."""
    import rasteret

    if bucket == PRIVATE:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    with fetch_settings(stores=endpoint_stores(aws)):
        collection = build_from_files(urls(bucket))
        rasteret.as_collection(collection.table, name="s3idx").export(tmp_path / layout)
        files = [tmp_path / layout] if layout.endswith(".parquet") else sorted(
            (tmp_path / layout).rglob("*.parquet")
        )  # fmt: skip
        for file in files:
            aws.put(bucket, f"indexes/{file.relative_to(tmp_path).as_posix()}", file.read_bytes())
        aws.reset()
        with track() as t:
            loaded = rasteret.load(f"s3://{bucket}/indexes/{layout}")
            assert len(loaded) == 2 and loaded.bands == collection.bands
        assert not loaded.is_read
        assert t.requests == aws.requests <= 3 + 2 * len(files)  # (stat|list) + a footer each
        assert {r.method for r in aws.records()} <= {"GET", "HEAD"}
        index_bytes = sum(f.stat().st_size for f in files)
        one = loaded.where(pc.field("id") == collection.record_ids[1])
        assert one.record_ids == [collection.record_ids[1]]
        assert_pixels(open_ds(one), [scenes[NAMES[1]]])
        assert aws.bytes_sent < index_bytes + 2 * scenes[NAMES[1]].stat().st_size
    if bucket == PRIVATE:
        assert {r.access_key for r in aws.records()} == {"AKIAFROMENVIRONMENT1"}


def test_export_to_s3_and_back(aws, scenes: dict[str, Path], monkeypatch) -> None:
    """#15: ``export("s3://...")`` writes through the same store settings; a re-export
    replaces the previous one (stale objects deleted); a prefix holding other objects is
    never overwritten."""
    import rasteret

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    with fetch_settings(stores=endpoint_stores(aws)):
        collection = rasteret.as_collection(build_from_files(urls(PRIVATE)).table, name="up")
        for target in (f"s3://{PRIVATE}/exports/one.parquet", f"s3://{PRIVATE}/exports/dir"):
            collection.export(target)
            again = rasteret.load(target)
            assert sorted(again.record_ids) == sorted(collection.record_ids)
            assert_pixels(open_ds(again), list(scenes.values()))
        before = {r.path for r in aws.records("PUT")}
        assert any(p.endswith(".parquet") and "/exports/dir/year=" in p for p in before)
        # a re-export of one record replaces the directory's content
        one = rasteret.load(f"s3://{PRIVATE}/exports/dir").where(
            pc.field("id") == collection.record_ids[0]
        )
        one.export(f"s3://{PRIVATE}/exports/dir2")
        rasteret.load(f"s3://{PRIVATE}/exports/dir2").export(f"s3://{PRIVATE}/exports/dir")
        assert rasteret.load(f"s3://{PRIVATE}/exports/dir").record_ids == [collection.record_ids[0]]
        aws.put(PRIVATE, "exports/foreign/readme.txt", b"not an export")
        with pytest.raises(FileExistsError, match="not a rasteret collection export"):
            collection.export(f"s3://{PRIVATE}/exports/foreign")


def test_pickled_store_carries_no_keys_and_workers_use_their_own(
    aws, scenes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys given to ``configure(stores=...)`` never enter a pickle; a spawned worker
    reads the private bucket with the credentials of its own environment."""
    import pickle

    from _cloudscenes import oracle, read_in_spawned_process
    from rasteret.store import open_store

    parent_key, parent_secret = "AKIAPARENTONLY000001", "parent-secret-never-pickled"
    keys = {"access_key_id": parent_key, "secret_access_key": parent_secret}
    with fetch_settings(stores=endpoint_stores(aws, **{f"s3://{PRIVATE}": {"config": keys}})):
        collection = build_from_files(urls(PRIVATE))
        payload = pickle.dumps(open_store(collection))
    assert {r.access_key for r in aws.records()} == {parent_key}  # the parent used them
    assert parent_key.encode() not in payload and parent_secret.encode() not in payload
    aws.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWORKERENVIRON001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-secret")
    values = read_in_spawned_process(payload)
    for t, path in enumerate(scenes.values()):
        assert (values[t] == oracle(path)).all()
    log = aws.records()
    assert log and {r.access_key for r in log} == {"AKIAWORKERENVIRON001"}


def test_partitioned_index_on_s3_reads_its_footers_concurrently(
    aws, tmp_path: Path, monkeypatch
) -> None:
    """#15: a hive index on object storage has a footer per month; ``load`` reads them
    together (moto answers each request after 0.2 s; one at a time, 12 footers would
    take 2.4 s)."""
    import datetime as dt

    import rasteret
    from index_tables import make_table

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    records = [
        {"id": f"m{k:02d}", "datetime": dt.datetime(2023, 1 + k, 3), "bbox": (10, 45, 11, 46)}
        for k in range(12)
    ]
    rasteret.as_collection(make_table(records), name="months").export(tmp_path / "months")
    files = sorted((tmp_path / "months").rglob("*.parquet"))
    assert len(files) == 12
    for file in files:
        aws.put(PRIVATE, f"monthly/{file.relative_to(tmp_path).as_posix()}", file.read_bytes())
    aws.reset()
    aws.latency = 0.2
    try:
        with fetch_settings(stores=endpoint_stores(aws)):
            loaded = rasteret.load(f"s3://{PRIVATE}/monthly/months")
            assert len(loaded) == 12 and not loaded.is_read
    finally:
        aws.latency = 0.0
    assert aws.max_in_flight >= 4  # footers in flight together
    assert aws.requests <= 2 + 2 * len(files)  # (stat + list) + the footer's range(s) each
    assert len(aws.records("HEAD")) == 1  # sizes come from the listing, never a HEAD each
    assert sum("list-type" in r.query for r in aws.records("GET")) == 1  # listed once
