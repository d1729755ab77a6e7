"""Whether this process was forked after obstore's runtime ran in an ancestor — by
rasteret or by any other code.

obstore (Rust ``object_store`` on a Tokio runtime) cannot run in a process forked after
its runtime started: the runtime's threads do not survive ``fork``, so the first obstore
call in the child waits for them forever (a DataLoader's default ``timeout=0`` then hangs
training). :func:`runtime_inherited` tells the fetch layer so, and it reads through its
pure-Python transport there instead (:mod:`rasteret.fetch.fallback`).

``import rasteret`` imports this module, which registers a ``before`` fork hook: it
records whether the runtime runs — its worker threads (``tokio-…``) are listed in
``/proc/self/task``; where that cannot be read, an imported obstore counts as started —
and the child keeps the answer (so do its own forked children). A process forked before
rasteret was imported cannot be told: import rasteret before forking (a DataLoader's
dataset already has). Standard library only: it runs on every ``import rasteret``.
"""

from __future__ import annotations

import os
import sys

_inherited = False  # an ancestor ran obstore's runtime before forking this process
_at_fork = False  # the parent's answer, carried into the child by the fork


def runtime_running() -> bool:
    """Whether obstore's Tokio runtime has threads in this process (``True`` when
    obstore is imported and ``/proc`` cannot tell)."""
    if "obstore" not in sys.modules:
        return False
    try:
        threads = os.listdir("/proc/self/task")
    except OSError:
        return True
    for thread in threads:
        try:
            with open(f"/proc/self/task/{thread}/comm") as comm:
                if comm.read().startswith("tokio"):
                    return True
        except OSError:  # the thread ended meanwhile
            continue
    return False


def runtime_inherited() -> bool:
    """True in a process forked (directly or not) from one where obstore's runtime ran:
    obstore would hang here."""
    return _inherited


def _before_fork() -> None:
    global _at_fork
    _at_fork = _inherited or runtime_running()


def _after_fork_in_child() -> None:
    global _inherited
    _inherited = _at_fork


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
