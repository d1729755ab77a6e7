"""``VirtualStore``: a read-only Zarr v3 store synthesised from a collection layout.

Metadata (``zarr.json`` of the root, the groups and every array, with inline
consolidated metadata) and coordinate chunks live in memory. A data chunk key
``{group}/{array}/c/{t}/{i}/{j}`` resolves to ``(href, offset, length)`` of block
``(i, j)`` of the record at time step ``t`` and is read with the micro-batched
``read_block`` of the store's :class:`~rasteret.fetch.RangeReader` (the one it was built
with, held for its lifetime; concurrent reads of one file coalesce into one request).
JPEG tables are spliced into each tile (``tables[:-2] + tile[2:]``); a sparse block
(byte count 0) or a record without the array's band returns ``None``, so Zarr fills it
with ``fill_value``. No header is read at read time.

A band whose records decode differently (the layout's ``B04`` / ``B04__2`` stacks:
compression, tile size, dtype, nodata, scale / offset) is ONE Zarr array here, never
several arrays each filled where the others have data (:mod:`rasteret.store.bands`): its
dtype is the records' common one, its chunks are those of the first stack, and its codec
is ``tagged`` — a record of the first stack is served as its TIFF tile behind a ``0``
byte, any other record as the chunk's values, decoded here, behind a ``1`` byte. Scale /
offset / nodata that differ per record are coordinate arrays along ``time``
(``{band}_scale_factor``, ``{band}_add_offset``, ``{band}_nodata``), as in the engine.

The tiles, reader and identity are those of the :class:`~rasteret.store.tiles.TileStore`
it wraps (``store.tiles``); the rasteret surfaces and the xarray engine read through that
directly, so zarr is only imported by Zarr users of this class.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)

import rasteret.store.codec  # noqa: F401  (registers the rasteret.tiff codec with zarr)
from rasteret.store.bands import BandStack, band_stacks, radiometry_coordinates
from rasteret.store.coords import coordinate_nodes
from rasteret.store.layout import ArrayLayout, StoreLayout, TileSource
from rasteret.store.metadata import (
    array_document,
    group_attributes,
    group_document,
    root_attributes,
)
from rasteret.store.tiles import TileStore

if TYPE_CHECKING:
    from zarr.core.buffer import Buffer, BufferPrototype

    from rasteret.fetch import RangeReader
    from rasteret.store.reference import StoreSource

JPEG_COMPRESSIONS = (7, 34892)


class VirtualStore(Store):
    """A read-only Zarr v3 store over the COG tiles of a collection (see module docs).

    Build one with :func:`rasteret.store.open_store`. It reads through ``reader`` and
    pickles by reference (collection URI + selection + fingerprint, and the reader's
    settings; see :mod:`rasteret.store.reference`). Stores are equal when their content
    and their reader's settings are.
    """

    supports_writes = False
    supports_deletes = False
    supports_listing = True

    def __init__(self, tiles: TileStore) -> None:
        super().__init__(read_only=True)
        self._tiles = tiles
        self._static: dict[str, bytes] = {}
        self._dirs: dict[str, set[str]] = {"": set()}
        self._stacks: dict[str, BandStack] = {}  # every data array: "{group}/{band}"
        self._merged: dict[str, BandStack] = {}  # those of split bands
        self._build_static()

    # ------------------------------------------------------------------ structure

    @property
    def tiles(self) -> TileStore:
        """The zarr-free tile store this Zarr store serves."""
        return self._tiles

    @property
    def source(self) -> StoreSource:
        """The collection behind the store (and its pickle reference)."""
        return self._tiles.source

    @property
    def layout(self) -> StoreLayout:
        """The groups and arrays this store exposes."""
        return self._tiles.layout

    @property
    def groups(self) -> list[str]:
        """Every group (grids and their overview levels), in a deterministic order."""
        return self._tiles.groups

    @property
    def token(self) -> str:
        """Identity of the store's content (stores with equal content have equal tokens)."""
        return self._tiles.token

    @property
    def reader(self) -> RangeReader:
        """The reader every data chunk is read with."""
        return self._tiles.reader

    @property
    def settings_key(self) -> str:
        """Identity of the reader's settings when the store was built
        (:meth:`RangeReader.settings_key <rasteret.fetch.RangeReader.settings_key>`)."""
        return self._tiles.settings_key

    def _build_static(self) -> None:
        all_members: dict[str, dict[str, Any]] = {}
        for name, group in self.layout.groups.items():
            members: dict[str, dict[str, Any]] = {}
            coords = coordinate_nodes(group)
            georeferenced = "spatial_ref" in coords
            for cname, (doc, chunk) in coords.items():
                members[cname] = doc
                path = f"{name}/{cname}"
                if chunk is not None:
                    chunk_key = f"{path}/c" if not doc["shape"] else f"{path}/c/0"
                    self._put(chunk_key, chunk)
            for sname, stack in band_stacks(group, name).items():
                self._stacks[f"{name}/{sname}"] = stack
                if len(stack.arrays) == 1:
                    members[sname] = array_document(stack.first, georeferenced=georeferenced)
                else:
                    self._merged[f"{name}/{sname}"] = stack
                    doc, extra = _merged_document(stack, georeferenced)
                    members[sname] = doc
                    for cname, (cdoc, chunk) in extra.items():
                        members[cname] = cdoc
                        if chunk is not None:
                            self._put(f"{name}/{cname}/c/0", chunk)
                self._add_dir(f"{name}/{sname}/c")
            for member, doc in members.items():
                self._put(f"{name}/{member}/zarr.json", _json_bytes(doc))
            group_doc = group_document(group, members, group_attributes(group))
            self._put(f"{name}/zarr.json", _json_bytes(group_doc))
            all_members[name] = group_doc
            for member, doc in members.items():
                all_members[f"{name}/{member}"] = doc
        root = group_document(
            None, all_members, root_attributes(self.layout, self._tiles.source.fingerprint)
        )
        self._put("zarr.json", _json_bytes(root))

    def _put(self, key: str, value: bytes) -> None:
        self._static[key] = value
        self._add_dir(key)

    def _add_dir(self, key: str) -> None:
        parts = key.split("/")
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            self._dirs.setdefault(parent, set()).add(parts[depth])

    # ------------------------------------------------------------------ chunk lookup

    def block(self, key: str) -> tuple[TileSource, int, int] | None:
        """``(source, offset, length)`` of a data chunk key, or ``None``
        when the key is not a chunk of this store, is sparse or its record lacks the band."""
        return self._tiles.block(key)

    # ------------------------------------------------------------------ Store API

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        static = self._static.get(key)
        if static is not None:
            return prototype.buffer.from_bytes(_byte_slice(static, byte_range))
        array_path, sep, index = key.rpartition("/c/")
        stack = self._merged.get(array_path) if sep else None
        if stack is not None:
            return await self._get_merged(stack, index, prototype, byte_range)
        block = self.block(key)
        if block is None:
            return None
        source, offset, length = block
        data = await self._read_tile(source, offset, length)
        buffer = prototype.buffer.from_bytes(_byte_slice(data, byte_range))
        # the codec sees no chunk coordinates: tell its errors which file, record and band
        buffer.rasteret_origin = (  # type: ignore[attr-defined]
            f"{source.href} ({source.origin}, bytes {offset}-{offset + length - 1})"
        )
        return buffer

    async def _get_merged(
        self,
        stack: BandStack,
        index: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None,
    ) -> Buffer | None:
        """A chunk of a merged band (module docs): tag byte, then a TIFF tile or values."""
        from rasteret.store.codec import TAG_RAW, TAG_TIFF

        parts = index.split("/")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        t, i, j = (int(p) for p in parts)
        if t >= len(stack.member_of) or stack.member_of[t] < 0:
            return None
        member = stack.member_of[t]
        if member == 0 and np.dtype(stack.first.dtype) == stack.dtype:
            block = self._tiles.block(f"{stack.paths[0]}/c/{t}/{i}/{j}")
            if block is None:
                return None
            source, offset, length = block
            data = await self._read_tile(source, offset, length)
            buffer = prototype.buffer.from_bytes(
                _byte_slice(b"".join((bytes([TAG_TIFF]), data)), byte_range)
            )
            buffer.rasteret_origin = (  # type: ignore[attr-defined]
                f"{source.href} ({source.origin}, bytes {offset}-{offset + length - 1})"
            )
            return buffer
        values = await self._read_chunk_values(stack, member, t, i, j)
        if values is None:
            return None
        raw = np.ascontiguousarray(values, dtype=stack.dtype.newbyteorder("<")).tobytes()
        return prototype.buffer.from_bytes(_byte_slice(bytes([TAG_RAW]) + raw, byte_range))

    async def _read_chunk_values(
        self, stack: BandStack, member: int, t: int, i: int, j: int
    ) -> np.ndarray | None:
        """Chunk ``(i, j)`` (the first stack's tile grid) of time step ``t`` read from
        the stack ``member`` that holds it, in the merged dtype (fill outside)."""
        from rasteret.geo.window import Window
        from rasteret.store.window_read import ArrayWindow, read_array_windows

        block_h, block_w = stack.first.block_shape
        _, height, width = stack.shape
        row0, col0 = i * block_h, j * block_w
        if row0 >= height or col0 >= width:
            return None
        window = Window(row0, col0, min(block_h, height - row0), min(block_w, width - col0))
        request = ArrayWindow(stack.paths[member], t, window)
        (values,) = await read_array_windows(self._tiles.layout, self._tiles.reader, [request])
        out = np.full((1, block_h, block_w), stack.raw_fill(), dtype=stack.dtype)
        out[0, : window.height, : window.width] = values
        return out

    async def _read_tile(self, source: TileSource, offset: int, length: int) -> Any:
        from rasteret.fetch import ObjectInfo

        expected = None
        if source.size is not None or source.etag or source.last_modified:
            expected = ObjectInfo(source.size, source.etag, source.last_modified)
        data = await self._tiles.reader.read_block(
            source.href, offset, offset + length, expected=expected, copy=False
        )
        if source.jpeg_tables:
            data = b"".join((source.jpeg_tables[:-2], memoryview(data)[2:]))
        return data

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        import asyncio

        return list(
            await asyncio.gather(*(self.get(key, prototype, rng) for key, rng in key_ranges))
        )

    async def exists(self, key: str) -> bool:
        if key in self._static:
            return True
        merged = self._merged_chunk(key)
        if merged is not None:
            return merged
        return self.block(key) is not None

    async def getsize(self, key: str) -> int:
        static = self._static.get(key)
        if static is not None:
            return len(static)
        if self._merged_chunk(key):
            from zarr.core.buffer import default_buffer_prototype

            found = await self.get(key, default_buffer_prototype())
            if found is not None:
                return len(found)
        block = self.block(key)
        if block is None:
            raise FileNotFoundError(key)
        return block[2]

    def _merged_chunk(self, key: str) -> bool | None:
        """Whether ``key`` is a chunk of a merged band that holds data (``None``: the key
        is not in a merged band)."""
        array_path, sep, index = key.rpartition("/c/")
        stack = self._merged.get(array_path) if sep else None
        if stack is None:
            return None
        parts = index.split("/")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return False
        t, i, j = (int(p) for p in parts)
        first = stack.first
        if t >= len(stack.member_of) or i >= first.tiles_down or j >= first.tiles_across:
            return False
        member = stack.member_of[t]
        if member < 0:
            return False
        if member == 0:
            return self._tiles.block(f"{stack.paths[0]}/c/{t}/{i}/{j}") is not None
        return True

    async def set(self, key: str, value: Buffer) -> None:
        raise PermissionError(f"VirtualStore is read-only: cannot write {key!r}")

    async def delete(self, key: str) -> None:
        raise PermissionError(f"VirtualStore is read-only: cannot delete {key!r}")

    def with_read_only(self, read_only: bool = False) -> Store:
        if not read_only:
            raise ValueError("VirtualStore is read-only")
        return self

    async def list(self) -> AsyncIterator[str]:
        for key in self._static:
            yield key
        for key in self._chunk_keys(""):
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._static:
            if key.startswith(prefix):
                yield key
        for key in self._chunk_keys(prefix):
            yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        for name in sorted(self._dirs.get(prefix, ())):
            yield name
        for name in self._chunk_dir(prefix):
            yield name

    def _chunk_keys(self, prefix: str) -> Iterator[str]:
        for path, array, sources in self._zarr_arrays():
            base = f"{path}/c/"
            if not (base.startswith(prefix) or prefix.startswith(base)):
                continue
            for t, source in enumerate(sources):
                if source is None:
                    continue
                for n in range(array.tiles_down * array.tiles_across):
                    if source.byte_counts is None or source.byte_counts[n] > 0:
                        i, j = divmod(n, array.tiles_across)
                        key = f"{base}{t}/{i}/{j}"
                        if key.startswith(prefix):
                            yield key

    def _zarr_arrays(self) -> Iterator[tuple[str, ArrayLayout, list[Any]]]:
        """``(path, array of its chunk grid, chunk sources per time step)`` of every data
        array of the Zarr view."""
        for path, stack in self._stacks.items():
            yield path, stack.first, _view_sources(stack)

    def _view_array(self, path: str) -> tuple[ArrayLayout, list[Any]] | None:
        stack = self._stacks.get(path)
        return None if stack is None else (stack.first, _view_sources(stack))

    def _chunk_dir(self, prefix: str) -> Iterator[str]:
        """Children of a directory below an array's ``c/`` (time, then tile row, column)."""
        array_path, sep, rest = prefix.rpartition("/c")
        if sep and rest == "":
            found = self._view_array(array_path)
            if found is not None:
                for t, source in enumerate(found[1]):
                    if source is not None and _has_chunks(source):
                        yield str(t)
            return
        array_path, sep, rest = prefix.rpartition("/c/")
        found = self._view_array(array_path) if sep else None
        parts = rest.split("/") if found is not None else []
        if not parts or not all(p.isdigit() for p in parts) or len(parts) > 2:
            return
        array, sources = found  # type: ignore[misc]
        t = int(parts[0])
        if t >= len(sources) or sources[t] is None:
            return
        counts = _counts(sources[t], array).reshape(array.tiles_down, array.tiles_across)
        if len(parts) == 1:
            for i in range(array.tiles_down):
                if (counts[i] > 0).any():
                    yield str(i)
        else:
            i = int(parts[1])
            if i < array.tiles_down:
                for j in range(array.tiles_across):
                    if counts[i, j] > 0:
                        yield str(j)

    # ------------------------------------------------------------------ identity

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VirtualStore) and other.tiles == self.tiles

    def __hash__(self) -> int:
        return hash(("rasteret.VirtualStore", self.token))

    def __dask_tokenize__(self) -> tuple[str, ...]:
        return ("rasteret.VirtualStore", *self._tiles.__dask_tokenize__()[1:])

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        from rasteret.store.reference import rebuild_store

        return (rebuild_store, (self._tiles.source.reference(), self._tiles.reader))

    def __repr__(self) -> str:
        arrays = sum(len(g.arrays) for g in self.layout.groups.values())
        return (
            f"<VirtualStore {self._tiles.source.describe()}: {len(self.layout.groups)} group(s), "
            f"{arrays} array(s), bands={list(self.layout.bands)}>"
        )


class _AllChunks:
    """Chunk source of a merged band's record outside its first stack: every chunk."""

    byte_counts = None


_ALL_CHUNKS = _AllChunks()


def _view_sources(stack: BandStack) -> list[Any]:
    """Chunk sources per time step of a band's Zarr array: the first stack's tile table,
    every chunk (``_ALL_CHUNKS``) for a record of another stack, ``None`` without data."""
    return [
        None if m < 0 else stack.arrays[0].sources[t] if m == 0 else _ALL_CHUNKS
        for t, m in enumerate(stack.member_of)
    ]


def _has_chunks(source: Any) -> bool:
    return source.byte_counts is None or bool((source.byte_counts > 0).any())


def _counts(source: Any, array: ArrayLayout) -> np.ndarray:
    n = array.tiles_down * array.tiles_across
    if source.byte_counts is None:
        return np.ones(n, dtype=np.int64)
    return source.byte_counts[:n]


def _merged_document(
    stack: BandStack, georeferenced: bool
) -> tuple[dict[str, Any], dict[str, tuple[dict[str, Any], bytes | None]]]:
    """The ``zarr.json`` of a merged band and its radiometry coordinate arrays."""
    from rasteret.store.coords import numeric_node
    from rasteret.store.metadata import encode_attribute_fill, fill_value, json_fill

    doc = array_document(stack.first, georeferenced=georeferenced)
    attrs = {
        k: v
        for k, v in doc["attributes"].items()
        if k not in ("_FillValue", "scale_factor", "add_offset", "rasteret_fill_value")
    }
    attrs["records"] = stack.records
    same_nodata, nodata = stack.radiometry.uniform_nodata
    fill, note = fill_value(nodata if same_nodata else None, stack.dtype)
    if note is None:
        attrs["_FillValue"] = encode_attribute_fill(fill, stack.dtype)
    else:
        attrs["rasteret_fill_value"] = note if same_nodata else "0 (nodata differs per record)"
    same_scaling, scale, offset = stack.radiometry.uniform_scaling
    extra: dict[str, tuple[dict[str, Any], bytes | None]] = {}
    if same_scaling:
        if scale is not None and scale != 1.0:
            attrs["scale_factor"] = scale
        if offset is not None and offset != 0.0:
            attrs["add_offset"] = offset
    coords = radiometry_coordinates(stack)
    for cname, (dims, values, cattrs) in coords.items():
        if same_scaling and not cname.endswith("_nodata"):
            continue  # shared scale / offset are CF attributes above
        extra[cname] = numeric_node(values, dims[0], cattrs)
        attrs["coordinates"] = f"{attrs.get('coordinates', '')} {cname}".strip()
    codec = dict(doc["codecs"][0]["configuration"], tagged=True)
    doc = dict(doc)
    doc["data_type"] = stack.dtype.name
    doc["fill_value"] = json_fill(fill, stack.dtype)
    doc["codecs"] = [{"name": doc["codecs"][0]["name"], "configuration": codec}]
    doc["attributes"] = attrs
    return doc, extra


def _json_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, allow_nan=False).encode("utf-8")


def _byte_slice(data: Any, byte_range: ByteRequest | None) -> Any:
    if byte_range is None:
        return data
    view = memoryview(data)
    if isinstance(byte_range, RangeByteRequest):
        return view[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return view[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return view[-byte_range.suffix :] if byte_range.suffix else view[:0]
    raise TypeError(f"unexpected byte range {byte_range!r}")
