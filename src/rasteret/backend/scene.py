"""One GeoTIFF opened on its own grid: ``xr.open_dataset("scene.tif", engine="rasteret")``.

A local path or URL (``http(s)://``, ``s3://``, ``gs://``, ``az://``...) ending in
``.tif`` / ``.tiff`` (query string aside) is a *scene*. Its header is read once, with
the engine's reader (one prefix request, plus what the parser asks for when the header
does not fit), and indexed in memory with the file ingest's record builder
(:mod:`rasteret.ingest.files`: one record, one band per sample ``b1`` … ``bN``);
nothing is written to a workspace. Every later read goes through the tile store
(no header is read again). Errors name the file: a missing object raises
:class:`~rasteret.errors.ObjectNotFoundError`, a file that is not a readable TIFF the
parser's :class:`~rasteret.errors.TiffError`.

The dataset of a scene has no ``time`` axis: each band is ``(y, x)`` in its native dtype
(:func:`as_scene_dataset`), with the record's scale / offset as scalar coordinates and
its date (from the file name) as a scalar ``time`` coordinate when there is one.
:func:`looks_like_scene` imports nothing and does no I/O. The engine's
``guess_can_open`` does not use it: a single GeoTIFF opens only with an explicit
``engine="rasteret"``, so ``xr.open_dataset("x.tif")`` stays rioxarray's.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import xarray as xr

    from rasteret.fetch import RangeReader
    from rasteret.index import CollectionTable

#: File name endings of a scene (case-insensitive).
SCENE_SUFFIXES = (".tif", ".tiff")
#: Bytes of the header's first request (as the file ingest's default).
HEADER_PREFETCH = 65536
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def looks_like_scene(value: Any) -> bool:
    """True for a path or URL whose name ends in ``.tif`` / ``.tiff`` (no I/O)."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    text = os.fspath(value)
    if not isinstance(text, str):
        return False
    path = urlsplit(text).path if _URL.match(text) else text
    return path.lower().endswith(SCENE_SUFFIXES)


def scene_collection(source: str | os.PathLike[str], reader: RangeReader) -> CollectionTable:
    """The in-memory one-record collection of the GeoTIFF ``source`` (see module docs)."""
    import pyarrow as pa

    from rasteret._async import run_sync
    from rasteret.ingest.build import finish_build
    from rasteret.ingest.enrich import assets_per_sample
    from rasteret.ingest.files import datetime_from_name, expand_sources, record_ids

    (href,) = expand_sources(os.fspath(source))
    header = run_sync(_read_header(reader, href))
    headers = {href: header}
    assets = assets_per_sample([href], headers)
    table = pa.table(
        {
            "id": pa.array(record_ids([href]), pa.string()),
            "datetime": pa.array([datetime_from_name(href)], pa.timestamp("us")),
            "assets": assets,
        }
    )
    return finish_build(
        table,
        label=href,
        name="",
        data_source="",
        target=None,
        key="",
        headers=headers,
        bands=[f.name for f in assets.type],
    )


async def _read_header(reader: RangeReader, href: str) -> Any:
    """The header of ``href`` as the ingest's ``HeaderResult``; errors are raised (typed,
    naming the file), not collected as the batch ingest does."""
    from rasteret.ingest.headers import HeaderResult
    from rasteret.tiff.header import read_header

    fetch = reader.header_fetch(href, prefetch=HEADER_PREFETCH)
    header = await read_header(fetch, href, prefetch=HEADER_PREFETCH)
    return HeaderResult(href, header=header, info=fetch.info, requests=fetch.requests)


def as_scene_dataset(ds: xr.Dataset, source: Any) -> xr.Dataset:
    """``ds`` (one record along ``time``) without the ``time`` axis: bands ``(y, x)``,
    still lazy; ``id`` dropped, ``time`` kept as a scalar when the record has a date."""
    import numpy as np

    if "time" not in ds.dims:
        return ds
    ds = ds.isel(time=0)
    drop = [name for name in ("id",) if name in ds.coords]
    if "time" in ds.coords and np.isnat(ds["time"].values):
        drop.append("time")
    ds = ds.drop_vars(drop)
    for variable in ds.variables.values():
        encoding = variable.encoding
        chunks = encoding.get("chunks")
        if chunks is not None and len(chunks) == variable.ndim + 1:
            encoding["chunks"] = tuple(chunks[1:])
        preferred = encoding.get("preferred_chunks")
        if isinstance(preferred, dict):
            encoding["preferred_chunks"] = {k: v for k, v in preferred.items() if k != "time"}
        names = encoding.get("coordinates")
        if isinstance(names, str):
            encoding["coordinates"] = " ".join(n for n in names.split() if n not in drop)
    from rasteret.fetch.secrets import redact

    ds.attrs["rasteret_source"] = redact(os.fspath(source))
    return ds
