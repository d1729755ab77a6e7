"""The engine's per-dataset cache of nearest-neighbour index maps (``WarpMaps``): the map
it returns is :func:`nearest_index`'s, computed once per key even when several bands ask
at the same time, bounded in memory, and never shipped to a dask worker with its maps."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rasteret.backend.warp_maps import WarpMaps
from rasteret.geo import GridSpec
from rasteret.geo.nearest import nearest_index
from rasteret.geo.window import Window

SOURCE = GridSpec("EPSG:32632", (10.0, 0.0, 600000.0, 0.0, -10.0, 5200000.0), (400, 400))
TARGET = GridSpec.from_bbox((144000.0, 5206500.0, 147000.0, 5209000.0), "EPSG:32633", 10)
WINDOW = Window(0, 0, *TARGET.shape)


def _crop() -> Window:
    return Window(0, 0, *SOURCE.shape)


def test_the_map_is_nearest_index_and_computed_once_for_concurrent_bands() -> None:
    expected = nearest_index(SOURCE, TARGET, WINDOW, _crop())
    assert expected.inside.any(), "the target must overlap the source"
    maps = WarpMaps()
    with ThreadPoolExecutor(4) as pool:  # four bands asking for the same map at once
        found = list(pool.map(lambda _: maps.nearest(SOURCE, TARGET, WINDOW, _crop()), range(8)))
    assert all(f is found[0] for f in found) and len(maps) == 1
    np.testing.assert_array_equal(found[0].index, expected.index)
    np.testing.assert_array_equal(found[0].inside, expected.inside)


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    one = nearest_index(SOURCE, TARGET, WINDOW, _crop())
    size = sum(a.nbytes for a in (one.index, one.inside, one.sx, one.sy))
    maps = WarpMaps(limit_bytes=size)  # room for one map
    first = maps.nearest(SOURCE, TARGET, WINDOW, _crop())
    other = Window(0, 0, TARGET.height // 2, TARGET.width)
    maps.nearest(SOURCE, TARGET, other, _crop())
    assert len(maps) == 1  # the first map made room
    assert maps.nearest(SOURCE, TARGET, WINDOW, _crop()) is not first  # computed again
    tiny = WarpMaps(limit_bytes=1)  # a map larger than the bound: used, not kept
    np.testing.assert_array_equal(tiny.nearest(SOURCE, TARGET, WINDOW, _crop()).index, one.index)
    assert len(tiny) == 0


def test_a_pickled_cache_arrives_empty() -> None:
    maps = WarpMaps(limit_bytes=123456789)
    maps.nearest(SOURCE, TARGET, WINDOW, _crop())
    copy = pickle.loads(pickle.dumps(maps))
    assert len(copy) == 0 and copy.limit_bytes == 123456789
