"""Collection files on object storage, read through rasteret's own fetch layer.

:func:`arrow_filesystem` gives pyarrow a filesystem whose every request goes through a
:class:`~rasteret.fetch.RangeReader` — the same stores, credentials, endpoints, retries
and request counters as tile reads (``s3://``, ``gs://``, ``az://``, ``https://``, and
the stores registered with :func:`rasteret.fetch.register_store`). Parquet footers and
the selected row groups are fetched as byte ranges; nothing else is downloaded.
Directories (hive exports) are listed with the store's LIST; a plain HTTP(S) server cannot
list, so only single ``.parquet`` files load from it — also from the Hugging Face Hub
(``hf://datasets/<org>/<name>/<path>``, read from its resolve URL on ``$HF_ENDPOINT`` or
huggingface.co: :mod:`rasteret.fetch.routing`). Nothing is copied to local disk.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs

from rasteret._async import run_sync
from rasteret.errors import FetchError, ObjectNotFoundError

if TYPE_CHECKING:
    from rasteret.fetch import ObjectInfo, RangeReader


def arrow_filesystem(reader: RangeReader | None = None) -> pafs.FileSystem:
    """A pyarrow filesystem over ``reader`` (default: the process's reader); paths are
    URLs."""
    if reader is None:
        from rasteret.fetch import default_reader

        reader = default_reader()
    return pafs.PyFileSystem(_ReaderHandler(reader))


class _ReaderHandler(pafs.FileSystemHandler):
    def __init__(self, reader: RangeReader) -> None:
        self.reader = reader
        #: The ETag of every object this filesystem stat'ed or listed, by URL: with
        #: sizes and modification times (whole seconds over HTTP / S3) they identify a
        #: collection's files (:func:`rasteret.index.parquet.path_stamp`).
        self.etags: dict[str, str] = {}
        #: Sizes known from a stat or a listing: opening those objects asks nothing.
        self.sizes: dict[str, int] = {}
        #: A directory listing made to tell a directory from a missing object, kept for
        #: the recursive listing that follows it (one LIST, not two).
        self.listings: dict[str, list[tuple[str, ObjectInfo]]] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ReaderHandler) and other.reader is self.reader

    def __ne__(self, other: object) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return "rasteret"

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return [self._info(path) for path in paths]

    def _info(self, path: str) -> pafs.FileInfo:
        try:
            info = run_sync(self.reader.stat(path))
        except FetchError as error:  # missing (or refused: S3 says 403 for a missing key too)
            if self.reader.route(path).kind == "http":
                raise _not_an_http_file(path, error) from None
            return self._directory_or_missing(path)
        return self._file_info(path, info)

    def _file_info(self, url: str, info: ObjectInfo) -> pafs.FileInfo:
        if info.etag:
            self.etags[url] = info.etag
        if info.size is not None:
            self.sizes[url] = int(info.size)
        return _file_info(url, info)

    def _directory_or_missing(self, path: str) -> pafs.FileInfo:
        try:
            listed = run_sync(self.reader.list(path))
        except Exception:  # cannot list (plain HTTP): it is not there
            listed = []
        if listed:
            self.listings[path.rstrip("/")] = listed
        kind = pafs.FileType.Directory if listed else pafs.FileType.NotFound
        return pafs.FileInfo(path, kind)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        base = selector.base_dir.rstrip("/")
        listed = self.listings.pop(base, None)
        if listed is None:
            listed = run_sync(self.reader.list(base))
        if not listed and not selector.allow_not_found:
            raise FileNotFoundError(f"collection directory not found: {base}")
        infos = []
        for url, info in listed:
            relative = url[len(base) :].lstrip("/")
            if not selector.recursive and "/" in relative:
                continue
            infos.append(self._file_info(url, info))
        return infos

    def open_input_file(self, path: str) -> pa.NativeFile:
        size = self.sizes.get(path)
        if size is None:
            size = int(run_sync(self.reader.stat(path)).size or 0)
        return pa.PythonFile(_RangeFile(self.reader, path, size), mode="r")

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return self.open_input_file(path)

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("rasteret's object-storage filesystem is read-only")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only


def _not_an_http_file(path: str, error: FetchError) -> Exception:
    """Why an HTTP(S) URL (``hf://`` included) is no collection file: the server's refusal
    as it is (e.g. 401: a private repository needs a token), or, when nothing is there, a
    ``FileNotFoundError`` saying that such a server cannot list a directory."""
    from rasteret.fetch.secrets import redact_url

    if not isinstance(error, ObjectNotFoundError):
        return error
    return FileNotFoundError(
        f"collection not found: {redact_url(path)} (no object there; an HTTP(S) server, "
        "hf:// included, cannot list a directory: load a .parquet file by its URL)"
    )


def _file_info(url: str, info: ObjectInfo) -> pafs.FileInfo:
    mtime = None
    if info.last_modified:
        try:
            mtime = dt.datetime.fromisoformat(info.last_modified)
        except ValueError:
            mtime = None
    return pafs.FileInfo(url, pafs.FileType.File, size=info.size, mtime=mtime)


class _RangeFile(io.RawIOBase):
    """A seekable read-only file over one object: each ``read`` is one range request
    (pyarrow reads Parquet footers and column chunks in large ranges)."""

    def __init__(self, reader: RangeReader, url: str, size: int) -> None:
        self.reader = reader
        self.url = url
        self.size = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        if end <= self.position:
            return b""
        (data,) = run_sync(self.reader.read_ranges(self.url, [self.position], [end]))
        self.position = end
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def upload_export(local: Path, url: str, reader: RangeReader | None = None) -> None:
    """Put an export written to ``local`` (a ``.parquet`` file or a ``year=/month=``
    directory) at ``url``, through ``reader``'s stores and credentials. A previous export
    there is replaced: new objects are written first, then the old ones that are not
    part of the new export are deleted (objects that are not a collection export are
    never deleted: the export is refused)."""
    if reader is None:
        from rasteret.fetch import default_reader

        reader = default_reader()
    url = url.rstrip("/")
    if local.is_file():
        run_sync(reader.put(url, local))
        return
    try:
        existing = [u for u, _ in run_sync(reader.list(url))]
    except FetchError:
        existing = []
    foreign = [u for u in existing if not _is_export_object(u[len(url) :])]
    if foreign:
        raise FileExistsError(
            f"{url} holds objects that are not a rasteret collection export "
            f"(e.g. {foreign[0]}); refusing to replace it"
        )
    written = set()
    for file in sorted(p for p in local.rglob("*") if p.is_file()):
        target = f"{url}/{file.relative_to(local).as_posix()}"
        run_sync(reader.put(target, file))
        written.add(target)
    for stale in existing:
        if stale not in written:
            run_sync(reader.delete(stale))


def _is_export_object(relative: str) -> bool:
    parts = [p for p in relative.split("/") if p]
    return bool(parts) and parts[-1].endswith(".parquet") and all("=" in p for p in parts[:-1])
