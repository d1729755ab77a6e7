"""Preferred dask chunks: multiples of the COG tile, never one task per tile (DESIGN 7)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rasteret.store.layout import ArrayLayout

#: Target bytes of one dask chunk (decoded): a 5490² uint16 scene (60 MB) stays one chunk.
DEFAULT_TARGET_BYTES = 128 * 2**20


def preferred_chunks(
    array: ArrayLayout, target_bytes: int = DEFAULT_TARGET_BYTES
) -> dict[str, int]:
    """``{"time", "y", "x"}`` chunk sizes: whole tiles, about ``target_bytes`` per chunk.

    Tiles are grouped in a near-square block; when a whole scene fits, several time
    steps share a chunk.
    """
    steps, height, width = array.shape
    tile_h, tile_w = array.block_shape
    tile_bytes = tile_h * tile_w * np.dtype(array.dtype).itemsize
    budget = max(1, target_bytes // max(tile_bytes, 1))
    down, across = array.tiles_down, array.tiles_across
    if budget >= down * across:
        per_scene = down * across
        time = max(1, min(max(steps, 1), budget // per_scene))
        return {"time": time, "y": height, "x": width}
    side = max(1, math.isqrt(budget))
    ny = min(down, side)
    nx = min(across, max(1, budget // ny))
    if nx == across:  # a full row of tiles: spend the rest on rows
        ny = min(down, max(1, budget // across))
    return {"time": 1, "y": min(height, ny * tile_h), "x": min(width, nx * tile_w)}
