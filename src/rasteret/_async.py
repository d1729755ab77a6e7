"""Run coroutines from synchronous code on one persistent per-process event loop.

One loop for the life of the process (a daemon thread, rebuilt after ``fork``) keeps the
fetch layer's per-loop state (micro-batcher, limiter) and the loop's decode thread pool
alive between calls, instead of creating and tearing them down for every read (measured:
10–20 ms per call saved for small windows). Works where an event loop already runs in the
calling thread (Jupyter): the caller blocks, the work runs on the read loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any

_loop: asyncio.AbstractEventLoop | None = None
_loop_thread: threading.Thread | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


def _read_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_thread, _loop_pid
    loop = _loop
    if loop is not None and _loop_pid == os.getpid():
        return loop
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            _loop_thread = threading.Thread(
                target=_loop.run_forever, name="rasteret-read-loop", daemon=True
            )
            _loop_thread.start()
        return _loop


def run_sync[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on this process's read loop and wait for its result.

    Called from the read loop's own thread (sync code inside a coroutine), it runs the
    coroutine on a fresh loop in a worker thread instead of deadlocking.
    """
    if _loop_thread is not None and threading.current_thread() is _loop_thread:
        return _run_in_new_thread(coro)
    return asyncio.run_coroutine_threadsafe(coro, _read_loop()).result()


def _run_in_new_thread[T](coro: Coroutine[Any, Any, T]) -> T:
    result: list[T] = []
    error: list[BaseException] = []

    def worker() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=worker, name="rasteret-run-sync", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _after_fork_in_child() -> None:
    global _loop_lock, _loop, _loop_thread
    _loop_lock = threading.Lock()
    _loop = None  # the parent's loop thread does not exist in the child
    _loop_thread = None


os.register_at_fork(after_in_child=_after_fork_in_child)
