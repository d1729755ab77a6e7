"""The test object server itself, checked with a plain http.client against files on disk."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from rasteret.testing.objserver import ObjectServer, RequestRecord

SIZE = 3 * 1024 * 1024 + 17


@pytest.fixture
def data(tmp_path: Path) -> bytes:
    payload = os.urandom(SIZE)
    (tmp_path / "big.bin").write_bytes(payload)
    (tmp_path / "sub dir").mkdir()
    (tmp_path / "sub dir" / "a b.bin").write_bytes(payload[:1000])
    return payload


def request(
    server: ObjectServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        target = urllib.parse.urlsplit(server.url_for(path)).path
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def test_full_get_and_headers(object_server: ObjectServer, data: bytes) -> None:
    status, headers, body = request(object_server, "big.bin")
    assert status == 200
    assert body == data
    assert int(headers["content-length"]) == SIZE
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"].startswith('"') and headers["etag"].endswith('"')
    assert headers["last-modified"].endswith("GMT")
    assert object_server.bytes_sent == SIZE
    assert object_server.log == [RequestRecord("GET", "big.bin", 0, SIZE, 200)]


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=10-19", 10, 20),
        ("bytes=1048570-2097160", 1048570, 2097161),
        ("bytes=5-65539", 5, 65540),  # one byte below the sendfile size: read and write
        ("bytes=5-65540", 5, 65541),  # os.sendfile from an offset
        (f"bytes={SIZE - 5}-", SIZE - 5, SIZE),
        ("bytes=-100", SIZE - 100, SIZE),
        (f"bytes=-{SIZE + 50}", 0, SIZE),
        (f"bytes=100-{SIZE + 1000}", 100, SIZE),  # end clamped to the object
    ],
)
def test_single_ranges(
    object_server: ObjectServer, data: bytes, spec: str, start: int, end: int
) -> None:
    status, headers, body = request(object_server, "big.bin", {"Range": spec})
    assert status == 206
    assert body == data[start:end]
    assert headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert int(headers["content-length"]) == end - start
    assert object_server.log[-1] == RequestRecord("GET", "big.bin", start, end, 206)


@pytest.mark.parametrize("spec", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"])
def test_unsatisfiable_range_is_416(object_server: ObjectServer, data: bytes, spec: str) -> None:
    status, headers, _ = request(object_server, "big.bin", {"Range": spec})
    assert status == 416
    assert headers["content-range"] == f"bytes */{SIZE}"
    assert object_server.log[-1].status == 416


@pytest.mark.parametrize("spec", ["bytes=20-10", "items=0-5", "bytes=0-1,5-6", "bytes=x-y"])
def test_unusable_range_header_is_ignored(
    object_server: ObjectServer, data: bytes, spec: str
) -> None:
    status, _, body = request(object_server, "big.bin", {"Range": spec})
    assert status == 200
    assert body == data


def test_head(object_server: ObjectServer, data: bytes) -> None:
    status, headers, body = request(object_server, "big.bin", method="HEAD")
    assert status == 200
    assert body == b""
    assert int(headers["content-length"]) == SIZE
    assert object_server.bytes_sent == 0
    _, get_headers, _ = request(object_server, "big.bin", {"Range": "bytes=0-3"})
    assert get_headers["etag"] == headers["etag"]
    assert object_server.log[0].method == "HEAD"


def test_etag_changes_with_content(object_server: ObjectServer, tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"one")
    etag1 = request(object_server, "x.bin", method="HEAD")[1]["etag"]
    (tmp_path / "x.bin").write_bytes(b"three")
    etag2 = request(object_server, "x.bin", method="HEAD")[1]["etag"]
    assert etag1 != etag2
    status, _, _ = request(object_server, "x.bin", {"If-Match": etag1})
    assert status == 412
    status, _, body = request(object_server, "x.bin", {"If-Match": etag2})
    assert (status, body) == (200, b"three")


def test_missing_and_escaping_paths_are_404(object_server: ObjectServer, data: bytes) -> None:
    assert request(object_server, "nope.bin")[0] == 404
    conn = http.client.HTTPConnection(object_server.host, object_server.port, timeout=10)
    conn.request("GET", "/../../etc/passwd")
    assert conn.getresponse().status == 404
    conn.close()
    assert request(object_server, "sub dir")[0] == 404  # directories are not objects


def test_quoted_paths(object_server: ObjectServer, data: bytes) -> None:
    url = object_server.url_for("sub dir/a b.bin")
    assert url.endswith("/sub%20dir/a%20b.bin")
    status, _, body = request(object_server, "sub dir/a b.bin")
    assert (status, body) == (200, data[:1000])
    assert object_server.log[-1].path == "sub dir/a b.bin"


def test_keep_alive_serves_many_requests_on_one_connection(
    object_server: ObjectServer, data: bytes
) -> None:
    conn = http.client.HTTPConnection(object_server.host, object_server.port, timeout=10)
    for start in (0, 100, 5000):
        conn.request("GET", "/big.bin", headers={"Range": f"bytes={start}-{start + 9}"})
        resp = conn.getresponse()
        assert resp.read() == data[start : start + 10]
    conn.close()
    assert object_server.requests == 3


def test_counters_and_reset(object_server: ObjectServer, data: bytes) -> None:
    request(object_server, "big.bin", {"Range": "bytes=0-99"})
    request(object_server, "big.bin", {"Range": "bytes=200-299"})
    request(object_server, "nope.bin")
    assert object_server.requests == 3
    assert object_server.bytes_sent == 200
    assert [(r.start, r.end, r.status) for r in object_server.log] == [
        (0, 100, 206),
        (200, 300, 206),
        (None, None, 404),
    ]
    assert len(object_server.records(path="big.bin")) == 2
    object_server.reset()
    assert (object_server.requests, object_server.bytes_sent, object_server.log) == (0, 0, [])


def test_latency_delays_every_response(object_server: ObjectServer, data: bytes) -> None:
    object_server.latency = 0.2
    t0 = time.perf_counter()
    request(object_server, "big.bin", {"Range": "bytes=0-9"})
    assert time.perf_counter() - t0 >= 0.2


def test_concurrent_requests_are_served_in_parallel(
    object_server: ObjectServer, data: bytes
) -> None:
    object_server.latency = 0.3
    threads = [
        threading.Thread(target=request, args=(object_server, "big.bin", {"Range": "bytes=0-9"}))
        for _ in range(4)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.perf_counter() - t0 < 1.0  # 4 × 0.3 s sequentially would be 1.2 s
    assert object_server.max_in_flight == 4


def test_fault_status(object_server: ObjectServer, data: bytes) -> None:
    object_server.inject("big.bin", "status", status=503, times=2)
    assert request(object_server, "big.bin", {"Range": "bytes=0-9"})[0] == 503
    assert request(object_server, "big.bin", {"Range": "bytes=0-9"})[0] == 503
    status, _, body = request(object_server, "big.bin", {"Range": "bytes=0-9"})
    assert (status, body) == (206, data[:10])
    assert [r.fault for r in object_server.log] == ["status", "status", None]


def test_fault_pattern_method_and_persistence(object_server: ObjectServer, data: bytes) -> None:
    object_server.inject("sub dir/*", "status", status=500, times=None, method="GET")
    for _ in range(3):
        assert request(object_server, "sub dir/a b.bin")[0] == 500
    assert request(object_server, "sub dir/a b.bin", method="HEAD")[0] == 200
    assert request(object_server, "big.bin", {"Range": "bytes=0-0"})[0] == 206
    object_server.clear_faults()
    assert request(object_server, "sub dir/a b.bin")[0] == 200
    with pytest.raises(ValueError, match="unknown fault kind"):
        object_server.inject("*", "explode")  # type: ignore[arg-type]


def test_fault_slow(object_server: ObjectServer, data: bytes) -> None:
    object_server.inject("big.bin", "slow", delay=0.3)
    t0 = time.perf_counter()
    status, _, body = request(object_server, "big.bin", {"Range": "bytes=0-9"})
    assert time.perf_counter() - t0 >= 0.3
    assert (status, body) == (206, data[:10])
    t0 = time.perf_counter()
    request(object_server, "big.bin", {"Range": "bytes=0-9"})
    assert time.perf_counter() - t0 < 0.3


def test_fault_reset(object_server: ObjectServer, data: bytes) -> None:
    object_server.inject("big.bin", "reset")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        request(object_server, "big.bin", {"Range": "bytes=0-9"})
    assert request(object_server, "big.bin", {"Range": "bytes=0-9"})[2] == data[:10]
    assert object_server.log[0].fault == "reset"


def test_fault_truncate(object_server: ObjectServer, data: bytes) -> None:
    object_server.inject("big.bin", "truncate", keep=1000)
    with pytest.raises(http.client.IncompleteRead) as info:
        request(object_server, "big.bin", {"Range": "bytes=0-99999"})
    assert len(info.value.partial) <= 1000
    assert object_server.bytes_sent == 1000
    assert request(object_server, "big.bin", {"Range": "bytes=0-99"})[2] == data[:100]


def test_fault_bad_range(object_server: ObjectServer, data: bytes) -> None:
    object_server.inject("big.bin", "bad_range", shift=7)
    status, headers, body = request(object_server, "big.bin", {"Range": "bytes=100-199"})
    assert status == 206
    assert headers["content-range"] == f"bytes 107-206/{SIZE}"
    assert body == data[107:207]


def test_client_disconnects_do_not_break_the_server(
    object_server: ObjectServer, data: bytes
) -> None:
    object_server.latency = 0.05
    for _ in range(3):
        sock = socket.create_connection((object_server.host, object_server.port))
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(100)
        sock.close()  # gone while the server is still sending ~3 MiB
    status, _, body = request(object_server, "big.bin", {"Range": "bytes=5-9"})
    assert (status, body) == (206, data[5:10])


def test_stop_closes_idle_keep_alive_connections(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc")
    server = ObjectServer(tmp_path).start()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    conn.request("GET", "/a.bin")
    assert conn.getresponse().read() == b"abc"
    server.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/a.bin")
        conn.getresponse()


def test_command_line(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"hello world")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rasteret.testing.objserver", str(tmp_path), "--latency", "0.01"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme == "http" and parts.port
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", "/a.bin", headers={"Range": "bytes=6-"})
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (206, b"world")
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
