"""``CollectionTable``: an immutable view of a collection table (one row per record).

The control plane's own type: filters (:meth:`CollectionTable.subset`,
:meth:`CollectionTable.where`), selections, summaries, identity and persistence. Views
share the Arrow buffers of the original and keep their class, so a view of the
user-facing :class:`rasteret.Collection` (which adds the pixel surfaces on top of this
type) is again a ``rasteret.Collection``. Nothing here touches the network or pixels.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import BandNotFoundError
from rasteret.index import columns, filters, geoparquet, parquet, parquet_write
from rasteret.index.describe import DescribeResult
from rasteret.index.levels import BandLevels, band_levels
from rasteret.index.schema import bands_of, error_column, metadata_column

if TYPE_CHECKING:
    from rasteret.index.lazy import LazyRecords

#: Value of the ``rasteret_collection_version`` schema metadata key written by export.
#: "1" is the original system's 17-field band struct; "2" adds the fields of
#: :data:`~rasteret.index.schema.BAND_METADATA_TYPE` (overviews, mask, full CRS, ...).
COLLECTION_VERSION = "2"


class CollectionTable:
    """An immutable, validated table of raster records with per-band COG headers.

    Build one with :func:`rasteret.index.as_collection` (validates) or
    :func:`rasteret.index.load`; the constructor itself does not validate.
    ``uri`` is where the table was loaded from or last exported to (else ``None``).
    """

    def __init__(
        self,
        table: pa.Table | LazyRecords,
        *,
        name: str = "",
        description: str = "",
        data_source: str = "",
        uri: str | None = None,
        stamp: str | None = None,
    ) -> None:
        from rasteret.index.lazy import LazyRecords

        if isinstance(table, LazyRecords):
            self._lazy: LazyRecords | None = table
            self._cached: pa.Table | None = None
        elif isinstance(table, pa.Table):
            self._lazy = None
            self._cached = table
        else:
            raise TypeError(f"Collection needs a pyarrow.Table, got {type(table).__name__}")
        self._count: int | None = None
        # the whole content of the files at ``uri`` (loaded, or just exported): identified
        # by the files' stamp alone; views are not
        self._whole_stored = (
            stamp is not None
            and self._lazy is not None
            and self._lazy.filter is None
            and self._lazy.columns is None
        )
        self.name = name
        self.description = description
        self.data_source = data_source
        self._uri = uri
        self._stamp = stamp
        self._fingerprint: str | None = None

    # ------------------------------------------------------------ identity

    @property
    def table(self) -> pa.Table:
        """The underlying Arrow table (shared, never copied). A collection loaded from disk
        reads (and validates) its selected rows on first access (:mod:`rasteret.index.lazy`)."""
        return self._table

    @property
    def _table(self) -> pa.Table:
        if self._cached is None:
            assert self._lazy is not None
            self._cached = self._lazy.read()
        return self._cached

    @property
    def schema(self) -> pa.Schema:
        """The table's schema (without reading rows)."""
        if self._cached is not None:
            return self._cached.schema
        assert self._lazy is not None
        return self._lazy.schema

    @property
    def stored_selection(self) -> LazyRecords | None:
        """The stored files and the filter / columns this collection selects from them
        (``None`` for a collection that lives in memory)."""
        return self._lazy

    def with_selection(self, records: LazyRecords) -> Self:
        """A view over ``records`` (a selection of this collection's stored files)."""
        return self._view(records)

    @property
    def is_read(self) -> bool:
        """Whether the rows are in memory (``False``: a filtered view of files not read yet)."""
        return self._cached is not None

    def _columns(self, names: Sequence[str]) -> pa.Table:
        """Some columns of the selected rows (only those read from disk when not cached)."""
        names = [n for n in names if n in self.schema.names]
        if self._cached is not None or self._lazy is None:
            return self._table.select(names)
        return self._lazy.stored.read(self._lazy.filter, names)

    @property
    def uri(self) -> str | None:
        """Path this collection was loaded from or exported to, else ``None``.

        A view (``subset``, ``where``, ...) keeps the path of the collection it came from:
        opening that path reads every record, so pass the view itself to
        ``xr.open_dataset(view, engine="rasteret")`` to read only its records.
        """
        return self._uri

    @property
    def fingerprint(self) -> str:
        """A stable 16-hex-digit hash identifying the content (order-independent).

        The whole content of a collection's files (just loaded or exported) is
        identified by the files' sizes and modification times; a filtered selection of
        them by those and its filter and columns (nothing is read to compute either);
        a table in memory by its schema, sorted record ids and band-column null counts.
        Equal in every process for the same files and selection; used to pickle stores
        by reference.
        """
        if self._fingerprint is None and self._whole_stored and self._stamp:
            digest = hashlib.blake2b(digest_size=8)
            digest.update(f"stored\0{self._stamp}".encode())
            self._fingerprint = digest.hexdigest()
        if self._fingerprint is None and self._lazy is not None:
            # a selection of stored files: the files' stamp and the selection identify it
            digest = hashlib.blake2b(digest_size=8)
            digest.update(f"lazy\0{self._lazy.stored.stamp}\0{self._lazy.filter}".encode())
            digest.update(f"\0{self._lazy.columns}".encode())
            self._fingerprint = digest.hexdigest()
        if self._fingerprint is None:
            digest = hashlib.blake2b(digest_size=8)
            for field in self._table.schema:
                digest.update(f"{field.name}:{_type_signature(field.type)};".encode())
            digest.update(f"\0{self._table.num_rows}\0".encode())
            if "id" in self._table.column_names:
                ids = pc.sort_indices(self._table["id"])
                ordered = pc.take(self._table["id"], ids).cast(pa.string()).to_pylist()
                digest.update("\x1f".join(str(i) for i in ordered).encode())
            for band in self.bands:
                digest.update(f"\0{band}:{self._table[metadata_column(band)].null_count}".encode())
            digest.update(f"\0{self._stamp or ''}".encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        """dask's (and ``xr.open_dataset``'s) token: the stored files' stamp and the
        selection when the records come from files (nothing read or hashed), else the
        Arrow table's own buffers (an in-memory table's :attr:`fingerprint` does not hash
        every value, and a token must)."""
        from dask.base import normalize_token

        if self._whole_stored and self._stamp:
            return ("rasteret.CollectionTable", "stored", self._stamp)
        if self._lazy is not None:  # a selection of stored files, read or not
            lazy = self._lazy
            return ("rasteret.CollectionTable", lazy.stored.stamp, str(lazy.filter), lazy.columns)
        return ("rasteret.CollectionTable", normalize_token(self._table))

    @classmethod
    def of(cls, collection: CollectionTable) -> Self:
        """``collection`` as an instance of this class, sharing its table, name, location
        and identity (``rasteret.Collection.of(table)`` adds the pixel surfaces)."""
        if isinstance(collection, cls):
            return collection
        if not isinstance(collection, CollectionTable):
            raise TypeError(f"expected a collection, got {type(collection).__name__}")
        adopted = cls.__new__(cls)
        adopted.__dict__.update(collection.__dict__)
        return adopted

    def _view(self, table: pa.Table | LazyRecords) -> Self:
        """A new Collection over ``table`` keeping this one's name, source and location."""
        return type(self)(
            table,
            name=self.name,
            description=self.description,
            data_source=self.data_source,
            uri=self._uri,
            stamp=self._stamp,
        )

    # ------------------------------------------------------------ summary

    def __len__(self) -> int:
        if self._cached is not None:
            return self._cached.num_rows
        if self._count is None:
            assert self._lazy is not None
            self._count = self._lazy.count()
        return self._count

    @property
    def bands(self) -> list[str]:
        """Bands with a ``{band}_metadata`` struct column, in column order."""
        return bands_of(self.schema)

    @property
    def bounds(self) -> tuple[float, float, float, float] | None:
        """``(minx, miny, maxx, maxy)`` over the ``bbox`` struct (CRS84), ``None`` if empty."""
        if "bbox" not in self.schema.names or not len(self):
            return None
        return geoparquet._bounds(self._columns(["bbox"]))

    @property
    def epsg(self) -> list[int]:
        """Sorted distinct EPSG codes of the records' raster CRSs."""
        return sorted({int(v.split(":")[1]) for v in self._crs_values() if _is_epsg(v)})

    @property
    def crs(self) -> list[str]:
        """Sorted distinct raster CRSs: ``"EPSG:x"`` strings, then WKTs of non-EPSG CRSs."""
        values = self._crs_values()
        epsg = sorted((v for v in values if _is_epsg(v)), key=lambda v: int(v.split(":")[1]))
        return epsg + sorted(v for v in values if not _is_epsg(v))

    def _crs_values(self) -> set[str]:
        table = self._columns(["crs", "proj:epsg"])
        values: set[str] = set()
        if "crs" in table.column_names:
            values |= {v for v in pc.unique(table["crs"]).to_pylist() if v}
        if "proj:epsg" in table.column_names:
            values |= {f"EPSG:{v}" for v in pc.unique(table["proj:epsg"]).to_pylist() if v}
        if values:
            return values
        table = self._table
        for band in self.bands:  # no record CRS columns: use the band headers
            struct = table[metadata_column(band)]
            names = {f.name for f in struct.type}
            if "epsg" in names:
                codes = pc.struct_field(struct, "epsg")
                values |= {f"EPSG:{v}" for v in pc.unique(codes).to_pylist() if v}
            if "crs_wkt" in names:
                wkt = pc.struct_field(struct, "crs_wkt")
                if "epsg" in names:
                    wkt = pc.if_else(
                        pc.is_null(pc.struct_field(struct, "epsg")), wkt, pa.scalar(None, wkt.type)
                    )
                values |= {v for v in pc.unique(wkt).to_pylist() if v}
        return values

    @property
    def date_range(self) -> tuple[dt.datetime, dt.datetime] | None:
        """``(earliest, latest)`` record datetime (UTC-naive), ``None`` when empty."""
        if "datetime" not in self.schema.names or not len(self):
            return None
        extremes = pc.min_max(self._columns(["datetime"])["datetime"]).as_py()
        if extremes["min"] is None:
            return None
        return _naive(extremes["min"]), _naive(extremes["max"])

    def __repr__(self) -> str:
        parts = [repr(self.name)]
        if self.data_source:
            parts.append(f"source={self.data_source!r}")
        parts += [f"bands={len(self.bands)}", f"records={len(self)}"]
        epsg, others = self.epsg, len([c for c in self.crs if not _is_epsg(c)])
        if epsg or others:
            shown: list[Any] = list(epsg)
            if others:
                shown.append(f"<{others} non-EPSG>")
            parts.append(
                f"crs={shown[0]}" if len(shown) == 1 else f"crs=[{', '.join(map(str, shown))}]"
            )
        dates = self.date_range
        if dates is not None:
            parts.append(f"{dates[0].date().isoformat()}..{dates[1].date().isoformat()}")
        return f"Collection({', '.join(parts)})"

    def _repr_html_(self) -> str:
        """Notebook view: summary table and a footprint sketch (:mod:`rasteret.index.display`)."""
        from rasteret.index.display import collection_html

        return collection_html(self)

    def plot(self, ax: Any = None, *, column: str | None = None, **style: Any) -> Any:
        """Plot record footprints (lon/lat) with matplotlib; returns the ``Axes``.

        ``column`` colours them by a numeric or datetime column (``"datetime"``,
        ``"eo:cloud_cover"``); see :func:`rasteret.index.display.plot_footprints`.
        """
        from rasteret.index.display import plot_footprints

        return plot_footprints(self, ax, column=column, **style)

    def describe(self) -> DescribeResult:
        """A summary: ``name, records, bands, bounds, crs (EPSG ints), dates, source``.

        Adds ``crs_wkt`` (names of non-EPSG CRSs) and ``errors`` (``{band: records whose
        header failed}``) when there are any.
        """
        dates = self.date_range
        data: dict[str, Any] = {
            "name": self.name,
            "records": len(self),
            "bands": self.bands,
            "bounds": self.bounds,
            "crs": self.epsg,
            "dates": None if dates is None else (dates[0].isoformat(), dates[1].isoformat()),
            "source": self.data_source or None,
        }
        wkt_names = [_wkt_name(c) for c in self.crs if not _is_epsg(c)]
        if wkt_names:
            data["crs_wkt"] = wkt_names
        errors = {}
        for band in self.bands:
            column = error_column(band)
            if column in self.schema.names:
                failed = len(self) - self._columns([column])[column].null_count
                if failed:
                    errors[band] = failed
        if errors:
            data["errors"] = errors
        return DescribeResult(data)

    # ------------------------------------------------------------ filtering

    def subset(
        self,
        *,
        cloud_cover_lt: float | None = None,
        date_range: Sequence[Any] | None = None,
        bbox: Sequence[float] | None = None,
        geometries: Any = None,
        split: str | Sequence[str] | None = None,
        split_column: str = "split",
    ) -> Self:
        """Records matching ALL given filters (see :mod:`rasteret.index.filters`).

        ``date_range`` includes the whole end day; ``bbox`` / ``geometries`` match by
        overlap with the records' CRS84 ``bbox``; ``geometries`` are OR-ed.
        Raises ``ValueError("No filters provided")`` when every filter is ``None``.
        """
        expression = filters.subset_expression(
            self.schema,
            cloud_cover_lt=cloud_cover_lt,
            date_range=date_range,
            bbox=bbox,
            geometries=geometries,
            split=split,
            split_column=split_column,
        )
        years = None if date_range is None else filters.date_range_years(date_range)
        return self._where(expression, years)

    def select_split(self, split: str | Sequence[str], *, split_column: str = "split") -> Self:
        """Records of one or several splits (``subset(split=...)``)."""
        return self.subset(split=split, split_column=split_column)

    def where(self, expression: pc.Expression) -> Self:
        """Records for which the Arrow ``expression`` is true."""
        if not isinstance(expression, pc.Expression):
            raise TypeError(
                f"where() needs a pyarrow.compute.Expression, got {type(expression).__name__}"
            )
        return self._where(expression)

    def _where(self, expression: pc.Expression, years: tuple[int, int] | None = None) -> Self:
        if self._lazy is None:
            return self._view(self._table.filter(expression))
        view = self._view(self._lazy.where(expression, years))  # pushed down, nothing read
        if self._cached is not None:  # already in memory: filter it there too
            view._cached = self._cached.filter(expression)
        return view

    def select_bands(self, bands: str | Iterable[str]) -> Self:
        """Only the given bands' ``_metadata`` / ``_error`` columns (in the given order).

        Raises :class:`BandNotFoundError` listing unknown and available bands. The
        ``assets`` column is kept whole.
        """
        wanted = [bands] if isinstance(bands, str) else list(bands)
        self.check_bands(wanted)
        band_columns = {metadata_column(b) for b in self.bands} | {
            error_column(b) for b in self.bands
        }
        names = self.schema.names
        keep = [n for n in names if n not in band_columns]
        for band in wanted:
            keep.append(metadata_column(band))
            if error_column(band) in names:
                keep.append(error_column(band))
        if self._lazy is None:
            return self._view(self._table.select(keep))
        view = self._view(self._lazy.select(keep))  # only these columns are read
        if self._cached is not None:
            view._cached = self._cached.select(keep)
        return view

    def for_reading(self, bands: Sequence[str] | None) -> Self:
        """The collection to read ``bands`` (``None``: all) from. Records not read from
        disk yet get only those bands' columns, so reading one band of a 13-band index
        decodes that band's headers, not all thirteen; a collection in memory is returned
        as it is (narrowing it would only cost a new identity)."""
        if bands is None or self._lazy is None or self._cached is not None:
            return self
        wanted = list(dict.fromkeys(bands))
        if set(wanted) >= set(self.bands):
            return self
        return self.select_bands(wanted)

    def check_bands(self, wanted: Sequence[str]) -> None:
        """Raise :class:`BandNotFoundError` listing unknown and available bands."""
        available = self.bands
        missing = [b for b in wanted if b not in available]
        if missing:
            raise BandNotFoundError(f"Band(s) not found: {missing}. Available bands: {available}")

    def select_records(self, ids: Iterable[str]) -> Self:
        """The records with the given ids (table order); ``KeyError`` lists unknown ids."""
        wanted = pa.array(list(ids), pa.string())
        selected = self.where(pc.field("id").isin(wanted))
        present = pc.is_in(wanted, value_set=selected._columns(["id"])["id"].cast(pa.string()))
        unknown = pc.filter(wanted, pc.invert(present)).to_pylist()
        if unknown:
            raise KeyError(f"record id(s) not in collection {self.name!r}: {unknown[:10]}")
        return selected

    # ------------------------------------------------------------ records

    @property
    def record_ids(self) -> list[str]:
        """Record ids in table order (as text)."""
        return columns.record_ids(self._columns(["id"]))

    @property
    def datetimes(self) -> np.ndarray:
        """Record datetimes as ``datetime64[us]`` (UTC, timezone-naive; NaT for nulls)."""
        return columns.datetimes(self._columns(["datetime"])["datetime"])

    def band_levels(self, band: str) -> list[BandLevels | None]:
        """Typed header views of ``band`` per record (``None`` where the struct is null)."""
        self.check_bands([band])
        return band_levels(self._table[metadata_column(band)])

    def hrefs(self, band: str) -> list[str | None]:
        """The asset URL of ``band`` per record (from ``assets[band].href``; ``None`` if absent
        from a map-typed ``assets``)."""
        self.check_bands([band])
        assets = self._table["assets"]
        if pa.types.is_struct(assets.type) and band not in {f.name for f in assets.type}:
            raise BandNotFoundError(
                f"Band {band!r} has no entry in the assets column "
                f"(asset keys: {[f.name for f in assets.type]})"
            )
        return columns.asset_hrefs(self._table, band)

    # ------------------------------------------------------------ Arrow access

    def head(self, n: int = 5, columns: Sequence[str] | None = None) -> pa.Table:
        """The first ``n`` records as a table."""
        if self._cached is None and self._lazy is not None:
            names = list(columns) if columns is not None else self.schema.names
            return self._lazy.stored.head(n, self._lazy.filter, names)
        table = self._table.slice(0, n)
        return table.select(list(columns)) if columns is not None else table

    def to_table(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The table (or a column selection of it)."""
        return self._columns(list(columns)) if columns is not None else self._table

    def to_batches(self, columns: Sequence[str] | None = None) -> list[pa.RecordBatch]:
        """The table as record batches."""
        return self.to_table(columns).to_batches()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return iter(self.to_batches())

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Arrow C stream of the table, ``geometry`` marked ``geoarrow.wkb`` (OGC:CRS84)."""
        from rasteret.index.geoarrow_stream import geoarrow_annotated

        return geoarrow_annotated(self._table).__arrow_c_stream__(requested_schema)

    # ------------------------------------------------------------ persistence

    def export(self, path: str | os.PathLike[str]) -> Self:
        """Write GeoParquet 1.1 to ``path`` (see :mod:`rasteret.index.parquet_write`).

        A ``.parquet`` path gives one file, anything else a ``year=/month=``
        partitioned directory that replaces a previous export there. Afterwards
        :attr:`uri` is ``path`` (the content is unchanged). Returns ``self``.
        """
        metadata = self._export_metadata()
        if self._cached is None and self._lazy is not None:  # stream: a part at a time
            stamp = parquet_write.write_collection_parts(self._lazy.export_parts(), path, metadata)
            self._cached = None
        else:
            stamp = parquet_write.write_collection_table(self._table, path, metadata)
        self._uri = os.fspath(path)
        self._stamp = stamp
        self._fingerprint = None
        self._whole_stored = True
        if self._cached is None:  # streamed: the new files are the source from now on
            from rasteret.index.lazy import LazyRecords

            required = self._lazy.require_band_metadata if self._lazy is not None else True
            access = self._lazy.local_access if self._lazy is not None else None
            self._lazy = LazyRecords(
                parquet.open_collection(path),
                os.fspath(path),
                require_band_metadata=required,
                local_access=access,  # the rows are the same: so is what they may read
            )
        else:
            self._lazy = None  # the rows are in memory and now equal the files at ``path``
        return self

    def _export_metadata(self) -> dict[str, str]:
        metadata = parquet.decode_metadata(self.schema.metadata)
        for key in ("ARROW:schema", parquet.PARTITIONING_KEY):
            metadata.pop(key, None)
        dates = self.date_range
        metadata.update(
            {
                "name": self.name,
                "data_source": self.data_source,
                "description": self.description,
                "date_range": ""
                if dates is None
                else f"{dates[0].isoformat()},{dates[1].isoformat()}",
                "created": dt.datetime.now(dt.UTC).isoformat(),
                "rasteret_collection_version": COLLECTION_VERSION,
                "geo": geoparquet.geo_metadata_json(self._columns(["geometry", "bbox"])),
            }
        )
        return metadata

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str], name: str = "") -> Self:
        """Same as :func:`rasteret.index.load`."""
        from rasteret.index.loading import load

        return cls.of(load(path, name=name))

    @classmethod
    def from_arrow(cls, data: Any, **kwargs: Any) -> Self:
        """Same as :func:`rasteret.index.as_collection`."""
        from rasteret.index.loading import as_collection

        return cls.of(as_collection(data, **kwargs))


def _type_signature(t: pa.DataType) -> str:
    """A type string that ignores list child names (Parquet renames ``item`` to ``element``)."""
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{_type_signature(f.type)}" for f in t) + ">"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return f"{type(t).__name__}<{_type_signature(t.value_type)}>"
    return str(t)


def _is_epsg(value: str) -> bool:
    return value.startswith("EPSG:") and value[5:].isdigit()


def _wkt_name(wkt: str) -> str:
    match = re.search(r'^\s*\w+\[\s*"([^"]*)"', wkt)
    return match.group(1) if match else wkt[:60]


def _naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
