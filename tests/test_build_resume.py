"""A persisted build writes its records in parts and resumes after being killed (#15):
the rerun fetches only the headers of the records no finished part holds (requests counted
by the object server), and the result equals an uninterrupted build."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import rasteret
from rasteret.ingest.checkpoint import BuildParts
from rasteret.testing.objserver import ObjectServer

FILES = 60
PART = 10


def _write_files(root: Path) -> list[str]:
    import rasterio
    from rasterio.transform import from_origin

    names = []
    for k in range(FILES):
        name = f"scene_{20240101 + k % 28:08d}_{k:03d}.tif"
        with rasterio.open(
            root / name, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint16",
            crs="EPSG:32633", transform=from_origin(500000 + 640 * k, 5200000, 10, 10),
            tiled=True, blockxsize=32, blockysize=32, compress="deflate",
        ) as dst:  # fmt: skip
            dst.write(np.full((1, 64, 64), k + 1, dtype="uint16"))
        names.append(name)
    return names


SCRIPT = textwrap.dedent(
    """
    import sys
    import rasteret.ingest.checkpoint as checkpoint
    from rasteret.ingest import build_from_files
    checkpoint.PART_RECORDS = int(sys.argv[3])
    urls, workspace, concurrency = sys.argv[4:], sys.argv[1], int(sys.argv[2])
    build_from_files(urls, name="resume", workspace_dir=workspace, max_concurrent=concurrency)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="kills a child process with SIGKILL")
def test_killed_build_resumes_fetching_only_missing_headers(tmp_path, monkeypatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    names = _write_files(served)
    workspace = tmp_path / "ws"
    with ObjectServer(served, latency=0.05) as server:
        urls = [server.url_for(n) for n in names]
        child = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(workspace), "2", str(PART), *urls],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        parts_glob = ".resume_records.parts-*/part-*.parquet"
        while len(list(workspace.glob(parts_glob))) < 2 and time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail("the build finished before it could be killed")
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)  # mid-build: no cleanup runs
        child.wait()
        assert not (workspace / "resume_records").exists()  # no half-written collection
        written = list(workspace.glob(parts_glob))
        assert 2 <= len(written) < FILES // PART
        directory = written[0].parent
        key = directory.name.split(".parts-")[1]
        done = BuildParts(workspace / "resume_records", key).done_ids()
        assert len(done) == PART * len(written)  # whole parts only (atomic writes)

        import rasteret.ingest.checkpoint as checkpoint

        monkeypatch.setattr(checkpoint, "PART_RECORDS", PART)
        server.reset()
        resumed = rasteret.build_from_files(urls, name="resume", workspace_dir=workspace)
        assert server.requests == FILES - len(done)  # one header GET per missing file
        assert not directory.exists()  # parts removed once the collection is written
        assert len(resumed) == FILES
        assert sorted(resumed.record_ids) == sorted(Path(n).stem for n in names)
        times = resumed.datetimes.tolist()
        assert times == sorted(times)  # written sorted by datetime (then id)

        server.reset()
        fresh = rasteret.build_from_files(urls, name="fresh", workspace_dir=tmp_path / "ws2")
        assert server.requests == FILES
    a, b = resumed.table, fresh.table
    assert a["id"].to_pylist() == b["id"].to_pylist()
    for band in ("b1",):
        left = [
            {k: v for k, v in m.items() if k != "last_modified"}
            for m in a[f"{band}_metadata"].to_pylist()
        ]
        right = [
            {k: v for k, v in m.items() if k != "last_modified"}
            for m in b[f"{band}_metadata"].to_pylist()
        ]
        assert left == right
