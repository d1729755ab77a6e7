"""A counting limiter for one event loop that holds no reference to the loop.

``asyncio.Semaphore`` binds itself to its loop; kept in a ``WeakKeyDictionary`` keyed by
that loop it would keep every loop (one per ``asyncio.run``) alive forever.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class Limiter:
    """At most ``limit`` holders at once; waiters are served first come, first served."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_use(self) -> int:
        return self.limit - self._free

    async def __aenter__(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future  # resolved by _release, which hands its slot over
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the slot arrived together with the cancellation
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
