"""Ingest: turn record tables and lists of GeoTIFFs into collections.

* :func:`build_from_table` — Parquet / Arrow / stac-geoparquet records → Collection.
* :func:`build_from_files` — a folder, glob or list of paths / URLs → Collection.
* :func:`index_headers` — parse many TIFF headers concurrently (one bad file never aborts).
* :func:`build_report` — what a build indexed and which assets failed (and why).
"""

from rasteret.ingest.files import build_from_files
from rasteret.ingest.headers import HeaderResult, index_headers, index_headers_async
from rasteret.ingest.report import AssetError, BuildReport, NothingIndexedError, build_report
from rasteret.ingest.table import build_from_table
from rasteret.ingest.workspace import records_dir, workspace_root

__all__ = [
    "AssetError",
    "BuildReport",
    "HeaderResult",
    "NothingIndexedError",
    "build_from_files",
    "build_from_table",
    "build_report",
    "index_headers",
    "index_headers_async",
    "records_dir",
    "workspace_root",
]
