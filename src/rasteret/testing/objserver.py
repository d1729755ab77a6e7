"""A range-capable HTTP object server for tests and demos (stdlib only).

``ObjectServer(root)`` serves the files under ``root`` on 127.0.0.1 from a background
thread: ``GET`` with one ``Range: bytes=a-b`` / ``a-`` / ``-n`` (206 + Content-Range),
full ``GET`` (200), ``HEAD``, 416 for unsatisfiable ranges, ``ETag`` / ``Last-Modified``,
HTTP/1.1 keep-alive. It counts requests and body bytes, logs every request's byte range,
delays every response by ``latency`` seconds, injects faults on demand, and with
``token`` set answers 401 to requests without ``Authorization: Bearer <token>``
(counted in ``unauthorized``)::

    with ObjectServer(tmp_path, latency=0.01) as server:
        server.inject("*.tif", "status", status=503, times=2)
        url = server.url_for("a.tif")

Run standalone: ``python -m rasteret.testing.objserver DIR --port 8080 --latency 0.03``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import email.utils
import fnmatch
import socket
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from rasteret.testing._serving import ServerContext, serve_in_thread, stop_thread_server

FaultKind = Literal["status", "slow", "reset", "truncate", "bad_range"]
FAULT_KINDS: tuple[str, ...] = ("status", "slow", "reset", "truncate", "bad_range")
_CHUNK = 1 << 20
#: Bodies from this size go out by ``os.sendfile`` (the kernel copies page cache to the
#: socket): the server shares the client's cores in benchmarks, so it should cost little.
_SENDFILE_MIN = 64 << 10


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it; ``end`` is exclusive, ``None`` without a body range."""

    method: str
    path: str
    start: int | None
    end: int | None
    status: int
    fault: str | None = None
    query: str = ""  # the raw query string (e.g. a signature added at read time)


@dataclass
class Fault:
    """A fault armed for requests whose path matches ``pattern`` (fnmatch, no leading '/')."""

    pattern: str
    kind: FaultKind
    times: int | None = 1  # None: every matching request
    status: int = 503
    delay: float = 1.0
    keep: int | None = None  # truncate: body bytes actually sent (default: half)
    shift: int = 1  # bad_range: how far the announced range is moved
    method: str | None = None  # only this method (default: any)
    hits: int = field(default=0, init=False)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return fnmatch.fnmatchcase(path, self.pattern)


@dataclass(frozen=True)
class _Range:
    start: int
    end: int  # exclusive


class _Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> _Range | None:
    """Parse one ``bytes=`` range; ``None`` means serve the whole object.

    Raises ``_Unsatisfiable`` for a range outside the object. Headers that are not a
    single byte range (multipart, other units, garbage) are ignored, as RFC 9110 allows.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix < 0:
                return None
            if suffix == 0 or size == 0:
                raise _Unsatisfiable
            return _Range(max(0, size - suffix), size)
        start = int(first)
        end = None if last == "" else int(last) + 1
    except ValueError:
        return None
    if end is not None and end <= start:  # "a-b" with b < a is not a valid range: ignore it
        return None
    if start >= size:
        raise _Unsatisfiable
    return _Range(start, size if end is None else min(end, size))


def _etag(stat_size: int, mtime_ns: int) -> str:
    return f'"{stat_size:x}-{mtime_ns:x}"'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rasteret-objserver"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are dropped after this
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed ACK)
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        method = "HEAD" if head else "GET"
        parts = urllib.parse.urlsplit(self.path)
        rel = urllib.parse.unquote(parts.path).lstrip("/")
        self._query = parts.query
        owner._begin()
        self._open = True
        try:
            self._respond(owner, method, rel, head)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True
        finally:
            self._finish(owner)

    def _finish(self, owner: ObjectServer) -> None:
        """Leave the in-flight count (once): before the last byte goes out, so a client
        that starts its next request on receiving it is never counted twice."""
        if self._open:
            self._open = False
            owner._end()

    def _respond(self, owner: ObjectServer, method: str, rel: str, head: bool) -> None:
        fault = owner._take_fault(method, rel)
        delay = owner.latency + (fault.delay if fault and fault.kind == "slow" else 0.0)
        if delay > 0:
            time.sleep(delay)
        kind = fault.kind if fault else None
        if owner.token is not None and self.headers.get("Authorization") != (
            f"Bearer {owner.token}"
        ):
            with owner._lock:
                owner.unauthorized += 1
            self._log(owner, RequestRecord(method, rel, None, None, 401, "status"))
            self._send_simple(401, "unauthorized\n", head)
            return
        if kind == "reset":
            self._log(owner, RequestRecord(method, rel, None, None, 0, "reset"))
            self._reset_connection()
            return
        if kind == "status":
            assert fault is not None
            self._log(owner, RequestRecord(method, rel, None, None, fault.status, "status"))
            self._send_simple(fault.status, f"injected status {fault.status}\n", head)
            return
        file = owner._resolve(rel)
        if file is None:
            self._log(owner, RequestRecord(method, rel, None, None, 404, kind))
            self._send_simple(404, f"not found: {rel}\n", head)
            return
        stat = file.stat()
        size = stat.st_size
        etag = _etag(size, stat.st_mtime_ns)
        if_match = self.headers.get("If-Match")
        if if_match and if_match.strip() != "*" and etag not in _split_etags(if_match):
            self._log(owner, RequestRecord(method, rel, None, None, 412, kind))
            self._send_simple(412, "precondition failed\n", head)
            return
        try:
            byte_range = parse_range(self.headers.get("Range"), size)
        except _Unsatisfiable:
            self._log(owner, RequestRecord(method, rel, None, None, 416, kind))
            self._send_simple(
                416, "range not satisfiable\n", head, {"Content-Range": f"bytes */{size}"}
            )
            return
        start, end = (byte_range.start, byte_range.end) if byte_range else (0, size)
        status = 206 if byte_range else 200
        announced = (start, end)
        if kind == "bad_range" and byte_range is not None:
            assert fault is not None
            shifted = min(start + fault.shift, max(size - (end - start), 0))
            announced = (shifted, shifted + (end - start))
            start, end = announced
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
        self.send_header("Content-Length", str(end - start))
        if byte_range is not None:
            self.send_header("Content-Range", f"bytes {announced[0]}-{announced[1] - 1}/{size}")
        self._log(owner, RequestRecord(method, rel, start, end, status, kind))
        if head or end == start:
            self._finish(owner)
        self.end_headers()
        if head:
            return
        send_until = end
        if kind == "truncate":
            assert fault is not None
            keep = fault.keep if fault.keep is not None else (end - start) // 2
            send_until = start + max(0, min(keep, end - start - 1))
        self._send_body(owner, file, start, send_until)
        if send_until < end:  # truncated: the client must see the connection end early
            self.wfile.flush()
            self._reset_connection()

    def _log(self, owner: ObjectServer, record: RequestRecord) -> None:
        owner._record(dataclasses.replace(record, query=self._query) if self._query else record)

    def _send_body(self, owner: ObjectServer, file: Path, start: int, end: int) -> None:
        with file.open("rb") as handle:
            if end - start >= _SENDFILE_MIN:  # the kernel copies file to socket
                owner._add_bytes(end - start)  # before the write: clients may check at once
                self._finish(owner)
                try:
                    self.connection.sendfile(handle, start, end - start)
                except OSError:
                    owner._add_bytes(-(end - start))
                    raise
                return
            handle.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = handle.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                owner._add_bytes(len(chunk))  # before the write: clients may check at once
                if len(chunk) >= remaining:
                    self._finish(owner)
                try:
                    self.wfile.write(chunk)
                except OSError:
                    owner._add_bytes(-len(chunk))
                    raise
                remaining -= len(chunk)

    def _send_simple(
        self, status: int, body: str, head: bool, extra: dict[str, str] | None = None
    ) -> None:
        payload = body.encode()
        self._finish(self.server.owner)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def _reset_connection(self) -> None:
        """Drop the connection abruptly (TCP RST), without a (complete) response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _split_etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 overflows with 64 requests in flight: the
    # kernel drops connection attempts and clients stall for seconds in TCP retries
    request_queue_size = 1024
    owner: ObjectServer

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        self.owner._track_socket(request, add=True)
        super().process_request(request, client_address)  # type: ignore[arg-type]

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        self.owner._track_socket(request, add=False)
        super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # client went away: not the server's problem
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class ObjectServer(ServerContext):
    """Serve files under ``root`` over HTTP/1.1 with byte ranges, counters and faults."""

    def __init__(
        self, root: Path | str, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0
    ) -> None:
        self.root = Path(root).resolve()
        self.host = host
        self.port = port
        self.latency = latency
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._sockets: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0
        self.bytes_sent = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.log: list[RequestRecord] = []
        self.token: str | None = None  # a bearer token every request must carry
        self.unauthorized = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ObjectServer:
        """Bind and serve from a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = serve_in_thread(server, f"objserver:{self.port}", poll_interval=0.05)
        return self

    def stop(self) -> None:
        """Stop serving and drop every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        stop_thread_server(server, self._thread)
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        return f"http://{self.host}:{self.port}"

    def url_for(self, relpath: str | Path) -> str:
        """URL of a file given relative to ``root`` (percent-encoded)."""
        rel = Path(relpath).as_posix().lstrip("/")
        return f"{self.url}/{urllib.parse.quote(rel)}"

    # -- counters and faults -----------------------------------------------------------------
    def reset(self) -> None:
        """Zero the counters, clear the log and disarm every fault."""
        with self._lock:
            self.requests = 0
            self.bytes_sent = 0
            self.unauthorized = 0
            self.max_in_flight = self.in_flight
            self.log = []
            self._faults = []

    def inject(
        self, path_pattern: str, kind: FaultKind, times: int | None = 1, **params: object
    ) -> Fault:
        """Arm a fault for the next ``times`` requests matching ``path_pattern`` (None: all).

        Kinds: ``status`` (``status=503``), ``slow`` (``delay=1.0`` s extra before the first
        byte), ``reset`` (drop the connection, no response), ``truncate`` (send ``keep``
        body bytes, default half, then drop the connection), ``bad_range`` (announce and
        send a range moved by ``shift`` bytes). ``method="GET"`` restricts it to one method.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        fault = Fault(path_pattern.lstrip("/"), kind, times, **params)  # type: ignore[arg-type]
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = []

    def records(self, path: str | None = None, method: str | None = None) -> list[RequestRecord]:
        """A snapshot of the log, optionally filtered by path and method."""
        with self._lock:
            log = list(self.log)
        return [
            r
            for r in log
            if (path is None or r.path == path.lstrip("/"))
            and (method is None or r.method == method)
        ]

    # -- used by the handler -----------------------------------------------------------------
    def _resolve(self, rel: str) -> Path | None:
        candidate = (self.root / rel).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def _take_fault(self, method: str, rel: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, rel):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _begin(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _end(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.log.append(record)

    def _add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    def _track_socket(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a directory with HTTP byte ranges.")
    parser.add_argument("root", type=Path, help="directory to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each response")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"not a directory: {args.root}")
    server = ObjectServer(args.root, host=args.host, port=args.port, latency=args.latency)
    server.start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
