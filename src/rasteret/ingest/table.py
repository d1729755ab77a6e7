"""``build_from_table``: a record table (Parquet, Arrow, stac-geoparquet) → Collection."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rasteret.index import CollectionTable

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import CollectionSchemaError
from rasteret.index.columns import distinct_asset_hrefs
from rasteret.ingest import records as rec
from rasteret.ingest.build import finish_build, load_cached
from rasteret.ingest.enrich import assets_per_sample
from rasteret.ingest.headers import index_headers
from rasteret.ingest.workspace import (
    build_key,
    cache_status,
    path_fingerprint,
    records_dir,
    table_fingerprint,
)

log = logging.getLogger("rasteret.ingest")

_HINTS = {
    "assets": (
        "or build 'assets' from a column of file URLs with href_column='<column>' "
        "(and band_index_map={'<band>': <sample index>, ...})"
    ),
    "geometry": "or pass enrich_cog=True to derive footprints from the TIFF headers",
}


def build_from_table(
    path_or_table: Any,
    *,
    name: str = "",
    data_source: str = "",
    workspace_dir: str | Path | None = None,
    column_map: Mapping[str, str] | None = None,
    href_column: str | None = None,
    band_index_map: Mapping[str, int] | None = None,
    columns: Sequence[str] | None = None,
    filter_expr: pc.Expression | None = None,
    enrich_cog: bool = True,
    band_codes: Sequence[str] | None = None,
    force: bool = False,
    max_concurrent: int = 64,
    url_rewrite_patterns: Mapping[str, str] | None = None,
) -> CollectionTable:
    """Build a :class:`~rasteret.index.Collection` from a table of records.

    ``path_or_table``: a Parquet file or directory, a ``pyarrow`` Table / RecordBatch /
    RecordBatchReader / Dataset, or any object exporting ``__arrow_c_stream__``.
    ``column_map={source: canonical}`` aliases columns to ``id``, ``datetime``,
    ``geometry``, ``assets``... ``href_column`` (+ ``band_index_map={band: sample}``)
    builds ``assets`` for one file per record; without ``band_index_map`` every sample
    becomes a band ``b1`` … ``bN``. With ``enrich_cog`` every asset's header is parsed into
    ``{band}_metadata`` (errors in ``{band}_error``), and missing ``geometry``, ``bbox``,
    ``proj:epsg`` and ``crs`` are derived from the headers.

    With ``name`` or ``workspace_dir`` the collection is written to
    ``<workspace>/<name>_records/`` and reused next time only if it was built from the
    same inputs and arguments; ``force=True`` rebuilds and replaces it.
    """
    label = rec.source_label(path_or_table)
    target = records_dir(name, workspace_dir)
    arguments = {
        "builder": "table",
        "data_source": data_source,
        "column_map": dict(column_map or {}),
        "href_column": href_column,
        "band_index_map": dict(band_index_map or {}),
        "columns": list(columns) if columns else None,
        "filter": str(filter_expr) if filter_expr is not None else None,
        "enrich_cog": enrich_cog,
        "band_codes": list(band_codes) if band_codes else None,
        "url_rewrite_patterns": dict(url_rewrite_patterns or {}),
    }
    if isinstance(path_or_table, str | Path):
        key = build_key(path_fingerprint(path_or_table), arguments)
        if cache_status(target, key, force) == "hit":
            return load_cached(target, require_band_metadata=enrich_cog)
        table = rec.read_source(path_or_table, columns=columns, filter_expr=filter_expr)
    else:
        table = rec.read_source(path_or_table, columns=columns, filter_expr=filter_expr)
        key = build_key(table_fingerprint(table), arguments)
        if cache_status(target, key, force) == "hit":
            return load_cached(target, require_band_metadata=enrich_cog)

    table = rec.apply_column_map(table, column_map, label)
    if "assets" not in table.column_names and href_column is None and "href" in table.column_names:
        href_column = "href"
    required = ["id", "datetime"]
    required += [] if href_column else ["assets"]
    required += [] if enrich_cog else ["geometry"]
    rec.require_columns(table, required, label, _HINTS)

    headers = None
    if href_column is not None and "assets" in table.column_names:
        log.warning("%s: href_column=%r replaces the table's 'assets'", label, href_column)
    if href_column is not None and band_index_map is None:
        if not enrich_cog:
            raise CollectionSchemaError(
                f"{label}: href_column without band_index_map needs enrich_cog=True (the bands "
                "are the samples of each file); or pass band_index_map={'<band>': 0, ...}"
            )
        table, headers = _assets_from_samples(
            table, href_column, label, url_rewrite_patterns, max_concurrent
        )
    elif href_column is not None:
        table = rec.assets_from_href(
            table, href_column, band_index_map, label, url_rewrite_patterns
        )
    if href_column is None or band_codes is not None:
        patterns = None if href_column else url_rewrite_patterns
        table = rec.normalise_assets(table, label, patterns=patterns, band_codes=band_codes)

    table = rec.normalise_ids(table, label)
    table = rec.normalise_datetime(table, label)
    if "geometry" in table.column_names:
        table = rec.normalise_geometry(table, label)

    bands = [f.name for f in table["assets"].type]
    if enrich_cog and headers is None and target is not None:  # resumable parts
        from rasteret.ingest.checkpoint import index_in_parts

        return index_in_parts(
            table,
            lambda hrefs: index_headers(hrefs, concurrency=max_concurrent),
            bands=bands,
            label=label,
            name=name,
            data_source=data_source,
            target=target,
            key=key,
            force=force,
        )
    if enrich_cog and headers is None:
        headers = index_headers(distinct_asset_hrefs(table, bands), concurrency=max_concurrent)
    return finish_build(
        table,
        label=label,
        name=name,
        data_source=data_source,
        target=target,
        key=key,
        headers=headers if enrich_cog else None,
        bands=bands,
    )


def _assets_from_samples(
    table: pa.Table,
    href_column: str,
    label: str,
    patterns: Mapping[str, str] | None,
    max_concurrent: int,
) -> tuple[pa.Table, dict]:
    if href_column not in table.column_names:
        raise CollectionSchemaError(
            f"{label}: href_column {href_column!r} is not a column (columns: {table.column_names})"
        )
    hrefs = rec.rewrite_urls(table[href_column].combine_chunks().cast(pa.string()), patterns)
    href_list = hrefs.to_pylist()
    headers = index_headers([h for h in href_list if h], concurrency=max_concurrent)
    assets = assets_per_sample(href_list, headers)
    return rec.set_column(table, "assets", assets), headers
