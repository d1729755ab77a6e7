"""``rasteret collections build|import|update|list|info|delete``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rasteret._cli.output import emit, emit_collection, fail, table


def json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every STAC build command."""
    parser.add_argument("--bbox", help="west,south,east,north in degrees")
    parser.add_argument("--date-range", help="start,end (ISO dates; the end day is included)")
    parser.add_argument(
        "--query",
        type=json_arg,
        help='Query extension JSON, e.g. \'{"eo:cloud_cover": {"lt": 20}}\'',
    )
    parser.add_argument("--filter", type=json_arg, help="CQL2-JSON filter")
    parser.add_argument("--max-items", type=int, help="at most this many items")
    parser.add_argument(
        "--workspace-dir", help="workspace (default: $RASTERET_WORKSPACE or ~/rasteret_workspace)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument(
        "--append", action="store_true", help="keep existing records, add new items only"
    )
    parser.add_argument(
        "--max-concurrent", type=int, default=64, help="header reads in flight (default: 64)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")


def split_pair(text: str | None) -> list[str] | None:
    return None if text is None else [p.strip() for p in text.replace("/", ",").split(",")]


def search_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The build keyword arguments of the options :func:`add_search_options` added."""
    return {
        "bbox": split_pair(args.bbox),
        "date_range": split_pair(args.date_range),
        "workspace_dir": args.workspace_dir,
        "force": args.force,
        "append": args.append,
        "max_concurrent": args.max_concurrent,
        "query": args.query,
        "filter": args.filter,
        "max_items": args.max_items,
    }


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("collections", help="build, import and manage cached collections")
    sub = group.add_subparsers(dest="action", required=True)

    build = sub.add_parser("build", help="build a collection from a STAC API or static catalog")
    build.add_argument("name")
    build.add_argument(
        "--stac-api", required=True, help="API URL, or catalog path with --static-catalog"
    )
    build.add_argument("--collection", help="STAC collection id")
    build.add_argument(
        "--band-map", type=json_arg, help='{"B04": "red", ...} band code -> asset key'
    )
    build.add_argument(
        "--band-index-map", type=json_arg, help='{"R": 0, ...} for multi-band assets'
    )
    build.add_argument("--static-catalog", action="store_true", help="stac-api is a static catalog")
    add_search_options(build)
    build.set_defaults(handler=_build)

    imp = sub.add_parser("import", help="import a Parquet / stac-geoparquet record table")
    imp.add_argument("name")
    imp.add_argument("--record-table", required=True, help="Parquet file or directory")
    imp.add_argument("--data-source", default="")
    imp.add_argument("--column-map", type=json_arg, help='{"source column": "canonical name"}')
    imp.add_argument("--columns", help="comma-separated columns to keep")
    imp.add_argument("--href-column", help="column of file URLs (one file per record)")
    imp.add_argument("--band-codes", help="comma-separated asset keys to index")
    imp.add_argument("--no-enrich", action="store_true", help="do not read TIFF headers")
    imp.add_argument("--workspace-dir")
    imp.add_argument("--force", action="store_true")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(handler=_import)

    update = sub.add_parser("update", help="append newer STAC items to a cached collection")
    update.add_argument("name")
    update.add_argument("--date-range", help="start,end (default: newest record's day to today)")
    update.add_argument("--workspace-dir")
    update.add_argument("--json", action="store_true")
    update.set_defaults(handler=_update)

    listing = sub.add_parser("list", help="list cached collections")
    listing.add_argument("--workspace-dir")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)

    info = sub.add_parser("info", help="describe a cached collection")
    info.add_argument("name")
    info.add_argument("--workspace-dir")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_info)

    delete = sub.add_parser("delete", help="delete a cached collection")
    delete.add_argument("name")
    delete.add_argument("--workspace-dir")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=_delete)


def _build(args: argparse.Namespace) -> int:
    from rasteret.ingest.stac import build_from_stac

    collection = build_from_stac(
        name=args.name,
        stac_api=args.stac_api,
        collection=args.collection,
        band_map=args.band_map,
        band_index_map=args.band_index_map,
        static_catalog=args.static_catalog,
        **search_arguments(args),
    )
    return emit_collection(collection, args.json)


def _import(args: argparse.Namespace) -> int:
    from rasteret.ingest import build_from_table

    collection = build_from_table(
        args.record_table,
        name=args.name,
        data_source=args.data_source,
        workspace_dir=args.workspace_dir,
        column_map=args.column_map,
        columns=args.columns.split(",") if args.columns else None,
        href_column=args.href_column,
        band_codes=args.band_codes.split(",") if args.band_codes else None,
        enrich_cog=not args.no_enrich,
        force=args.force,
    )
    return emit_collection(collection, args.json)


def _update(args: argparse.Namespace) -> int:
    from rasteret.ingest.stac import update_collection

    collection = update_collection(
        args.name, workspace_dir=args.workspace_dir, date_range=split_pair(args.date_range)
    )
    return emit_collection(collection, args.json)


def _list(args: argparse.Namespace) -> int:
    from rasteret.ingest.manage import list_collections

    entries = list_collections(args.workspace_dir)

    def text(rows: list[dict]) -> str:
        if not rows:
            return "no collections in the workspace"
        return table(
            [
                (r["name"], r["kind"], r["data_source"], r["size"], *(r["date_range"] or ("", "")))
                for r in rows
            ],
            ["name", "kind", "data_source", "size", "date_start", "date_end"],
        )

    emit(entries, args.json, text)
    return 0


def _info(args: argparse.Namespace) -> int:
    from rasteret.ingest.manage import collection_info

    info = collection_info(args.name, args.workspace_dir)

    def text(data: dict) -> str:
        dates = data["date_range"] or ("-", "-")
        lines = [
            f"Collection : {data['name']}",
            f"Path       : {data['path']}",
            f"Kind       : {data['kind']}",
            f"Source     : {data['data_source'] or '-'}",
            f"Records    : {data['records']}",
            f"Bands      : {', '.join(data['bands']) or '-'}",
            f"Date range : {dates[0]} .. {dates[1]}",
            f"Split      : {'yes' if data['split'] else 'no'}",
            f"Columns    : {', '.join(data['columns'])}",
        ]
        if "stac" in data:
            lines.append(f"STAC       : {json.dumps(data['stac'])}")
        return "\n".join(lines)

    emit(info, args.json, text)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from rasteret.ingest.manage import delete_collection, resolve_collection

    path = resolve_collection(args.name, args.workspace_dir, exact=True)
    if not args.yes:
        if not sys.stdin.isatty():
            return fail(f"refusing to delete {path} without confirmation; pass --yes")
        answer = input(f"Delete {path}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    delete_collection(path, args.workspace_dir)
    print(f"deleted {path}")
    return 0
