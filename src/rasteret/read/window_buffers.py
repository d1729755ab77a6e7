"""Buffers for the source windows one read warps and drops, reused within the read.

A read onto a target grid decodes each record's source window into a buffer, warps it
onto the grid and drops it. Allocated one by one, every window lands in freshly mapped
memory (numpy maps arrays of 4 MiB and more anew, as huge pages) and pays its page
faults and the kernel's zeroing again; :class:`WindowBuffers` hands a window a buffer
some earlier window of the same read gave back (the smallest free one large enough),
so a read touches about as much memory as its windows in progress at once, not all of
them. Sizes are rounded up (to 2 MiB, or 64 KiB below that) so windows of slightly
different shapes share buffers. The buffers go with the read (its ``WindowBuffers``
is dropped at the end).

Only arrays that nothing refers to once given back may come from here: ``give`` is
the caller's promise.
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np

#: Sizes of buffers from this size on are multiples of it (one huge page) ...
GRANULE = 2 * 2**20
#: ... and of this below it.
SMALL_GRANULE = 64 * 2**10


class WindowBuffers:
    """A pool of byte buffers, safe to use from several threads."""

    def __init__(self) -> None:
        self._free: list[np.ndarray] = []
        # id -> buffer, for the buffers this pool allocated that are still alive
        self._ours: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()
        self.allocated = 0  # bytes allocated (not reused)

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised writable array of ``shape`` and ``dtype``."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        with self._lock:
            fits = [i for i, b in enumerate(self._free) if b.nbytes >= nbytes]
            if fits:
                buffer = self._free.pop(min(fits, key=lambda i: self._free[i].nbytes))
            else:
                step = GRANULE if nbytes >= GRANULE else SMALL_GRANULE
                size = max(step, -(-nbytes // step) * step)
                buffer = np.empty(size, dtype=np.uint8)
                self._ours[id(buffer)] = buffer
                self.allocated += size
        return buffer[:nbytes].view(dtype).reshape(shape)

    def give(self, array: np.ndarray) -> None:
        """Return the buffer under ``array`` (from :meth:`take`) for reuse; anything
        else is ignored."""
        root = array
        while isinstance(root.base, np.ndarray):
            root = root.base
        with self._lock:
            if self._ours.get(id(root)) is root and not any(root is b for b in self._free):
                self._free.append(root)
