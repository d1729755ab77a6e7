"""Collection's pixel methods read through the virtual store: values equal GDAL's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import rasteret
from rasteret.samples import make_sentinel2_like

rasterio = pytest.importorskip("rasterio", reason="rasterio (GDAL) is the pixel oracle")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], rasteret.Collection]:
    root = tmp_path_factory.mktemp("scenes")
    records = make_sentinel2_like(root, scenes=3, size=300, bands=("B04", "SCL"), tile=128)
    collection = rasteret.build_from_files(
        root, group_by=lambda p: (Path(p).parent.name, Path(p).stem)
    )
    return records, collection


def test_subset_to_xarray_equals_rasterio(scenes: tuple[list[dict], rasteret.Collection]) -> None:
    records, collection = scenes
    second = records[1]
    day = second["datetime"].date().isoformat()
    subset = collection.subset(date_range=(day, day))
    assert len(subset) == 1
    ds = subset.to_xarray(["B04"], chunks={})
    assert ds["B04"].dtype == np.uint16
    with rasterio.open(second["hrefs"]["B04"]) as src:
        np.testing.assert_array_equal(ds["B04"].values[0], src.read(1))


def test_to_zarr_store_opens_with_zarr(scenes: tuple[list[dict], rasteret.Collection]) -> None:
    records, collection = scenes
    group = zarr.open_group(collection.to_zarr_store("SCL"), mode="r")
    (grid,) = [name for name in group.group_keys() if "overview" not in name]
    scl = group[grid]["SCL"]
    assert scl.shape == (3, 300, 300)
    order = np.argsort([r["datetime"] for r in records])
    for t, index in enumerate(order):
        with rasterio.open(records[index]["hrefs"]["SCL"]) as src:
            np.testing.assert_array_equal(scl[t], src.read(1))
