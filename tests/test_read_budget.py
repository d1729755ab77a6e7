"""The read byte budget refuses over-budget reads before fetching, with the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

import rasteret
from rasteret.read.budget import ReadBudgetExceeded, read_budget
from rasteret.samples import make_sentinel2_like

AOI = (11.995, 46.995, 12.005, 47.005)  # lon/lat, on the 32N/33N boundary


@pytest.fixture(scope="module")
def two_zones(tmp_path_factory: pytest.TempPathFactory) -> rasteret.Collection:
    root = tmp_path_factory.mktemp("zones")
    make_sentinel2_like(root, scenes=2, size=1024, bands=("B04",), zones=(32632, 32633))
    return rasteret.build_from_files(root, group_by=lambda p: (Path(p).parent.name, Path(p).stem))


def test_explain_with_bbox_crs_plans_every_zone(two_zones: rasteret.Collection) -> None:
    plan = two_zones.explain("B04", bbox=AOI, bbox_crs="EPSG:4326")
    assert len(plan.groups) == 2  # one grid per UTM zone, each box transformed into it
    assert len(plan.objects) == 2 and 0 < plan.bytes < two_zones.explain("B04").bytes


def test_over_budget_reads_are_refused_before_fetching(two_zones: rasteret.Collection) -> None:
    from rasteret.fetch import track

    plan = two_zones.explain("B04", bbox=AOI, bbox_crs="EPSG:4326")
    with track() as counts, read_budget(plan.bytes - 1):
        with pytest.raises(ReadBudgetExceeded, match="read refused") as refused:
            two_zones.get_numpy(AOI, "B04", target_crs="EPSG:32633", resolution=10)
        with pytest.raises(ReadBudgetExceeded):
            two_zones.read_window(bounds=AOI, res=0.0001, crs="EPSG:4326", bands="B04")
    assert counts.requests == 0
    assert refused.value.plan.bytes == plan.bytes
    with read_budget(plan.bytes):
        stack = two_zones.get_numpy(AOI, "B04", target_crs="EPSG:32633", resolution=10)
    assert stack.data.shape[0] == 2
