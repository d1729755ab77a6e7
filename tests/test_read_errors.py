"""A tile that fails to decode at read time names the file, the record and the band."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import rasteret
from rasteret.errors import TiffError
from rasteret.samples import write_cog


def test_corrupt_tile_error_names_file_record_and_band(tmp_path: Path) -> None:
    path = tmp_path / "scene_20240105" / "B04.tif"
    path.parent.mkdir()
    pixels = np.arange(512 * 512, dtype=np.uint16).reshape(512, 512)
    written = write_cog(
        path, pixels, transform=(10.0, 0.0, 500000.0, 0.0, -10.0, 5200000.0), epsg=32633,
        tile=256, overviews=(),
    )  # fmt: skip
    collection = rasteret.build_from_files(
        tmp_path, group_by=lambda p: (Path(p).parent.name, Path(p).stem)
    )
    # damage the payload of the last tile in place, keeping size and mtime (the index's
    # staleness check cannot tell): the decoder must name the file, record and band
    offset = int(written.images[0].offsets[-1])
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.seek(offset + 2)
        handle.write(b"\xff" * 64)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    ds = xr.open_dataset(collection, engine="rasteret", bands=["B04"])
    np.testing.assert_array_equal(ds["B04"][0, :256, :256].values, pixels[:256, :256])
    with pytest.raises(TiffError) as failed:
        ds["B04"][0, 256:, 256:].load()
    message = str(failed.value)
    assert str(path) in message and "'scene_20240105'" in message and "'B04'" in message
