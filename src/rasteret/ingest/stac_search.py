"""Item search on a STAC API (pystac-client), with bounded retries and local fallbacks.

* HTTP 408/429/5xx, connection errors and timeouts are retried ``retries`` times with
  exponential backoff (``Retry-After`` honoured), then reported as
  :class:`StacSearchError` naming the API, the collection and the cause.
* ``query`` (Query extension) and ``filter`` (CQL2) are sent to the API when it
  advertises the extension (``conformsTo``); otherwise they are evaluated on the returned
  items (CQL2 locally needs the ``cql2`` package) and ``max_items`` is applied after.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rasteret.errors import RasteretError

log = logging.getLogger("rasteret.ingest")

RETRY_STATUS = (408, 429, 500, 502, 503, 504)


class StacSearchError(RasteretError, RuntimeError):
    """A STAC API or static catalog could not be searched (after retries)."""


@dataclass(frozen=True)
class SearchSpec:
    """What to search: validated before any request is made."""

    source: str  # API URL, or catalog / collection / item-collection path or URL
    collection: str | None
    bbox: tuple[float, float, float, float] | None
    start: str | None  # RFC 3339, UTC
    end: str | None
    query: Mapping[str, Any] | None = None
    filter: Mapping[str, Any] | str | None = None
    filter_lang: str | None = None
    max_items: int | None = None


class SearchProgress:
    """``items found: N`` on stderr, only when it is a terminal."""

    def __init__(self, desc: str, enabled: bool | None = None) -> None:
        tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.active = tty and enabled is not False
        self.desc = desc
        self.count = 0

    def add(self, n: int = 1) -> None:
        self.count += n
        if self.active:
            sys.stderr.write(f"\r{self.desc}: {self.count} item(s) found")
            sys.stderr.flush()

    def close(self) -> None:
        if self.active:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _retry(retries: int, backoff: float) -> Any:
    from urllib3 import Retry

    return Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUS,
        allowed_methods=None,  # POST searches are idempotent: retry them too
        raise_on_status=False,
        respect_retry_after_header=True,
    )


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    text = str(exc).strip() or type(exc).__name__
    if len(text) > 300:
        text = text[:300] + "..."
    return f"HTTP {status}: {text}" if status else text


def open_client(url: str, *, timeout: float, retries: int, backoff: float) -> Any:
    """A ``pystac_client.Client`` with bounded retries; errors become StacSearchError."""
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO

    io = StacApiIO(timeout=timeout, max_retries=_retry(retries, backoff))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Client.open(url, stac_io=io)
    except Exception as exc:
        raise StacSearchError(
            f"STAC API {url}: cannot open the landing page after {retries} retries "
            f"({_describe(exc)}). Check the URL (for a catalog.json on disk or over HTTP pass "
            "static_catalog=True) and your network"
        ) from exc


def search_api(
    spec: SearchSpec,
    *,
    on_first: Callable[[dict], None] | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 0.5,
    progress: bool | None = None,
) -> list[dict]:
    """Items matching ``spec`` (dicts, in API order), at most ``spec.max_items``."""
    from pystac_client.conformance import ConformanceClasses

    client = open_client(spec.source, timeout=timeout, retries=retries, backoff=backoff)
    server_query, local_query = spec.query, None
    if spec.query and not client.conforms_to(ConformanceClasses.QUERY):
        log.warning("%s does not support the Query extension: applying query locally", spec.source)
        server_query, local_query = None, spec.query
    server_filter, local_filter = spec.filter, None
    if spec.filter is not None and not client.conforms_to(ConformanceClasses.FILTER):
        log.warning("%s does not support CQL2 filters: applying filter locally", spec.source)
        server_filter, local_filter = None, _cql2(spec.filter, spec.source)
    local = local_query is not None or local_filter is not None
    kwargs: dict[str, Any] = {
        "collections": [spec.collection] if spec.collection else None,
        "bbox": list(spec.bbox) if spec.bbox else None,
        "datetime": f"{spec.start or '..'}/{spec.end or '..'}" if spec.start or spec.end else None,
        "query": dict(server_query) if server_query else None,
        "filter": server_filter,
        "filter_lang": spec.filter_lang if server_filter is not None else None,
        "max_items": None if local else spec.max_items,
        "limit": min(spec.max_items or 250, 250),
    }
    bar = SearchProgress(f"STAC search {spec.collection or ''}".strip(), progress)
    items: list[dict] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search = client.search(**{k: v for k, v in kwargs.items() if v is not None})
            for item in _items(search):
                if local_query and not query_matches(item, local_query):
                    continue
                if local_filter is not None and not local_filter.matches(item):
                    continue
                if not items and on_first is not None:
                    on_first(item)
                items.append(item)
                bar.add()
                if spec.max_items is not None and len(items) >= spec.max_items:
                    break
    except RasteretError:
        raise
    except Exception as exc:
        raise StacSearchError(
            f"STAC API {spec.source}: search of collection {spec.collection!r} failed after "
            f"{retries} retries ({_describe(exc)}); {len(items)} item(s) had been received. "
            "Try again later, narrow bbox / date_range, or raise retries= / timeout="
        ) from exc
    finally:
        bar.close()
    if not items:
        _explain_empty(client, spec)
    return items


def _items(search: Any) -> Iterator[dict]:
    for page in search.pages_as_dicts():
        yield from page.get("features") or []


def _explain_empty(client: Any, spec: SearchSpec) -> None:
    if not spec.collection:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            known = [c.id for c in client.get_collections()]
    except Exception:
        return
    if known and spec.collection not in known:
        raise StacSearchError(
            f"STAC API {spec.source} has no collection {spec.collection!r}; its collections: "
            f"{sorted(known)}"
        )


def _cql2(expression: Mapping[str, Any] | str, source: str) -> Any:
    try:
        import cql2
    except ImportError:
        raise StacSearchError(
            f"STAC API {source} does not support CQL2 filters (no Filter conformance class) "
            "and the cql2 package is not installed to apply the filter locally: "
            "pip install cql2, or drop filter= and use Collection.where() after the build"
        ) from None
    try:
        return cql2.Expr(dict(expression) if isinstance(expression, Mapping) else expression)
    except Exception as exc:
        raise StacSearchError(f"filter {expression!r} is not valid CQL2: {exc}") from exc


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "startsWith": lambda a, b: isinstance(a, str) and a.startswith(b),
    "endsWith": lambda a, b: isinstance(a, str) and a.endswith(b),
    "contains": lambda a, b: a is not None and b in a,
    "in": lambda a, b: a in b,
}


def check_query(query: Mapping[str, Any]) -> None:
    """A Query-extension dict: ``{property: {op: value}}`` with known operators."""
    if not isinstance(query, Mapping):
        raise ValueError(f"query must be a dict {{property: {{op: value}}}}, got {query!r}")
    for name, ops in query.items():
        if not isinstance(ops, Mapping) or not ops:
            raise ValueError(
                f"query[{name!r}] must be a dict {{op: value}} with op in {sorted(_OPS)}, "
                f"got {ops!r}"
            )
        unknown = [op for op in ops if op not in _OPS]
        if unknown:
            raise ValueError(
                f"query[{name!r}]: unknown operator(s) {unknown}; use one of {sorted(_OPS)}"
            )


def query_matches(item: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    """Whether ``item`` satisfies a Query-extension dict (all terms AND-ed)."""
    props = item.get("properties") or {}
    for name, ops in query.items():
        value = item.get(name) if name in ("id", "collection") else props.get(name)
        for op, expected in ops.items():
            try:
                if not _OPS[op](value, expected):
                    return False
            except TypeError:
                return False
    return True
