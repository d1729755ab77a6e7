"""Read plans: the range requests a read of store arrays makes, from the layout alone.

A :class:`ReadPlan` lists, per object, the merged byte ranges a read will request (no
network, no header: the tile tables are in the layout). Tiles of one object are merged
when at most the coalescing gap apart (:meth:`RangeReader.coalesce_gap`), as the fetch
layer does when they are requested in one batch; sparse tiles (byte count 0) are filled,
never fetched.

* :func:`plan_arrays` — every record's tiles of some arrays under a pixel window (what
  :func:`rasteret.read.explain.explain` and the xarray engine plan);
* :func:`plan_windows` — exactly the tiles of a batch of
  :class:`~rasteret.store.window_read.ArrayWindow` requests (what a read surface is about
  to fetch).

The read byte budget (:mod:`rasteret.store.budget`) is checked against these plans, and
:meth:`ReadPlan.estimate` turns one into seconds at a given latency
(:mod:`rasteret.store.cost`).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rasteret.fetch import RangeReader, merge_ranges
from rasteret.fetch.secrets import redact_url
from rasteret.geo.window import Window
from rasteret.store.cost import DEFAULT_BANDWIDTH, CostEstimate, estimate_cost

if TYPE_CHECKING:
    from rasteret.store.layout import ArrayLayout, StoreLayout, TileSource
    from rasteret.store.window_read import ArrayWindow


@dataclass(frozen=True)
class ObjectPlan:
    """The requests one object gets: merged ``(start, end)`` byte ranges (end exclusive).
    ``href`` is redacted (:func:`~rasteret.fetch.secrets.redact_url`)."""

    href: str
    ranges: tuple[tuple[int, int], ...]
    tiles: int
    tile_bytes: int

    @property
    def requests(self) -> int:
        return len(self.ranges)

    @property
    def bytes(self) -> int:
        return sum(end - start for start, end in self.ranges)


@dataclass(frozen=True)
class ReadPlan:
    """The dry run of a read: per object, the range requests it will cost."""

    objects: tuple[ObjectPlan, ...]
    groups: tuple[str, ...]
    sparse_tiles: int = 0  # tiles in the read that are absent (filled, never fetched)
    window: Window | None = None
    notes: tuple[str, ...] = field(default=())
    #: ``(compression code, decoded bytes)`` of the fetched tiles, per compression.
    decoded: tuple[tuple[int, int], ...] = field(default=())
    #: Requests the fetch layer keeps in flight (``FetchConfig.max_in_flight``).
    in_flight: int = 64

    @property
    def requests(self) -> int:
        """Range requests (after coalescing)."""
        return sum(o.requests for o in self.objects)

    @property
    def bytes(self) -> int:
        """Bytes requested, gaps merged into requests included."""
        return sum(o.bytes for o in self.objects)

    @property
    def tile_bytes(self) -> int:
        """Bytes of the tiles themselves (the lower bound of :attr:`bytes`)."""
        return sum(o.tile_bytes for o in self.objects)

    @property
    def tiles(self) -> int:
        """Tiles fetched (also the request count without any coalescing)."""
        return sum(o.tiles for o in self.objects)

    @property
    def decoded_bytes(self) -> int:
        """Bytes of the decoded tiles (what decode costs, before any crop)."""
        return sum(count for _, count in self.decoded)

    def estimate(
        self,
        latency: float = 0.03,
        *,
        bandwidth: float = DEFAULT_BANDWIDTH,
        in_flight: int | None = None,
        cores: int | None = None,
    ) -> CostEstimate:
        """Seconds this read should take at ``latency`` (first-byte seconds per request),
        ``bandwidth`` (bytes / s) and ``in_flight`` concurrent requests (default: the
        reader's ``max_in_flight``) on ``cores`` (default: this machine's); the model is in
        :mod:`rasteret.store.cost`."""
        return estimate_cost(
            self.requests,
            self.bytes,
            dict(self.decoded),
            latency=latency,
            in_flight=self.in_flight if in_flight is None else in_flight,
            bandwidth=bandwidth,
            cores=cores,
        )

    def __str__(self) -> str:
        where = ""
        if self.window is not None:
            rows, cols = self.window.ranges
            where = f" window rows {rows} cols {cols}"
        lines = [
            f"read plan{where}: {len(self.objects)} object(s), {self.requests} request(s), "
            f"{self.bytes:,} bytes ({self.tile_bytes:,} in {self.tiles} tile(s)); "
            f"{self.sparse_tiles} sparse tile(s) filled; 0 header reads",
        ]
        for plan in self.objects[:10]:
            lines.append(
                f"  {plan.href}: {plan.requests} request(s), {plan.bytes:,} bytes, "
                f"{plan.tiles} tile(s)"
            )
        if len(self.objects) > 10:
            lines.append(f"  ... {len(self.objects) - 10} more object(s)")
        lines.extend(f"  note: {n}" for n in self.notes)
        lines.append(f"  estimate: {self.estimate()}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [
            ("objects", f"{len(self.objects):,}"),
            ("range requests", f"{self.requests:,} (0 header reads)"),
            ("bytes", f"{self.bytes:,} ({self.tile_bytes:,} in {self.tiles:,} tiles)"),
            ("decoded", f"{self.decoded_bytes:,} bytes"),
            ("sparse tiles", f"{self.sparse_tiles:,} (filled, not fetched)"),
        ]
        rows += [(f"at {ms} ms", str(self.estimate(ms / 1000))) for ms in (0, 30, 100)]
        rows += [("note", note) for note in self.notes]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table class='rasteret-plan'>{body}</table>"


class _Ranges:
    """Tile byte ranges per href (each tile once), and the sparse tiles met."""

    def __init__(self) -> None:
        self.per_object: dict[str, dict[int, int]] = {}  # href -> {start: end}
        self.sparse = 0
        self.decoded: dict[int, int] = {}  # compression code -> decoded bytes

    def add(self, source: TileSource, array: ArrayLayout, window: Window) -> None:
        """The tiles of ``source`` (one record of ``array``) under ``window``."""
        if window.is_empty:
            return
        bh, bw = array.block_shape
        i0, i1 = window.row_off // bh, min(array.tiles_down, -(-window.row_stop // bh))
        j0, j1 = window.col_off // bw, min(array.tiles_across, -(-window.col_stop // bw))
        ranges = self.per_object.setdefault(source.href, {})
        fetched = len(ranges)
        for i in range(i0, i1):
            for j in range(j0, j1):
                n = i * array.tiles_across + j
                count = int(source.byte_counts[n])
                if count <= 0:
                    self.sparse += 1
                    continue
                start = int(source.offsets[n])
                ranges[start] = max(ranges.get(start, 0), start + count)
        if not ranges:
            del self.per_object[source.href]
        code = int(array.codec.get("compression", 0))
        tile = bh * bw * np.dtype(array.dtype).itemsize * int(array.codec.get("samples", 1) or 1)
        self.decoded[code] = self.decoded.get(code, 0) + (len(ranges) - fetched) * tile

    def plan(
        self,
        reader: RangeReader,
        groups: tuple[str, ...],
        window: Window | None = None,
        notes: tuple[str, ...] = (),
    ) -> ReadPlan:
        objects = []
        for href, by_start in self.per_object.items():
            ranges = list(by_start.items())
            merged = merge_ranges(ranges, reader.coalesce_gap(href))
            objects.append(
                ObjectPlan(
                    redact_url(href),  # a description: never a credential in a query string
                    tuple((start, end) for start, end, _ in merged),
                    len(ranges),
                    sum(end - start for start, end in ranges),
                )
            )
        return ReadPlan(
            tuple(objects),
            groups,
            self.sparse,
            window,
            notes,
            decoded=tuple(sorted(self.decoded.items())),
            in_flight=reader.config.max_in_flight,
        )


def plan_arrays(
    reader: RangeReader,
    reads: Iterable[tuple[str, ArrayLayout, Window | None]],
    *,
    window: Window | None = None,
    notes: tuple[str, ...] = (),
) -> ReadPlan:
    """The plan of reading every record's tiles of each ``(group name, array, window)``
    (``window`` in the group's pixels, cut to the array; ``None``: the whole array).
    ``window`` / ``notes`` are reported as given."""
    found = _Ranges()
    groups: dict[str, None] = {}
    for group, array, array_window in reads:
        groups[group] = None
        full = Window(0, 0, array.shape[1], array.shape[2])
        cut = full if array_window is None else array_window.intersection(full)
        for source in array.sources:
            if source is not None:
                found.add(source, array, cut)
    return found.plan(reader, tuple(groups), window, notes)


def plan_windows(
    layout: StoreLayout, reader: RangeReader, requests: Iterable[ArrayWindow]
) -> ReadPlan:
    """Exactly what a batch of window reads fetches: the tiles under each request's window
    of its array's record ``t`` (each tile once)."""
    found = _Ranges()
    groups: dict[str, None] = {}
    for request in requests:
        group, _, name = request.path.rpartition("/")
        layout_group = layout.groups.get(group)
        array = None if layout_group is None else layout_group.arrays.get(name)
        if array is None or not 0 <= request.t < len(array.sources):
            continue  # the read itself names the bad request
        source = array.sources[request.t]
        if source is not None:
            groups[group] = None
            found.add(source, array, request.window)
    return found.plan(reader, tuple(groups))
