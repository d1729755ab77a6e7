"""Progress reporting: a one-line indicator on stderr shown only on a terminal (no tqdm
dependency), and a thread-safe counter of a fixed total for ``progress=`` callbacks.

``progress=`` of the read surfaces (:data:`ProgressOption`): ``None`` (the default: a line
on a terminal for large reads), ``True`` (a line on a terminal), ``False`` (nothing) or a
callable ``progress(done, total)``. :func:`progress_reporter` turns it into the
``report(done, total)`` a :class:`ProgressCounter` calls. What ``None`` means can be
changed with :func:`rasteret.set_options` / :func:`rasteret.options`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from rasteret._options import default_progress

#: ``progress=`` of a read: ``None`` / ``True`` / ``False`` or ``callable(done, total)``.
ProgressOption = bool | Callable[[int, int], None] | None


def default_line(windows: int) -> bool:
    """Whether a read of ``windows`` windows without ``progress=`` shows a line (on a
    terminal): :func:`rasteret.set_options`' ``progress``, else for 64 windows or more."""
    chosen = default_progress()
    return windows >= 64 if chosen is None else chosen


class ProgressLine:
    """``desc: done/total (failed)`` rewritten in place on stderr.

    Silent unless ``enabled`` is true and stderr is a terminal; ``enabled=None`` means
    the ``progress`` option (:func:`rasteret.set_options`), by default "on a terminal".
    Updates are throttled to ~10 per second.
    """

    def __init__(self, total: int, desc: str = "indexing headers", enabled: bool | None = None):
        if enabled is None:  # the default of rasteret.set_options / options, if set
            enabled = default_progress()
        stream = sys.stderr
        is_tty = bool(getattr(stream, "isatty", lambda: False)())
        self.active = is_tty and enabled is not False and total > 0
        self.total = total
        self.desc = desc
        self.done = 0
        self.failed = 0
        self._last = 0.0

    def update(self, ok: bool = True) -> None:
        self.done += 1
        if not ok:
            self.failed += 1
        self._maybe_draw()

    def show(self, done: int) -> None:
        """Set the count to ``done`` (drawn, throttled, on a terminal)."""
        self.done = done
        self._maybe_draw()

    def _maybe_draw(self) -> None:
        now = time.monotonic()
        if self.active and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        failed = f" ({self.failed} failed)" if self.failed else ""
        sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total}{failed}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.active:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()


class ProgressCounter:
    """``done`` of a ``total`` fixed by :meth:`start`, reported to ``report(done, total)``.

    Thread-safe: :meth:`advance` may be called from any thread; ``report`` is called under
    a lock, so it sees ``done`` only increase and never past ``total``. Nothing is
    reported before :meth:`start`. :meth:`finish` ends at ``done == total`` (reporting
    ``(0, 0)`` when nothing was started, so a callback always hears the end).
    """

    def __init__(self, report: Callable[[int, int], None]) -> None:
        self._report = report
        self._lock = threading.Lock()
        self.total: int | None = None
        self.done = 0
        self._finished = False

    def start(self, total: int) -> bool:
        """Fix the total (first call only); ``False`` when it was already fixed."""
        with self._lock:
            if self.total is not None:
                return False
            self.total = max(0, int(total))
            return True

    def advance(self, n: int = 1) -> None:
        """``n`` more units done (capped at the total)."""
        with self._lock:
            if self.total is None or self._finished:
                return
            done = min(self.total, self.done + n)
            if done > self.done:
                self.done = done
                self._report(done, self.total)

    def finish(self) -> None:
        """Report the end: ``done == total`` (units never needed count as done)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self.total is None:
                self.total = 0
            if self.done < self.total or self.total == 0:
                self.done = self.total
                self._report(self.done, self.total)


def progress_reporter(
    option: ProgressOption, desc: str
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """``(report, close)`` for ``progress=option``: the callable itself, a
    :class:`ProgressLine` (``True``: on a terminal; created on the first report), or
    ``None`` (``False`` / ``None``); ``close`` ends the line."""
    if option is None or option is False:
        return None, lambda: None
    if option is True:
        lines: list[ProgressLine] = []

        def draw(done: int, total: int) -> None:
            if not lines:
                lines.append(ProgressLine(total, desc=desc, enabled=True))
            lines[0].show(done)

        return draw, lambda: lines[0].close() if lines else None
    if callable(option):
        return option, lambda: None
    raise TypeError(
        f"progress= must be True, False, None or a callable(done, total), "
        f"not {type(option).__name__}"
    )
