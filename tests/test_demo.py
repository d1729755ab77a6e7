"""The README's main job, ``rasteret demo``, run as a user would: a subprocess.

Checks the printed summary (request counts, no header reads at read time), the NDVI
series against GDAL (rasterio) reading the same generated files, and the PNG quick-look
(decoded, right shape, not blank).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

SCENES, SIZE = 3, 256
SCL_INVALID = (0, 1, 3, 8, 9, 10)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "run"
    options = ["--out", str(out), "--scenes", str(SCENES), "--size", str(SIZE)]
    result = subprocess.run(
        [sys.executable, "-m", "rasteret.cli", "demo", *options],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_summary_reports_requests_and_no_header_reads(demo_run: tuple[Path, str]) -> None:
    out, text = demo_run
    files = SCENES * 3
    build = re.search(r"index build : (\d+) COG headers in [\d.]+ s, (\d+) HTTP requests", text)
    assert build, text
    assert int(build.group(1)) == files
    assert files <= int(build.group(2)) <= 2 * files  # at most two requests per COG
    read = re.search(
        r"NDVI read   : (\d+) tiles in [\d.]+ s, (\d+) HTTP requests.*?(\d+) of them", text
    )
    assert read, text
    tiles, requests, header_reads = map(int, read.groups())
    assert tiles == SCENES * 3 * (SIZE // 256) ** 2
    assert 0 < requests <= tiles  # coalesced: never more requests than tiles
    assert header_reads == 0  # the index is the point: reads never fetch a header
    assert f"{out / 'workspace' / 'demo_records'}" in text
    assert (out / "workspace" / "demo_records").is_dir()


def test_ndvi_series_matches_gdal(demo_run: tuple[Path, str]) -> None:
    rasterio = pytest.importorskip("rasterio", reason="rasterio is the pixel oracle")
    out, text = demo_run
    printed = [float(v) for v in re.findall(r"^\s+\d{4}-\d\d-\d\d\s+(-?[\d.]+)$", text, re.M)]
    assert len(printed) == SCENES
    expected = []
    for scene in sorted((out / "data").iterdir()):
        bands = {}
        for band in ("B04", "B08", "SCL"):
            with rasterio.open(scene / f"{band}.tif") as src:
                bands[band] = src.read(1)
        red, nir = bands["B04"].astype("float32"), bands["B08"].astype("float32")
        valid = (bands["B04"] != 0) & ~np.isin(bands["SCL"], SCL_INVALID)
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = np.where(valid, (nir - red) / (nir + red), np.nan)
        expected.append(float(np.nanmean(ndvi)))
    np.testing.assert_allclose(printed, expected, atol=1.5e-3)  # printed with 3 decimals
    assert printed[-1] > printed[0]  # the sample scenes green up through spring


def test_quicklook_png_is_a_real_image(demo_run: tuple[Path, str]) -> None:
    out, text = demo_run
    png = out / "ndvi_quicklook.png"
    assert f"quick-look  : {png}" in text
    image = imagecodecs.png_decode(png.read_bytes())
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 10  # a colour ramp, not a flat fill
    grey = np.all(image == 128, axis=-1)
    assert 0.005 < grey.mean() < 0.6  # nodata swath / clouds are grey, most pixels are not
    greenish = (image[..., 1] > image[..., 0]) & ~grey
    assert greenish.mean() > 0.2  # vegetated fields in the last (spring) scene
