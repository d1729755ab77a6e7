"""Run a coroutine from synchronous code, also where an event loop already runs (Jupyter)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any


def run_sync[T](coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` when this thread runs no event loop; otherwise run it on a
    fresh loop in a worker thread and wait (blocking the caller, not deadlocking it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[T] = []
    error: list[BaseException] = []
    context = contextvars.copy_context()

    def worker() -> None:
        try:
            result.append(context.run(asyncio.run, coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=worker, name="rasteret-run-sync", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
