"""Replacing a local collection export atomically, and reading across the replacement.

An export is written beside its target as ``.{name}.tmp-<id>`` and then swapped in: a
file by ``os.replace``; a directory by renaming the previous export to
``.{name}.old-<id>``, renaming the new one into place and removing the old
(:func:`replace_directory`; a directory holding anything but an export is never
replaced). Around that:

* :func:`open_across_swaps` opens the old or the new export, never half of each and
  never nothing in between: an open that fails while a swap runs (or has just ended), or
  whose files changed while it read them, is tried again, briefly;
* :func:`clean_leftovers` removes the copies an export killed mid-way (``kill -9``) left
  behind, once they are older than :data:`LEFTOVER_AGE`.
"""

from __future__ import annotations

import glob
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

#: Files a hive-partitioned export may hold besides its ``.parquet`` parts.
SIDECAR_FILES = frozenset({"_metadata", "_common_metadata", "_SUCCESS"})
#: Seconds after which a sibling copy is a leftover of a killed export (a live export
#: renames its copies within a write).
LEFTOVER_AGE = 60.0
#: How often :func:`open_across_swaps` tries a collection an export is swapping.
SWAP_ATTEMPTS = 40


def temporary_sibling(target: Path) -> Path:
    """A fresh ``.{name}.tmp-<id>`` path beside ``target`` to write an export into."""
    return _sibling(target, "tmp")


def replace_directory(target: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` a new export beside ``target``, then swap it in (a previous
    export is renamed away and removed; anything else at ``target`` is refused)."""
    if target.exists() and not is_replaceable(target):
        raise FileExistsError(
            f"{target} exists and holds files that are not a rasteret collection export; "
            "refusing to replace it (choose an empty or new directory)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary, previous = _sibling(target, "tmp"), _sibling(target, "old")
    try:
        write(temporary)
        if target.exists():
            os.rename(target, previous)
        os.rename(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)


def is_replaceable(directory: Path) -> bool:
    """Whether ``directory`` is empty or holds only a previous export (hive dirs + parquet)."""
    if not directory.is_dir():
        return False
    for root, _dirs, files in os.walk(directory):
        relative = Path(root).relative_to(directory)
        if any("=" not in part for part in relative.parts):
            return False
        for name in files:
            if not (name.endswith(".parquet") or name in SIDECAR_FILES):
                return False
    return True


def clean_leftovers(target: Path) -> list[Path]:
    """Remove the temporary / previous copies an export killed mid-way left beside
    ``target``, older than :data:`LEFTOVER_AGE`; returns what was removed."""
    removed = []
    now = time.time()
    for path in _siblings(target):
        try:
            if now - path.lstat().st_mtime < LEFTOVER_AGE:
                continue  # maybe another export's, in progress
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        except OSError:
            continue
    return removed


def open_across_swaps[T](
    target: Path,
    open_once: Callable[[], T],
    unchanged: Callable[[T], bool],
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """``open_once()`` of the export at ``target``, tried again (at most
    :data:`SWAP_ATTEMPTS` times) when it raises one of ``retry_on`` while the path is
    there or being swapped — a swap may have started, or ended, while it listed and read
    the files — or when ``unchanged(opened)`` says the files changed meanwhile."""
    target = target.absolute()
    for attempt in range(SWAP_ATTEMPTS):
        last = attempt == SWAP_ATTEMPTS - 1
        try:
            opened = open_once()
        except retry_on:
            if last or not (target.exists() or _siblings(target)):
                raise
        else:
            if last or unchanged(opened):
                return opened
        time.sleep(min(0.05, 0.002 * (attempt + 1)))
    raise AssertionError("unreachable")


def _sibling(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex[:8]}")


def _siblings(target: Path) -> list[Path]:
    """The ``.{name}.tmp-*`` / ``.{name}.old-*`` copies beside ``target``."""
    name = glob.escape(target.name)
    return [p for kind in ("tmp", "old") for p in target.parent.glob(f".{name}.{kind}-*")]
