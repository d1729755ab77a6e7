"""``build_from_stac``: a STAC API search or a static catalog → Collection.

Order of work, so that mistakes cost nothing: arguments are checked (bbox, dates, band
map, query, filter) → the workspace cache is consulted (the key covers the whole query)
→ items are searched, the band map is checked against the first item and then all
items → headers are fetched (only for items not already in the collection when
appending) → the shared ingest tail enriches, validates and writes
``<workspace>/<create_name(name, date_range, data_source)>_stac/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rasteret.index import CollectionTable

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rasteret.index.columns import distinct_asset_hrefs
from rasteret.ingest.build import finish_build, load_cached
from rasteret.ingest.headers import HeaderResult, index_headers
from rasteret.ingest.manage import STAC_PARAMS_KEY, resolve_collection, stac_params
from rasteret.ingest.records import rewrite_urls
from rasteret.ingest.stac_args import (
    StacInputError,
    check_bbox,
    check_date_range,
    check_filter,
    check_max_items,
)
from rasteret.ingest.stac_bands import (
    check_band_arguments,
    check_band_map,
    check_first_item,
    infer_band_map,
)
from rasteret.ingest.stac_items import items_to_table, strip_credentials
from rasteret.ingest.stac_search import SearchSpec, check_query, search_api
from rasteret.ingest.stac_static import crawl_static
from rasteret.ingest.workspace import build_key, cache_status, stac_dir

log = logging.getLogger("rasteret.ingest")


def build_from_stac(
    *,
    name: str,
    stac_api: str,
    collection: str | None = None,
    data_source: str | None = None,
    band_map: Mapping[str, str] | None = None,
    band_index_map: Mapping[str, int] | None = None,
    bbox: Any = None,
    date_range: Any = None,
    workspace_dir: str | Path | None = None,
    force: bool = False,
    max_concurrent: int = 64,
    query: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | str | None = None,
    filter_lang: str | None = None,
    max_items: int | None = None,
    static_catalog: bool = False,
    append: bool = False,
    url_rewrite_patterns: Mapping[str, str] | None = None,
    sign: Callable[[str], str] | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    progress: bool | None = None,
    require_all_bands: bool = True,
) -> CollectionTable:
    """Build a :class:`~rasteret.index.Collection` from a STAC API or a static catalog.

    ``stac_api`` is the API root URL, or with ``static_catalog=True`` a
    ``catalog.json`` / ``collection.json`` / item collection on disk or over HTTP
    (relative hrefs are resolved). ``bbox`` is ``(west, south, east, north)`` in degrees,
    ``date_range`` ``(start, end)`` (ISO dates; the end day is included). ``query`` is a
    Query-extension dict, ``filter`` CQL2 (JSON dict or text); both are evaluated locally
    when the API does not support them. ``max_items`` caps the items.

    ``band_map={band code: asset key}`` (default: every single-band GeoTIFF asset under
    its own key) is checked against the items before any header is read;
    ``band_index_map={band code: sample}`` selects a band of a multi-band asset. Items
    lacking an asset get ``{band}_error``; files that fail to index too. With
    ``require_all_bands=False`` bands whose asset no item has are dropped, not an error.

    The collection is cached in ``<workspace>/<create_name(name, date_range,
    data_source)>_stac`` and reused only for the same query; ``force=True`` rebuilds.
    ``append=True`` keeps the existing records and fetches headers only for new items.
    ``sign`` (e.g. ``planetary_computer.sign``) is applied to hrefs for fetching only:
    saved hrefs never carry credentials or signing parameters.
    """
    label = f"STAC {'catalog' if static_catalog else 'API'} {stac_api}"
    if not isinstance(stac_api, str) or not stac_api.strip():
        raise StacInputError(f"stac_api must be a URL or catalog path, got {stac_api!r}")
    box = check_bbox(bbox)
    window = check_date_range(date_range)
    check_max_items(max_items)
    check_band_arguments(band_map, band_index_map)
    if query is not None:
        check_query(query)
    lang = check_filter(filter, filter_lang)
    if not static_catalog and not stac_api.startswith(("http://", "https://")):
        raise StacInputError(
            f"stac_api {stac_api!r} is not an http(s) URL; for a catalog.json on disk pass "
            "static_catalog=True"
        )
    source = data_source or collection or ""
    target = stac_dir(name, workspace_dir, date_range=date_range, data_source=source)
    params = {
        "stac_api": stac_api,
        "collection": collection,
        "data_source": source,
        "band_map": dict(band_map) if band_map else None,
        "band_index_map": dict(band_index_map) if band_index_map else None,
        "bbox": list(box) if box else None,
        "date_range": [str(d) for d in date_range] if date_range else None,
        "query": query,
        "filter": filter,
        "filter_lang": lang,
        "max_items": max_items,
        "static_catalog": static_catalog,
        "url_rewrite_patterns": dict(url_rewrite_patterns or {}) or None,
    }
    key = build_key({"stac": stac_api}, {**params, "window": window, "builder": "stac"})
    base = None
    if append and target.exists() and not force:
        base = load_cached(target).table
    elif cache_status(target, key, force) == "hit":
        return load_cached(target)

    spec = SearchSpec(stac_api, collection, box, *(window or (None, None)), query, filter, lang)
    spec = dataclasses.replace(spec, max_items=max_items)
    chosen: dict[str, Mapping[str, str]] = {}

    def on_first(item: dict) -> None:
        chosen["map"] = band_map or infer_band_map(item)
        check_first_item(chosen["map"], item, label)

    if static_catalog:
        items = crawl_static(spec, on_first=on_first, progress=progress)
    else:
        items = search_api(
            spec, on_first=on_first, timeout=timeout, retries=retries, progress=progress
        )
    if not items:
        raise StacInputError(
            f"{label}: no item of collection {collection!r} matches bbox={box}, "
            f"date_range={date_range}, query={query}, filter={filter}; widen the search"
        )
    final_map = check_band_map(
        dict(chosen["map"]), band_index_map, items, label, require_all=require_all_bands
    )
    if band_index_map:
        band_index_map = {b: i for b, i in band_index_map.items() if b in final_map}
    if base is not None:
        known = set(base["id"].to_pylist())
        items = [i for i in items if str(i.get("id")) not in known]
        log.info("%s: %d new item(s) to append to %s", label, len(items), target)
        if not items:
            return load_cached(target)

    originals: dict[str, str] = {}
    rewrite = _rewriter(url_rewrite_patterns, originals)
    table = items_to_table(items, final_map, band_index_map, rewrite=rewrite, label=label)
    bands = list(final_map)
    stored = {**params, "band_map": final_map}
    extra = {STAC_PARAMS_KEY.decode(): json.dumps(stored, default=str)}
    if base is None:  # a new build: in resumable parts (rasteret.ingest.checkpoint)
        from rasteret.ingest.checkpoint import index_in_parts

        return index_in_parts(
            table,
            lambda hrefs: _index(hrefs, originals, sign, max_concurrent, progress),
            bands=bands,
            label=label,
            name=name,
            data_source=source,
            target=target,
            key=key,
            force=force,
            extra_metadata=extra,
        )
    headers = _index(distinct_asset_hrefs(table, bands), originals, sign, max_concurrent, progress)
    return finish_build(
        table,
        label=label,
        name=name,
        data_source=source,
        target=target,
        key=key,
        headers=headers,
        bands=bands,
        extra_metadata=extra,
        base=base,
    )


def _rewriter(
    patterns: Mapping[str, str] | None, originals: dict[str, str]
) -> Callable[[str], str]:
    """Apply URL prefix rewrites and remember each stored href's original (signed) form."""

    def rewrite(href: str) -> str:
        if patterns:
            import pyarrow as pa

            href = rewrite_urls(pa.array([href]), patterns)[0].as_py()
        originals[strip_credentials(href)] = href
        return href

    return rewrite


def _index(
    stored_hrefs: list[str],
    originals: Mapping[str, str],
    sign: Callable[[str], str] | None,
    max_concurrent: int,
    progress: bool | None,
) -> dict[str, HeaderResult]:
    """Index headers through the fetchable (possibly signed) URLs, keyed by stored href.

    Error messages are rewritten to the stored href, so no signature leaks into them.
    """
    fetch_url = {}
    for href in stored_hrefs:
        url = originals.get(href, href)
        fetch_url[href] = sign(url) if sign is not None else url
    results = index_headers(fetch_url.values(), concurrency=max_concurrent, progress=progress)
    out: dict[str, HeaderResult] = {}
    for href, url in fetch_url.items():
        result = results[url]
        if url != href:
            error = result.error.replace(url, href) if result.error else None
            result = dataclasses.replace(result, url=href, error=error)
        out[href] = result
    return out


def update_collection(
    name: str | Path,
    *,
    workspace_dir: str | Path | None = None,
    date_range: Any = None,
    max_concurrent: int = 64,
    progress: bool | None = None,
    **overrides: Any,
) -> CollectionTable:
    """Append newer items to a cached STAC collection, reading only the new headers.

    Repeats the stored search with ``date_range`` (default: from the newest record's
    day to today); items already in the collection are skipped.
    """
    from rasteret.index import load

    path = resolve_collection(name, workspace_dir)
    params = stac_params(path)
    if params is None:
        raise StacInputError(f"{path}: not built from STAC (no stored search); rebuild it instead")
    existing = load(path, local_roots="any")  # a workspace collection: our own build
    if date_range is None:
        newest = existing.date_range
        start = newest[1].date() if newest else dt.date(1970, 1, 1)
        date_range = (start.isoformat(), dt.datetime.now(dt.UTC).date().isoformat())
    params = {**params, **overrides, "date_range": date_range}
    return build_from_stac(
        name=existing.name,
        workspace_dir=path,
        append=True,
        max_concurrent=max_concurrent,
        progress=progress,
        **params,
    )
