"""Pickling a ``VirtualStore`` by reference (DESIGN decision 5).

A store pickles as a :class:`StoreReference`: the collection's URI, the fingerprint of
the file there, the record selection (ids, only when the store was built from a
subset) and the bands, plus the store's token (a digest of its layout). Unpickling
loads the collection once per process (cached), rebuilds the store (cached by token)
and checks that the token matches, so a changed collection fails loudly
(:class:`~rasteret.errors.StaleIndexError`) instead of reading the wrong bytes.

A collection that lives only in memory (no URI, or one that no longer matches its
file) is embedded as Arrow IPC bytes (zstd, only the columns the store needs).

The store's :class:`~rasteret.fetch.RangeReader` travels next to the reference as a
value: "the worker's default reader" when its settings are the environment's defaults,
else its ``FetchConfig`` (see :mod:`rasteret.fetch.reader`). Unpickling never changes the
worker's settings. The per-process store cache is keyed by token and reader settings.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import StaleIndexError
from rasteret.index import CollectionTable, load
from rasteret.index.parquet import path_stamp
from rasteret.index.schema import metadata_column
from rasteret.store.layout import StoreLayout

if TYPE_CHECKING:
    from rasteret.fetch import RangeReader
    from rasteret.store.tiles import TileStore
    from rasteret.store.virtual import VirtualStore

_CACHE_SIZE = 16
_lock = threading.Lock()
_stores: OrderedDict[tuple[str, str], VirtualStore] = OrderedDict()  # (token, settings key)
_tiles: OrderedDict[tuple[str, str], TileStore] = OrderedDict()  # unpickled, same key
_collections: OrderedDict[tuple[str, str, tuple[str, ...] | None], CollectionTable] = OrderedDict()


@dataclass(frozen=True)
class StoreReference:
    """What a pickled store carries: enough to rebuild it, never the tile tables
    (unless the collection exists only in memory)."""

    token: str
    bands: tuple[str, ...]
    uri: str | None = None
    fingerprint: str | None = None  # of the collection stored at ``uri``
    ids: bytes | None = None  # zlib of "\x1f"-joined record ids (a subset of ``uri``)
    table_ipc: bytes | None = None  # embedded table (in-memory collections)
    stamp: str | None = None  # the stored files' stamp (a filtered selection of ``uri``)
    filter: pc.Expression | None = None  # that selection's filter
    columns: tuple[str, ...] | None = None  # and its columns
    local_roots: tuple[str, ...] | None = None  # what its local hrefs may read (None: any)

    def collection(self) -> CollectionTable:
        """The collection the store was built from (loaded, selected or unembedded)."""
        if self.table_ipc is not None:
            with pa.ipc.open_stream(pa.BufferReader(self.table_ipc)) as reader:
                return CollectionTable(reader.read_all())
        assert self.uri is not None
        if self.stamp is not None:  # the same filter over the same files: nothing else read
            base = _load(self.uri, None, self.local_roots)
            records = base.stored_selection
            if records is None or records.stored.stamp != self.stamp:
                raise StaleIndexError(
                    self.uri,
                    "collection files changed since the store was pickled",
                    fix=StaleIndexError.RESEND,
                )
            return base.with_selection(replace(records, filter=self.filter, columns=self.columns))
        base = _load(self.uri, self.fingerprint, self.local_roots)
        if base.fingerprint != self.fingerprint:
            raise StaleIndexError(
                self.uri,
                f"collection changed since the store was pickled (fingerprint "
                f"{base.fingerprint}, expected {self.fingerprint})",
                fix=StaleIndexError.RESEND,
            )
        if self.ids is None:
            return base
        ids = zlib.decompress(self.ids).decode("utf-8").split("\x1f")
        return _select_ids(base, ids)


class StoreSource:
    """The collection behind a store, its token, and (lazily) its pickle reference."""

    def __init__(self, collection: CollectionTable, layout: StoreLayout) -> None:
        self.collection = collection
        self.bands = tuple(layout.bands)
        self._layout = layout
        self._reference: StoreReference | None = None

    @cached_property
    def token(self) -> str:
        """The digest of the layout (computed on first use)."""
        return layout_token(self._layout)

    @property
    def fingerprint(self) -> str:
        return self.collection.fingerprint

    def describe(self) -> str:
        where = self.collection.uri or "in-memory collection"
        return f"{where} ({len(self.collection)} records)"

    def reference(self) -> StoreReference:
        """The pickle reference (computed on first use: may load ``uri`` once)."""
        if self._reference is None:
            self._reference = make_reference(self.collection, self.bands, self.token)
        return self._reference

    @cached_property
    def pickled_size(self) -> int:
        """Bytes of the pickled reference (for diagnostics)."""
        import pickle

        return len(pickle.dumps(self.reference()))


def make_reference(
    collection: CollectionTable, bands: tuple[str, ...], token: str
) -> StoreReference:
    """A by-URI reference when the collection is (a record subset of) its file, else embed."""
    uri = collection.uri
    records = collection.stored_selection
    if uri is not None and records is not None:
        return StoreReference(
            token,
            bands,
            uri=uri,
            stamp=records.stored.stamp,
            filter=records.filter,
            columns=records.columns,
            local_roots=records.local_access.roots if records.local_access else None,
        )
    if uri is not None:
        try:
            base = _load(uri, None)
        except (OSError, ValueError):
            base = None
        if base is not None:
            if base.fingerprint == collection.fingerprint:
                return StoreReference(token, bands, uri=uri, fingerprint=base.fingerprint)
            ids = [str(v) for v in collection.table["id"].to_pylist()]
            selected = _select_ids(base, ids)
            if (
                selected.fingerprint == collection.fingerprint
                or _token_of(selected, bands) == token
            ):
                packed = zlib.compress("\x1f".join(ids).encode("utf-8"), 6)
                return StoreReference(
                    token, bands, uri=uri, fingerprint=base.fingerprint, ids=packed
                )
    return StoreReference(token, bands, table_ipc=_embed(collection.table, bands))


def rebuild_tiles(reference: StoreReference, reader: RangeReader | None = None) -> TileStore:
    """Unpickle: the tile store for ``reference`` reading through ``reader`` (default:
    this process's default reader), cached per process by token and reader settings;
    :class:`~rasteret.errors.StaleIndexError` when the collection changed."""
    if reader is None:
        from rasteret.fetch import default_reader

        reader = default_reader()
    key = (reference.token, reader.settings_key())
    with _lock:
        tiles = _tiles.get(key)
        if tiles is not None:
            _tiles.move_to_end(key)
            return tiles
    from rasteret.store.api import build_tiles

    tiles = build_tiles(reference.collection(), reference.bands, reader=reader)
    if tiles.token != reference.token:
        where = reference.uri or "embedded collection"
        raise StaleIndexError(
            where,
            "the rebuilt store does not match the pickled one (the collection's records "
            "or their tile tables changed)",
            fix=StaleIndexError.RESEND,
        )
    tiles.source._reference = reference
    with _lock:
        _tiles[key] = tiles
        while len(_tiles) > _CACHE_SIZE:
            _tiles.popitem(last=False)
    return tiles


def rebuild_store(reference: StoreReference, reader: RangeReader | None = None) -> VirtualStore:
    """Unpickle: the Zarr store for ``reference`` (see :func:`rebuild_tiles`)."""
    tiles = rebuild_tiles(reference, reader)
    key = (tiles.token, tiles.settings_key)
    with _lock:
        store = _stores.get(key)
        if store is not None:
            _stores.move_to_end(key)
            return store
    from rasteret.store.virtual import VirtualStore

    store = VirtualStore(tiles)
    remember(store)
    return store


def remember(store: VirtualStore) -> None:
    """Keep ``store`` in the per-process cache (bounded LRU)."""
    key = (store.token, store.settings_key)
    with _lock:
        _stores[key] = store
        _stores.move_to_end(key)
        while len(_stores) > _CACHE_SIZE:
            _stores.popitem(last=False)


def cached_store(token: str, settings_key: str) -> VirtualStore | None:
    """The cached store of this content read with these reader settings, if any."""
    with _lock:
        return _stores.get((token, settings_key))


def layout_token(layout: StoreLayout) -> str:
    """A digest of everything a store serves: groups, arrays, codecs, records, tile tables."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(layout.bands).encode())
    for name, group in layout.groups.items():
        digest.update(f"\0g{name}\0{group.grid!r}\0{group.overview}".encode())
        digest.update(group.times.astype("int64").tobytes())
        digest.update("\x1f".join(group.ids).encode())
        for aname, array in group.arrays.items():
            digest.update(f"\0a{aname}\0{sorted(array.codec.items())!r}".encode())
            digest.update(f"{array.nodata!r}{array.scale!r}{array.offset!r}".encode())
            for source in array.sources:
                if source is None:
                    digest.update(b"\0-")
                    continue
                identity = f"{source.size}\0{source.etag}\0{source.last_modified}"
                digest.update(f"\0{source.href}\0{identity}".encode())
                digest.update(source.offsets.tobytes())
                digest.update(source.byte_counts.tobytes())
                digest.update(source.jpeg_tables or b"")
    return digest.hexdigest()


def _load(
    uri: str, fingerprint: str | None, local_roots: tuple[str, ...] | None = None
) -> CollectionTable:
    """``load(uri)`` once per process and stamp; ``local_roots``: what its local hrefs may
    read (``None``: any — the collection was the caller's own, in memory, when exported)."""
    try:
        stamp = path_stamp(uri)
    except (OSError, NotImplementedError, ValueError):
        stamp = ""
    key = (uri, stamp, local_roots)
    with _lock:
        cached = _collections.get(key)
    if cached is not None and (fingerprint is None or cached.fingerprint == fingerprint):
        return cached
    collection = load(uri, local_roots="any" if local_roots is None else local_roots)
    with _lock:
        _collections[key] = collection
        while len(_collections) > _CACHE_SIZE:
            _collections.popitem(last=False)
    return collection


def _token_of(collection: CollectionTable, bands: tuple[str, ...]) -> str | None:
    from rasteret.store.layout import build_layout

    try:
        return layout_token(build_layout(collection.table, bands))
    except Exception:
        return None


def _select_ids(base: CollectionTable, ids: list[str]) -> CollectionTable:
    wanted = pa.array(ids, pa.string())
    return base.where(pc.field("id").cast(pa.string()).isin(wanted))  # pushed down


def _embed(table: pa.Table, bands: tuple[str, ...]) -> bytes:
    needed = ["id", "datetime", "assets", *(metadata_column(b) for b in bands)]
    table = table.select([c for c in needed if c in table.column_names])
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
