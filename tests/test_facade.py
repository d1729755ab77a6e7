"""``rasteret.Collection``: typed surfaces over the layers that implement them."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import rasterio
import rasterio.mask
import shapely

import rasteret
from rasteret.index import CollectionTable

#: facade method -> (implementation module, function)
SURFACES = {
    "get_numpy": ("rasteret.read", "get_numpy"),
    "get_xarray": ("rasteret.read", "get_xarray"),
    "read_aoi_windows": ("rasteret.read", "read_aoi_windows"),
    "sample_points": ("rasteret.read", "sample_points"),
    "read_window": ("rasteret.read.window", "read_window"),
    "explain": ("rasteret.read.explain", "explain"),
    "to_torchgeo_dataset": ("rasteret.integrations.torchgeo", "to_torchgeo_dataset"),
    "refresh": ("rasteret.ingest.refresh", "refresh"),
}
SUBSET_FILTERS = {"cloud_cover_lt", "date_range", "bbox", "split", "split_column"}
VARIADIC = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)


@pytest.fixture(scope="module")
def sample_collection_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    import pyarrow as pa

    from rasteret.samples import make_sentinel2_like

    root = tmp_path_factory.mktemp("facade")
    records = make_sentinel2_like(root / "data", scenes=3, size=512)
    table = pa.Table.from_pylist(
        [{k: r[k] for k in ("id", "datetime", "assets", "eo:cloud_cover")} for r in records]
    )
    collection = rasteret.build_from_table(table, name="facade", workspace_dir=root / "ws")
    path = root / "facade.parquet"
    collection.export(path)
    return str(path)


def _parameters(function: object) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(function).parameters)  # type: ignore[arg-type]
    for name in ("self", "collection"):
        params.pop(name, None)
    return {k: p for k, p in params.items() if p.kind not in VARIADIC}


@pytest.mark.parametrize("method", sorted(SURFACES))
def test_surface_signatures_match_their_implementation(method: str) -> None:
    import importlib

    module, name = SURFACES[method]
    implementation = getattr(importlib.import_module(module), name)
    facade = _parameters(getattr(rasteret.Collection, method))
    implemented = _parameters(implementation)
    missing = set(implemented) - set(facade)
    assert not missing, f"Collection.{method} lacks {sorted(missing)} of {module}.{name}"
    extra = set(facade) - set(implemented) - SUBSET_FILTERS
    assert not extra, f"Collection.{method} has {sorted(extra)} that {name} does not take"
    for key in implemented:
        assert facade[key].default == implemented[key].default, (method, key)
    # every public option is visible: no bare **kwargs but the legacy catch-all
    variadic = [
        p.name
        for p in inspect.signature(getattr(rasteret.Collection, method)).parameters.values()
        if p.kind in VARIADIC
    ]
    assert variadic in ([], ["legacy"]), variadic


def test_build_functions_keep_their_signatures() -> None:
    from rasteret.ingest.table import build_from_table

    facade = inspect.signature(rasteret.build_from_table)
    assert list(facade.parameters) == list(inspect.signature(build_from_table).parameters)
    assert facade.return_annotation is rasteret.Collection
    assert rasteret.build_from_table.__doc__ == build_from_table.__doc__


def test_views_and_loads_are_facades(sample_collection_path) -> None:
    collection = rasteret.load(sample_collection_path)
    assert type(collection) is rasteret.Collection
    assert isinstance(collection, CollectionTable)
    view = collection.subset(cloud_cover_lt=100).select_bands(collection.bands[:1])
    assert type(view) is rasteret.Collection
    assert type(rasteret.as_collection(collection.table)) is rasteret.Collection
    assert type(rasteret.Collection.from_parquet(sample_collection_path)) is rasteret.Collection
    from rasteret.index import load as load_table

    table_only = load_table(sample_collection_path)
    assert type(table_only) is CollectionTable
    assert not hasattr(table_only, "get_numpy")  # the control plane knows no pixels
    adopted = rasteret.Collection.of(table_only)
    assert adopted.fingerprint == table_only.fingerprint and adopted.uri == table_only.uri


def test_facade_read_equals_rasterio_and_filters(sample_collection_path) -> None:
    collection = rasteret.load(sample_collection_path)
    record = collection.table.slice(0, 1)
    band = collection.bands[0]
    href = collection.hrefs(band)[0]
    with rasterio.open(href) as src:
        left, bottom = src.bounds.left, src.bounds.bottom
        box = shapely.box(left + 100, bottom + 100, left + 900, bottom + 700)
        expected, _ = rasterio.mask.mask(src, [box], crop=True, filled=False)
        crs = src.crs.to_wkt()
    only = collection.select_records([record["id"][0].as_py()])
    stack = only.get_numpy([box], band, geometry_crs=crs)
    assert np.array_equal(stack.data[0], expected.data[0])
    # the typed filters select records before the read, as subset() would
    start = record["datetime"][0].as_py().date().isoformat()
    filtered = collection.get_numpy([box], band, geometry_crs=crs, date_range=(start, start))
    same_day = collection.subset(date_range=(start, start))
    assert filtered.data.shape[0] == len(same_day)


def test_legacy_options_warn_and_unknown_options_raise(sample_collection_path) -> None:
    collection = rasteret.load(sample_collection_path)
    band = collection.bands[0]
    box = collection.bounds
    with pytest.warns(DeprecationWarning, match=r"max_concurrent=.*rasteret.configure"):
        collection.get_numpy(box, band, max_concurrent=8)
    with pytest.raises(TypeError, match="'max_concurent': the record filters are"):
        collection.get_numpy(box, band, max_concurent=8)
    with pytest.raises(TypeError, match="'backed': the record filters are"):
        collection.get_xarray(box, band, backed=None)  # a typo is never ignored
    import inspect

    from rasteret.read.selection import RECORD_FILTERS

    subset = inspect.signature(rasteret.Collection.subset).parameters
    assert tuple(subset)[1:] == RECORD_FILTERS  # the list the error shows stays true
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        collection.sample_points([(box[0] + 1e-3, box[1] + 1e-3)], band)


def test_original_collection_attributes(sample_collection_path) -> None:
    """#16: ``start_date`` / ``end_date``, ``dataset`` and ``footprints(crs)``."""
    import numpy as np
    import pyarrow.compute as pc

    collection = rasteret.load(sample_collection_path)
    times = collection.table["datetime"]
    assert collection.start_date == pc.min(times).as_py()
    assert collection.end_date == pc.max(times).as_py()
    spring = collection.where(pc.field("id") == collection.record_ids[-1])
    assert spring.dataset.to_table().column("id").to_pylist() == [collection.record_ids[-1]]

    lonlat = collection.footprints()
    assert len(lonlat) == len(collection) and all(g.geom_type == "Polygon" for g in lonlat)
    band = collection.bands[0]
    for k, levels in enumerate(collection.band_levels(band)):
        full = levels.full
        crs = collection.table["proj:epsg"][k].as_py()
        a, _, c, _, e, f = full.transform[:6]
        extent = (c, f + e * full.height, c + a * full.width, f)  # the scene's own box
        native = collection.footprints(crs)[k]
        np.testing.assert_allclose(native.bounds, extent, atol=1e-3)  # metres


def test_compare_to_catalog(sample_collection_path) -> None:
    """#16: ``describe()`` plus the catalog entry of the data source; no entry: ValueError."""
    loaded = rasteret.load(sample_collection_path)
    sentinel = rasteret.as_collection(loaded.table, data_source="sentinel-2-l2a")
    compared = sentinel.compare_to_catalog()
    assert compared["records"] == len(loaded) and compared["bands"] == loaded.bands
    entry = compared["catalog"]
    assert entry["id"].endswith("/sentinel-2-l2a") and "B04" in entry["all_bands"]
    assert set(compared["bands_not_indexed"]) == set(entry["all_bands"]) - set(loaded.bands)
    exact = rasteret.as_collection(loaded.table, data_source="pc/sentinel-2-l2a")
    assert exact.compare_to_catalog()["catalog"]["id"] == "pc/sentinel-2-l2a"
    unknown = rasteret.as_collection(loaded.table, data_source="my-drone-flights")
    with pytest.raises(ValueError, match="'my-drone-flights'"):
        unknown.compare_to_catalog()
