"""Concurrent TIFF header indexing: URLs → parsed headers or per-file errors.

Every file costs one prefix request (``prefetch`` bytes, which also returns the object's
size / ETag, so no extra HEAD) plus, only when the header does not fit in the prefix,
the further range reads the parser asks for. A bad file (missing, truncated, not a TIFF,
unsupported feature, network failure) yields a :class:`HeaderResult` carrying an error
message that names the file and the cause; it never aborts the other files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rasteret._async import run_sync
from rasteret._progress import ProgressLine
from rasteret.errors import FetchError, TiffError
from rasteret.tiff.model import TiffHeader

if TYPE_CHECKING:
    from rasteret.fetch import ObjectInfo, RangeReader


@dataclass(frozen=True, slots=True)
class HeaderResult:
    """The outcome of indexing one file: a header (+ object info) or an error."""

    url: str
    header: TiffHeader | None = None
    info: ObjectInfo | None = None
    error: str | None = None  # names the file and the cause
    error_type: str | None = None  # class name of the exception, e.g. "CorruptTiffError"
    requests: int = 0  # range requests this file took

    @property
    def ok(self) -> bool:
        return self.header is not None


def describe_error(url: str, exc: BaseException) -> str:
    """A one-line message naming ``url`` and the cause of ``exc`` (credentials in query
    strings redacted: :func:`~rasteret.fetch.secrets.redact`)."""
    from rasteret.fetch.secrets import redact, redact_url

    message = str(exc).strip() or repr(exc)
    named = url in message or redact_url(url) in message  # fetch errors name it redacted
    if not isinstance(exc, TiffError | FetchError) or not named:
        message = f"{url}: {message}"
    return redact(f"{type(exc).__name__}: {message}")


async def _index_one(reader: RangeReader, url: str, prefetch: int) -> HeaderResult:
    from rasteret.tiff.header import read_header

    fetch = reader.header_fetch(url, prefetch=prefetch)
    try:
        header = await read_header(fetch, url, prefetch=prefetch)
    except Exception as exc:  # one bad file must never abort the others
        return HeaderResult(
            url,
            info=fetch.info,
            error=describe_error(url, exc),
            error_type=type(exc).__name__,
            requests=fetch.requests,
        )
    return HeaderResult(url, header=header, info=fetch.info, requests=fetch.requests)


async def index_headers_async(
    urls: Iterable[str],
    *,
    reader: RangeReader | None = None,
    concurrency: int = 64,
    prefetch: int = 65536,
    progress: bool | None = None,
) -> dict[str, HeaderResult]:
    """Parse the TIFF header of every distinct URL, at most ``concurrency`` at a time,
    reading through ``reader`` (default: :func:`~rasteret.fetch.default_reader`, once).

    Returns ``{url: HeaderResult}`` in first-seen order. ``progress=None`` shows a progress
    line on stderr only when it is a terminal; ``False`` never shows it.
    """
    unique = list(dict.fromkeys(str(u) for u in urls))
    if not unique:
        return {}
    if reader is None:
        from rasteret.fetch import default_reader

        reader = default_reader()
    results: dict[str, HeaderResult] = {}
    bar = ProgressLine(len(unique), enabled=progress)
    pending = iter(unique)

    async def worker() -> None:
        for url in pending:  # the shared iterator hands each URL to one worker
            result = await _index_one(reader, url, prefetch)
            results[url] = result
            bar.update(result.ok)

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(unique))))))
    finally:
        bar.close()
    return {url: results[url] for url in unique}


def index_headers(
    urls: Iterable[str],
    *,
    reader: RangeReader | None = None,
    concurrency: int = 64,
    prefetch: int = 65536,
    progress: bool | None = None,
) -> dict[str, HeaderResult]:
    """Synchronous form of :func:`index_headers_async` (safe inside a running event loop)."""
    return run_sync(
        index_headers_async(
            urls, reader=reader, concurrency=concurrency, prefetch=prefetch, progress=progress
        )
    )
