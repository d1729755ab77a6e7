"""A persisted build writes its records in parts and resumes after being killed (#15):
the rerun fetches only the headers of the records no finished part holds (requests counted
by the object server), and the result equals an uninterrupted build."""

from __future__ import annotations

import datetime as dt
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


def _stac_catalog(root: Path, urls: list[str], names: list[str]) -> Path:
    """A static catalog on disk: one item per served file (asset ``data``)."""
    import json

    links = []
    for k, (url, name) in enumerate(zip(urls, names, strict=True)):
        x = 10.0 + 0.01 * k
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": Path(name).stem,
            "collection": "c",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[x, 45], [x + 0.01, 45], [x + 0.01, 45.01], [x, 45.01], [x, 45]]],
            },
            "bbox": [x, 45, x + 0.01, 45.01],
            "properties": {"datetime": f"2024-01-{1 + k % 28:02d}T10:00:00Z"},
            "assets": {"data": {"href": url, "type": "image/tiff; application=geotiff"}},
            "links": [{"rel": "collection", "href": "./collection.json"}],
        }
        (root / f"{item['id']}.json").write_text(json.dumps(item))
        links.append({"rel": "item", "href": f"./{item['id']}.json"})
    collection = {
        "type": "Collection", "id": "c", "stac_version": "1.0.0", "description": "t",
        "license": "other", "extent": {}, "links": links,
    }  # fmt: skip
    (root / "collection.json").write_text(json.dumps(collection))
    catalog = {
        "type": "Catalog", "id": "root", "stac_version": "1.0.0", "description": "root",
        "links": [{"rel": "child", "href": "./collection.json"}],
    }  # fmt: skip
    (root / "catalog.json").write_text(json.dumps(catalog))
    return root / "catalog.json"


BUILDERS = {
    "stac": textwrap.dedent(
        """
        from rasteret.ingest.stac import build_from_stac
        def build(source, workspace):
            return build_from_stac(name="resume", stac_api=source, collection="c",
                band_map={"B1": "data"}, static_catalog=True, workspace_dir=workspace,
                max_concurrent=2)
        """
    ),
    "table": textwrap.dedent(
        """
        import pyarrow.parquet as pq
        from rasteret.ingest import build_from_table
        def build(source, workspace):
            return build_from_table(pq.read_table(source), name="resume",
                workspace_dir=workspace, max_concurrent=2)
        """
    ),
}


@pytest.mark.slow  # two builds killed and resumed in child processes (about 9 s)
@pytest.mark.skipif(sys.platform == "win32", reason="kills a child process with SIGKILL")
@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_killed_stac_and_table_builds_resume_fetching_only_missing_headers(
    tmp_path: Path, builder: str
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    served = tmp_path / "served"
    served.mkdir()
    names = _write_files(served)
    workspace = tmp_path / "ws"
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    with ObjectServer(served, latency=0.05) as server:
        urls = [server.url_for(n) for n in names]
        if builder == "stac":
            source = str(_stac_catalog(catalog_dir, urls, names))
        else:
            source = str(tmp_path / "records.parquet")
            pq.write_table(
                pa.table(
                    {
                        "id": [Path(n).stem for n in names],
                        "datetime": pa.array(
                            [dt.datetime(2024, 1, 1) + dt.timedelta(days=k) for k in range(FILES)],
                            pa.timestamp("us"),
                        ),
                        "assets": [{"B1": {"href": u}} for u in urls],
                    }
                ),
                source,
            )
        script = BUILDERS[builder] + textwrap.dedent(
            """
            import sys
            import rasteret.ingest.checkpoint as checkpoint
            checkpoint.PART_RECORDS = int(sys.argv[1])
            build(sys.argv[2], sys.argv[3])
            """
        )
        child = subprocess.Popen(
            [sys.executable, "-c", script, str(PART), source, str(workspace)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        parts_glob = ".resume*.parts-*/part-*.parquet"
        deadline = time.monotonic() + 60
        while len(list(workspace.glob(parts_glob))) < 2 and time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail("the build finished before it could be killed")
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        written = len(list(workspace.glob(parts_glob)))
        assert 2 <= written < FILES // PART

        server.reset()
        namespace: dict = {}
        exec(BUILDERS[builder], namespace)
        import rasteret.ingest.checkpoint as checkpoint

        saved, checkpoint.PART_RECORDS = checkpoint.PART_RECORDS, PART
        try:
            resumed = namespace["build"](source, str(workspace))
        finally:
            checkpoint.PART_RECORDS = saved
        assert server.requests == FILES - PART * written  # one header GET per missing file
        assert not list(workspace.glob(".resume*.parts-*"))  # parts removed once written
        assert sorted(resumed.record_ids) == sorted(Path(n).stem for n in names)
        assert resumed.band_levels("B1")[0] is not None
        if builder == "stac":  # the search parameters survive (update_collection needs them)
            from rasteret.ingest.manage import STAC_PARAMS_KEY

            assert STAC_PARAMS_KEY in resumed.schema.metadata

        server.reset()
        fresh = namespace["build"](source, str(tmp_path / "ws2"))
        assert server.requests == FILES
    a, b = resumed.table, fresh.table
    assert a["id"].to_pylist() == b["id"].to_pylist()
    strip = [
        {k: v for k, v in m.items() if k != "last_modified"} for m in a["B1_metadata"].to_pylist()
    ]
    again = [
        {k: v for k, v in m.items() if k != "last_modified"} for m in b["B1_metadata"].to_pylist()
    ]
    assert strip == again
