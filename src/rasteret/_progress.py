"""A one-line progress indicator on stderr, shown only on a terminal (no tqdm dependency)."""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """``desc: done/total (failed)`` rewritten in place on stderr.

    Silent unless ``enabled`` is true and stderr is a terminal; ``enabled=None`` means
    "on a terminal". Updates are throttled to ~10 per second.
    """

    def __init__(self, total: int, desc: str = "indexing headers", enabled: bool | None = None):
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
