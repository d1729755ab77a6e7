"""Static STAC: catalogs / collections / item collections on disk or over HTTP.

The catalog tree (``child`` links) is read first, then item documents in parallel,
in link order. Relative hrefs are resolved against the document they appear in. The
first item is handed to ``on_first`` before any other item is read, so a band map that
fits nothing fails after one item, not after a full crawl. ``bbox`` / dates are
applied to the items client-side (the whole end day included).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rasteret.ingest.stac_items import item_datetime
from rasteret.ingest.stac_search import SearchProgress, SearchSpec, StacSearchError

log = logging.getLogger("rasteret.ingest")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def _local(href: str) -> Path | None:
    if href.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(href).path))
    if _URL.match(href):
        return None
    return Path(href).expanduser()


def read_json(href: str, *, timeout: float = 30.0, retries: int = 3) -> dict:
    """A JSON document from a local path / ``file://`` / ``http(s)://`` (retried)."""
    path = _local(href)
    try:
        if path is not None:
            return json.loads(path.read_text())
        last: Exception | None = None
        for _ in range(retries + 1):
            try:
                with urllib.request.urlopen(href, timeout=timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                last = exc
                if exc.code not in (408, 429, 500, 502, 503, 504):
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = exc
        raise last or OSError("unreachable")
    except FileNotFoundError:
        raise StacSearchError(f"{href}: no such file") from None
    except json.JSONDecodeError as exc:
        raise StacSearchError(f"{href}: not a JSON document ({exc})") from None
    except StacSearchError:
        raise
    except Exception as exc:
        raise StacSearchError(f"{href}: cannot be read ({exc})") from exc


def join(base: str, href: str) -> str:
    """``href`` resolved against the document ``base`` it appears in."""
    if _URL.match(href) or href.startswith("/"):
        return href
    if _URL.match(base) and not base.startswith("file://"):
        return urllib.parse.urljoin(base, href)
    local = _local(base)
    assert local is not None
    return str((local.parent / href).resolve())


def _absolute(source: str) -> str:
    local = _local(source)
    return str(local.resolve()) if local is not None else source


def _links(doc: Mapping[str, Any], rel: str, base: str) -> list[str]:
    return [join(base, link["href"]) for link in doc.get("links") or [] if link.get("rel") == rel]


def _with_self(item: dict, href: str) -> dict:
    links = [link for link in item.get("links") or [] if link.get("rel") != "self"]
    item["links"] = [{"rel": "self", "href": href}, *links]
    return item


def crawl_static(
    spec: SearchSpec,
    *,
    on_first: Callable[[dict], None] | None = None,
    workers: int = 16,
    progress: bool | None = None,
) -> list[dict]:
    """Items of a static catalog / collection / item collection matching ``spec``."""
    root_href = _absolute(spec.source)
    root = read_json(root_href)
    kind = root.get("type")
    if kind == "Feature":
        inline = [_with_self(root, root_href)]
    elif kind == "FeatureCollection":
        inline = [_with_self(f, root_href) for f in root.get("features") or []]
    elif kind in ("Catalog", "Collection") or "links" in root:
        inline = None
    else:
        raise StacSearchError(
            f"{root_href}: not a STAC catalog, collection, item or item collection (type {kind!r})"
        )
    bar = SearchProgress(f"static STAC {Path(root_href).name}", progress)
    try:
        if inline is not None:
            items = [i for i in inline if _wanted(i, spec)]
            if items and on_first is not None:
                on_first(items[0])
            items = items[: spec.max_items] if spec.max_items else items
            bar.add(len(items))
            return items
        item_links = _item_links(root, root_href, spec)
        return _read_items(item_links, spec, on_first, workers, bar)
    finally:
        bar.close()


def _item_links(root: dict, root_href: str, spec: SearchSpec) -> list[str]:
    """Item document hrefs under the tree, restricted to ``spec.collection`` when present."""
    per_collection: dict[str, list[str]] = {}
    order: list[tuple[str | None, str]] = []
    seen: set[str] = {root_href}
    queue: list[tuple[str, dict, str | None]] = [(root_href, root, None)]
    while queue:
        href, doc, owner = queue.pop(0)
        if doc.get("type") == "Collection":
            owner = doc.get("id")
            per_collection.setdefault(owner, [])
        for link in _links(doc, "item", href):
            order.append((owner, link))
        children = [c for c in _links(doc, "child", href) if c not in seen]
        seen.update(children)
        for child in children:
            queue.append((child, read_json(child), owner))
    wanted = spec.collection
    if wanted and wanted in per_collection:
        return [link for owner, link in order if owner == wanted]
    if wanted and per_collection and root.get("type") != "Collection":
        raise StacSearchError(
            f"{root_href}: the catalog has no collection {wanted!r} (collections: "
            f"{sorted(per_collection)}); pass one of them, or collection=None for every item"
        )
    return [link for _, link in order]


def _read_items(
    links: list[str],
    spec: SearchSpec,
    on_first: Callable[[dict], None] | None,
    workers: int,
    bar: SearchProgress,
) -> list[dict]:
    items: list[dict] = []
    failures: list[str] = []

    def fetch(href: str) -> dict | str:
        try:
            return _with_self(read_json(href), href)
        except StacSearchError as exc:
            return str(exc)

    def take(result: dict | str) -> None:
        if isinstance(result, str):
            failures.append(result)
        elif _wanted(result, spec):
            items.append(result)
            bar.add()

    position = 0
    if links:  # the first item alone, so a band map that fits nothing fails before the crawl
        first = fetch(links[0])
        position = 1
        if isinstance(first, dict) and on_first is not None:
            on_first(first)
        take(first)
    chunk = max(workers * 4, 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while position < len(links) and not (spec.max_items and len(items) >= spec.max_items):
            batch = links[position : position + chunk]
            position += len(batch)
            for result in pool.map(fetch, batch):
                take(result)
    if spec.max_items:
        items = items[: spec.max_items]
    if failures:
        if not items:
            raise StacSearchError(
                f"{spec.source}: none of {len(failures)} item document(s) could be read: "
                + "; ".join(failures[:3])
            )
        log.warning(
            "%s: %d item document(s) could not be read (skipped), e.g. %s",
            spec.source,
            len(failures),
            "; ".join(failures[:3]),
        )
    return items


def _wanted(item: Mapping[str, Any], spec: SearchSpec) -> bool:
    if spec.collection and item.get("collection") not in (None, spec.collection):
        return False
    if spec.bbox is not None:
        box = item.get("bbox")
        if box and len(box) in (4, 6):
            xmin, ymin, xmax, ymax = box[:2] + box[2:4] if len(box) == 4 else box[:2] + box[3:5]
            w, s, e, n = spec.bbox
            if xmax < w or xmin > e or ymax < s or ymin > n:
                return False
    if spec.start or spec.end:
        props = item.get("properties") or {}
        lo = _time(props.get("start_datetime") or item_datetime(item))
        hi = _time(props.get("end_datetime") or item_datetime(item))
        if lo is None or hi is None:
            return False
        if spec.end and lo > _time(spec.end):
            return False
        if spec.start and hi < _time(spec.start):
            return False
    return True


def _time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
