"""``build_from_files``: a folder, glob or list of GeoTIFF paths / URLs → Collection."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rasteret.index import CollectionTable

import datetime as dt
import fnmatch
import glob
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from rasteret.fetch.secrets import redact
from rasteret.index.schema import ASSET_TYPE
from rasteret.ingest.build import finish_build, load_cached
from rasteret.ingest.enrich import assets_per_sample
from rasteret.ingest.headers import index_headers
from rasteret.ingest.records import parse_datetime_text
from rasteret.ingest.workspace import build_key, cache_status, files_fingerprint, records_dir

log = logging.getLogger("rasteret.ingest")

Source = str | os.PathLike[str]
GroupKey = tuple[str, str] | tuple[str, str, int]
_SIDECARS = (".aux.xml", ".ovr", ".msk", ".xml", ".md5")
_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})(-?)(\d{2})\2(\d{2})(?!\d)")


def _is_url(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text)) and not text.startswith("file://")


def _matches(name: str, pattern: str) -> bool:
    lower = name.lower()
    return fnmatch.fnmatch(lower, pattern.lower()) and not lower.endswith(_SIDECARS)


def expand_sources(
    sources: Source | Sequence[Source], pattern: str = "*.tif*", recursive: bool = True
) -> list[str]:
    """Files named by ``sources``: URLs as given, local paths absolute, folders and globs
    expanded (sorted; hidden files and GDAL sidecars such as ``.aux.xml`` / ``.ovr`` skipped).
    A listed local file that does not exist is kept, so its build error is reported."""
    items = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    out: dict[str, None] = {}
    for item in items:
        text = os.fspath(item)
        if text.startswith("file://"):
            text = unquote(urlsplit(text).path)
        if _is_url(text):
            out[text] = None
            continue
        path = Path(text).expanduser()
        if path.is_dir():
            walker = path.rglob("*") if recursive else path.glob("*")
            found = sorted(
                p
                for p in walker
                if p.is_file()
                and _matches(p.name, pattern)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                log.warning("%s: no file matches %r", path, pattern)
            out.update((str(p.absolute()), None) for p in found)
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            out.update(
                (str(p.absolute()), None)
                for p in found
                if p.is_file() and not p.name.lower().endswith(_SIDECARS)
            )
        else:
            out[str(path.absolute())] = None
    if not out:
        raise FileNotFoundError(f"no files found in {sources!r} (pattern {pattern!r})")
    return list(out)


def _path_parts(href: str) -> list[str]:
    path = urlsplit(href).path if _is_url(href) else href
    return [p for p in PurePosixPath(path.replace(os.sep, "/")).parts if p not in ("/", "")]


def _stem(name: str) -> str:
    lower = name.lower()
    for ext in (".tiff", ".tif", ".gtiff", ".cog"):
        if lower.endswith(ext):
            return name[: -len(ext)]
    return name.rsplit(".", 1)[0] if "." in name else name


def record_ids(hrefs: Sequence[str]) -> list[str]:
    """File stems; duplicates get their path below the common parent (then ``-2``, ``-3``)."""
    stems = [_stem(_path_parts(h)[-1]) if _path_parts(h) else h for h in hrefs]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    dup_parts = [_path_parts(h) for h, s in zip(hrefs, stems, strict=True) if counts[s] > 1]
    common = os.path.commonprefix(dup_parts) if dup_parts else []  # noqa: RUF071 (lists)
    ids: list[str] = []
    seen: dict[str, int] = {}
    for href, stem in zip(hrefs, stems, strict=True):
        rid = stem
        if counts[stem] > 1:
            parts = _path_parts(href)[len(common) :] or _path_parts(href)[-1:]
            rid = "/".join([*parts[:-1], _stem(parts[-1])])
        seen[rid] = seen.get(rid, 0) + 1
        ids.append(rid if seen[rid] == 1 else f"{rid}-{seen[rid]}")
    return ids


def datetime_from_name(href: str) -> dt.datetime | None:
    """The first valid ``YYYYMMDD`` / ``YYYY-MM-DD`` in the file name, else in its folders."""
    for part in reversed(_path_parts(href)):
        for match in _DATE.finditer(part):
            year, _, month, day = match.groups()
            try:
                return dt.datetime(int(year), int(month), int(day))
            except ValueError:
                continue
    return None


def _as_datetime(value: Any, href: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return parse_datetime_text(value, href)
    raise TypeError(f"{href}: datetime callable returned {type(value).__name__}, not a datetime")


def _datetimes(hrefs: Sequence[str], datetime: Callable[[str], Any] | None) -> list:
    values = [
        _as_datetime(datetime(h), h) if datetime is not None else datetime_from_name(h)
        for h in hrefs
    ]
    missing = [h for h, v in zip(hrefs, values, strict=True) if v is None]
    if missing:
        log.warning(
            "%d file(s) have no datetime (none found in the file name; pass datetime=callable): %s",
            len(missing),
            ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else ""),
        )
    return values


def build_from_files(
    sources: Source | Sequence[Source],
    *,
    name: str = "",
    data_source: str = "",
    workspace_dir: str | Path | None = None,
    bands: Sequence[str] | None = None,
    pattern: str = "*.tif*",
    recursive: bool = True,
    datetime: Callable[[str], Any] | None = None,
    group_by: Callable[[str], GroupKey] | None = None,
    force: bool = False,
    max_concurrent: int = 64,
    client: Any = None,
) -> CollectionTable:
    """Index GeoTIFFs into a :class:`~rasteret.index.Collection`, one record per file.

    ``sources``: a folder (searched for ``pattern``, recursively by default), a glob, a
    path / URL, or a list of them. Bands are the samples of each file, ``b1`` … ``bN``,
    unless ``bands=[...]`` names them. ``datetime(path)`` gives each record's time;
    otherwise a ``YYYYMMDD`` / ``YYYY-MM-DD`` in the file (or folder) name is used, else
    it is null (with a warning). ``group_by(path) -> (record_id, band[, band_index])``
    gathers per-band files into records (e.g. ``<scene>_<band>.tif``). Files that cannot be
    indexed keep their record, with the cause in ``{band}_error``.

    A persisted build (``name`` / ``workspace_dir``) runs in resumable parts
    (:mod:`rasteret.ingest.checkpoint`); ``client`` (a ``dask.distributed.Client``) fetches
    the parts' headers on the cluster's workers, each with its own reader, and merges them
    into the same collection.
    """
    hrefs = expand_sources(sources, pattern, recursive)
    target = records_dir(name, workspace_dir)
    arguments = {
        "builder": "files",
        "data_source": data_source,
        "bands": list(bands) if bands is not None else None,
        "datetime": datetime,
        "group_by": group_by,
    }
    key = build_key(files_fingerprint(hrefs), arguments)
    if cache_status(target, key, force) == "hit":
        return load_cached(target)
    label = (
        redact(str(sources)) if isinstance(sources, str | os.PathLike) else f"{len(hrefs)} files"
    )
    if target is not None:  # persisted: in parts, resumable (rasteret.ingest.checkpoint)
        return _build_in_parts(
            hrefs,
            target=target,
            key=key,
            label=label,
            name=name,
            data_source=data_source,
            bands=bands,
            datetime=datetime,
            group_by=group_by,
            force=force,
            max_concurrent=max_concurrent,
            client=client,
        )
    if client is not None:
        raise ValueError("client= needs a persisted build: pass name= or workspace_dir=")

    headers = index_headers(hrefs, concurrency=max_concurrent)
    if group_by is None:
        ids = record_ids(hrefs)
        times = _datetimes(hrefs, datetime)
        assets = assets_per_sample(hrefs, headers, bands)
    else:
        ids, times, assets = _grouped(hrefs, group_by, datetime)
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "datetime": pa.array(times, pa.timestamp("us")),
            "assets": assets,
        }
    )
    return finish_build(
        table,
        label=label,
        name=name,
        data_source=data_source,
        target=target,
        key=key,
        headers=headers,
        bands=[f.name for f in assets.type],
    )


def _build_in_parts(
    hrefs: Sequence[str],
    *,
    target: Path,
    key: str,
    label: str,
    name: str,
    data_source: str,
    bands: Sequence[str] | None,
    datetime: Callable[[str], Any] | None,
    group_by: Callable[[str], GroupKey] | None,
    force: bool,
    max_concurrent: int,
    client: Any = None,
) -> CollectionTable:
    """:func:`build_from_files` a part of :data:`~rasteret.ingest.checkpoint.PART_RECORDS`
    records at a time, resuming the parts an interrupted run of the same build wrote."""
    from rasteret.index.validate import validate_table
    from rasteret.ingest.build import build_metadata, order_columns
    from rasteret.ingest.checkpoint import BuildParts, batches, finish_parts

    parts = BuildParts(target, key)
    parent_existed = target.parent.exists()
    if force:
        parts.clear()
    done = parts.done_ids()
    if group_by is None:
        ids = record_ids(hrefs)
        times = _datetimes(hrefs, datetime)
        records = [(i, t, [h]) for i, t, h in zip(ids, times, hrefs, strict=True)]
    else:
        ids, times, assets = _grouped(hrefs, group_by, datetime)
        rows = assets.to_pylist()
        records = [
            (i, t, [a["href"] for a in row.values() if a])
            for i, t, row in zip(ids, times, rows, strict=True)
        ]
        by_id = dict(zip(ids, rows, strict=True))
    todo = [r for r in records if r[0] not in done]
    jobs = [
        (
            list(part),
            None if group_by is None else {i: by_id[i] for i, _, _ in part},
            None if bands is None else list(bands),
            label,
            max_concurrent,
        )
        for part in batches(todo)
    ]
    metadata = build_metadata(key, name, data_source)

    def write(rows: pa.Table) -> None:
        validate_table(order_columns(rows), source=label)  # one part at a time
        parts.write(order_columns(rows).replace_schema_metadata(metadata))

    if client is None:
        for job in jobs:
            write(index_part(*job))
    else:  # header fetches on the cluster's workers; parts written here as they finish
        from distributed import as_completed

        futures = client.map(index_part, *zip(*jobs, strict=True), pure=False) if jobs else []
        for future in as_completed(futures):
            write(future.result())
            future.release()
    return finish_parts(
        parts, target, label=label, name=name, data_source=data_source, created=not parent_existed
    )


def index_part(
    part: list[tuple[str, Any, list[str]]],
    rows: dict[str, dict] | None,
    bands: list[str] | None,
    label: str,
    max_concurrent: int,
) -> pa.Table:
    """The prepared rows of one part of a file build: ``part`` is ``(record id, time,
    hrefs)`` per record; ``rows`` the grouped assets of its records (``None``: one record
    per file, bands from the samples). Runs anywhere (a dask worker too): it fetches the
    part's headers with that process's reader."""
    from rasteret.ingest.build import prepare_rows

    part_hrefs = [h for _, _, files in part for h in files]
    headers = index_headers(part_hrefs, concurrency=max_concurrent)
    if rows is None:
        part_assets = assets_per_sample(part_hrefs, headers, bands)
    else:
        names = list(dict.fromkeys(b for i, _, _ in part for b in rows[i]))
        part_assets = pa.array(
            [{b: rows[i].get(b) for b in names} for i, _, _ in part],
            type=pa.struct([(b, ASSET_TYPE) for b in names]),
        )
    table = pa.table(
        {
            "id": pa.array([i for i, _, _ in part], pa.string()),
            "datetime": pa.array([t for _, t, _ in part], pa.timestamp("us")),
            "assets": part_assets,
        }
    )
    return prepare_rows(table, headers, [f.name for f in part_assets.type], label)


def _grouped(
    hrefs: Sequence[str],
    group_by: Callable[[str], GroupKey],
    datetime: Callable[[str], Any] | None,
) -> tuple[list[str], list, pa.StructArray]:
    groups: dict[str, dict[str, dict]] = {}
    first_file: dict[str, str] = {}
    band_names: dict[str, None] = {}
    for href in hrefs:
        key = group_by(href)
        record, band = str(key[0]), str(key[1])
        index = int(key[2]) if len(key) > 2 else 0
        members = groups.setdefault(record, {})
        if band in members:
            raise ValueError(
                f"group_by puts two files in record {record!r} band {band!r}: "
                f"{members[band]['href']} and {href}"
            )
        members[band] = {"href": href, "band_index": index}
        first_file.setdefault(record, href)
        band_names[band] = None
    ids = list(groups)
    times = _datetimes([first_file[r] for r in ids], datetime)
    names = list(band_names)
    rows = [{b: groups[r].get(b) for b in names} for r in ids]
    assets = pa.array(rows, type=pa.struct([(b, ASSET_TYPE) for b in names]))
    return ids, times, assets
