"""``rasteret datasets list|info|build|register-local|unregister-local|export-local`` and
the ``rasteret build`` alias."""

from __future__ import annotations

import argparse

from rasteret._cli.collections import add_search_options, search_arguments
from rasteret._cli.output import emit, emit_collection, table


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("datasets", help="the dataset catalog")
    sub = group.add_subparsers(dest="action", required=True)

    listing = sub.add_parser("list", help="list catalog datasets")
    listing.add_argument("--search", help="keyword in id, name, description or coverage")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)

    info = sub.add_parser("info", help="everything the catalog knows about a dataset")
    info.add_argument("dataset_id")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_info)

    build = sub.add_parser("build", help="build a collection of a catalog dataset")
    add_build_arguments(build)

    local = sub.add_parser("register-local", help="register an exported collection as a dataset")
    local.add_argument("dataset_id")
    local.add_argument("path", help="collection file / directory, or a cached collection's name")
    local.add_argument("--name")
    local.add_argument("--description", default="")
    local.add_argument("--data-source", default="")
    local.add_argument("--workspace-dir")
    local.add_argument(
        "--registry-path", help="registry file (default: ~/.rasteret/datasets.local.json)"
    )
    local.add_argument("--no-persist", action="store_true", help="this process only (not saved)")
    local.add_argument("--json", action="store_true")
    local.set_defaults(handler=_register_local)

    unreg = sub.add_parser("unregister-local", help="remove a user dataset from the registry")
    unreg.add_argument("dataset_id")
    unreg.add_argument("--registry-path")
    unreg.add_argument("--json", action="store_true")
    unreg.set_defaults(handler=_unregister_local)

    export = sub.add_parser("export-local", help="write a user dataset's descriptor as JSON")
    export.add_argument("dataset_id")
    export.add_argument("output_path")
    export.add_argument("--registry-path")
    export.add_argument("--json", action="store_true")
    export.set_defaults(handler=_export_local)


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset_id", help="catalog id, e.g. earthsearch/sentinel-2-l2a")
    parser.add_argument("name", help="collection name")
    parser.add_argument("--stac-api", help="use this STAC API instead of the catalog's (a mirror)")
    add_search_options(parser)
    parser.set_defaults(handler=_build)


def _list(args: argparse.Namespace) -> int:
    from rasteret.catalog import DatasetRegistry

    found = DatasetRegistry.search(args.search) if args.search else DatasetRegistry.list()
    data = [
        {
            "id": d.id,
            "name": d.name,
            "coverage": d.spatial_coverage,
            "license": d.license,
            "requires_auth": d.requires_auth,
            "commercial_use": d.commercial_use,
            "kind": d.kind,
            "local": DatasetRegistry.is_local(d.id),
        }
        for d in found
    ]

    def text(rows: list[dict]) -> str:
        return table(
            [
                (
                    r["id"],
                    r["name"],
                    r["coverage"],
                    r["license"],
                    "required" if r["requires_auth"] else "none",
                )
                for r in rows
            ],
            ["ID", "Name", "Coverage", "License", "Auth"],
        )

    emit(data, args.json, text)
    return 0


def _info(args: argparse.Namespace) -> int:
    from rasteret.catalog import DatasetRegistry, describe_descriptor

    data = describe_descriptor(DatasetRegistry.require(args.dataset_id))

    def text(d: dict) -> str:
        torchgeo = d.get("torchgeo_class")
        if torchgeo:
            state = "verified" if d["torchgeo_verified"] else "pending"
            d = {**d, "torchgeo_class": f"{torchgeo} ({state})"}
        shown = {
            k: v for k, v in d.items() if v not in (None, "", {}, []) and k != "torchgeo_verified"
        }
        width = max(len(k) for k in shown)
        return "\n".join(f"{k.ljust(width)} : {v}" for k, v in shown.items())

    emit(data, args.json, text)
    return 0


def _build(args: argparse.Namespace) -> int:
    from rasteret.catalog import build

    collection = build(
        args.dataset_id,
        name=args.name,
        stac_api=args.stac_api,
        **search_arguments(args),
    )
    return emit_collection(collection, args.json)


def _register_local(args: argparse.Namespace) -> int:
    from rasteret.catalog import register_local
    from rasteret.catalog.registry import local_registry_path

    descriptor = register_local(
        args.dataset_id,
        args.path,
        name=args.name,
        description=args.description,
        data_source=args.data_source,
        persist=not args.no_persist,
        registry_path=args.registry_path,
        workspace_dir=args.workspace_dir,
    )
    data = {
        **descriptor.to_dict(),
        "registry_path": None if args.no_persist else str(local_registry_path(args.registry_path)),
    }
    emit(data, args.json, lambda d: f"registered {d['id']} -> {d['collection_uri']}")
    return 0


def _unregister_local(args: argparse.Namespace) -> int:
    from rasteret.catalog import unregister_local

    removed = unregister_local(args.dataset_id, registry_path=args.registry_path)
    data = {"id": args.dataset_id, "removed_from_registry": removed}
    emit(data, args.json, lambda d: f"unregistered {d['id']}")
    return 0


def _export_local(args: argparse.Namespace) -> int:
    from rasteret.catalog import export_local

    path = export_local(args.dataset_id, args.output_path, registry_path=args.registry_path)
    emit({"id": args.dataset_id, "path": str(path)}, args.json, lambda d: f"wrote {d['path']}")
    return 0
