"""Progress lines are drawn on a terminal and silent otherwise."""

from __future__ import annotations

import io
import os
import pty
import sys

import pytest

from rasteret._progress import ProgressLine


def _run(bar_total: int) -> None:
    bar = ProgressLine(bar_total, desc="reading windows")
    for i in range(bar_total):
        bar.update(ok=i != 1)
    bar.close()


def test_progress_is_drawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        _run(3)
    chunks = []
    while True:  # everything written before the slave closed (one read may return less)
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the slave side is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    shown = b"".join(chunks).decode()
    assert "reading windows: 3/3 (1 failed)" in shown


def test_progress_is_silent_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    _run(3)
    assert pipe.getvalue() == ""
