"""Windows of a store's arrays read straight into numpy: the eager read path.

``read_array_windows(layout, reader, requests)`` serves every request (an array of the
layout, a time index, a pixel :class:`~rasteret.geo.Window`) from the tiles it touches,
looked up in the layout (no header is read). The tiles of one object are fetched with
one :meth:`RangeReader.read_ranges` call, or one per part of about
:data:`OBJECT_PART_BYTES` when the read touches few objects (coalesced by the reader's
gap, bounded by its ``max_in_flight`` and by the event loop's
:mod:`~rasteret.store.backlog` of fetched, undecoded bytes); a tile that several windows
share is fetched and decoded once. Each part's tiles are decoded in a thread pool as
soon as its bytes arrive (imagecodecs releases the GIL; large tiles one job each, small
ones grouped), so decoding overlaps the fetches still in flight and uses every core; a
tile is decoded only down to the lowest row a window uses, and copied straight into the
outputs, which start as the array's Zarr ``fill_value`` (sparse tiles and records
without the band read as fill, exactly as through Zarr). JPEG tables are spliced into
each tile and decode errors name the file, record, band and byte range, as
:class:`~rasteret.store.virtual.VirtualStore` does.

This path does not import zarr: the store's Zarr metadata, its codec and zarr's
per-chunk machinery (and its process-wide ``async.concurrency``) are left to Zarr users
(the xarray engine, ``zarr.open_group``). Pixels are those a Zarr read of the same
store returns (tested).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from rasteret.errors import CorruptTiffError, UnsupportedTiffError
from rasteret.fetch import ObjectInfo, RangeReader
from rasteret.geo.window import Window
from rasteret.store.backlog import loop_backlog
from rasteret.store.layout import ArrayLayout, StoreLayout, TileSource
from rasteret.store.metadata import fill_value
from rasteret.tiff.decode import BlockDecoding, decode_block

#: ``allocate(shape, dtype)``: a writable ``shape`` array of ``dtype`` for one window.
Allocate = Callable[[tuple[int, int], np.dtype], np.ndarray]

#: Codec-configuration keys that are not part of :class:`BlockDecoding`.
_CODEC_EXTRAS = ("sample", "jpeg_tables_present", "min_rows")


@dataclass(frozen=True, slots=True)
class ArrayWindow:
    """Pixels ``window`` of the array at ``path`` (``"{group}/{array}"``), time index ``t``."""

    path: str
    t: int
    window: Window


@dataclass(frozen=True, slots=True)
class _Decoding:
    block: BlockDecoding
    sample: int
    min_rows: int | None
    dtype: np.dtype
    fill: Any


@dataclass(slots=True)
class _Tile:
    """One tile to fetch and decode, and where its pixels go."""

    source: TileSource
    decoding: _Decoding
    offset: int
    length: int
    uses: list[tuple[int, slice, slice, slice, slice]]  # (output, dst rows/cols, src rows/cols)


def read_array_windows_sync(
    layout: StoreLayout,
    reader: RangeReader,
    requests: Sequence[ArrayWindow],
    *,
    progress: Callable[[int, int], None] | None = None,
    outputs: Sequence[np.ndarray | None] | None = None,
    on_done: Callable[[int, np.ndarray], None] | None = None,
    allocate: Allocate | None = None,
) -> list[np.ndarray]:
    """:func:`read_array_windows` from synchronous code."""
    from rasteret._async import run_sync

    return run_sync(
        read_array_windows(
            layout,
            reader,
            requests,
            progress=progress,
            outputs=outputs,
            on_done=on_done,
            allocate=allocate,
        )
    )


async def read_array_windows(
    layout: StoreLayout,
    reader: RangeReader,
    requests: Sequence[ArrayWindow],
    *,
    progress: Callable[[int, int], None] | None = None,
    outputs: Sequence[np.ndarray | None] | None = None,
    on_done: Callable[[int, np.ndarray], None] | None = None,
    allocate: Allocate | None = None,
) -> list[np.ndarray]:
    """One ``(height, width)`` array per request, in the array's dtype (see module docs).

    ``outputs`` may give, per request, the array to fill (a writable ``(height, width)``
    view of the array's dtype, e.g. one band of a caller's stack: no copy afterwards);
    ``None`` entries are allocated here when their first tile is decoded, by
    ``allocate(shape, dtype)`` if given (e.g. from a caller's pool of reused buffers;
    called from a decode thread), else ``numpy.empty``. ``progress(done, total)`` is
    called after each tile is decoded (from a decode thread; ``total`` counts the
    distinct tiles to read).
    ``on_done(index, output)`` is called once per request as soon as all its pixels are
    in its output — from the decode thread that wrote the last of them (requests without
    tiles: before any fetch) — so a caller can post-process each window while others are
    still in flight; an exception it raises fails the read. Raises ``KeyError`` for
    an unknown array path, ``IndexError`` for a time index or window outside the array.
    """
    outputs_given = outputs
    if outputs_given is not None and len(outputs_given) != len(requests):
        raise ValueError(f"{len(outputs_given)} outputs for {len(requests)} requests")
    outputs = _Outputs(allocate)
    tiles: dict[tuple[str, int, int, int], _Tile] = {}
    by_object: dict[str, list[_Tile]] = {}
    remaining = [0] * len(requests)  # tile uses not yet written, per request
    arrays: dict[str, tuple[ArrayLayout, _Decoding]] = {}
    for index, request in enumerate(requests):
        found = arrays.get(request.path)
        if found is None:
            array = _array(layout, request.path)
            found = arrays[request.path] = (array, _decoding_of(array))
        array, decoding = found
        window = request.window
        _check(request, array)
        given = None if outputs_given is None else outputs_given[index]
        source = array.sources[request.t]
        covered = source is not None and _covered(source, array, window)
        if given is not None:
            _check_output(request, given, decoding.dtype)
            if not covered:
                given[...] = decoding.fill
            outputs.given(given)
        else:  # allocated when its first tile is decoded (no fill pass if every pixel
            # comes from a tile)
            outputs.planned(request, decoding.dtype, None if covered else decoding.fill)
        if source is None or window.height == 0 or window.width == 0:
            continue
        block_h, block_w = array.block_shape
        row0, col0 = window.row_off, window.col_off
        row1, col1 = row0 + window.height, col0 + window.width
        for i in range(row0 // block_h, (row1 - 1) // block_h + 1):
            top = i * block_h
            r0, r1 = max(row0, top), min(row1, top + block_h)
            for j in range(col0 // block_w, (col1 - 1) // block_w + 1):
                n = i * array.tiles_across + j
                length = int(source.byte_counts[n])
                if length <= 0:
                    continue  # sparse: stays fill
                left = j * block_w
                c0, c1 = max(col0, left), min(col1, left + block_w)
                use = (
                    index,
                    slice(r0 - row0, r1 - row0),
                    slice(c0 - col0, c1 - col0),
                    slice(r0 - top, r1 - top),
                    slice(c0 - left, c1 - left),
                )
                key = (request.path, request.t, i, j)
                tile = tiles.get(key)
                if tile is None:
                    offset = int(source.offsets[n])
                    tile = tiles[key] = _Tile(source, decoding, offset, length, [])
                    by_object.setdefault(source.href, []).append(tile)
                tile.uses.append(use)
                remaining[index] += 1
    counter = _TileCounter(len(tiles), progress, remaining, outputs, on_done)
    if on_done is not None:
        for index, count in enumerate(remaining):
            if count == 0:
                on_done(index, outputs.get(index))
    if by_object:
        loop = asyncio.get_running_loop()
        pool = decode_pool()

        backlog = loop_backlog()

        async def one_part(href: str, members: list[_Tile]) -> None:
            source = members[0].source
            expected = None
            if source.size is not None or source.etag or source.last_modified:
                expected = ObjectInfo(source.size, source.etag, source.last_modified)
            # the part's bytes count against the loop's backlog until they are decoded
            async with backlog.hold(sum(t.length for t in members)):
                buffers = await reader.read_ranges(
                    href,
                    [t.offset for t in members],
                    [t.offset + t.length for t in members],
                    expected=expected,
                    copy=False,
                )
                await asyncio.gather(
                    *(
                        loop.run_in_executor(pool, _decode_into, tiles, data, outputs, counter)
                        for tiles, data in _decode_batches(members, buffers)
                    )
                )
                del buffers

        split = len(by_object) < SPLIT_BELOW_OBJECTS_PER_THREAD * decode_threads()
        await asyncio.gather(
            *(one_part(h, part) for h, m in by_object.items() for part in _object_parts(m, split))
        )
    return outputs.every()


class _Outputs:
    """The requests' output arrays, each allocated by the first tile written to it (so
    a read's buffers are taken as its parts arrive — after earlier parts freed theirs —
    rather than all before the first request is sent)."""

    def __init__(self, allocate: Allocate | None) -> None:
        self._allocate = allocate
        self._arrays: list[np.ndarray | None] = []
        self._plans: list[tuple[ArrayWindow, np.dtype, Any] | None] = []
        self._lock = threading.Lock()

    def given(self, array: np.ndarray) -> None:
        self._arrays.append(array)
        self._plans.append(None)

    def planned(self, request: ArrayWindow, dtype: np.dtype, fill: Any) -> None:
        """An array for ``request``'s window to allocate, starting as ``fill`` (``None``:
        no fill)."""
        self._arrays.append(None)
        self._plans.append((request, dtype, fill))

    def get(self, index: int) -> np.ndarray:
        array = self._arrays[index]
        if array is None:
            with self._lock:
                array = self._arrays[index]
                if array is None:
                    request, dtype, fill = self._plans[index]  # type: ignore[misc]
                    shape = request.window.shape
                    if self._allocate is None:
                        array = np.empty(shape, dtype=dtype)
                    else:
                        array = self._allocate(shape, dtype)
                        _check_output(request, array, dtype, "allocate returned an array")
                    if fill is not None:
                        array[...] = fill
                    self._arrays[index] = array
        return array

    def every(self) -> list[np.ndarray]:
        return [self.get(index) for index in range(len(self._arrays))]


#: Compressed bytes fetched per part of one object: an object's tiles are fetched in
#: parts of about this size, concurrently, and each part is decoded as soon as it
#: arrives — a whole-scene read decodes while the rest of the scene is still arriving
#: (one 33 MB request would hold every decode until its last byte).
OBJECT_PART_BYTES = 4 * 2**20

#: Objects are cut into parts only when a read touches fewer objects than this many
#: per decode thread. With more, whole objects arriving one after another keep every
#: thread decoding and parts would only add requests (billed per request by object
#: stores): the cold-start single AOI (60 objects of ~6 MB) takes 180 requests instead of
#: 210 and the multi-AOI 511 instead of 573, in the same time within the run-to-run
#: spread (4–5 alternating fresh processes at 30 and 100 ms).
SPLIT_BELOW_OBJECTS_PER_THREAD = 2


def _object_parts(members: list[_Tile], split: bool = True) -> list[list[_Tile]]:
    """``members`` (tiles of one object) in offset order: one part, or (``split``) cut
    into runs of about :data:`OBJECT_PART_BYTES` (a part of one tile when tiles are
    larger)."""
    ordered = sorted(members, key=lambda t: t.offset)
    if not split:
        return [ordered]
    parts: list[list[_Tile]] = [[]]
    size = 0
    for tile in ordered:
        if parts[-1] and size + tile.length > OBJECT_PART_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(tile)
        size += tile.length
    return parts


#: Compressed bytes decoded per thread-pool job: large tiles get a job each (so one
#: object's tiles decode on every core), small ones are grouped (job overhead ~30 µs).
DECODE_BATCH_BYTES = 512 * 1024


def _decode_batches(
    members: list[_Tile], buffers: Sequence[Any]
) -> list[tuple[list[_Tile], list[Any]]]:
    batches: list[tuple[list[_Tile], list[Any]]] = []
    tiles: list[_Tile] = []
    data: list[Any] = []
    size = 0
    for tile, buffer in zip(members, buffers, strict=True):
        tiles.append(tile)
        data.append(buffer)
        size += tile.length
        if size >= DECODE_BATCH_BYTES:
            batches.append((tiles, data))
            tiles, data, size = [], [], 0
    if tiles:
        batches.append((tiles, data))
    return batches


class _TileCounter:
    """Counts decoded tiles across decode threads: reports ``(done, total)`` and calls
    ``on_done`` for each request whose last tile use was written."""

    def __init__(
        self,
        total: int,
        progress: Callable[[int, int], None] | None,
        remaining: list[int],
        outputs: _Outputs,
        on_done: Callable[[int, np.ndarray], None] | None,
    ) -> None:
        self.total = total
        self.done = 0
        self.progress = progress
        self.remaining = remaining
        self.outputs = outputs
        self.on_done = on_done
        self.lock = threading.Lock()

    def tile_done(self, tile: _Tile) -> None:
        finished: list[int] = []
        if self.progress is not None or self.on_done is not None:
            with self.lock:
                self.done += 1
                if self.progress is not None:
                    self.progress(self.done, self.total)
                if self.on_done is not None:
                    for use in tile.uses:
                        self.remaining[use[0]] -= 1
                        if self.remaining[use[0]] == 0:
                            finished.append(use[0])
        for index in finished:  # outside the lock: post-processing runs in parallel
            self.on_done(index, self.outputs.get(index))  # type: ignore[misc]


def _decode_into(
    members: list[_Tile],
    buffers: Sequence[Any],
    outputs: _Outputs,
    counter: _TileCounter,
) -> None:
    for tile, data in zip(members, buffers, strict=True):
        plane = _decode_tile(tile, data)
        for index, dst_rows, dst_cols, src_rows, src_cols in tile.uses:
            outputs.get(index)[dst_rows, dst_cols] = plane[src_rows, src_cols]
        counter.tile_done(tile)


def _decode_tile(tile: _Tile, data: Any) -> np.ndarray:
    source, decoding = tile.source, tile.decoding
    origin = f"{source.href} ({source.origin}, bytes {tile.offset}-{tile.offset + tile.length - 1})"
    if source.jpeg_tables:
        data = b"".join((source.jpeg_tables[:-2], memoryview(data)[2:]))
    # only the rows down to the lowest one a window uses (deflate, LZW: the rest of the
    # stream is never inflated)
    stop = max(use[3].stop for use in tile.uses)
    block = decode_block(
        memoryview(data), decoding.block, source=origin, rows=decoding.min_rows, stop=stop
    )
    if block.ndim == 2:
        block = block[:, :, np.newaxis]
    if not 0 <= decoding.sample < block.shape[2]:
        raise UnsupportedTiffError(
            origin, "sample", f"sample {decoding.sample} of a {block.shape[2]}-sample block"
        )
    plane = block[:, :, decoding.sample]
    expected = (decoding.block.block_height, decoding.block.block_width)
    if plane.shape != expected and plane.shape != (stop, expected[1]):
        raise CorruptTiffError(
            origin, f"decoded block of {plane.shape} does not match the chunk shape {expected}"
        )
    return plane


def _covered(source: TileSource, array: ArrayLayout, window: Window) -> bool:
    """Whether every pixel of ``window`` lies in a tile with data (none sparse)."""
    if window.height == 0 or window.width == 0:
        return True
    block_h, block_w = array.block_shape
    rows = slice(window.row_off // block_h, (window.row_off + window.height - 1) // block_h + 1)
    cols = slice(window.col_off // block_w, (window.col_off + window.width - 1) // block_w + 1)
    n = array.tiles_down * array.tiles_across
    counts = source.byte_counts[:n].reshape(array.tiles_down, array.tiles_across)
    return bool((counts[rows, cols] > 0).all())


def _check_output(
    request: ArrayWindow, out: np.ndarray, dtype: np.dtype, what: str = "output"
) -> None:
    if out.shape != request.window.shape or out.dtype != dtype or not out.flags.writeable:
        raise ValueError(
            f"{request.path}: {what} of shape {out.shape} and dtype {out.dtype} for a "
            f"{request.window.shape} window of {dtype}"
        )


def _array(layout: StoreLayout, path: str) -> ArrayLayout:
    group, _, name = path.rpartition("/")
    found = layout.groups.get(group)
    array = None if found is None else found.arrays.get(name)
    if array is None:
        raise KeyError(f"no array {path!r} in the store layout")
    return array


def _check(request: ArrayWindow, array: ArrayLayout) -> None:
    _, height, width = array.shape
    window = request.window
    if not 0 <= request.t < len(array.sources):
        raise IndexError(f"{request.path}: time index {request.t} of {len(array.sources)}")
    if (
        window.row_off < 0
        or window.col_off < 0
        or window.row_off + window.height > height
        or window.col_off + window.width > width
    ):
        raise IndexError(f"{request.path}: window {window} outside the {height}x{width} array")


def _decoding_of(array: ArrayLayout) -> _Decoding:
    return _decoding(_freeze(array.codec), array.dtype, array.nodata)


@lru_cache(maxsize=256)
def _decoding(codec: tuple[tuple[str, Any], ...], dtype: str, nodata: float | None) -> _Decoding:
    config = dict(codec)
    block = BlockDecoding.from_dict({k: v for k, v in config.items() if k not in _CODEC_EXTRAS})
    native = np.dtype(dtype)
    min_rows = config.get("min_rows")
    fill, _ = fill_value(nodata, native)
    return _Decoding(
        block,
        int(config.get("sample", 0)),
        None if min_rows is None else int(min_rows),
        native,
        fill,
    )


def _freeze(codec: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in codec.items()))


_pool_lock = threading.Lock()
_pool_state: tuple[int, ThreadPoolExecutor] | None = None


def decode_threads() -> int:
    """Threads of the decode pool: one per core, at least two."""
    return max(2, os.cpu_count() or 2)


def decode_pool() -> ThreadPoolExecutor:
    """The process's decode pool (one thread per core, at least two; rebuilt after a
    fork). Readers may run CPU work that follows a read (warps, masks) on it too."""
    global _pool_state
    state = _pool_state
    if state is not None and state[0] == os.getpid():
        return state[1]
    with _pool_lock:
        if _pool_state is None or _pool_state[0] != os.getpid():
            _pool_state = (
                os.getpid(),
                ThreadPoolExecutor(decode_threads(), thread_name_prefix="rasteret-decode"),
            )
        return _pool_state[1]
