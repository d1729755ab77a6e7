"""``RangeReader``: every byte rasteret reads goes through here.

One request per call for ``read_prefix`` / ``read_range`` / ``head``; ``read_ranges``
coalesces one object's ranges (gap from the config) into as few requests as possible;
``read_block`` does the same for *concurrent* single-block reads via a per-event-loop
micro-batcher. Requests in flight are bounded per event loop, transient failures are
retried, short bodies are retried and never returned, and every request is counted in
:mod:`rasteret.fetch.stats`.

A reader is passed explicitly to whatever reads; :func:`default_reader` is only the
fallback when none is given. A reader pickles by reference to the unpickling process:
as "that process's default reader" when its settings are the environment's defaults
(``FetchConfig.from_env()``), else as its settings, which unpickle to that process's
shared reader for them (cached per process, rebuilt after a fork). Unpickling never
changes the default reader or any other setting of the process. Its settings pickle
without credentials (:mod:`rasteret.fetch.options`): another process reads with its
own, from its :func:`configure` or its environment (the pickling process itself, and
its forks, keep the original settings).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Buffer, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rasteret.errors import FetchError, ObjectNotFoundError, StaleIndexError
from rasteret.fetch.batcher import BlockBatcher
from rasteret.fetch.config import FetchConfig
from rasteret.fetch.limiter import Limiter
from rasteret.fetch.model import (
    ObjectInfo,
    RangeNotSatisfiableError,
    check_expected,
    make_error,
    with_range,
)
from rasteret.fetch.options import secrets_digest
from rasteret.fetch.retry import TransportFailure, as_fetch_error, with_retries
from rasteret.fetch.routing import Route, route, s3_endpoints
from rasteret.fetch.secrets import redact_url
from rasteret.fetch.stats import STATS
from rasteret.fetch.stores import obstore_usable, registered_prefixes, set_local_stores
from rasteret.fetch.transport import ObstoreTransport, Transport

TransportChoice = Literal["auto", "obstore", "python"]


def merge_ranges(ranges: Sequence[tuple[int, int]], gap: int) -> list[tuple[int, int, list[int]]]:
    """Group ranges (sorted by start) whose distance is at most ``gap`` (overlaps always).

    Returns ``(start, end, indices)`` per group — the same rule as object_store's
    ``get_ranges``: with ``gap=0`` only adjacent or overlapping ranges merge.
    """
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    groups: list[tuple[int, int, list[int]]] = []
    for i in order:
        start, end = ranges[i]
        if groups and start - groups[-1][1] <= gap:
            g_start, g_end, members = groups[-1]
            members.append(i)
            groups[-1] = (g_start, max(g_end, end), members)
        else:
            groups.append((start, end, [i]))
    return groups


@dataclass
class _LoopState:
    semaphore: Limiter
    batcher: BlockBatcher


class RangeReader:
    """Range reads over obstore with coalescing, a concurrency bound, retries and counters."""

    def __init__(
        self, config: FetchConfig | None = None, *, transport: TransportChoice = "auto"
    ) -> None:
        """``transport``: ``"auto"`` (obstore, or pure Python in a process forked after
        obstore was used), ``"obstore"`` or ``"python"`` (local files and HTTP(S) only)."""
        if transport not in ("auto", "obstore", "python"):
            raise ValueError(f"unknown transport {transport!r}")
        self.config = config if config is not None else FetchConfig.from_env()
        self.transport = transport
        self._endpoints = s3_endpoints(self.config.stores)
        self._obstore = ObstoreTransport(self.config)
        self._fallback: Transport | None = None  # built when first needed (forked child)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._digest: tuple[FetchConfig, str, str] | None = None  # (config, transport, key)

    def __repr__(self) -> str:
        return f"RangeReader({self.config})"

    # -- settings identity and pickling ----------------------------------------------------------
    def is_default(self) -> bool:
        """Whether this reader has the environment's default settings (``FetchConfig.from_env()``
        and the ``"auto"`` transport)."""
        return self.transport == "auto" and self.config == FetchConfig.from_env()

    def settings_key(self) -> str:
        """Identity of this reader's settings: ``"default"`` for the environment's defaults,
        else a digest of the pickled settings (equal for equal settings, across processes)."""
        if self.is_default():
            return "default"
        try:
            return self._settings_digest()
        except Exception:
            return f"unpicklable-{id(self.config):x}"

    def _settings_digest(self) -> str:
        """A digest of ``(config, transport)`` pickled (once per config; raises if it cannot)."""
        cached = self._digest
        if cached is None or cached[0] is not self.config or cached[1] != self.transport:
            payload = pickle.dumps((self.config, self.transport), pickle.HIGHEST_PROTOCOL)
            payload += secrets_digest(self.config.stores)  # the pickle has no credentials
            key = hashlib.blake2b(payload, digest_size=16).hexdigest()
            cached = self._digest = (self.config, self.transport, key)
        return cached[2]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self.is_default():
            return (_unpickle_reader, ())
        try:
            key = self._settings_digest()
        except Exception as exc:
            warnings.warn(
                f"the fetch settings of {self!r} cannot be pickled ({exc}); the unpickling "
                "process reads with its own default reader instead. Define signers / "
                "credential providers at module level so they pickle",
                RuntimeWarning,
                stacklevel=2,
            )
            return (_unpickle_reader, ())
        _remember_settings(key, self.config)
        return (_unpickle_reader, (self.config, self.transport, key))

    # -- public API ----------------------------------------------------------------------------
    async def read_prefix(
        self, url: str, length: int, *, expected: ObjectInfo | None = None
    ) -> tuple[bytes, ObjectInfo]:
        """The first ``length`` bytes (fewer if the object is shorter) and the object's
        metadata, in one request."""
        r = self.route(url)
        if length <= 0:
            return b"", await self.head(url, expected=expected)
        try:
            data, info = await self._get(r, 0, length, expected)
        except RangeNotSatisfiableError:
            info = await self.head(url, expected=expected)
            if info.size == 0:
                return b"", info
            raise
        return bytes(data), info

    async def read_range(
        self, url: str, start: int, end: int, *, expected: ObjectInfo | None = None
    ) -> bytes:
        """Bytes ``[start, end)``: exactly ``end - start`` of them, else :class:`FetchError`."""
        _check_range(url, start, end)
        if start == end:
            return b""
        return bytes(await self._get_exact(self.route(url), start, end, expected))

    async def read_ranges(
        self,
        url: str,
        starts: Sequence[int],
        ends: Sequence[int],
        *,
        expected: ObjectInfo | None = None,
        copy: bool = True,
    ) -> list[bytes]:
        """Several ranges of one object, coalesced into as few requests as the gap allows.

        ``copy=False`` returns zero-copy ``memoryview`` slices of the received buffers.
        """
        if len(starts) != len(ends):
            raise ValueError(f"{redact_url(url)}: {len(starts)} starts but {len(ends)} ends")
        ranges = [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
        results = await self._fetch_many(url, ranges, expected, copy=copy)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]

    async def read_block(
        self,
        url: str,
        start: int,
        end: int,
        *,
        expected: ObjectInfo | None = None,
        copy: bool = True,
    ) -> bytes:
        """One block's bytes; concurrent calls for one object share coalesced requests."""
        _check_range(url, start, end)
        if start == end:
            return b""
        data = await self._state().batcher.submit(url, start, end, expected)
        return bytes(data) if copy else data  # type: ignore[return-value]

    async def stat(self, url: str) -> ObjectInfo:
        """:meth:`head`, or when the store refuses HEAD (an anonymous read of a bucket whose
        policy grants only GetObject on some S3-compatible servers), the size from a
        one-byte ranged GET. Raises :class:`ObjectNotFoundError` for a missing object."""
        try:
            return await self.head(url)
        except ObjectNotFoundError:
            raise
        except FetchError:
            r = self.route(url)
            transport = self._transport()

            async def once() -> ObjectInfo:
                STATS.add_request()
                _, info = await transport.get(r, 0, 1)
                return info

            return await with_retries(
                once, url=url, byte_range=(0, 1), config=self.config, local=r.is_local
            )

    async def put(self, url: str, file: Any) -> None:
        """Write the object at ``url`` from ``file`` (bytes, or a local ``Path``: uploaded in
        parts when large) through this reader's store and credentials (exports)."""
        r, transport = self._store_operation(url, "put", "write")
        await _unchained(transport.put(r, file), r)

    async def delete(self, url: str) -> None:
        """Delete the object at ``url`` (exports replacing a previous one)."""
        r, transport = self._store_operation(url, "delete", "delete")
        await _unchained(transport.delete(r), r)

    async def list(self, url: str) -> list[tuple[str, ObjectInfo]]:
        """Every object below ``url`` (a directory or key prefix of a local path, bucket or
        container): ``(url, size / ETag / last-modified)`` pairs. Plain HTTP(S) servers
        cannot be listed (:class:`FetchError`), nor can anything in a forked child."""
        r, transport = self._store_operation(url, "list", "list")
        return await _unchained(transport.list(r), r)

    def _store_operation(self, url: str, operation: str, verb: str) -> tuple[Route, Any]:
        """The route and transport for a store operation (``put`` / ``delete`` / ``list``)
        on ``url``, counted as one request; plain HTTP and the fork-safe transport have
        none (:class:`FetchError` saying it cannot ``verb`` objects there)."""
        r = self.route(url)
        transport = self._transport()
        if r.kind == "http" or not hasattr(transport, operation):
            raise make_error(
                FetchError, url, f"cannot {verb} objects here (plain HTTP, or a forked child)", None
            )
        STATS.add_request()
        return r, transport

    async def head(self, url: str, *, expected: ObjectInfo | None = None) -> ObjectInfo:
        """The object's size, ETag and last-modified time."""
        r = self.route(url)
        state = self._state()
        transport = self._transport()

        async def once() -> ObjectInfo:
            async with state.semaphore:
                STATS.add_request()
                info = await transport.head(r)
            check_expected(url, info, expected, None, compare_etag=not r.is_local)
            return info

        return await with_retries(
            once, url=url, byte_range=None, config=self.config, local=r.is_local
        )

    def header_fetch(
        self, url: str, *, prefetch: int | None = None, expected: ObjectInfo | None = None
    ) -> HeaderFetcher:
        """A ``fetch(offset, length)`` callable for the TIFF header parser."""
        return HeaderFetcher(self, url, prefetch or self.config.prefetch, expected)

    header_fetcher = header_fetch

    def route(self, url: str) -> Route:
        """Where ``url`` lives for this reader (its configured S3 endpoints and the stores
        registered with :func:`rasteret.fetch.register_store` included)."""
        return route(url, self._endpoints, registered_prefixes())

    def coalesce_gap(self, url: str) -> int:
        """The coalescing gap used for ``url`` (local files and remote objects differ)."""
        r = self.route(url)
        return self.config.local_coalesce_gap if r.is_local else self.config.coalesce_gap

    # -- internals ------------------------------------------------------------------------------
    def _transport(self) -> Transport:
        if self.transport == "python" or (self.transport == "auto" and not obstore_usable()):
            if self._fallback is None:
                from rasteret.fetch.fallback import PythonTransport

                self._fallback = PythonTransport(self.config)
            return self._fallback
        return self._obstore

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            with self._lock:
                state = self._loops.get(loop)
                if state is None:
                    batcher = BlockBatcher(loop, self._fetch_many, self.config.batch_ticks)
                    state = _LoopState(Limiter(self.config.max_in_flight), batcher)
                    self._loops[loop] = state
        return state

    async def _get(
        self, r: Route, start: int, end: int, expected: ObjectInfo | None
    ) -> tuple[Buffer, ObjectInfo]:
        """One request for ``[start, end)`` (clamped at the end of the object), verified."""
        state = self._state()
        transport = self._transport()

        async def once() -> tuple[Buffer, ObjectInfo]:
            async with state.semaphore:
                STATS.add_request()
                data, info = await transport.get(r, start, end)
            n = len(memoryview(data))
            STATS.add_bytes(n)
            check_expected(r.url, info, expected, (start, end), compare_etag=not r.is_local)
            want = end - start if info.size is None else min(end, info.size) - start
            if n != want:
                raise TransportFailure(f"short read: received {n} of {want} bytes")
            return data, info

        try:
            return await with_retries(
                once, url=r.url, byte_range=(start, end), config=self.config, local=r.is_local
            )
        except RangeNotSatisfiableError as error:
            if expected is None or expected.size is None or start >= expected.size:
                raise
            raise make_error(
                StaleIndexError,
                r.url,
                f"object is shorter than the {expected.size} bytes the index recorded",
                (start, end),
            ) from error

    async def _get_exact(
        self, r: Route, start: int, end: int, expected: ObjectInfo | None
    ) -> Buffer:
        data, info = await self._get(r, start, end, expected)
        if len(memoryview(data)) != end - start:
            raise make_error(
                FetchError,
                r.url,
                f"range ends past the end of the object ({info.size} bytes)",
                (start, end),
            )
        return data

    async def _fetch_many(
        self,
        url: str,
        ranges: Sequence[tuple[int, int]],
        expected: ObjectInfo | None,
        copy: bool = False,
    ) -> list[Buffer | BaseException]:
        """Coalesce and fetch; one buffer (or the FetchError) per requested range."""
        r = self.route(url)
        for start, end in ranges:
            _check_range(url, start, end)
        gap = self.config.local_coalesce_gap if r.is_local else self.config.coalesce_gap
        results: list[Buffer | BaseException] = [b""] * len(ranges)

        async def one(g_start: int, g_end: int, members: list[int]) -> None:
            if g_start == g_end:
                return
            try:
                view = memoryview(await self._get_exact(r, g_start, g_end, expected))
            except FetchError as error:
                for i in members:
                    results[i] = with_range(error, ranges[i])
                return
            for i in members:
                start, end = ranges[i]
                piece = view[start - g_start : end - g_start]
                results[i] = bytes(piece) if copy else piece

        groups = merge_ranges(ranges, gap)
        if len(groups) == 1:
            await one(*groups[0])
        else:
            await asyncio.gather(*(one(*g) for g in groups))
        return results


def _check_range(url: str, start: int, end: int) -> None:
    if start < 0 or end < start:
        raise ValueError(f"{redact_url(url)}: invalid byte range [{start}, {end})")


async def _unchained[T](call: Awaitable[T], r: Route) -> T:
    """Await a transport call made without retries; any failure becomes the typed,
    redacted :class:`FetchError`, raised with no chained transport exception."""
    try:
        return await call
    except Exception as exc:
        error = as_fetch_error(exc, r.url, local=r.is_local)
    raise error


class HeaderFetcher:
    """``await fetch(offset, length)`` → up to ``length`` bytes (fewer at the end of file).

    The first call is served by one :meth:`RangeReader.read_prefix` of at least
    ``prefetch`` bytes, which also yields :attr:`info` (size, ETag); later calls inside
    that prefix cost nothing, others are one range request each, clamped to the size.
    """

    def __init__(
        self, reader: RangeReader, url: str, prefetch: int, expected: ObjectInfo | None = None
    ) -> None:
        self.reader = reader
        self.url = url
        self.prefetch = prefetch
        self.expected = expected
        self.info: ObjectInfo | None = None
        self.requests = 0  # range requests made so far
        self._prefix = b""

    async def __call__(self, offset: int, length: int) -> bytes:
        _check_range(self.url, offset, offset + length)
        end = offset + length
        if self.info is None:
            want = max(self.prefetch, end)
            self._prefix, self.info = await self.reader.read_prefix(
                self.url, want, expected=self.expected
            )
            self.requests += 1
        size = self.info.size if self.info.size is not None else len(self._prefix)
        end = min(end, size)
        if offset >= end:
            return b""
        have = len(self._prefix)
        if end <= have:
            return self._prefix[offset:end]
        start = max(offset, have)  # the part already in the prefix is not fetched again
        data = await self.reader.read_range(self.url, start, end, expected=self.expected)
        self.requests += 1
        return self._prefix[offset:have] + bytes(data) if start > offset else data


# -- the process-wide reader -----------------------------------------------------------------------
_default: RangeReader | None = None
_default_pid = 0
_default_lock = threading.Lock()


def default_reader() -> RangeReader:
    """The process-wide reader (created lazily; a forked child gets its own)."""
    global _default, _default_pid
    reader = _default
    if reader is not None and _default_pid == os.getpid():
        return reader
    with _default_lock:
        if _default is None or _default_pid != os.getpid():
            _default = RangeReader()
            _default_pid = os.getpid()
        return _default


def configure(config: FetchConfig | None = None, **changes: object) -> RangeReader:
    """Replace the process-wide reader with one using ``config`` (or the defaults + changes).

    Every setting of :class:`FetchConfig` can be changed, e.g.
    ``configure(coalesce_gap=2**20, max_retries=6, stores={"s3://b": {"requester_pays":
    True}}, signer=sign)``. Each call replaces the previous settings (start from
    ``default_reader().config`` to change one). Only what takes its reader afterwards
    sees the change: a store keeps the reader it was opened with, and carries those
    settings when pickled. Other processes' default readers never change.
    """
    global _default, _default_pid
    base = config if config is not None else FetchConfig.from_env()
    reader = RangeReader(base.with_(**changes) if changes else base)
    with _default_lock:
        _default, _default_pid = reader, os.getpid()
        set_local_stores(reader.config.stores)
    return reader


# -- readers unpickled in this process ----------------------------------------------------------
_SHARED_MAX = 8
_shared: OrderedDict[str, RangeReader] = OrderedDict()  # by settings key
_shared_pid = os.getpid()
_shared_lock = threading.Lock()


_originals: OrderedDict[str, FetchConfig] = OrderedDict()  # settings this process pickled


def _remember_settings(key: str, config: FetchConfig) -> None:
    """Keep the settings (credentials included) of a reader this process pickles, so
    unpickling it here again (in-process dask workers) reads with the same credentials."""
    with _shared_lock:
        _originals[key] = config
        _originals.move_to_end(key)
        while len(_originals) > _SHARED_MAX * 4:
            _originals.popitem(last=False)


def _unpickle_reader(
    config: FetchConfig | None = None, transport: TransportChoice = "auto", key: str = ""
) -> RangeReader:
    """This process's reader for pickled settings: its default reader when there are none,
    else one shared reader per settings key (a small LRU, emptied after a fork)."""
    global _shared_pid
    if config is None:
        return default_reader()
    config = _originals.get(key, config)  # pickled here: the settings with their credentials
    with _shared_lock:
        if _shared_pid != os.getpid():
            _shared.clear()
            _shared_pid = os.getpid()
        reader = _shared.get(key)
        if reader is not None:
            _shared.move_to_end(key)
            return reader
    reader = RangeReader(config, transport=transport)
    reader._digest = (reader.config, reader.transport, key)
    with _shared_lock:
        reader = _shared.setdefault(key, reader)
        _shared.move_to_end(key)
        while len(_shared) > _SHARED_MAX:
            _shared.popitem(last=False)
    return reader


def _after_fork_in_child() -> None:
    global _default_lock, _shared_lock
    _default_lock = threading.Lock()
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
