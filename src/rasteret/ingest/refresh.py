"""Re-index the assets of a collection whose objects changed since it was built.

The index records each object's size, ETag and last-modified time
(``{band}_metadata.file_size`` / ``etag`` / ``last_modified``): remote objects are
compared by size and ETag, local files by size and modification time.
:func:`check_assets` sends one HEAD per distinct asset and compares; :func:`refresh`
then re-reads only the changed headers (one prefix request each) and returns a new
collection with their ``{band}_metadata`` (or ``{band}_error``) replaced. Assets that
failed to index at build time (``{band}_error``, no metadata) count as changed once they
are reachable, so a transient failure is repaired by ``refresh()``. STAC ``raster:bands``
and ``proj:*`` are applied to re-read headers as at build time, and a re-read header the
collection's content checks refuse becomes its asset's ``{band}_error`` (as at build
time: :func:`rasteret.ingest.enrich.screen_content`). Every request goes
through the ``reader`` given (default: the default reader, taken once per call).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rasteret._async import run_sync
from rasteret.errors import FetchError, ObjectNotFoundError, StaleIndexError
from rasteret.index.schema import BAND_METADATA_TYPE, error_column, metadata_column

if TYPE_CHECKING:
    from rasteret.fetch import RangeReader
    from rasteret.index import CollectionTable

log = logging.getLogger("rasteret.ingest")


@dataclass(frozen=True)
class AssetChange:
    """One asset whose object is not what the index recorded."""

    record_id: str
    band: str
    href: str
    reason: str


@dataclass(frozen=True)
class RefreshReport:
    """What :func:`check_assets` / :func:`refresh` found: objects checked, changed, failed."""

    checked: int
    changed: tuple[AssetChange, ...] = ()
    failed: tuple[AssetChange, ...] = ()  # missing objects, HEAD errors, re-index errors
    reindexed: int = 0

    @property
    def stale(self) -> bool:
        return bool(self.changed or self.failed)

    def summary(self, limit: int = 5) -> str:
        parts = [f"{self.checked} object(s) checked, {len(self.changed)} changed"]
        if self.reindexed:
            parts.append(f"{self.reindexed} re-indexed")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        lines = [", ".join(parts)]
        for change in (*self.changed, *self.failed)[:limit]:
            lines.append(f"  {change.record_id}/{change.band}: {change.href}: {change.reason}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class _Asset:
    row: int
    record_id: str
    band: str
    href: str
    band_index: int
    size: int | None
    etag: str | None
    last_modified: str | None
    error: str | None = None  # set when the asset was never indexed (``{band}_error``)


def _assets(collection: CollectionTable, bands: Sequence[str] | None) -> list[_Asset]:
    table = collection.table
    ids = [str(i) for i in table["id"].to_pylist()]
    out = []
    for band in bands or collection.bands:
        hrefs = collection.hrefs(band)
        column = table[metadata_column(band)]
        combined = column.combine_chunks()
        sizes = combined.field("file_size").to_pylist()
        etags = combined.field("etag").to_pylist()
        modified = combined.field("last_modified").to_pylist()
        indexed = combined.is_valid().to_pylist()
        errors = (
            table[error_column(band)].to_pylist()
            if error_column(band) in table.column_names
            else [None] * len(hrefs)
        )
        indices = _band_indices(table, band)
        for row, href in enumerate(hrefs):
            if href is None:
                continue
            identity = (sizes[row], etags[row], modified[row])
            error = None if indexed[row] else (errors[row] or "no header in the index")
            out.append(_Asset(row, ids[row], band, href, indices[row], *identity, error))
    return out


def _band_indices(table: pa.Table, band: str) -> list[int]:
    assets = table["assets"].combine_chunks()
    try:
        values = assets.field(band).field("band_index").to_pylist()
    except (KeyError, pa.ArrowInvalid):
        return [0] * table.num_rows
    return [int(v or 0) for v in values]


async def _check(
    assets: list[_Asset], concurrency: int, reader: RangeReader
) -> tuple[list[Any], list[Any]]:
    from rasteret.fetch import ObjectInfo

    by_href: dict[str, _Asset] = {}
    for asset in assets:
        known = by_href.get(asset.href)
        if known is None or (known.error is None and asset.error is not None):
            by_href[asset.href] = asset
    limit = asyncio.Semaphore(concurrency)
    changed: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []

    async def one(href: str, asset: _Asset) -> None:
        expected = ObjectInfo(asset.size, asset.etag, asset.last_modified)
        async with limit:
            try:
                await reader.head(href, expected=expected)
                if asset.error is not None:  # reachable now: index it
                    changed.append((href, f"not indexed at build time ({asset.error})"))
            except StaleIndexError as exc:
                changed.append((href, getattr(exc, "reason", str(exc))))
            except ObjectNotFoundError:
                failed.append((href, "object not found"))
            except FetchError as exc:
                failed.append((href, getattr(exc, "reason", str(exc))))

    await asyncio.gather(*(one(h, a) for h, a in by_href.items()))
    return changed, failed


def _expand(assets: list[_Asset], found: list[tuple[str, str]]) -> tuple[AssetChange, ...]:
    reasons = dict(found)
    return tuple(
        AssetChange(a.record_id, a.band, a.href, reasons[a.href])
        for a in assets
        if a.href in reasons
    )


def _resolve(reader: RangeReader | None) -> RangeReader:
    if reader is not None:
        return reader
    from rasteret.fetch import default_reader

    return default_reader()


def check_assets(
    collection: CollectionTable,
    bands: Sequence[str] | None = None,
    *,
    concurrency: int = 64,
    reader: RangeReader | None = None,
) -> RefreshReport:
    """HEAD every distinct asset of ``bands`` (default: all) and report the changed ones."""
    assets = _assets(collection, bands)
    changed, failed = run_sync(_check(assets, concurrency, _resolve(reader)))
    return RefreshReport(
        checked=len({a.href for a in assets}),
        changed=_expand(assets, changed),
        failed=_expand(assets, failed),
    )


def refresh_with_report(
    collection: CollectionTable,
    bands: Sequence[str] | None = None,
    *,
    concurrency: int = 64,
    reader: RangeReader | None = None,
) -> tuple[CollectionTable, RefreshReport]:
    """:func:`refresh`, also returning the :class:`RefreshReport`."""
    from rasteret.index import band_metadata_from_header
    from rasteret.index.columns import asset_hrefs
    from rasteret.ingest.enrich import record_projection, screen_content, stac_band
    from rasteret.ingest.headers import index_headers
    from rasteret.ingest.stac_raster import complete_metadata

    reader = _resolve(reader)
    report = check_assets(collection, bands, concurrency=concurrency, reader=reader)
    if not report.changed:
        return collection, report
    hrefs = list(dict.fromkeys(c.href for c in report.changed))
    headers = index_headers(hrefs, reader=reader, concurrency=concurrency, progress=False)
    changed_keys = {(c.record_id, c.band) for c in report.changed}
    table = collection.table
    projection = record_projection(table)
    failed = list(report.failed)
    reindexed = 0
    for band in bands or collection.bands:
        targets = [a for a in _assets(collection, [band]) if (a.record_id, a.band) in changed_keys]
        if not targets:
            continue
        meta_name, error_name = metadata_column(band), error_column(band)
        stac = stac_band(table, band)
        metadata = table[meta_name].to_pylist()
        errors = (
            table[error_name].to_pylist()
            if error_name in table.column_names
            else [None] * len(metadata)
        )
        for asset in targets:
            result = headers[asset.href]
            try:
                if not result.ok:
                    raise ValueError(result.error)
                parsed = band_metadata_from_header(result.header, asset.band_index, result.info)
                metadata[asset.row] = complete_metadata(
                    parsed, stac[asset.row], projection[asset.row]
                )
                errors[asset.row] = None
                reindexed += 1
            except Exception as exc:  # keep the record, say why
                metadata[asset.row] = None
                errors[asset.row] = str(exc)
                failed.append(AssetChange(asset.record_id, band, asset.href, str(exc)))
        # a re-read header the collection's content checks refuse fails alone, as at build
        structs, refused = screen_content(
            pa.array(metadata, BAND_METADATA_TYPE), asset_hrefs(table, band)
        )
        by_row = {asset.row: asset for asset in targets}
        for row, message in refused.items():
            errors[row] = message
            if row in by_row:
                failed.append(AssetChange(by_row[row].record_id, band, by_row[row].href, message))
                reindexed -= 1
        table = _set(table, meta_name, structs)
        table = _set(table, error_name, pa.array(errors, pa.string()))
    report = RefreshReport(report.checked, report.changed, tuple(failed), reindexed)
    return collection._view(table), report


def refresh(
    collection: CollectionTable,
    bands: Sequence[str] | None = None,
    *,
    concurrency: int = 64,
    reader: RangeReader | None = None,
) -> CollectionTable:
    """A collection whose changed assets are re-indexed (one HEAD per asset, one header
    read per changed one); logs what changed. Unchanged collections come back as is."""
    refreshed, report = refresh_with_report(
        collection, bands, concurrency=concurrency, reader=reader
    )
    if report.stale:
        log.warning("refresh %s: %s", collection.name or "collection", report.summary())
    return refreshed


def _set(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    if name in table.column_names:
        index = table.column_names.index(name)
        return table.set_column(index, pa.field(name, values.type), values)
    return table.append_column(name, values)
