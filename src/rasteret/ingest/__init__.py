"""Ingest: turn record tables, lists of GeoTIFFs and STAC searches into collections.

* :func:`build_from_table` — Parquet / Arrow / stac-geoparquet records → Collection.
* :func:`build_from_files` — a folder, glob or list of paths / URLs → Collection.
* :func:`build_from_stac` — a STAC API search or a static catalog → Collection.
* :func:`index_headers` — parse many TIFF headers concurrently (one bad file never aborts).
* :func:`build_report` — what a build indexed and which assets failed (and why).

Names are imported lazily, so ``import rasteret.ingest.<module>`` (e.g. by the CLI to
list a workspace) does not pay for the whole build stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rasteret._lazy import lazy_exports
from rasteret.fetch.secrets import redact_loggers

# Imported now: ``refresh`` is also a submodule name, which importing the submodule
# (e.g. ``Collection.refresh``) would otherwise bind on the package instead of the function.
from rasteret.ingest.refresh import refresh

redact_loggers("rasteret.ingest")  # no signed URL in any build / refresh log record

if TYPE_CHECKING:
    from rasteret.ingest.files import build_from_files
    from rasteret.ingest.headers import HeaderResult, index_headers, index_headers_async
    from rasteret.ingest.manage import (
        collection_info,
        delete_collection,
        list_collections,
        resolve_collection,
    )
    from rasteret.ingest.report import (
        AssetError,
        BuildReport,
        NothingIndexedError,
        build_report,
    )
    from rasteret.ingest.stac import build_from_stac, update_collection
    from rasteret.ingest.table import build_from_table
    from rasteret.ingest.workspace import create_name, records_dir, workspace_root

_LAZY: dict[str, str] = {
    "AssetError": "rasteret.ingest.report",
    "BuildReport": "rasteret.ingest.report",
    "HeaderResult": "rasteret.ingest.headers",
    "NothingIndexedError": "rasteret.ingest.report",
    "build_from_files": "rasteret.ingest.files",
    "build_from_stac": "rasteret.ingest.stac",
    "build_from_table": "rasteret.ingest.table",
    "build_report": "rasteret.ingest.report",
    "collection_info": "rasteret.ingest.manage",
    "create_name": "rasteret.ingest.workspace",
    "delete_collection": "rasteret.ingest.manage",
    "index_headers": "rasteret.ingest.headers",
    "index_headers_async": "rasteret.ingest.headers",
    "list_collections": "rasteret.ingest.manage",
    "records_dir": "rasteret.ingest.workspace",
    "resolve_collection": "rasteret.ingest.manage",
    "update_collection": "rasteret.ingest.stac",
    "workspace_root": "rasteret.ingest.workspace",
}

__all__ = [
    "AssetError",
    "BuildReport",
    "HeaderResult",
    "NothingIndexedError",
    "build_from_files",
    "build_from_stac",
    "build_from_table",
    "build_report",
    "collection_info",
    "create_name",
    "delete_collection",
    "index_headers",
    "index_headers_async",
    "list_collections",
    "records_dir",
    "refresh",
    "resolve_collection",
    "update_collection",
    "workspace_root",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
