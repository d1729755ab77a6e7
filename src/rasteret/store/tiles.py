"""``TileStore``: the data plane without zarr — a layout, its reader and its identity.

What every pixel read needs: the store layout (records → groups → arrays → tile
tables), the :class:`~rasteret.fetch.RangeReader` its tiles are read with, and an
identity (``token``: a digest of the layout; ``settings_key``: the reader's settings).
Windows of its arrays are read with :mod:`rasteret.store.window_read`; the xarray
engine's variables and the surfaces of :mod:`rasteret.read` use it directly, so none
of them imports zarr. :class:`~rasteret.store.virtual.VirtualStore` wraps one to serve
the same tiles as a Zarr v3 store.

A ``TileStore`` pickles by reference (collection URI + selection + fingerprint, and its
reader's settings; :mod:`rasteret.store.reference`): workers rebuild it from their own
copy of the index (cached per process) and never read a header.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from rasteret.store.layout import ArrayLayout, StoreLayout, TileSource

if TYPE_CHECKING:
    from rasteret.fetch import RangeReader
    from rasteret.store.reference import StoreSource


class TileStore:
    """The tiles of a collection's layout and the reader they are read with (module docs).

    Build one with :func:`rasteret.store.api.open_tiles`. Stores are equal when their
    content (``token``) and their reader's settings are.
    """

    def __init__(self, layout: StoreLayout, source: StoreSource, reader: RangeReader) -> None:
        self._layout = layout
        self._source = source
        self._reader = reader
        self._settings = reader.settings_key()
        self._arrays: dict[str, ArrayLayout] = {
            f"{name}/{aname}": array
            for name, group in layout.groups.items()
            for aname, array in group.arrays.items()
        }

    @property
    def layout(self) -> StoreLayout:
        """The groups and arrays this store exposes."""
        return self._layout

    @property
    def groups(self) -> list[str]:
        """Every group (grids and their overview levels), in a deterministic order."""
        return list(self._layout.groups)

    @property
    def source(self) -> StoreSource:
        """The collection behind the store (and its pickle reference)."""
        return self._source

    @cached_property
    def token(self) -> str:
        """Identity of the store's content (stores with equal content have equal tokens)."""
        return self._source.token

    @property
    def reader(self) -> RangeReader:
        """The reader every tile is read with."""
        return self._reader

    @property
    def settings_key(self) -> str:
        """Identity of the reader's settings when the store was built
        (:meth:`RangeReader.settings_key <rasteret.fetch.RangeReader.settings_key>`)."""
        return self._settings

    @property
    def arrays(self) -> dict[str, ArrayLayout]:
        """Every array by path ``"{group}/{array}"`` (do not modify)."""
        return self._arrays

    def array(self, path: str) -> ArrayLayout | None:
        """The array at ``"{group}/{array}"`` (``None`` when there is none)."""
        return self._arrays.get(path)

    def block(self, key: str) -> tuple[TileSource, int, int] | None:
        """``(source, offset, length)`` of a Zarr chunk key ``{group}/{array}/c/{t}/{i}/{j}``,
        or ``None`` when the key is not a chunk of this store, is sparse or its record
        lacks the band."""
        array_path, sep, index = key.rpartition("/c/")
        if not sep:
            return None
        array = self._arrays.get(array_path)
        if array is None:
            return None
        parts = index.split("/")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        t, i, j = (int(p) for p in parts)
        if t >= len(array.sources) or i >= array.tiles_down or j >= array.tiles_across:
            return None
        source = array.sources[t]
        if source is None:
            return None
        n = i * array.tiles_across + j
        length = int(source.byte_counts[n])
        if length <= 0:
            return None
        return source, int(source.offsets[n]), length

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TileStore)
            and other.token == self.token
            and other.settings_key == self.settings_key
        )

    def __hash__(self) -> int:
        return hash(("rasteret.TileStore", self.token))

    def __dask_tokenize__(self) -> tuple[str, ...]:
        if self._settings == "default":
            return ("rasteret.TileStore", self.token)
        return ("rasteret.TileStore", self.token, self._settings)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        from rasteret.store.reference import rebuild_tiles

        return (rebuild_tiles, (self._source.reference(), self._reader))

    def __repr__(self) -> str:
        arrays = sum(len(g.arrays) for g in self._layout.groups.values())
        return (
            f"<TileStore {self._source.describe()}: {len(self._layout.groups)} group(s), "
            f"{arrays} array(s), bands={list(self._layout.bands)}>"
        )
