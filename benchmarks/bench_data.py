"""Benchmark inputs: Sentinel-2-like COGs written by GDAL and by rasteret, machine facts.

Both files hold the same full-resolution pixels (a red band of
:func:`rasteret.samples.make_sentinel2_like`): uint16, deflate + horizontal predictor,
square tiles, overviews down to one tile (GDAL's ``OVERVIEWS=AUTO`` rule), nodata 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

BAND = "B04"


@dataclass(frozen=True)
class SceneFile:
    """One benchmark input file and the facts the report needs about it."""

    writer: str  # "gdal" or "rasteret"
    path: Path
    width: int
    height: int
    tile: int  # tile width (= height) in pixels
    tiles: int  # full-resolution tiles
    file_bytes: int
    data_start: int  # first byte of tile data: requests starting before it read the header

    @property
    def decoded_bytes(self) -> int:
        return self.width * self.height * 2  # uint16


def overview_factors(size: int, tile: int) -> tuple[int, ...]:
    """GDAL COG ``OVERVIEWS=AUTO``: halve until the overview fits in one tile."""
    factors, factor, side = [], 1, size
    while side > tile:
        factor *= 2
        side = -(-size // factor)
        factors.append(factor)
    return tuple(factors)


def make_scene_files(root: Path, size: int, tile: int) -> dict[str, SceneFile]:
    """Write ``rasteret/…/B04.tif`` (rasteret's writer) and ``gdal.tif`` (GDAL's COG driver)."""
    import rasterio
    from rasterio.transform import Affine

    from rasteret.samples import make_sentinel2_like

    root.mkdir(parents=True, exist_ok=True)
    marker = root / "scene.json"
    wanted = {"size": size, "tile": tile}
    if marker.exists() and json.loads(marker.read_text()).get("scene") == wanted:
        made = json.loads(marker.read_text())  # written by an earlier run into this folder
        return {w: describe(Path(p), w) for w, p in made["paths"].items()}
    records = make_sentinel2_like(
        root / "rasteret",
        scenes=1,
        size=size,
        bands=(BAND,),
        tile=tile,
        overviews=overview_factors(size, tile),
    )
    ours = Path(records[0]["hrefs"][BAND])
    with rasterio.open(ours) as src:
        pixels = src.read(1)
        profile = {"crs": src.crs, "transform": src.transform}
    gdal_path = root / "gdal.tif"
    with rasterio.open(
        gdal_path,
        "w",
        driver="COG",
        width=size,
        height=size,
        count=1,
        dtype="uint16",
        nodata=0,
        crs=profile["crs"],
        transform=Affine(*profile["transform"][:6]),
        compress="DEFLATE",
        predictor=2,
        blocksize=tile,
        overviews="AUTO",
        resampling="average",
        num_threads="ALL_CPUS",
    ) as dst:
        dst.write(pixels, 1)
    with rasterio.open(gdal_path) as src:
        if not np.array_equal(src.read(1), pixels):
            raise SystemExit("GDAL's COG does not hold the pixels it was given")
    paths = {"gdal": str(gdal_path), "rasteret": str(ours)}
    marker.write_text(json.dumps({"scene": wanted, "paths": paths}))
    return {w: describe(Path(p), w) for w, p in paths.items()}


def describe(path: Path, writer: str) -> SceneFile:
    """Size, tile count and start of tile data of ``path`` (parsed with rasteret)."""
    from rasteret.tiff import read_header

    async def parse() -> object:
        with open(path, "rb") as handle:

            async def fetch(offset: int, length: int) -> bytes:
                return os.pread(handle.fileno(), length, offset)

            return await read_header(fetch, str(path))

    header = asyncio.run(parse())
    offsets = [int(o) for image in header.images for o in image.block_offsets if int(o) > 0]  # type: ignore[attr-defined]
    full = header.full  # type: ignore[attr-defined]
    return SceneFile(
        writer=writer,
        path=path,
        width=full.width,
        height=full.height,
        tile=full.block_width,
        tiles=full.blocks_across * full.blocks_down,
        file_bytes=path.stat().st_size,
        data_start=min(offsets),
    )


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def _git_commit() -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes), if it is a git tree."""
    import rasteret

    here = Path(rasteret.__file__).resolve().parent  # the tree actually imported
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "-"
    return (commit + ("+dirty" if dirty else "")) if commit else "-"


def huge_pages() -> str:
    """Transparent huge pages as a fresh process meets them: the kernel's mode and whether
    numpy asks for them on large arrays (``NUMPY_MADVISE_HUGEPAGE``; rasteret's reads turn
    numpy's advice off while they run unless that is set). First-touched huge pages are
    much slower on some VMs: every tool's output arrays are numpy's."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
        mode = text.split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return "-"
    chosen = os.environ.get("NUMPY_MADVISE_HUGEPAGE")
    if chosen is None:  # numpy's default; rasteret's reads switch it off while they run
        return f"THP {mode}, numpy madvises huge pages (not inside rasteret's reads)"
    verb = "madvises" if chosen != "0" else "does not madvise"
    return f"THP {mode}, NUMPY_MADVISE_HUGEPAGE={chosen}: numpy {verb} huge pages"


def machine_info() -> dict[str, object]:
    """CPU, cores, OS, Python and the versions of every library on the read paths."""
    import rasterio

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    try:
        kernel = subprocess.run(["uname", "-sr"], capture_output=True, text=True).stdout.strip()
    except OSError:
        kernel = platform.platform()
    return {
        "cpu": _cpu_model(),
        "cores": usable,
        "logical_cpus": os.cpu_count(),
        "os": kernel,
        "python": sys.version.split()[0],
        "numpy": _version("numpy"),
        "imagecodecs": _version("imagecodecs"),
        "rasterio": _version("rasterio"),
        "gdal": rasterio.__gdal_version__,
        "zarr": _version("zarr"),
        "xarray": _version("xarray"),
        "dask": _version("dask"),
        "obstore": _version("obstore"),
        "rasteret": _version("rasteret"),
        "rasteret_commit": _git_commit(),
        "huge_pages": huge_pages(),
        "rasteret_src": str(Path(__import__("rasteret").__file__).resolve().parents[1]),
    }
