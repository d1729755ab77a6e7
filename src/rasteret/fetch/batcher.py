"""Per-event-loop micro-batcher: concurrent block reads of one object → one coalesced read.

``submit`` parks a read and schedules a flush with ``loop.call_soon``; the flush waits
while more reads keep arriving (at most ``batch_ticks`` loop iterations), then hands every
object's parked ranges to the reader's coalescing path in one go. With zarr issuing the
chunk gets of a request concurrently, a 20-tile read of one COG becomes one HTTP request.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Buffer, Callable, Sequence
from dataclasses import dataclass

from rasteret.fetch.model import ObjectInfo

# (url, ranges, expected) -> one result (buffer or exception) per range, in order
FetchMany = Callable[
    [str, Sequence[tuple[int, int]], ObjectInfo | None], Awaitable[list[Buffer | BaseException]]
]


@dataclass
class _Parked:
    start: int
    end: int
    future: asyncio.Future[Buffer]


class BlockBatcher:
    """Collects the block reads of one event loop and flushes them per loop tick."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fetch_many: FetchMany, ticks: int) -> None:
        self._loop_ref = weakref.ref(loop)  # the batcher lives in a dict keyed by its loop
        self._fetch_many = fetch_many
        self._max_ticks = ticks
        self._pending: dict[tuple[str, ObjectInfo | None], list[_Parked]] = {}
        self._scheduled = False
        self._ticks = 0
        self._submitted = 0
        self._seen = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(
        self, url: str, start: int, end: int, expected: ObjectInfo | None
    ) -> asyncio.Future[Buffer]:
        """Park one read; the future resolves to its bytes (or a FetchError)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Buffer] = loop.create_future()
        self._pending.setdefault((url, expected), []).append(_Parked(start, end, future))
        self._submitted += 1
        if not self._scheduled:
            self._scheduled = True
            self._ticks = 0
            self._seen = 0
            loop.call_soon(self._tick)
        return future

    def _tick(self) -> None:
        loop = self._loop_ref()
        if loop is None:
            return
        self._ticks += 1
        if self._submitted != self._seen and self._ticks < self._max_ticks:
            self._seen = self._submitted  # still growing: give stragglers one more tick
            loop.call_soon(self._tick)
            return
        batch, self._pending = self._pending, {}
        self._scheduled = False
        self._submitted = 0
        for (url, expected), parked in batch.items():
            task = loop.create_task(self._run(url, expected, parked))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, url: str, expected: ObjectInfo | None, parked: list[_Parked]) -> None:
        live = [p for p in parked if not p.future.done()]  # drop cancelled waiters
        if not live:
            return
        try:
            results = await self._fetch_many(url, [(p.start, p.end) for p in live], expected)
        except BaseException as exc:
            results = [exc] * len(live)
            if isinstance(exc, asyncio.CancelledError):
                for p in live:
                    p.future.cancel()
                raise
        for p, result in zip(live, results, strict=True):
            if p.future.done():
                continue
            if isinstance(result, BaseException):
                p.future.set_exception(result)
            else:
                p.future.set_result(result)
