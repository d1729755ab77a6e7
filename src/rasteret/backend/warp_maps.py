"""The nearest-neighbour index maps of one dataset on a target grid, shared by its bands.

Every band of ``xr.open_dataset(..., engine="rasteret", grid=...)`` warps the same
records from the same source grids onto the same target windows, so the map of a
(source grid, target window, source crop) — :func:`rasteret.geo.nearest.nearest_index`, a
projection of every target pixel, the costliest step of a cross-CRS read after the
decode — is computed once per dataset, not once per band: concurrent chunks that need
the same map wait for the one computing it. The cache is bounded (:data:`MAP_CACHE_BYTES`,
least recently used first out; a larger map is used but not kept) and is not pickled: a
dask worker starts with an empty one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from rasteret.geo.grid import GridSpec
from rasteret.geo.nearest import NearestIndex, nearest_index
from rasteret.geo.window import Window

#: Bytes of index maps one dataset keeps (index, inside and coordinates of each map).
MAP_CACHE_BYTES = 512 * 2**20


class WarpMaps:
    """A bounded, thread-safe cache of :class:`~rasteret.geo.nearest.NearestIndex` maps."""

    def __init__(self, limit_bytes: int = MAP_CACHE_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self._maps: OrderedDict[tuple[Any, ...], tuple[NearestIndex, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._computing: dict[tuple[Any, ...], threading.Lock] = {}

    def __reduce__(self) -> tuple[Any, ...]:  # a fresh, empty cache where unpickled
        return (WarpMaps, (self.limit_bytes,))

    def __len__(self) -> int:
        return len(self._maps)

    def nearest(
        self, source: GridSpec, target: GridSpec, window: Window, crop: Window
    ) -> NearestIndex:
        """:func:`~rasteret.geo.nearest.nearest_index` of ``window`` (target pixels) into
        ``crop`` (pixels of ``source``), computed once while kept."""
        key = (source, target, window, crop)
        with self._lock:
            found = self._hit(key)
            if found is not None:
                return found
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:  # one thread computes a map, the others wait for it
            with self._lock:
                found = self._hit(key)
            if found is not None:
                return found
            try:
                found = nearest_index(source, target, window, crop)
                with self._lock:
                    self._keep(key, found)
            finally:
                with self._lock:
                    self._computing.pop(key, None)
        return found

    def _hit(self, key: tuple[Any, ...]) -> NearestIndex | None:
        entry = self._maps.get(key)
        if entry is None:
            return None
        self._maps.move_to_end(key)
        return entry[0]

    def _keep(self, key: tuple[Any, ...], found: NearestIndex) -> None:
        size = sum(a.nbytes for a in (found.index, found.inside, found.sx, found.sy))
        if size > self.limit_bytes or key in self._maps:
            return
        self._maps[key] = (found, size)
        self._bytes += size
        while self._bytes > self.limit_bytes:
            _, (_, dropped) = self._maps.popitem(last=False)
            self._bytes -= dropped
