"""Printing for the CLI: ``--json`` documents on stdout, tables for people, errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print ``data`` as JSON (``--json``) or through ``text``."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text(data))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain left-aligned text table."""
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def fail(message: str, code: int = 1, *, as_json: bool = False, kind: str = "Error") -> int:
    """Report an error: on stderr, and with ``--json`` also as a JSON document on stdout
    (``{"error": {"type", "message"}}``) so scripts parse failures like results."""
    print(f"rasteret: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": {"type": kind, "message": message}}, indent=2))
    return code


def collection_summary(collection: Any) -> dict[str, Any]:
    """What a build prints: name, path, records, bands, dates, failed assets, split."""
    from rasteret.ingest import build_report

    dates = collection.date_range
    report = build_report(collection)
    return {
        "name": collection.name,
        "path": collection.uri,
        "data_source": collection.data_source,
        "records": len(collection),
        "bands": collection.bands,
        "crs": collection.crs,
        "date_range": None if dates is None else [dates[0].isoformat(), dates[1].isoformat()],
        "assets": report.assets,
        "indexed": report.indexed,
        "failed": report.failed,
        "errors": [
            {"record": e.record_id, "band": e.band, "message": e.message}
            for e in report.errors[:20]
        ],
        "split": "split" in collection.table.column_names,
    }


def emit_collection(collection: Any, as_json: bool) -> int:
    """Print what a build made (:func:`collection_summary`); the command's exit code (0)."""
    emit(collection_summary(collection), as_json, summary_text)
    return 0


def summary_text(data: dict[str, Any]) -> str:
    dates = data["date_range"] or ["-", "-"]
    lines = [
        f"Collection : {data['name']}",
        f"Path       : {data['path']}",
        f"Source     : {data['data_source'] or '-'}",
        f"Records    : {data['records']}",
        f"Bands      : {', '.join(data['bands']) or '-'}",
        f"Date range : {dates[0]} .. {dates[1]}",
        f"Assets     : {data['indexed']} of {data['assets']} indexed, {data['failed']} failed",
        f"Split      : {'yes' if data['split'] else 'no'}",
    ]
    lines += [f"  error: {e['record']} {e['band']}: {e['message']}" for e in data["errors"][:5]]
    return "\n".join(lines)
