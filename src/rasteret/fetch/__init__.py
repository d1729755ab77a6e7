"""The fetch layer: URL → obstore store, range reads with coalescing, retries and counters.

Every byte rasteret reads goes through :class:`RangeReader` (usually
:func:`default_reader`). Nothing here touches obstore at import time, and a forked child
gets fresh state (see :mod:`rasteret.fetch.stores` for why obstore itself is avoided
there).

    reader = default_reader()
    data, info = await reader.read_prefix(url, 65536)      # one request, size + ETag too
    tile = await reader.read_block(url, offset, offset + n)  # coalesced with its neighbours
    with track() as t:
        ...
    t.requests, t.bytes

Settings (coalescing gap, requests in flight, retries, timeouts, and per-bucket store
options: credentials, requester-pays, region, endpoint, signing) live in one place, a
:class:`FetchConfig`: pass ``RangeReader(config)`` to what reads (e.g.
``open_store(..., reader=...)``), or set the fallback with :func:`configure` (see
``docs/cloud.md``). A reader pickles as its settings, never as a change to the
unpickling process's defaults.
"""

from __future__ import annotations

from rasteret.errors import FetchError, ObjectNotFoundError, StaleIndexError
from rasteret.fetch.config import FetchConfig
from rasteret.fetch.model import ObjectInfo, RangeNotSatisfiableError
from rasteret.fetch.options import StoreOptions
from rasteret.fetch.reader import (
    HeaderFetcher,
    RangeReader,
    configure,
    default_reader,
    merge_ranges,
)
from rasteret.fetch.routing import Route, route
from rasteret.fetch.secrets import redact, strip_credentials
from rasteret.fetch.stats import STATS, Counts, Tracker, snapshot, track
from rasteret.fetch.stores import register_store, unregister_store

stats = STATS

__all__ = [
    "STATS",
    "Counts",
    "FetchConfig",
    "FetchError",
    "HeaderFetcher",
    "ObjectInfo",
    "ObjectNotFoundError",
    "RangeNotSatisfiableError",
    "RangeReader",
    "Route",
    "StaleIndexError",
    "StoreOptions",
    "Tracker",
    "configure",
    "default_reader",
    "merge_ranges",
    "redact",
    "register_store",
    "route",
    "snapshot",
    "stats",
    "strip_credentials",
    "track",
    "unregister_store",
]
