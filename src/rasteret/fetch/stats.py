"""Process-wide fetch counters and ``track()`` for the deltas of a block of code."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Counts:
    """A snapshot of the counters."""

    requests: int = 0
    bytes: int = 0
    retries: int = 0
    errors: int = 0

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.requests - other.requests,
            self.bytes - other.bytes,
            self.retries - other.retries,
            self.errors - other.errors,
        )


class FetchStats:
    """Thread-safe counters: requests issued, body bytes received, retries, final errors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes = 0
        self._retries = 0
        self._errors = 0

    def add_request(self) -> None:
        """One request sent (counted whether or not it succeeds)."""
        with self._lock:
            self._requests += 1

    def add_bytes(self, nbytes: int) -> None:
        """Body bytes received."""
        with self._lock:
            self._bytes += nbytes

    def add_retry(self) -> None:
        with self._lock:
            self._retries += 1

    def add_error(self) -> None:
        with self._lock:
            self._errors += 1

    def snapshot(self) -> Counts:
        with self._lock:
            return Counts(self._requests, self._bytes, self._retries, self._errors)

    def reset(self) -> None:
        with self._lock:
            self._requests = self._bytes = self._retries = self._errors = 0

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    @property
    def requests(self) -> int:
        return self.snapshot().requests

    @property
    def bytes(self) -> int:
        return self.snapshot().bytes

    @property
    def retries(self) -> int:
        return self.snapshot().retries

    @property
    def errors(self) -> int:
        return self.snapshot().errors


STATS = FetchStats()


class Tracker:
    """Counter deltas since the tracker started (live inside the block, frozen after it)."""

    def __init__(self, stats: FetchStats = STATS) -> None:
        self._stats = stats
        self._start = stats.snapshot()
        self._final: Counts | None = None

    def _delta(self) -> Counts:
        return self._final if self._final is not None else self._stats.snapshot() - self._start

    def stop(self) -> Counts:
        if self._final is None:
            self._final = self._stats.snapshot() - self._start
        return self._final

    @property
    def requests(self) -> int:
        return self._delta().requests

    @property
    def bytes(self) -> int:
        return self._delta().bytes

    @property
    def retries(self) -> int:
        return self._delta().retries

    @property
    def errors(self) -> int:
        return self._delta().errors

    def __repr__(self) -> str:
        d = self._delta()
        return (
            f"Tracker(requests={d.requests}, bytes={d.bytes}, "
            f"retries={d.retries}, errors={d.errors})"
        )


@contextmanager
def track() -> Iterator[Tracker]:
    """``with track() as t: ...`` then ``t.requests``, ``t.bytes``, ``t.retries``, ``t.errors``.

    Counters are process-wide: reads made by other threads during the block count too.
    """
    tracker = Tracker(STATS)
    try:
        yield tracker
    finally:
        tracker.stop()


def snapshot() -> Counts:
    """The global counters now."""
    return STATS.snapshot()
