"""Which local files a loaded collection may read.

An index is data, not code: a collection file can come from anyone, and its hrefs
decide which bytes are read. Remote hrefs go through the object stores and the user's
own credentials; a *local* href (a plain path, relative paths included, or ``file://``)
of a **loaded** collection is read only when it lies — after ``..`` and symbolic links
are resolved — under an allowed root:

* the directory that holds the collection (its parent: a dataset shipped beside its
  index, ``data/index.parquet`` + ``data/scenes/*.tif``);
* the roots given to ``load(..., local_roots=[...])``;
* the roots in ``$RASTERET_LOCAL_ROOTS`` (separated by ``os.pathsep``).

``local_roots="any"`` trusts every local path; rasteret's own builds and the
collections of the workspace (:mod:`rasteret.index.workspace`) load that way: their
hrefs are the paths the user indexed. Tables handed
in memory (``as_collection``) are the caller's own code and are not restricted.

:meth:`LocalAccess.check` runs when the selected rows are first read, before any pixel
request, and raises :class:`~rasteret.errors.LocalHrefRefusedError` naming the
collection, the record, the band, the href and how to allow it.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import LocalHrefRefusedError
from rasteret.index.workspace import workspace_root

#: Environment variable listing extra allowed roots (``os.pathsep``-separated).
ENV_LOCAL_ROOTS = "RASTERET_LOCAL_ROOTS"

LocalRoots = Iterable[str | os.PathLike[str]] | Literal["any"] | None


@dataclass(frozen=True)
class LocalAccess:
    """The roots under which local hrefs may be read (already resolved, absolute)."""

    roots: tuple[str, ...]

    @classmethod
    def for_source(cls, source: str, local_roots: LocalRoots = None) -> LocalAccess | None:
        """The policy of a collection loaded from ``source`` (``None``: any local path)."""
        if local_roots == "any":
            return None
        roots: list[str | os.PathLike[str]] = []
        if is_local_href(source):
            path = Path(os.path.realpath(local_path(source)))
            if path.is_relative_to(os.path.realpath(workspace_root())):
                return None  # rasteret's own build: its hrefs are what the user indexed
            roots.append(path.parent)
        roots.extend(r for r in os.environ.get(ENV_LOCAL_ROOTS, "").split(os.pathsep) if r)
        if isinstance(local_roots, str | os.PathLike):
            raise TypeError("local_roots must be a list of directories or 'any'")
        roots.extend(local_roots or ())
        return cls(tuple(dict.fromkeys(os.path.realpath(os.fspath(r)) for r in roots)))

    def allows(self, href: str) -> bool:
        """Whether ``href`` (local) resolves under one of the roots."""
        return not self._refused([href])

    def check(self, table: pa.Table, bands: Iterable[str], source: str) -> None:
        """Raise if a local href of ``bands`` in ``table`` lies outside the roots.

        Each distinct href is resolved once (bands of one multi-band file share it), and
        the files of one directory are resolved together: the directory once, then one
        ``lstat`` per file — or one listing of the directory when it holds many of them —
        to find the symbolic links, which are followed."""
        from rasteret.index.columns import asset_hrefs

        first: dict[str, tuple[str, int]] = {}  # each local href -> its first (band, row)
        for band in bands:
            hrefs = asset_hrefs(table, band)
            values = pa.array(hrefs, pa.string())
            remote = pc.and_not(
                pc.match_substring_regex(values, _URL),
                pc.match_substring_regex(values, "^file:", ignore_case=True),
            )
            local = pc.invert(remote)
            for row in pc.indices_nonzero(pc.fill_null(local, False)).to_pylist():
                href = hrefs[row]
                if href is not None and href not in first:
                    first[href] = (band, row)
        refused = self._refused(list(first))
        if refused:
            href = next(h for h in first if h in refused)  # the first in table order
            band, row = first[href]
            raise LocalHrefRefusedError(
                source,
                f"record {_record(table, row)!r} band {band!r} points at the local "
                f"file {href!r}, outside the directories this collection may read "
                f"({', '.join(self.roots) or 'none'}). A shared index cannot read "
                "your files: if you trust it, pass load(..., local_roots=[...]) "
                f"(or 'any') or list the directory in ${ENV_LOCAL_ROOTS}",
            )

    def _refused(self, hrefs: list[str]) -> set[str]:
        """The local ``hrefs`` that do not resolve under a root."""
        by_directory: dict[str, list[tuple[str, str]]] = {}
        for href in hrefs:
            directory, name = os.path.split(local_path(href))
            by_directory.setdefault(directory, []).append((href, name))
        prefixes = tuple(_slash(root) for root in self.roots)
        refused: set[str] = set()
        for directory, entries in by_directory.items():
            real = _resolve_directory(directory)
            links = _symbolic_links(directory, [name for _, name in entries])
            for href, name in entries:
                resolved = os.path.join(real, name)
                if name in links:
                    resolved = os.path.realpath(resolved)
                if not (resolved in self.roots or resolved.startswith(prefixes)):
                    refused.add(href)
        return refused


#: An href with a URL scheme (a one-letter scheme is a Windows drive letter).
_URL = r"^[a-zA-Z][a-zA-Z0-9+.-]+://"


def is_local_href(href: str) -> bool:
    """Whether ``href`` names a local file (a path or a ``file://`` URL)."""
    scheme = urllib.parse.urlsplit(href).scheme.lower()
    return scheme in ("", "file") or len(scheme) == 1


def local_path(href: str) -> str:
    """The absolute path of a local ``href`` (relative paths: from the working directory,
    as reads resolve them)."""
    if _NORMAL_ABSOLUTE and href.startswith("/") and not _NEEDS_NORMALISING.search(href):
        return href  # what abspath returns for it: nothing to expand, collapse or strip
    if href.lower().startswith("file:"):
        href = urllib.parse.unquote(urllib.parse.urlsplit(href).path)
    return os.path.abspath(os.path.expanduser(href))


#: POSIX paths: an absolute href without ``//``, ``/.`` or a trailing ``/`` is already
#: what ``os.path.abspath`` makes of it.
_NORMAL_ABSOLUTE = os.sep == "/" and os.altsep is None
_NEEDS_NORMALISING = re.compile(r"//|/\.|/$")
#: Files of one directory from which it is listed once instead of ``lstat`` per file.
_LIST_FROM = 8


def _symbolic_links(directory: str, names: list[str]) -> set[str]:
    """Which of ``names`` in ``directory`` are symbolic links."""
    if len(names) >= _LIST_FROM:
        try:
            with os.scandir(directory) as entries:
                return {entry.name for entry in entries if entry.is_symlink()}
        except OSError:
            pass  # unreadable or missing: the files are asked one by one
    return {name for name in names if os.path.islink(os.path.join(directory, name))}


@lru_cache(maxsize=4096)
def _resolve_directory(directory: str) -> str:
    return os.path.realpath(directory)


def _slash(root: str) -> str:
    return root if root.endswith(os.sep) else root + os.sep


def _record(table: pa.Table, row: int) -> object:
    return table["id"][row].as_py() if "id" in table.column_names else row
