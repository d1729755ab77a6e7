"""A pure-Python transport for processes forked after obstore was used.

obstore's Tokio runtime does not survive ``fork``: any obstore call in such a child
hangs — whether rasteret or other code started it in the parent (:mod:`rasteret._fork`).
There, local files are read with ``os.pread`` and HTTP(S) with ``http.client``
(keep-alive, one small connection pool per origin), both in worker threads. Cloud
buckets need obstore: those reads fail with a clear message instead of hanging, naming
the fix (:data:`FORK_FIX`: ``DataLoader(..., multiprocessing_context="spawn")``).
"""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import os
import threading
import urllib.parse
from collections.abc import Buffer

from rasteret.fetch.config import FetchConfig
from rasteret.fetch.local_files import head_local, read_local
from rasteret.fetch.model import ObjectInfo
from rasteret.fetch.retry import TransportFailure, status_kind
from rasteret.fetch.routing import Route

_IDLE_PER_ORIGIN = 16


class _Pool:
    """Idle keep-alive connections per origin (reset in a forked child)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[str, list[http.client.HTTPConnection]] = {}
        self._pid = os.getpid()

    def acquire(self, scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
        key = f"{scheme}://{netloc}"
        with self._lock:
            if self._pid != os.getpid():
                self._idle, self._pid = {}, os.getpid()
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=timeout)
        return http.client.HTTPConnection(netloc, timeout=timeout)

    def release(self, scheme: str, netloc: str, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(f"{scheme}://{netloc}", [])
            if len(idle) < _IDLE_PER_ORIGIN:
                idle.append(conn)
                return
        conn.close()


_POOL = _Pool()


def _parse_content_range(value: str | None) -> tuple[int, int, int | None]:
    """``bytes a-b/size`` → (a, b + 1, size or None)."""
    try:
        unit, _, rest = (value or "").partition(" ")
        span, _, total = rest.partition("/")
        first, _, last = span.partition("-")
        if unit != "bytes":
            raise ValueError
        return int(first), int(last) + 1, None if total in ("*", "") else int(total)
    except ValueError:
        raise TransportFailure(f"malformed Content-Range {value!r}") from None


def _info_from_headers(resp: http.client.HTTPResponse, size: int | None) -> ObjectInfo:
    modified = resp.getheader("Last-Modified")
    iso = email.utils.parsedate_to_datetime(modified).isoformat() if modified else None
    return ObjectInfo(size, resp.getheader("ETag"), iso)


def _exchange(
    method: str, url: str, headers: dict[str, str], timeout: float
) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a pooled keep-alive connection; raises on error statuses."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = _POOL.acquire(parts.scheme, parts.netloc, timeout)
    try:
        conn.request(method, target, headers={"Accept-Encoding": "identity", **headers})
        resp = conn.getresponse()
        body = resp.read()
    except BaseException:
        conn.close()
        raise
    if resp.will_close:
        conn.close()
    else:
        _POOL.release(parts.scheme, parts.netloc, conn)
    if resp.status >= 400:
        raise TransportFailure(
            f"HTTP {resp.status} {resp.reason} for {method}", status_kind(resp.status)
        )
    return resp, body


def _http_get(
    url: str, start: int, end: int, timeout: float, headers: dict[str, str] | None = None
) -> tuple[bytes, ObjectInfo]:
    wanted = {**(headers or {}), "Range": f"bytes={start}-{end - 1}"}
    resp, body = _exchange("GET", url, wanted, timeout)
    if resp.status == 200:  # the server ignored the Range header
        return body[start:end], _info_from_headers(resp, len(body))
    got_start, got_end, size = _parse_content_range(resp.getheader("Content-Range"))
    want_end = end if size is None else min(end, size)
    if (got_start, got_end) != (start, want_end):
        wanted, got = f"{start}-{want_end - 1}", f"{got_start}-{got_end - 1}"
        raise TransportFailure(f"requested bytes {wanted}, got {got}")
    return body, _info_from_headers(resp, size)


def _http_head(url: str, timeout: float, headers: dict[str, str] | None = None) -> ObjectInfo:
    resp, _ = _exchange("HEAD", url, dict(headers or {}), timeout)
    length = resp.getheader("Content-Length")
    return _info_from_headers(resp, int(length) if length else None)


class PythonTransport:
    """os.pread for files, http.client for HTTP(S); no obstore, safe after fork."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config

    async def get(self, route: Route, start: int, end: int) -> tuple[Buffer, ObjectInfo]:
        if route.kind == "local":
            return await asyncio.to_thread(read_local, route.path, start, end)
        if route.kind == "http":
            timeout = self.config.request_timeout
            url = self._signed(route)
            headers = self._headers(route)
            return await asyncio.to_thread(_http_get, url, start, end, timeout, headers)
        raise _no_obstore(route)

    async def head(self, route: Route) -> ObjectInfo:
        if route.kind == "local":
            return await asyncio.to_thread(head_local, route.path)
        if route.kind == "http":
            timeout = self.config.request_timeout
            url, headers = self._signed(route), self._headers(route)
            return await asyncio.to_thread(_http_head, url, timeout, headers)
        raise _no_obstore(route)

    def _headers(self, route: Route) -> dict[str, str]:
        """The store options' ``default_headers`` for ``route``, and the Hugging Face
        token on the Hub's endpoint (:mod:`rasteret.fetch.hub_auth`), as obstore sends
        them."""
        from rasteret.fetch.hub_auth import hub_headers
        from rasteret.fetch.stores import store_options

        configured = store_options(route, self.config).client_options_dict()
        headers = hub_headers(route.url, configured.get("default_headers"))
        return {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}

    def _signed(self, route: Route) -> str:
        from rasteret.fetch.stores import store_options

        signer = store_options(route, self.config).signer or self.config.signer
        return signer(route.url) if signer is not None else route.url


#: What to do when a forked process needs obstore (cloud buckets).
FORK_FIX = (
    "start worker processes with the 'spawn' or 'forkserver' method: "
    'DataLoader(..., multiprocessing_context="spawn") (or "forkserver"), '
    'multiprocessing.get_context("spawn"), concurrent.futures.ProcessPoolExecutor('
    'mp_context=multiprocessing.get_context("spawn")); dask\'s LocalCluster already spawns'
)


def _no_obstore(route: Route) -> TransportFailure:
    return TransportFailure(
        f"reading {route.provider} objects needs obstore, which cannot run in this process: "
        f"it was forked after obstore's runtime started in its parent (by rasteret or by "
        f"other code); {FORK_FIX}",
        "permanent",
    )
