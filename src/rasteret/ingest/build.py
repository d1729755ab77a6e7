"""The shared tail of every build: enrich, finish the columns, report, persist."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from rasteret.index.schema import ERROR_SUFFIX, METADATA_SUFFIX
from rasteret.ingest.enrich import enrich_table, log_notes
from rasteret.ingest.headers import HeaderResult
from rasteret.ingest.records import normalise_bbox, strip_asset_credentials
from rasteret.ingest.report import check_and_log, report_from_table
from rasteret.ingest.workspace import BUILD_KEY

_LEADING = ("id", "datetime", "geometry", "bbox", "assets", "proj:epsg", "crs")


def order_columns(table: pa.Table) -> pa.Table:
    """Record columns first, user columns next, then ``{band}_metadata`` / ``_error`` pairs."""
    names = table.column_names
    band_cols = [n for n in names if n.endswith((METADATA_SUFFIX, ERROR_SUFFIX))]
    lead = [n for n in _LEADING if n in names]
    rest = [n for n in names if n not in lead and n not in band_cols]
    return table.select(lead + rest + band_cols)


def finish_build(
    table: pa.Table,
    *,
    label: str,
    name: str,
    data_source: str,
    target: Path | None,
    key: str,
    headers: Mapping[str, HeaderResult] | None = None,
    bands: Sequence[str] = (),
    extra_metadata: Mapping[str, str] | None = None,
    base: pa.Table | None = None,
) -> Any:
    """Enrich ``table`` with ``headers`` (when given), validate, export to ``target``.

    ``extra_metadata`` is added to the schema metadata; ``base`` is an already enriched
    collection table (a previous build) that the new rows are appended to.
    Returns the :class:`~rasteret.index.Collection` (reloaded from ``target`` when persisted).
    Raises :class:`~rasteret.ingest.report.NothingIndexedError` before writing anything when
    not a single asset could be indexed.
    """
    table = prepare_rows(table, headers, bands, label)
    return persist_rows(
        table,
        label=label,
        name=name,
        data_source=data_source,
        target=target,
        key=key,
        enriched=headers is not None,
        extra_metadata=extra_metadata,
        base=base,
    )


def prepare_rows(
    table: pa.Table,
    headers: Mapping[str, HeaderResult] | None,
    bands: Sequence[str],
    label: str,
) -> pa.Table:
    """Records made ready to persist: enriched with ``headers`` (when given), ``bbox``
    normalised, credentials stripped from hrefs."""
    if headers is not None:
        table, notes = enrich_table(table, headers, bands)
        log_notes(notes, label)
    table = normalise_bbox(table, label)
    return strip_asset_credentials(table, label)  # never save signed query strings


def persist_rows(
    table: pa.Table,
    *,
    label: str,
    name: str,
    data_source: str,
    target: Path | None,
    key: str,
    enriched: bool,
    extra_metadata: Mapping[str, str] | None = None,
    base: pa.Table | None = None,
) -> Any:
    """Prepared rows (:func:`prepare_rows`) → the validated collection, exported to
    ``target`` when given (see :func:`finish_build`)."""
    from rasteret.index import as_collection

    if base is not None:
        table = pa.concat_tables(
            [base.replace_schema_metadata(None), table], promote_options="permissive"
        )
    table = order_columns(table)
    table = table.replace_schema_metadata(build_metadata(key, name, data_source, extra_metadata))
    report = report_from_table(table)
    if enriched:
        check_and_log(report, label)
    collection = as_collection(
        table, name=name, data_source=data_source, require_band_metadata=enriched
    )
    if target is None:
        return collection
    return collection.export(str(target))


def build_metadata(
    key: str, name: str, data_source: str, extra: Mapping[str, str] | None = None
) -> dict[bytes, bytes]:
    """The schema metadata a build writes: its key (cache identity), name, source."""
    metadata = {BUILD_KEY: key.encode()}
    if name:
        metadata[b"name"] = name.encode()
    if data_source:
        metadata[b"data_source"] = data_source.encode()
    for k, v in (extra or {}).items():
        metadata[k.encode()] = v.encode()
    return metadata


def load_cached(target: Path, *, require_band_metadata: bool = True) -> Any:
    """Open the collection a previous build exported to ``target`` (builds with
    ``enrich_cog=False`` have no header structs: pass ``require_band_metadata=False``)."""
    from rasteret.index import load

    return load(str(target), require_band_metadata=require_band_metadata, local_roots="any")
