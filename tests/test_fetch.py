"""The fetch layer against real files and the object server (its counters are the oracle)."""

from __future__ import annotations

import asyncio
import gc
import http.client
import multiprocessing
import os
import time
import warnings
from pathlib import Path

import obstore
import pytest
from obstore.store import LocalStore

from rasteret._async import run_sync
from rasteret.errors import FetchError, ObjectNotFoundError, StaleIndexError
from rasteret.fetch import (
    FetchConfig,
    ObjectInfo,
    RangeNotSatisfiableError,
    RangeReader,
    default_reader,
    merge_ranges,
    register_store,
    route,
    stores,
    track,
    unregister_store,
)
from rasteret.fetch.fallback import PythonTransport
from rasteret.testing.objserver import ObjectServer

SIZE = 2 * 1024 * 1024 + 123
FAST = FetchConfig(max_retries=3, backoff_initial=0.01, backoff_max=0.05)


@pytest.fixture
def data(tmp_path: Path) -> bytes:
    payload = os.urandom(SIZE)
    (tmp_path / "obj.bin").write_bytes(payload)
    (tmp_path / "small.bin").write_bytes(payload[:300])
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "with space.bin").write_bytes(payload[:5000])
    return payload


@pytest.fixture
def reader() -> RangeReader:
    return RangeReader(FAST)


@pytest.fixture(params=["obstore", "python"])
def transport(request: pytest.FixtureRequest) -> str:
    """Both transports: obstore, and the pure-Python one used in forked children."""
    return request.param


def local_urls(tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / name
    return [str(path), path.as_uri()]


# -- exact bytes -------------------------------------------------------------------------------
def test_local_reads_return_exact_bytes(tmp_path: Path, data: bytes, transport: str) -> None:
    reader = RangeReader(FAST, transport=transport)  # type: ignore[arg-type]

    async def check(url: str) -> None:
        prefix, info = await reader.read_prefix(url, 1000)
        assert prefix == data[:1000]
        assert info.size == SIZE and info.etag and info.last_modified
        assert await reader.read_range(url, 12345, 67890) == data[12345:67890]
        got = await reader.read_ranges(url, [0, 500, 10], [10, 600, 20])
        assert got == [data[0:10], data[500:600], data[10:20]]
        blocks = await asyncio.gather(
            *(reader.read_block(url, i * 7919, i * 7919 + 1000) for i in range(10))
        )
        assert blocks == [data[i * 7919 : i * 7919 + 1000] for i in range(10)]
        assert (await reader.head(url)).size == SIZE

    for url in local_urls(tmp_path, "obj.bin") + local_urls(tmp_path, "with space.bin")[1:]:
        if "space" in url:
            assert run_sync(reader.read_range(url, 10, 20)) == data[10:20]
        else:
            run_sync(check(url))


def test_relative_local_path(
    tmp_path: Path, data: bytes, reader: RangeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_sync(reader.read_range("obj.bin", 0, 100)) == data[:100]


def test_http_reads_return_exact_bytes(
    object_server: ObjectServer, data: bytes, transport: str
) -> None:
    reader = RangeReader(FAST, transport=transport)  # type: ignore[arg-type]
    url = object_server.url_for("obj.bin")

    async def check() -> None:
        prefix, info = await reader.read_prefix(url, 4096)
        assert prefix == data[:4096]
        assert info.size == SIZE
        conn = http.client.HTTPConnection(object_server.host, object_server.port, timeout=10)
        conn.request("HEAD", "/obj.bin")
        assert info.etag == conn.getresponse().getheader("ETag")
        conn.close()
        assert await reader.read_range(url, SIZE - 100, SIZE) == data[-100:]
        got = await reader.read_ranges(url, [100, 0], [200, 50])
        assert got == [data[100:200], data[:50]]
        assert await reader.read_block(url, 1_000_000, 1_500_000) == data[1_000_000:1_500_000]
        assert await reader.head(url) == info
        spaced = object_server.url_for("with space.bin")
        assert await reader.read_range(spaced, 0, 5000) == data[:5000]

    run_sync(check())
    assert [r.status for r in object_server.log] == [206, 200, 206, 206, 206, 200, 206]


@pytest.mark.parametrize("where", ["http", "local"])
def test_prefix_of_short_and_empty_objects(
    object_server: ObjectServer, tmp_path: Path, data: bytes, transport: str, where: str
) -> None:
    reader = RangeReader(FAST, transport=transport)  # type: ignore[arg-type]

    def url(name: str) -> str:
        return object_server.url_for(name) if where == "http" else str(tmp_path / name)

    prefix, info = run_sync(reader.read_prefix(url("small.bin"), 65536))
    assert (prefix, info.size) == (data[:300], 300)
    prefix, info = run_sync(reader.read_prefix(url("empty.bin"), 65536))
    assert (prefix, info.size) == (b"", 0)


def test_reads_past_the_end_are_errors(
    object_server: ObjectServer, data: bytes, transport: str
) -> None:
    reader = RangeReader(FAST, transport=transport)  # type: ignore[arg-type]
    url = object_server.url_for("small.bin")
    with pytest.raises(FetchError, match="past the end"):
        run_sync(reader.read_range(url, 200, 400))
    with pytest.raises(RangeNotSatisfiableError, match=r"bytes 500-599"):
        run_sync(reader.read_block(url, 500, 600))
    with pytest.raises(ValueError, match="invalid byte range"):
        run_sync(reader.read_range(url, 10, 5))


def test_copy_false_gives_zero_copy_views(object_server: ObjectServer, data: bytes) -> None:
    reader = RangeReader(FAST)
    url = object_server.url_for("obj.bin")
    block = run_sync(reader.read_block(url, 10, 20, copy=False))
    views = run_sync(reader.read_ranges(url, [0, 5], [5, 10], copy=False))
    assert isinstance(block, memoryview) and bytes(block) == data[10:20]
    assert [bytes(v) for v in views] == [data[:5], data[5:10]]


# -- coalescing and concurrency ------------------------------------------------------------------
def test_concurrent_block_reads_become_one_request(
    object_server: ObjectServer, data: bytes, reader: RangeReader
) -> None:
    url = object_server.url_for("obj.bin")
    offsets = [i * 50_000 for i in range(20)]

    async def read_all() -> list[bytes]:
        return await asyncio.gather(*(reader.read_block(url, o, o + 20_000) for o in offsets))

    with track() as t:
        blocks = run_sync(read_all())
    assert blocks == [data[o : o + 20_000] for o in offsets]
    assert object_server.requests == 1
    assert object_server.log[0].start == 0 and object_server.log[0].end == offsets[-1] + 20_000
    assert t.requests == 1
    assert t.bytes == object_server.bytes_sent == offsets[-1] + 20_000


def test_gap_zero_merges_only_adjacent_ranges(object_server: ObjectServer, data: bytes) -> None:
    reader = RangeReader(FAST.with_(coalesce_gap=0))
    url = object_server.url_for("obj.bin")
    ranges = [(0, 100), (100, 200), (200, 300), (301, 400), (1000, 1100), (1050, 1200)]

    async def read_all() -> list[bytes]:
        return await asyncio.gather(*(reader.read_block(url, s, e) for s, e in ranges))

    assert run_sync(read_all()) == [data[s:e] for s, e in ranges]
    assert sorted((r.start, r.end) for r in object_server.log) == [
        (0, 300),
        (301, 400),
        (1000, 1200),
    ]
    object_server.reset()
    wide = RangeReader(FAST.with_(coalesce_gap=1000))
    assert run_sync(wide.read_ranges(url, *zip(*ranges, strict=True))) == [
        data[s:e] for s, e in ranges
    ]
    assert [(r.start, r.end) for r in object_server.log] == [(0, 1200)]


def test_local_files_do_not_coalesce_across_gaps(tmp_path: Path, data: bytes) -> None:
    reader = RangeReader(FAST)
    url = str(tmp_path / "obj.bin")
    assert reader.coalesce_gap(url) == 0
    with track() as t:
        got = run_sync(reader.read_ranges(url, [0, 10, 1000], [10, 20, 1010]))
    assert got == [data[:10], data[10:20], data[1000:1010]]
    assert t.requests == 2 and t.bytes == 30


def test_merge_ranges_rule() -> None:
    groups = merge_ranges([(50, 60), (0, 10), (10, 20), (15, 18), (30, 40)], gap=5)
    assert groups == [(0, 20, [1, 2, 3]), (30, 40, [4]), (50, 60, [0])]
    assert merge_ranges([(0, 10), (20, 30)], gap=10) == [(0, 30, [0, 1])]
    assert merge_ranges([], gap=10) == []


def test_blocks_of_different_objects_are_not_merged(
    object_server: ObjectServer, data: bytes, reader: RangeReader
) -> None:
    a, b = object_server.url_for("obj.bin"), object_server.url_for("with space.bin")

    async def read_all() -> list[bytes]:
        return await asyncio.gather(reader.read_block(a, 0, 10), reader.read_block(b, 10, 20))

    assert run_sync(read_all()) == [data[:10], data[10:20]]
    assert sorted(r.path for r in object_server.log) == ["obj.bin", "with space.bin"]


@pytest.mark.parametrize("limit", [2, 6])
def test_requests_in_flight_are_bounded(
    object_server: ObjectServer, data: bytes, limit: int
) -> None:
    reader = RangeReader(FAST.with_(max_in_flight=limit))
    url = object_server.url_for("obj.bin")
    object_server.latency = 0.1

    async def read_all() -> list[bytes]:
        return await asyncio.gather(*(reader.read_range(url, i, i + 10) for i in range(12)))

    assert run_sync(read_all()) == [data[i : i + 10] for i in range(12)]
    assert object_server.requests == 12
    assert object_server.max_in_flight <= limit
    assert object_server.max_in_flight >= min(limit, 4)  # the bound is what limits it


def test_track_counts_match_the_server(object_server: ObjectServer, data: bytes) -> None:
    reader = RangeReader(FAST)
    url = object_server.url_for("obj.bin")

    async def work() -> None:
        await reader.read_prefix(url, 1000)
        await reader.read_range(url, 5000, 9000)
        await reader.head(url)

    with track() as t:
        run_sync(work())
        live = t.requests
    run_sync(reader.read_range(url, 0, 10))  # after the block: not counted
    assert live == t.requests == 3
    assert t.bytes == 1000 + 4000
    assert (t.retries, t.errors) == (0, 0)


# -- retries and errors ---------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 503])
def test_transient_status_is_retried(
    object_server: ObjectServer, data: bytes, transport: str, status: int
) -> None:
    reader = RangeReader(FAST, transport=transport)  # type: ignore[arg-type]
    url = object_server.url_for("obj.bin")
    object_server.inject("obj.bin", "status", status=status, times=2)
    with track() as t:
        assert run_sync(reader.read_range(url, 100, 200)) == data[100:200]
    assert [r.status for r in object_server.log] == [status, status, 206]
    assert (t.requests, t.retries) == (3, 2)


@pytest.mark.parametrize("kind", ["reset", "truncate", "bad_range"])
def test_broken_responses_are_retried(
    object_server: ObjectServer, data: bytes, transport: str, kind: str
) -> None:
    reader = RangeReader(FAST, transport=transport)  # type: ignore[arg-type]
    url = object_server.url_for("obj.bin")
    object_server.inject("obj.bin", kind)  # type: ignore[arg-type]
    assert run_sync(reader.read_range(url, 1000, 300_000)) == data[1000:300_000]
    assert [r.fault for r in object_server.log] == [kind, None]


def test_block_reads_and_prefix_are_retried(object_server: ObjectServer, data: bytes) -> None:
    reader = RangeReader(FAST)
    url = object_server.url_for("obj.bin")
    object_server.inject("obj.bin", "truncate")

    async def blocks() -> list[bytes]:
        return await asyncio.gather(*(reader.read_block(url, o, o + 1000) for o in (0, 5000)))

    assert run_sync(blocks()) == [data[:1000], data[5000:6000]]
    object_server.inject("obj.bin", "status", status=503)
    assert run_sync(reader.read_prefix(url, 100))[0] == data[:100]
    assert object_server.requests == 4


def test_slow_response_times_out_and_is_retried(
    object_server: ObjectServer, data: bytes, transport: str
) -> None:
    reader = RangeReader(FAST.with_(request_timeout=0.5), transport=transport)  # type: ignore[arg-type]
    url = object_server.url_for("obj.bin")
    object_server.inject("obj.bin", "slow", delay=3.0)
    t0 = time.perf_counter()
    assert run_sync(reader.read_range(url, 0, 100)) == data[:100]
    assert time.perf_counter() - t0 < 2.5
    assert object_server.requests == 2


@pytest.mark.parametrize("kind", ["status", "truncate", "reset"])
def test_persistent_faults_raise_fetch_error_in_bounded_time(
    object_server: ObjectServer, data: bytes, kind: str, transport: str
) -> None:
    reader = RangeReader(FAST.with_(max_retries=2), transport=transport)  # type: ignore[arg-type]
    url = object_server.url_for("obj.bin")
    object_server.inject("obj.bin", kind, times=None)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    with track() as t, pytest.raises(FetchError) as info:
        run_sync(reader.read_range(url, 4096, 200_000))
    assert time.perf_counter() - t0 < 5
    assert not isinstance(info.value, ObjectNotFoundError)
    assert info.value.url == url and info.value.byte_range == (4096, 200_000)
    assert url in str(info.value) and "bytes 4096-199999" in str(info.value)
    assert "3 attempts" in str(info.value)
    assert object_server.requests == 3 and t.retries == 2 and t.errors == 1


def test_client_errors_are_not_retried(object_server: ObjectServer, data: bytes) -> None:
    reader = RangeReader(FAST)
    object_server.inject("obj.bin", "status", status=403, times=None)
    with pytest.raises(FetchError, match="403"):
        run_sync(reader.read_range(object_server.url_for("obj.bin"), 0, 10))
    assert object_server.requests == 1


def test_missing_objects(object_server: ObjectServer, tmp_path: Path, transport: str) -> None:
    reader = RangeReader(FAST, transport=transport)  # type: ignore[arg-type]
    for url in (object_server.url_for("nope.tif"), str(tmp_path / "nope.tif")):
        for call in (
            reader.read_prefix(url, 100),
            reader.read_range(url, 0, 10),
            reader.read_block(url, 0, 10),
            reader.head(url),
        ):
            with pytest.raises(ObjectNotFoundError) as info:
                run_sync(call)
            assert info.value.url == url and isinstance(info.value, FileNotFoundError)
    assert object_server.requests == 4  # no retries for a missing object


def test_changed_object_raises_stale_index_error(
    object_server: ObjectServer, tmp_path: Path, data: bytes, transport: str
) -> None:
    reader = RangeReader(FAST, transport=transport)  # type: ignore[arg-type]
    url = object_server.url_for("obj.bin")
    _, info = run_sync(reader.read_prefix(url, 10))
    assert run_sync(reader.read_range(url, 0, 10, expected=info)) == data[:10]
    (tmp_path / "obj.bin").write_bytes(data[:1000])
    with pytest.raises(StaleIndexError, match="1000 bytes but the index recorded"):
        run_sync(reader.read_block(url, 0, 10, expected=info))
    wrong_etag = ObjectInfo(1000, '"not-this-one"', None)
    with pytest.raises(StaleIndexError, match="ETag"):
        run_sync(reader.read_range(url, 0, 10, expected=wrong_etag))
    with pytest.raises(StaleIndexError, match="shorter than"):  # the server answers 416
        run_sync(reader.read_block(url, 5000, 5010, expected=info))
    local = str(tmp_path / "obj.bin")
    with pytest.raises(StaleIndexError):
        run_sync(reader.head(local, expected=info))
    # local files: the ETag (inode, mtime) changes on a plain copy, so only the size counts
    copy_info = ObjectInfo(1000, '"other-inode-and-mtime"', None)
    assert run_sync(reader.read_range(local, 0, 10, expected=copy_info)) == data[:10]


def test_one_failing_group_does_not_fail_its_neighbours(
    object_server: ObjectServer, data: bytes
) -> None:
    reader = RangeReader(FAST.with_(coalesce_gap=0, max_retries=0))
    url = object_server.url_for("obj.bin")
    object_server.inject("obj.bin", "status", status=500)  # hits exactly one of two requests

    async def read_all() -> list[bytes | BaseException]:
        return await asyncio.gather(
            reader.read_block(url, 0, 10), reader.read_block(url, 100, 110), return_exceptions=True
        )

    results = run_sync(read_all())
    errors = [r for r in results if isinstance(r, FetchError)]
    assert len(errors) == 1 and errors[0].byte_range in ((0, 10), (100, 110))
    assert sum(r in (data[:10], data[100:110]) for r in results if isinstance(r, bytes)) == 1


# -- header fetcher, routing, sync helper, fork -------------------------------------------------
def test_header_fetch_serves_parser_calls_from_the_prefix(
    object_server: ObjectServer, data: bytes
) -> None:
    reader = RangeReader(FAST)
    fetch = reader.header_fetch(object_server.url_for("obj.bin"), prefetch=4096)

    async def parse_like() -> list[bytes]:
        return [
            await fetch(0, 16),
            await fetch(8, 100),
            await fetch(4000, 96),
            await fetch(100_000, 50),
            await fetch(SIZE - 10, 100),
            await fetch(SIZE + 5, 10),
        ]

    got = run_sync(parse_like())
    assert got == [data[:16], data[8:108], data[4000:4096], data[100_000:100_050], data[-10:], b""]
    assert fetch.info is not None and fetch.info.size == SIZE
    assert [(r.start, r.end) for r in object_server.log] == [
        (0, 4096),
        (100_000, 100_050),
        (SIZE - 10, SIZE),
    ]


def test_routes() -> None:
    r = route("https://example.com:8443/a/b%20c.tif")
    assert (r.kind, r.key, r.path) == ("http", "https://example.com:8443", "a/b c.tif")
    signed = route("https://x.blob.core.windows.net/c/d.tif?sig=abc&se=1")  # SAS: per container
    assert (signed.provider, signed.key, signed.path) == (
        "azure",
        "https://x.blob.core.windows.net/c",
        "d.tif",
    )
    assert signed.query == "sig=abc&se=1"
    presigned = route("https://example.com/d.tif?X-Amz-Signature=abc")  # per object
    assert (presigned.kind, presigned.key, presigned.path) == ("http", presigned.url, "")
    s3 = route("s3://bucket/k/y.tif")
    assert (s3.kind, s3.key, s3.path) == ("cloud", "s3://bucket", "k/y.tif")
    assert route("gs://bucket/x.tif").key == "gs://bucket"
    assert route("/data/x.tif").path == "data/x.tif" and route("file:///data/x.tif").is_local
    with pytest.raises(ValueError, match="unsupported URL scheme"):
        route("ftp://host/x.tif")


def test_default_reader_is_shared_and_run_sync_works_inside_a_loop(
    tmp_path: Path, data: bytes
) -> None:
    assert default_reader() is default_reader()

    async def inside_a_running_loop() -> bytes:
        return run_sync(default_reader().read_range(str(tmp_path / "obj.bin"), 0, 10))

    assert asyncio.run(inside_a_running_loop()) == data[:10]


@pytest.mark.parametrize("where", ["http", "local"])
def test_python_transport_matches_obstore(
    object_server: ObjectServer, tmp_path: Path, data: bytes, where: str
) -> None:
    url = object_server.url_for("obj.bin") if where == "http" else str(tmp_path / "obj.bin")
    r = route(url)
    fallback = PythonTransport(FAST)
    got, info = run_sync(fallback.get(r, 10, 20))
    assert got == data[10:20]
    if where == "http":
        assert info == run_sync(RangeReader(FAST).head(url))
    else:  # both transports read local files with os.pread: obstore's own store is the oracle
        assert info == ObjectInfo.from_meta(obstore.head(LocalStore(), url))
        assert run_sync(RangeReader(FAST).head(url)) == info
    tail, tail_info = run_sync(fallback.get(r, SIZE - 5, SIZE + 100))
    assert tail == data[-5:] and tail_info.size == SIZE


def test_local_reads_match_obstores_local_store(tmp_path: Path, data: bytes) -> None:
    """Local files are read with os.pread: the bytes, metadata and errors obstore's
    LocalStore gives, and no obstore store is built."""
    url = str(tmp_path / "obj.bin")
    reader = RangeReader(FAST)
    built = set(stores._stores)
    got = run_sync(reader.read_range(url, 100, 300))
    assert got == bytes(obstore.get_range(LocalStore(), url, start=100, end=300))
    meta = obstore.head(LocalStore(), url)
    assert run_sync(reader.head(url)) == ObjectInfo.from_meta(meta)
    assert bytes(run_sync(reader.read_ranges(url, [SIZE - 10], [SIZE]))[0]) == data[-10:]
    with pytest.raises(FetchError, match="past the end of the object"):
        run_sync(reader.read_ranges(url, [SIZE - 10], [SIZE + 50]))
    with pytest.raises(ObjectNotFoundError, match=r"missing\.bin"):
        run_sync(reader.read_range(str(tmp_path / "missing.bin"), 0, 10))
    with pytest.raises(FetchError, match="range starts at"):
        run_sync(reader.read_range(url, SIZE + 10, SIZE + 20))
    assert set(stores._stores) == built


def _child_read(urls: list[str], queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def go() -> list[bytes]:
        reader = default_reader()
        out = [await reader.read_range(url, 100, 200) for url in urls]
        out.append((await reader.read_prefix(urls[0], 50))[0])
        return out

    try:
        queue.put(asyncio.run(go()))
    except BaseException as exc:
        queue.put(repr(exc))


def test_reads_work_in_a_forked_child(
    object_server: ObjectServer, tmp_path: Path, data: bytes
) -> None:
    urls = [object_server.url_for("obj.bin"), str(tmp_path / "obj.bin")]
    for url in urls:  # the parent uses obstore first: its runtime does not survive fork
        assert run_sync(default_reader().read_range(url, 0, 10)) == data[:10]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded process forked"
        child = ctx.Process(target=_child_read, args=(urls, queue))
        child.start()
    child.join(30)
    if child.is_alive():
        child.kill()
        pytest.fail("read in a forked child hung")
    assert queue.get(timeout=5) == [data[100:200], data[100:200], data[:50]]
    assert child.exitcode == 0


def test_event_loops_are_not_kept_alive(tmp_path: Path, data: bytes) -> None:
    reader = RangeReader(FAST.with_(max_in_flight=1))
    url = str(tmp_path / "obj.bin")

    async def contended() -> list[bytes]:
        return await asyncio.gather(
            *(reader.read_block(url, i * 100, i * 100 + 10) for i in range(5))
        )

    for _ in range(6):
        assert run_sync(contended()) == [data[i * 100 : i * 100 + 10] for i in range(5)]
    gc.collect()
    # Per-loop state goes away with each asyncio.run loop. The last loop may linger a while:
    # pyo3 releases obstore's references to finished futures at its next call into Python.
    assert len(reader._loops) <= 1


def test_cancelled_waiters_do_not_leak_request_slots(
    object_server: ObjectServer, data: bytes
) -> None:
    reader = RangeReader(FAST.with_(max_in_flight=1))
    url = object_server.url_for("obj.bin")
    object_server.latency = 0.2

    async def scenario() -> bytes:
        first = asyncio.ensure_future(reader.read_range(url, 0, 10))
        waiting = [asyncio.ensure_future(reader.read_range(url, 10, 20)) for _ in range(3)]
        await asyncio.sleep(0.05)
        for task in waiting:
            task.cancel()
        await first
        return await asyncio.wait_for(reader.read_range(url, 20, 30), timeout=5)

    assert run_sync(scenario()) == data[20:30]


def test_registered_store_serves_its_prefix(tmp_path: Path, data: bytes) -> None:
    from obstore.store import LocalStore

    reader = RangeReader(FAST)
    register_store("test://files", LocalStore(prefix=str(tmp_path)))
    try:
        r = reader.route("test://files/obj.bin")  # registration is seen through a reader
        assert (r.kind, r.key, r.path) == ("custom", "test://files", "obj.bin")
        assert run_sync(reader.read_range("test://files/obj.bin", 5, 9)) == data[5:9]
        assert run_sync(RangeReader(FAST).read_range("test://files/obj.bin", 0, 3)) == data[:3]
    finally:
        unregister_store("test://files")
    with pytest.raises(ValueError, match="unsupported URL scheme"):
        reader.route("test://files/obj.bin")


def test_route_is_pure() -> None:
    from obstore.store import MemoryStore

    url = "https://example.com/data/x.tif"
    before = route(url)
    assert route(url, custom_prefixes=("https://example.com/data",)).kind == "custom"
    register_store("https://example.com", MemoryStore())
    try:
        assert route(url) == before  # the registry is not module state route() reads
        assert route(url, custom_prefixes=("https://example.com/data",)) == route(
            url, custom_prefixes=("https://example.com/data/",)
        )
        nested = route(url, custom_prefixes=("https://example.com", "https://example.com/data"))
        assert (nested.key, nested.path) == ("https://example.com/data", "x.tif")
        assert RangeReader(FAST).route(url).key == "https://example.com"
    finally:
        unregister_store("https://example.com")
    assert route(url) == before and RangeReader(FAST).route(url) == before


def test_cloud_routes_build_anonymous_stores_without_network() -> None:
    from obstore.store import GCSStore, S3Store

    from rasteret.fetch.routing import get_store

    assert isinstance(get_store(route("s3://some-bucket/a/b.tif"), FAST), S3Store)
    assert isinstance(get_store(route("gs://some-bucket/a/b.tif"), FAST), GCSStore)
    s3 = route("s3://some-bucket/x.tif")
    assert get_store(s3, FAST) is get_store(route("s3://some-bucket/y.tif"), FAST)


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASTERET_FETCH_MAX_IN_FLIGHT", "7")
    monkeypatch.setenv("RASTERET_FETCH_BACKOFF_MAX", "0.5")
    config = FetchConfig.from_env()
    assert (config.max_in_flight, config.backoff_max) == (7, 0.5)
    monkeypatch.setenv("RASTERET_FETCH_COALESCE_GAP", "lots")
    with pytest.raises(ValueError, match="RASTERET_FETCH_COALESCE_GAP"):
        FetchConfig.from_env()
    with pytest.raises(ValueError, match="max_in_flight"):
        FetchConfig(max_in_flight=0)


# -- workers: spawn-started processes and dask.distributed -------------------------------------
@pytest.fixture
def served_scenes(object_server: ObjectServer, tmp_path: Path):
    from _cloudscenes import NAMES, write_scenes
    from rasteret.ingest import build_from_files

    paths = write_scenes(tmp_path)
    collection = build_from_files([object_server.url_for(n) for n in NAMES])
    object_server.reset()
    return collection, [paths[n] for n in NAMES]


def test_spawned_worker_reads_a_pickled_store_without_header_requests(
    object_server: ObjectServer, served_scenes
) -> None:
    import pickle

    from _cloudscenes import oracle, read_in_spawned_process
    from rasteret.store import open_store

    collection, paths = served_scenes
    values = read_in_spawned_process(pickle.dumps(open_store(collection)))
    for t, path in enumerate(paths):
        assert (values[t] == oracle(path)).all()
    assert object_server.requests == 2  # one coalesced request per scene
    assert not any(r.start == 0 for r in object_server.log)  # no header read in the child


def _spawn_read_with_settings(pickled_store: bytes, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import pickle

    import xarray as xr

    import rasteret.fetch
    import rasteret.fetch.reader
    from rasteret.fetch import FetchConfig, default_reader

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("configure() was called")

    rasteret.fetch.configure = rasteret.fetch.reader.configure = forbidden  # type: ignore[assignment]
    try:
        store = pickle.loads(pickled_store)
        again = pickle.loads(pickled_store)
        values = xr.open_dataset(store, engine="rasteret")["b1"].values
        queue.put(
            (
                values,
                store.reader.config,
                again.reader is store.reader,
                default_reader().config == FetchConfig.from_env(),
            )
        )
    except BaseException as exc:
        queue.put(repr(exc))


def test_spawned_worker_reads_with_the_pickled_stores_settings(
    object_server: ObjectServer, served_scenes
) -> None:
    import pickle

    from _cloudscenes import BLOCK, SIZE, oracle, run_spawned
    from rasteret.store import open_store

    collection, paths = served_scenes
    settings = FetchConfig(coalesce_gap=0)
    store = open_store(collection, reader=RangeReader(settings))
    found = run_spawned(_spawn_read_with_settings, pickle.dumps(store))
    values, config, shared, default_untouched = found
    for t, path in enumerate(paths):
        assert (values[t] == oracle(path)).all()
    assert config == settings and shared and default_untouched
    # no coalescing across the tiles' 4-byte leaders: one request per tile
    assert object_server.requests == len(paths) * (SIZE // BLOCK) ** 2
    assert not any(r.start == 0 for r in object_server.log)


def test_reader_pickles_by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    import rasteret.fetch.reader as fetch_reader

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("configure() was called")

    monkeypatch.setattr(fetch_reader, "configure", forbidden)
    default = default_reader()
    assert pickle.loads(pickle.dumps(RangeReader())) is default  # "the default reader there"
    custom = RangeReader(FAST.with_(coalesce_gap=0), transport="python")
    first = pickle.loads(pickle.dumps(custom))
    assert (first.config, first.transport) == (custom.config, "python")
    assert pickle.loads(pickle.dumps(custom)) is first  # one shared reader per settings
    assert first.settings_key() == custom.settings_key() != RangeReader().settings_key()
    assert default_reader() is default and default.config == FetchConfig.from_env()
    unpicklable = RangeReader(FAST.with_(signer=lambda url: url))
    with pytest.warns(RuntimeWarning, match="cannot be pickled"):
        payload = pickle.dumps(unpicklable)
    assert pickle.loads(payload) is default_reader()


@pytest.mark.filterwarnings("ignore:The specified chunks separate:UserWarning")
def test_dask_distributed_process_workers_read_without_header_requests(
    object_server: ObjectServer, served_scenes
) -> None:
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed")
    import xarray as xr

    from _cloudscenes import assert_pixels

    collection, paths = served_scenes
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        ds = xr.open_dataset(collection, engine="rasteret", chunks={"time": 1})
        computed = ds.compute()
    assert_pixels(computed, paths)
    assert object_server.requests == 2
    assert not any(r.start == 0 for r in object_server.log)


# -- routing of provider URLs, store options, secrets, signing ----------------------------------
@pytest.mark.parametrize(
    ("url", "provider", "key", "path", "region"),
    [
        ("s3a://b/k.tif", "s3", "s3://b", "k.tif", None),
        ("https://my.bucket.s3.eu-central-1.amazonaws.com/a/k.tif", "s3", "s3://my.bucket",
         "a/k.tif", "eu-central-1"),
        ("https://b.s3-us-west-2.amazonaws.com/k.tif", "s3", "s3://b", "k.tif", "us-west-2"),
        ("https://s3.amazonaws.com/b/a/k.tif", "s3", "s3://b", "a/k.tif", None),
        ("https://storage.googleapis.com/gcp-b/x/y.tif", "gcs", "gs://gcp-b", "x/y.tif", None),
        ("https://gcp-b.storage.googleapis.com/y.tif", "gcs", "gs://gcp-b", "y.tif", None),
        ("gcs://gcp-b/y.tif", "gcs", "gs://gcp-b", "y.tif", None),
        ("https://pcacct.blob.core.windows.net/sentinel2-l2/v002/a%20b.tif", "azure",
         "https://pcacct.blob.core.windows.net/sentinel2-l2", "v002/a b.tif", None),
        ("az://cont/p/q.tif", "azure", "az://cont", "p/q.tif", None),
        ("abfss://cont@acct.dfs.core.windows.net/p.tif", "azure",
         "https://acct.blob.core.windows.net/cont", "p.tif", None),
        ("https://s3-website.example.com/x.tif", "http", "https://s3-website.example.com",
         "x.tif", None),
    ],
)  # fmt: skip
def test_provider_routes(url: str, provider: str, key: str, path: str, region: str | None):
    r = route(url, ())
    assert (r.provider, r.key, r.path, r.region) == (provider, key, path, region)


def test_path_style_urls_on_a_configured_s3_endpoint() -> None:
    r = route("http://127.0.0.1:9000/bucket/dir/k.tif", ("http://127.0.0.1:9000",))
    assert (r.provider, r.bucket, r.path, r.endpoint) == (
        "s3", "bucket", "dir/k.tif", "http://127.0.0.1:9000"
    )  # fmt: skip
    assert route("http://127.0.0.1:9000/bucket/dir/k.tif", ()).provider == "http"
    reader = RangeReader(FetchConfig(stores={"s3://": {"endpoint": "http://127.0.0.1:9000/"}}))
    assert reader.route("http://127.0.0.1:9000/bucket/k.tif").provider == "s3"


def test_store_options_merge_by_prefix() -> None:
    from rasteret.fetch import StoreOptions

    config = FetchConfig(
        stores={
            "s3://": {"endpoint": "http://e", "region": "us-east-1"},
            "s3://b": StoreOptions(requester_pays=True, config={"a": 1}),
            "s3://b/sub": {"region": "eu-west-1", "config": {"b": 2}},
            "s3://bb": {"anonymous": True},
        }
    )
    got = config.store_options("s3://b/sub/k.tif")
    assert (got.endpoint, got.region, got.requester_pays) == ("http://e", "eu-west-1", True)
    assert got.config_dict() == {"a": 1, "b": 2} and got.anonymous is None
    assert config.store_options("s3://bb/k").anonymous is True  # "s3://b" is not its prefix
    assert config.store_options("https://x/k") == StoreOptions()
    assert hash(config) == hash(FetchConfig(stores=dict(config.stores)))
    with pytest.raises(ValueError, match="unknown store option"):
        FetchConfig(stores={"s3://": {"requester_pay": True}})


def test_strip_and_redact_credentials() -> None:
    from rasteret.fetch.secrets import has_credentials, redact, strip_credentials

    sas = "https://a.blob.core.windows.net/c/x.tif?st=1&se=2&sp=r&sv=3&sr=c&sig=S%2Fg%3D"
    assert strip_credentials(sas) == "https://a.blob.core.windows.net/c/x.tif"
    s3 = "https://b.s3.amazonaws.com/k.tif?versionId=7&X-Amz-Signature=abc&X-Amz-Credential=K"
    assert strip_credentials(s3) == "https://b.s3.amazonaws.com/k.tif?versionId=7"
    assert strip_credentials("/data/x.tif") == "/data/x.tif"
    assert has_credentials(sas) and not has_credentials("https://h/x.tif?versionId=7")
    message = f"GET {sas} failed; also {s3}"
    redacted = redact(message)
    assert "S%2Fg%3D" not in redacted and "abc" not in redacted and "versionId=7" in redacted
    assert "sig=REDACTED" in redacted and "X-Amz-Signature=REDACTED" in redacted


@pytest.mark.parametrize("transport", ["obstore", "python"])
def test_signer_runs_at_read_time_and_reaches_the_server(
    object_server: ObjectServer, data: bytes, transport: str
) -> None:
    url = object_server.url_for("obj.bin")
    calls: list[str] = []

    def sign(u: str) -> str:
        calls.append(u)
        return f"{u}?sig=s3cr3t&se=2030"

    config = FAST.with_(stores={object_server.url: {"signer": sign}})
    reader = RangeReader(config, transport=transport)  # type: ignore[arg-type]
    assert run_sync(reader.read_range(url, 10, 20)) == data[10:20]
    assert calls == [url] and [r.query for r in object_server.log] == ["sig=s3cr3t&se=2030"]
    object_server.inject("obj.bin", "status", status=403)
    with pytest.raises(FetchError) as info:
        run_sync(reader.read_range(url, 0, 10))
    assert info.value.url == url and "s3cr3t" not in str(info.value)
