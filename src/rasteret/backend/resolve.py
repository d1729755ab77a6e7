"""Which group to open, and whether a path looks like a rasteret collection."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rasteret.store.tiles import TileStore


def resolve_group(store: TileStore, group: str | None, overview_level: int | None) -> str:
    """The store group for ``group`` (a grid or overview group name) and ``overview_level``.

    Without ``group`` the collection must have exactly one grid; otherwise the error
    lists the grids to choose from.
    """
    layout = store.layout
    grids = layout.grid_groups
    if group is not None:
        group = group.strip("/")
        if group not in layout.groups:
            raise ValueError(
                f"group {group!r} is not in the collection; groups: {', '.join(layout.groups)}"
            )
        if layout.groups[group].overview is not None:
            if overview_level is not None:
                raise ValueError(f"group {group!r} is already an overview level")
            return group
    elif len(grids) == 1:
        group = grids[0]
    elif not grids:
        raise ValueError("the collection has no readable records for the selected bands")
    else:
        raise ValueError(
            f"the collection has {len(grids)} grids; choose one with group=: {', '.join(grids)}"
        )
    if overview_level is None:
        return group
    levels = sorted(
        (g.overview, name)
        for name, g in layout.groups.items()
        if g.parent == group and g.overview is not None
    )
    for level, name in levels:
        if level == overview_level:
            return name
    available = sorted({level for level, _ in levels})
    raise ValueError(
        f"group {group!r} has no overview level {overview_level} "
        f"(levels: {available or 'none'}; 0 is the first overview, as in rasterio)"
    )


def looks_like_collection(value: Any) -> bool:
    """True for a Collection, a VirtualStore, or a Parquet file / directory whose schema
    has an ``assets`` column and ``{band}_metadata`` struct columns.

    xarray asks every installed engine this for every file it opens without ``engine=``,
    so it imports nothing heavy: an object can only be a collection or a store when
    their modules are already loaded.
    """
    table_module = sys.modules.get("rasteret.index.table")
    tiles_module = sys.modules.get("rasteret.store.tiles")
    store_module = sys.modules.get("rasteret.store.virtual")
    if table_module is not None and isinstance(value, table_module.CollectionTable):
        return True
    if store_module is not None and isinstance(value, store_module.VirtualStore):
        return True
    if tiles_module is not None and isinstance(value, tiles_module.TileStore):
        return True
    if not isinstance(value, (str, os.PathLike)):
        return False
    try:
        path = Path(os.fspath(value))
        if path.is_dir():
            files = sorted(path.rglob("*.parquet"))
            if not files:
                return False
            path = files[0]
        elif path.suffix != ".parquet" or not path.is_file():
            return False
        import pyarrow.parquet as pq

        from rasteret.index.schema import bands_of

        schema = pq.read_schema(path)
        return "assets" in schema.names and bool(bands_of(schema))
    except Exception:
        return False
