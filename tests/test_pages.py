"""Reads allocate small pages: numpy's huge-page advice is off while a read runs.

Oracles: numpy's own switch (what it would advise next), the kernel's accounting of the
result array's mapping (``AnonHugePages`` in ``/proc/self/smaps``), and pixels read by
GDAL.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import rasteret
from rasteret._pages import huge_pages_advised, small_pages
from rasteret.samples import make_sentinel2_like

rasterio = pytest.importorskip("rasterio", reason="rasterio (GDAL) is the pixel oracle")

needs_switch = pytest.mark.skipif(
    huge_pages_advised() is None,
    reason="NUMPY_MADVISE_HUGEPAGE is set or this numpy has no huge-page switch",
)


def _thp_mode() -> str | None:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return None
    return text.split("[")[1].split("]")[0]


def _huge_kib(array: np.ndarray) -> int:
    """Kernel-counted huge-page KiB of the mappings that hold ``array``'s data."""
    first, last = array.ctypes.data, array.ctypes.data + array.nbytes
    total, overlaps, found = 0, False, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            start, end = (int(part, 16) for part in head.split("-"))
            overlaps = start < last and first < end
            found |= overlaps
        elif overlaps and head == "AnonHugePages:":
            total += int(line.split()[1])
    assert found, "array's mapping not found in /proc/self/smaps"
    return total


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("pages")
    records = make_sentinel2_like(root, scenes=1, size=3000, bands=("B04", "B08"), tile=512)
    collection = rasteret.build_from_files(
        root, group_by=lambda p: (Path(p).parent.name, Path(p).stem)
    )
    path = root / "collection.parquet"
    collection.export(path)
    return records[0], path


@needs_switch
def test_the_switch_is_off_inside_a_read_and_restored_after() -> None:
    seen: list[bool | None] = []

    @small_pages
    def read() -> None:
        seen.append(huge_pages_advised())

    @small_pages
    def fails() -> None:
        raise ValueError("boom")

    before = huge_pages_advised()
    read()
    assert seen == [False]
    assert huge_pages_advised() == before
    with pytest.raises(ValueError, match="boom"):
        fails()
    assert huge_pages_advised() == before


@needs_switch
def test_overlapping_reads_restore_only_when_the_last_ends() -> None:
    before = huge_pages_advised()
    first_in, release, seen = threading.Event(), threading.Event(), []

    @small_pages
    def long_read() -> None:
        first_in.set()
        release.wait(10)

    @small_pages
    def short_read() -> None:
        seen.append(huge_pages_advised())

    thread = threading.Thread(target=long_read)
    thread.start()
    assert first_in.wait(10)
    short_read()  # starts and ends inside the long read
    seen.append(huge_pages_advised())  # the long read still runs: still off
    release.set()
    thread.join(10)
    assert seen == [False, False]
    assert huge_pages_advised() == before


#: A fresh process (its heap never held memory someone advised into huge pages) reads
#: and reports the kernel's huge-page KiB of a control array numpy advised and of the
#: read's result, which it saves for the pixel comparison.
READ_SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np
import rasteret
{huge_kib}
surface, path, out, bounds, crs = sys.argv[1:6]
bounds = tuple(json.loads(bounds))
control = np.ones(64 << 20, dtype=np.uint8)
collection = rasteret.load(path)
if surface == "read_window":
    data = collection.read_window(bands=["B04", "B08"], bounds=bounds, res=10.0)
else:
    data = collection.get_numpy(bounds, ["B04", "B08"], geometry_crs=crs).data
np.save(out, data)
print(json.dumps([_huge_kib(control), _huge_kib(data)]))
"""


@needs_switch
@pytest.mark.skipif(
    _thp_mode() not in ("madvise", "always"), reason="the kernel has no transparent huge pages"
)
@pytest.mark.parametrize("surface", ["read_window", "get_numpy"])
def test_a_read_result_has_no_huge_pages_and_equals_gdal(
    scenes: tuple[dict, Path], surface: str, tmp_path: Path
) -> None:
    record, path = scenes
    expected = []
    for band in ("B04", "B08"):
        with rasterio.open(record["hrefs"][band]) as src:
            expected.append(src.read(1))
            bounds, crs = list(src.bounds), src.crs.to_string()
    out = tmp_path / "data.npy"
    script = READ_SCRIPT.format(huge_kib=inspect.getsource(_huge_kib))
    args = [surface, str(path), str(out), json.dumps(bounds), crs]
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    run = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    control, result = json.loads(run.stdout.strip().splitlines()[-1])
    data = np.load(out).reshape(2, 3000, 3000)  # 36 MB: above malloc's largest heap threshold
    np.testing.assert_array_equal(data, np.stack(expected))
    if _thp_mode() == "madvise" and control == 0:
        pytest.skip("the kernel gave no huge pages even where numpy advised them")
    assert result == 0


def test_a_user_setting_is_left_alone(tmp_path: Path) -> None:
    script = (
        "from rasteret._pages import huge_pages_advised, small_pages\n"
        "from numpy._core.multiarray import _set_madvise_hugepage as switch\n"
        "inside = small_pages(lambda: switch(True))()\n"
        "print(huge_pages_advised(), inside, switch(True))\n"
    )
    for value in ("0", "1"):
        env = dict(os.environ, NUMPY_MADVISE_HUGEPAGE=value)
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        # no switch of ours (None), and numpy's own setting from the variable is untouched
        assert out.stdout.split() == ["None", str(value == "1"), "True"]
