"""Object metadata and the fetch layer's own error details."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rasteret.errors import FetchError, StaleIndexError


@dataclass(frozen=True)
class ObjectInfo:
    """What a store says about an object: size in bytes, ETag, last-modified (ISO 8601)."""

    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def from_meta(cls, meta: Any) -> ObjectInfo:
        """From an obstore ``ObjectMeta`` (a dict with ``size``, ``e_tag``, ``last_modified``)."""
        modified = meta.get("last_modified")
        if isinstance(modified, datetime):
            modified = modified.isoformat()
        return cls(meta.get("size"), meta.get("e_tag"), modified)


class RangeNotSatisfiableError(FetchError):
    """The requested byte range starts at or beyond the end of the object."""


def make_error(
    cls: type[FetchError], url: str, reason: str, byte_range: tuple[int, int] | None
) -> FetchError:
    """Build a FetchError (or subclass) that also keeps its bare ``reason``.

    Credentials in ``url`` and ``reason`` (signed query strings) are redacted."""
    from rasteret.fetch.secrets import redact, redact_url

    url, reason = redact_url(url), redact(reason)
    error = cls(url, reason, byte_range)
    error.reason = reason  # type: ignore[attr-defined]
    return error


def with_range(error: FetchError, byte_range: tuple[int, int]) -> FetchError:
    """The same error, re-addressed to one caller's byte range (coalesced reads)."""
    reason = getattr(error, "reason", None)
    if reason is None or error.byte_range == byte_range:
        return error
    clone = make_error(type(error), error.url, reason, byte_range)
    clone.__cause__ = error.__cause__
    return clone


def _strip_weak(etag: str) -> str:
    return etag.removeprefix("W/").strip()


def check_expected(
    url: str,
    info: ObjectInfo,
    expected: ObjectInfo | None,
    byte_range: tuple[int, int] | None,
    *,
    compare_etag: bool = True,
) -> None:
    """Raise :class:`StaleIndexError` when ``info`` contradicts what the index recorded.

    Remote objects: size and ETag. Local files (``compare_etag=False``): size and
    modification time (their ETag embeds the inode, which changes when a file is merely
    moved; a file replaced by one of the same size has a new mtime). A file copied without
    its mtime (``cp`` without ``-p``) therefore reads as changed: ``refresh()`` re-indexes
    it.
    """
    if expected is None:
        return
    if expected.size is not None and info.size is not None and expected.size != info.size:
        raise make_error(
            StaleIndexError,
            url,
            f"object is {info.size} bytes but the index recorded {expected.size}",
            byte_range,
        )
    if not compare_etag:
        if (
            expected.last_modified
            and info.last_modified
            and expected.last_modified != info.last_modified
        ):
            raise make_error(
                StaleIndexError,
                url,
                f"file was modified at {info.last_modified} but the index recorded "
                f"{expected.last_modified}",
                byte_range,
            )
        return
    if not (expected.etag and info.etag):
        return
    if _strip_weak(expected.etag) != _strip_weak(info.etag):
        raise make_error(
            StaleIndexError,
            url,
            f"object ETag is {info.etag} but the index recorded {expected.etag}",
            byte_range,
        )
