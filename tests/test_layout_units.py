"""Group names' CRS units: the table of common EPSG codes agrees with PROJ's database."""

from __future__ import annotations

import pytest
from pyproj import CRS

from rasteret.store import layout

PROJ_NAMES = {"m": "metre", "deg": "degree"}


@pytest.mark.parametrize("first, last, unit", layout._KNOWN_UNITS)
def test_known_units_match_proj(first: int, last: int, unit: str) -> None:
    for epsg in range(first, last + 1):
        crs = CRS.from_epsg(epsg)
        assert {axis.unit_name for axis in crs.axis_info} == {PROJ_NAMES[unit]}, epsg


def test_codes_outside_the_table_ask_proj() -> None:
    assert layout._known_unit(2056) is None  # CH1903+ / LV95: metres, from PROJ
    assert layout._crs_unit(2056, None) == "m"
    assert layout._crs_unit(32633, None) == "m"
    assert layout._crs_unit(4326, None) == "deg"
    assert layout._crs_unit(None, None) == "px"
