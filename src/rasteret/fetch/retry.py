"""Failure classification and the bounded retry loop (exponential backoff with jitter).

Every failure leaves as a typed :class:`~rasteret.errors.FetchError` whose message is
redacted (:mod:`rasteret.fetch.secrets`) and which carries no ``__cause__`` /
``__context__``: the transport's own exception (whose text and debug dump hold the
signed URL as requested) is summarised in the message, never chained, so
``traceback.format_exception`` and ``logging.exception`` print no credential.
"""

from __future__ import annotations

import asyncio
import http.client
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from rasteret.errors import FetchError, ObjectNotFoundError, StaleIndexError
from rasteret.fetch.config import FetchConfig
from rasteret.fetch.model import RangeNotSatisfiableError, make_error
from rasteret.fetch.stats import STATS

T = TypeVar("T")
FailureKind = Literal["transient", "permanent", "not_found", "stale", "range"]
_STATUS = re.compile(r"status code: (\d{3})")
_RETRYABLE_4XX = frozenset({408, 425, 429})


class TransportFailure(Exception):
    """A failure a transport already classified (short body, HTTP status, bad range...)."""

    def __init__(self, message: str, kind: FailureKind = "transient") -> None:
        super().__init__(message)
        self.kind: FailureKind = kind


def status_kind(status: int) -> FailureKind:
    """How an HTTP error status is treated."""
    if status == 404:
        return "not_found"
    if status == 412:
        return "stale"
    if status == 416:
        return "range"
    if status >= 500 or status in _RETRYABLE_4XX:
        return "transient"
    return "permanent"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str


def _short_message(exc: BaseException) -> str:
    text = str(exc).split("\n\nDebug source", 1)[0].strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:500]


def classify(exc: BaseException, local: bool) -> Failure:
    """Map any exception from a transport to a :class:`Failure`."""
    message = _short_message(exc)
    if isinstance(exc, TransportFailure):
        return Failure(exc.kind, message)
    if isinstance(exc, FileNotFoundError):
        return Failure("not_found", message)
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    if module.startswith("obstore"):
        if name in ("PreconditionError", "NotModifiedError"):
            return Failure("stale", message)
        if name in ("PermissionDeniedError", "UnauthenticatedError", "InvalidPathError"):
            return Failure("permanent", message)
        if name in ("NotSupportedError", "UnknownConfigurationKeyError", "AlreadyExistsError"):
            return Failure("permanent", message)
        match = _STATUS.search(str(exc))
        if match:
            return Failure(status_kind(int(match.group(1))), message)
        if "Requested range was invalid" in str(exc) or "range not satisfiable" in message:
            return Failure("range", message)
        return Failure("permanent" if local else "transient", message)
    if isinstance(exc, IsADirectoryError | PermissionError | NotADirectoryError):
        return Failure("permanent", message)
    if isinstance(exc, TimeoutError | ConnectionError | http.client.HTTPException):
        return Failure("transient", message)
    if isinstance(exc, OSError):
        return Failure("permanent" if local else "transient", message)
    return Failure("permanent", f"{type(exc).__name__}: {message}")


_ERROR_TYPES: dict[FailureKind, type[FetchError]] = {
    "not_found": ObjectNotFoundError,
    "stale": StaleIndexError,
    "range": RangeNotSatisfiableError,
}


def backoff_delay(config: FetchConfig, attempt: int) -> float:
    """Full-jitter exponential backoff for retry number ``attempt`` (0-based)."""
    ceiling = min(config.backoff_max, config.backoff_initial * (2**attempt))
    return random.uniform(ceiling / 2, ceiling)


async def with_retries[T](
    operation: Callable[[], Awaitable[T]],
    *,
    url: str,
    byte_range: tuple[int, int] | None,
    config: FetchConfig,
    local: bool,
) -> T:
    """Run ``operation``; retry transient failures; raise a typed :class:`FetchError`."""
    deadline = time.monotonic() + config.retry_deadline
    attempt = 0
    while True:
        try:
            return await operation()
        except FetchError:
            STATS.add_error()
            raise
        except Exception as exc:
            failure = classify(exc, local)
            if failure.kind == "transient" and attempt < config.max_retries:
                delay = backoff_delay(config, attempt)
                if time.monotonic() + delay < deadline:
                    attempt += 1
                    STATS.add_retry()
                    await asyncio.sleep(delay)
                    continue
            STATS.add_error()
            error = fetch_error(failure, url, byte_range, attempt + 1)
        raise error  # outside the handler: no chained transport exception


def fetch_error(
    failure: Failure, url: str, byte_range: tuple[int, int] | None, attempts: int = 1
) -> FetchError:
    """The typed, redacted error for a classified failure (no chained cause)."""
    reason = failure.message
    if attempts > 1:
        reason += f" (gave up after {attempts} attempts)"
    return make_error(_ERROR_TYPES.get(failure.kind, FetchError), url, reason, byte_range)


def as_fetch_error(
    exc: BaseException, url: str, *, local: bool, byte_range: tuple[int, int] | None = None
) -> FetchError:
    """Any exception of a transport call made without retries (writes, deletes, listings)
    as the typed, redacted error :func:`with_retries` would raise; raise it outside the
    ``except`` block so the original is not chained as ``__context__``."""
    if isinstance(exc, FetchError):
        return scrubbed(exc)
    return fetch_error(classify(exc, local), url, byte_range)


def scrubbed(error: FetchError) -> FetchError:
    """``error`` without a chained cause or context (its message is already redacted)."""
    error.__cause__ = None
    error.__context__ = None
    error.__suppress_context__ = True
    return error
