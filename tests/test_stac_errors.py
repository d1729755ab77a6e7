"""Bad input and a misbehaving STAC API: retried then reported; invalid arguments and band
maps fail before any header is fetched (the object server's counters prove it)."""

from __future__ import annotations

import pytest

from rasteret.ingest.stac import build_from_stac
from rasteret.ingest.stac_args import StacInputError
from rasteret.ingest.stac_bands import BandMapError
from rasteret.ingest.stac_search import StacSearchError
from stac_server import earth_search_api

ES_MAP = {"B04": "red", "B08": "nir"}


@pytest.fixture(scope="module")
def api(objects, tmp_path_factory):
    with earth_search_api(objects, tmp_path_factory.mktemp("api"), ["red", "nir"]) as server:
        yield server


@pytest.fixture
def clean(api, objects):
    api.log.clear()
    objects.reset()
    return api


def build(api, tmp_path, **kw):
    args = {
        "name": "err",
        "stac_api": api.url,
        "collection": "sentinel-2-l2a",
        "band_map": ES_MAP,
        "workspace_dir": tmp_path,
        "retries": 2,
        "timeout": 5.0,
        **kw,
    }
    return build_from_stac(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bbox": (10, 50, 11)}, r"must be 4 finite numbers \(west, south, east, north\)"),
        ({"bbox": (10, 51, 11, 50)}, r"south \(51.0\) must be less than north"),
        ({"bbox": (50, 10, 51, 120)}, r"looks like \(south, west, north, east\)"),
        ({"bbox": (12, 40, 11, 41)}, r"west \(12.0\) must be less than east"),
        ({"date_range": ("2024-06-30", "2024-01-01")}, r"start 2024-06-30 is after its end"),
        ({"date_range": ("2024-13-01", "2024-12-31")}, r"pass ISO dates such as"),
        ({"date_range": ("2024-01-01",)}, r"must be \(start, end\)"),
        ({"band_map": {"B04": 4}}, r"band code \(str\) to an asset key \(str\)"),
        ({"band_map": {"R": "visual", "G": "visual"}}, r"band_index_map=\{'R': 0, 'G': 1\}"),
        ({"band_index_map": {"B99": 0}}, r"band\(s\) \['B99'\] that are not in band_map"),
        ({"max_items": 0}, r"max_items must be a positive integer"),
        ({"query": {"eo:cloud_cover": {"less": 5}}}, r"unknown operator\(s\) \['less'\]"),
        ({"filter": 42}, r"CQL2-JSON dict or CQL2 text"),
    ],
)
def test_invalid_arguments_fail_before_any_request(clean, objects, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(clean, tmp_path, **kwargs)
    assert clean.log == [] and objects.requests == 0


def test_band_map_not_in_items_fails_after_search_before_headers(clean, objects, tmp_path):
    with pytest.raises(BandMapError) as info:
        build(clean, tmp_path, band_map={"B04": "red", "B08": "B08"})
    message = str(info.value)
    assert "'B08'" in message and "'nir'" in message and "nothing was indexed" in message
    assert clean.searches and objects.requests == 0
    with pytest.raises(BandMapError, match="the first item"):
        build(clean, tmp_path, band_map={"B04": "B04"})
    assert objects.requests == 0 and not (tmp_path / "err_sentinel-2-l2a_stac").exists()


def test_api_errors_are_retried_then_succeed(clean, tmp_path):
    clean.fail(2, status=503)
    collection = build(clean, tmp_path, max_items=2)
    assert len(collection) == 2
    faults = [entry[3] for entry in clean.log]
    assert faults[:2] == [("status", 503)] * 2 and faults[2] is None


def test_api_errors_exhausting_retries_are_reported(clean, objects, tmp_path):
    clean.fail(20, status=502)
    with pytest.raises(StacSearchError) as info:
        build(clean, tmp_path, retries=2)
    message = str(info.value)
    assert clean.url in message and "after 2 retries" in message and "502" in message
    assert len(clean.log) == 3 and objects.requests == 0  # 1 try + 2 retries, no header read
    clean._faults.clear()


def test_timeouts_are_retried(clean, tmp_path):
    clean.delay(1, 1.5)
    collection = build(clean, tmp_path, timeout=0.5, max_items=1, name="slow")
    assert len(collection) == 1
    assert clean.log[0][3] == ("delay", 1.5) and len(clean.log) >= 2


def test_unknown_collection_and_empty_search(clean, tmp_path):
    with pytest.raises(StacSearchError, match=r"no collection 'sentinel-9'.*sentinel-2-l2a"):
        build(clean, tmp_path, collection="sentinel-9")
    with pytest.raises(StacInputError, match="widen the search"):
        build(clean, tmp_path, date_range=("1999-01-01", "1999-12-31"))


def test_not_a_url_without_static_catalog(tmp_path):
    with pytest.raises(StacInputError, match="static_catalog=True"):
        build_from_stac(name="x", stac_api=str(tmp_path / "catalog.json"), collection="c")
