"""How many compressed bytes an event loop may hold fetched but not yet decoded.

A read whose decode is slower than its fetch (two cores inflating what a fast store
delivers) would otherwise receive every byte it asked for long before it decodes them:
hundreds of MB held at once, each buffer in freshly mapped memory — and first-touched
memory is what a process pays for in page faults (5–15 µs each on the benchmark VM).
:func:`loop_backlog` gives each event loop one :class:`ByteBacklog` that every read on
that loop shares; a read holds a part's bytes from before its request is sent until
the part is decoded, so at most :data:`BACKLOG_BYTES_PER_CORE` × cores (64 MiB on two
cores) are in flight or waiting for a decoder, and freed buffers are reused by the next
parts (measured on the cold-start scenarios, alternating with the code before: 35–40 %
fewer page faults, peak memory 20–45 % lower, cross-CRS 10–20 % faster; the other
scenarios' times unchanged within the VM's spread).

The bound is above what keeps a store busy (decode rate × first-byte latency: about
30 MB at 100 ms on two cores), so reads that wait on the network do not wait on it.
A part larger than the bound is let through alone.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

#: Compressed bytes an event loop holds fetched (or in flight) but not yet decoded, per
#: core (the decode pool runs one thread per core, at least two).
BACKLOG_BYTES_PER_CORE = 32 * 2**20


class ByteBacklog:
    """At most ``limit`` bytes held at once; waiters are served first come, first
    served (a large part is not overtaken forever by small ones). Holds no reference
    to its event loop."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.held = 0
        self.peak = 0  # the most bytes held at once
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def hold(self, nbytes: int) -> AsyncIterator[None]:
        """Hold ``nbytes`` for the body of the ``async with`` (alone if above the limit)."""
        nbytes = max(0, int(nbytes))
        if not self._waiters and self._fits(nbytes):
            self._take(nbytes)
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((nbytes, future))
            try:
                await future  # resolved by _release, which counts the bytes as held
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release(nbytes)  # the bytes arrived with the cancellation
                raise
        try:
            yield
        finally:
            self._release(nbytes)

    def _take(self, nbytes: int) -> None:
        self.held += nbytes
        self.peak = max(self.peak, self.held)

    def _fits(self, nbytes: int) -> bool:
        return self.held == 0 or self.held + nbytes <= self.limit

    def _release(self, nbytes: int) -> None:
        self.held -= nbytes
        while self._waiters:
            nbytes, future = self._waiters[0]
            if future.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            if not self._fits(nbytes):
                return
            self._waiters.popleft()
            self._take(nbytes)
            future.set_result(None)


_backlogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ByteBacklog] = (
    weakref.WeakKeyDictionary()
)


def loop_backlog() -> ByteBacklog:
    """The running event loop's backlog (created on first use, dropped with the loop)."""
    loop = asyncio.get_running_loop()
    found = _backlogs.get(loop)
    if found is None:
        cores = max(2, os.cpu_count() or 2)
        found = _backlogs[loop] = ByteBacklog(BACKLOG_BYTES_PER_CORE * cores)
    return found
