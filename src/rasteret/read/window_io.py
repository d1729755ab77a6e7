"""I/O of :func:`rasteret.read.window.read_window`: one batch of windows through the
store (run with :func:`rasteret._async.run_sync` on the persistent read loop)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rasteret.geo.window import Window
from rasteret.read.radiometry import valid_mask
from rasteret.read.stacks import BandSource, StoreIndex, WindowRequest, read_windows_async
from rasteret.store.window_read import Allocate


def source_requests(reads: Sequence[tuple[BandSource, Window]]) -> list[WindowRequest]:
    """The store windows of each (source, window): its data, then its internal mask."""
    requests: list[WindowRequest] = []
    for src, w in reads:
        requests.append(WindowRequest(src.path, src.t, w))
        if src.mask_array is not None:
            path = f"{src.group}/{src.mask_array}"
            requests.append(WindowRequest(path, src.t, w))
    return requests


async def read_sources(
    index: StoreIndex,
    reads: Sequence[tuple[BandSource, Window]],
    *,
    with_valid: bool = True,
    outputs: Sequence[np.ndarray | None] | None = None,
    allocate: Allocate | None = None,
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``(data [1, h, w], valid [1, h, w])`` of each (source, window), all in one batch
    through the store (data and internal-mask windows together). ``with_valid=False``
    leaves ``valid`` ``None`` for sources without an internal mask (their validity is a
    function of each value: the caller derives it where it needs it). ``outputs`` may
    give, per read, the ``(h, w)`` array of the source's dtype to decode into (``data``
    is then a view of it); the others are taken from ``allocate(shape, dtype)`` if given."""
    requests = source_requests(reads)
    targets: list[np.ndarray | None] | None = None
    if outputs is not None:
        targets = []
        for (src, _), given in zip(reads, outputs, strict=True):
            targets.append(given)
            if src.mask_array is not None:
                targets.append(None)
    arrays = (
        await read_windows_async(index, requests, targets, allocate=allocate) if requests else []
    )
    out: list[tuple[np.ndarray, np.ndarray | None]] = []
    at = 0
    for src, _ in reads:
        values = arrays[at]
        internal = arrays[at + 1] if src.mask_array is not None else None
        at += 1 if internal is None else 2
        if internal is None and not with_valid:
            out.append((values[None], None))
            continue
        out.append((values[None], valid_mask(values, src.nodata, internal)[None]))
    return out
