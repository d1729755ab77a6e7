"""Notebook HTML of collections, footprint plots and quick-looks of reads."""

from __future__ import annotations

import html
import re
from pathlib import Path

import imagecodecs
import numpy as np
import pyarrow as pa
import pytest

import rasteret
from rasteret.read.quicklook import plot_quicklook, quicklook_rgb, write_quicklook
from rasteret.samples import make_sentinel2_like

matplotlib = pytest.importorskip("matplotlib", reason="plots need matplotlib (torchgeo extra)")
matplotlib.use("Agg")


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> rasteret.Collection:
    root = tmp_path_factory.mktemp("display")
    records = make_sentinel2_like(root / "scenes", scenes=3, size=256, zones=(32632, 32633))
    columns = ("id", "datetime", "assets", "eo:cloud_cover")
    table = pa.Table.from_pylist([{k: r[k] for k in columns} for r in records])
    return rasteret.build_from_table(table, name="display", workspace_dir=root / "ws")


def _png_pixels(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 1000
    return imagecodecs.png_decode(path.read_bytes())


def test_html_repr_shows_records_bands_dates_crs_extent(collection: rasteret.Collection) -> None:
    text = collection._repr_html_()
    cells = dict(re.findall(r"<th[^>]*>([^<]+)</th><td[^>]*>([^<]*)</td>", text))
    assert cells["records"] == "3"
    assert cells["bands"] == "B04, B08, SCL"
    assert cells["crs"] == "EPSG:32632, EPSG:32633"
    assert cells["dates"].startswith("2024-01-01T10:30:00") and "2024-03-01" in cells["dates"]
    extent = [float(v) for v in cells["extent (lon/lat)"].strip("()").split(",")]
    minx, miny, maxx, maxy = collection.bounds
    np.testing.assert_allclose(extent, [minx, miny, maxx, maxy], rtol=1e-5)
    assert minx < 12.0 < maxx and miny < 47.0 < maxy  # around the generator's centre
    assert html.escape(repr(collection)) in text
    assert text.count("<path ") == 3  # one footprint outline per record in the SVG sketch


def test_html_repr_escapes_names_and_survives_missing_geometry(
    collection: rasteret.Collection,
) -> None:
    table = collection.table.drop_columns(["geometry", "bbox"])
    bare = rasteret.Collection(table, name="<b>odd</b>")
    text = bare._repr_html_()
    assert "<b>odd</b>" not in text and "&lt;b&gt;odd&lt;/b&gt;" in text
    assert "<svg" not in text  # nothing to sketch, still a table


def test_plot_footprints_writes_non_blank_png(
    collection: rasteret.Collection, tmp_path: Path
) -> None:
    ax = collection.plot(column="datetime")
    assert len(ax.collections) == 1 and len(ax.collections[0].get_paths()) == 3
    x0, x1 = ax.get_xlim()
    assert x0 <= collection.bounds[0] and x1 >= collection.bounds[2]
    out = tmp_path / "footprints.png"
    ax.figure.savefig(out, dpi=50)
    pixels = _png_pixels(out)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20


def test_plot_errors_say_what_to_do(collection: rasteret.Collection) -> None:
    with pytest.raises(KeyError, match="no such column; columns are id"):
        collection.plot(column="cloud")
    with pytest.raises(TypeError, match="not numeric"):
        collection.plot(column="id")
    bare = rasteret.Collection(collection.table.drop_columns(["geometry", "bbox"]), name="b")
    with pytest.raises(ValueError, match="no footprints"):
        bare.plot()


def test_quicklook_of_a_read(collection: rasteret.Collection, tmp_path: Path) -> None:
    import xarray as xr

    ds = xr.open_dataset(collection, engine="rasteret", bands=["B04"], group="epsg32632_10m")
    band = ds.B04.isel(time=0)
    rgb = quicklook_rgb(band, nodata=0)
    assert rgb.shape == (256, 256, 3) and rgb.dtype == np.uint8
    nodata = band.values == 0
    assert nodata.any() and (rgb[nodata] == 128).all()  # nodata is grey
    assert not (rgb[~nodata] == 128).all(axis=-1).all()
    small = write_quicklook(tmp_path / "q.png", band, nodata=0, max_size=100)
    assert _png_pixels(small).shape == (86, 86, 3)  # stride 3 keeps 256 / 3 rounded up
    ax = plot_quicklook(band, nodata=0)
    ax.figure.savefig(tmp_path / "plot.png", dpi=40)
    assert _png_pixels(tmp_path / "plot.png").std() > 5


def test_quicklook_rejects_stacks_with_a_hint() -> None:
    with pytest.raises(ValueError, match=r"select one record and one band"):
        quicklook_rgb(np.zeros((4, 8, 8)))
    rgb = quicklook_rgb(np.ma.masked_less(np.arange(16.0).reshape(4, 4), 3))
    assert (rgb.reshape(-1, 3)[:3] == 128).all() and not (rgb.reshape(-1, 3)[3:] == 128).all()
