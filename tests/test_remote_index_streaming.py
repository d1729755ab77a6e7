"""Collection indexes streamed from object storage and the Hugging Face Hub, never copied.

``rasteret.load`` on ``s3://`` (moto) files and hive directories and on
``hf://datasets/<org>/<name>/<path>`` (rasteret.testing.objserver serving the Hub's
``/datasets/<org>/<name>/resolve/<revision>/<path>`` layout at ``$HF_ENDPOINT``) reads
Parquet footers, then only the row groups a selection needs. The oracles: the servers'
request logs against the byte spans of the file's footer and row groups (from
``pyarrow.parquet`` metadata of the local copy), empty temporary / home directories (no
local file written), and GDAL (rasterio) pixels of the selected records' COGs.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import rasteret
from _cloudscenes import NAMES, assert_pixels, clear_env, fetch_settings, open_ds, write_scenes
from rasteret.errors import FetchError
from rasteret.fetch import route
from rasteret.fetch.routing import hf_resolve_url
from rasteret.testing.objserver import ObjectServer

REPO = "datasets/rasteret-test/s2-mini"
ROWS, GROUP = 1200, 100  # 12 row groups of ~100 KiB
FOOTER_READ = 64 * 1024  # what Arrow reads from a file's end to find its footer
SELECTED = ["r0530", "r0531", "r0577"]  # all in row group 5


# -------------------------------------------------------------------------- the index
def wide_index(base: pa.Table, rows: int, start: dt.datetime, step: dt.timedelta) -> pa.Table:
    """``rows`` records over the two scenes of ``base`` (alternating), ids ``r0000``… in
    time order, each with a 1 KiB random ``embedding`` (a user column that does not
    compress: the index is large, so reading all of it is visible)."""
    table = base.take([k % base.num_rows for k in range(rows)])
    stamp_type = table.schema.field("datetime").type
    columns = {
        "id": pa.array([f"r{k:04d}" for k in range(rows)]),
        "datetime": pa.array([start + k * step for k in range(rows)], stamp_type),
    }
    for name, values in columns.items():
        table = table.set_column(table.column_names.index(name), name, values)
    noise = np.random.default_rng(0).random((rows, 256), dtype=np.float32)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(noise.ravel()), 256)
    return table.append_column("embedding", embedding).replace_schema_metadata(base.schema.metadata)


def write_index(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=GROUP, compression="zstd")
    return path


def group_spans(path: Path) -> list[tuple[int, int]]:
    """``[start, end)`` of each row group's column chunks in the file."""
    metadata = pq.ParquetFile(path).metadata
    spans = []
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        starts, ends = [], []
        for c in range(group.num_columns):
            column = group.column(c)
            first = column.data_page_offset
            if column.has_dictionary_page and column.dictionary_page_offset:
                first = min(first, column.dictionary_page_offset)
            starts.append(first)
            ends.append(first + column.total_compressed_size)  # dictionary page included
        spans.append((min(starts), max(ends)))
    return spans


def footer_start(path: Path) -> int:
    """Where Arrow's footer reads may begin: the serialized footer, or the 64 KiB tail."""
    size = path.stat().st_size
    footer = size - 8 - pq.ParquetFile(path).metadata.serialized_size
    return max(0, min(footer, size - FOOTER_READ))


def groups_read(ranges: list[tuple[int, int]], path: Path) -> set[int]:
    """The row groups whose bytes ``ranges`` touch, after checking that every range
    lies in the footer or in row groups (never a whole-file read). A one-byte read at 0
    is the size probe of a store that refuses HEAD to anonymous callers (moto)."""
    spans, tail = group_spans(path), footer_start(path)
    touched: set[int] = set()
    for start, end in ranges:
        if start >= tail or (start, end) == (0, 1):
            continue
        hit = {g for g, (a, b) in enumerate(spans) if start < b and end > a}
        assert hit, f"range {start}-{end} lies outside every row group and the footer"
        touched |= hit
    return touched


def no_local_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty temporary and home directories (the workspace included) for one test."""
    root = tmp_path / "isolated"
    (root / "tmp").mkdir(parents=True)
    (root / "home").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root / "tmp"))
    for name in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.setenv(name, str(root / "tmp"))
    monkeypatch.setenv("HOME", str(root / "home"))
    monkeypatch.delenv("RASTERET_WORKSPACE", raising=False)
    return root


# -------------------------------------------------------------------------- Hugging Face
def test_hf_urls_map_to_resolve_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    hub = "https://huggingface.co"
    assert hf_resolve_url("hf://datasets/org/name/data/index.parquet") == (
        f"{hub}/datasets/org/name/resolve/main/data/index.parquet"
    )
    assert hf_resolve_url("hf://datasets/org/name@v1.0/a b.parquet") == (
        f"{hub}/datasets/org/name/resolve/v1.0/a%20b.parquet"
    )
    assert hf_resolve_url("hf://datasets/org/name@refs%2Fpr%2F3/x.parquet") == (
        f"{hub}/datasets/org/name/resolve/refs%2Fpr%2F3/x.parquet"
    )
    assert hf_resolve_url("hf://spaces/org/app/x.tif").startswith(f"{hub}/spaces/org/app/resolve/")
    assert hf_resolve_url("hf://org/model/x.tif") == f"{hub}/org/model/resolve/main/x.tif"
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/mirror/")
    r = route("hf://datasets/org/name/data/index.parquet")
    assert (r.kind, r.key, r.path) == (
        "http",
        "http://127.0.0.1:9/mirror/datasets/org/name/resolve/main",
        "data/index.parquet",
    )
    assert r.url == "http://127.0.0.1:9/mirror/datasets/org/name/resolve/main/data/index.parquet"
    for bad in ("hf://datasets/org/name", "hf://datasets/org", "hf://org@v1/name/x"):
        with pytest.raises(ValueError, match="hf://"):
            route(bad)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ObjectServer, dict]]:
    """A Hub-shaped object server: two COGs and a wide index (``hf://`` hrefs) in
    ``REPO`` at revision ``main``."""
    root = tmp_path_factory.mktemp("hub")
    files = root / REPO / "resolve" / "main"
    scenes = write_scenes(files / "scenes")
    with ObjectServer(root) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_ENDPOINT", server.url)
        hrefs = [f"hf://{REPO}/scenes/{name}" for name in NAMES]
        built = rasteret.build_from_files(hrefs)
        assert built.hrefs("b1") == hrefs
        table = wide_index(built.table, ROWS, dt.datetime(2020, 1, 1), dt.timedelta(days=1))
        index = write_index(table, files / "data" / "index.parquet")
        yield server, {"scenes": scenes, "index": index}


@pytest.fixture
def hf(
    hub: tuple[ObjectServer, dict], monkeypatch: pytest.MonkeyPatch
) -> tuple[ObjectServer, dict]:
    server, files = hub
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    server.reset()
    return server, files


def test_load_from_hf_streams_footer_and_selected_row_groups(
    hf: tuple[ObjectServer, dict], isolated: Path
) -> None:
    server, files = hf
    index: Path = files["index"]
    assert index.stat().st_size > 1_000_000 and len(group_spans(index)) == ROWS // GROUP
    loaded = rasteret.load(f"hf://{REPO}/data/index.parquet")
    assert len(loaded) == ROWS and not loaded.is_read
    assert loaded.name == "index"
    picked = loaded.where(pc.field("id").isin(SELECTED))
    assert picked.record_ids == SELECTED
    assert_pixels(open_ds(picked), [files["scenes"][NAMES[k % 2]] for k in (530, 531, 577)])
    rel = f"{REPO}/resolve/main/data/index.parquet"
    reads = server.records(path=rel, method="GET")
    ranges = [(r.start, r.end) for r in reads]
    assert all(s is not None and e is not None for s, e in ranges)  # never the whole file
    assert groups_read(ranges, index) == {5}
    got = sum(e - s for s, e in ranges)
    assert got < index.stat().st_size / 4
    assert len(server.records(path=rel, method="HEAD")) <= 1
    scene_reads = [r for r in server.log if "/scenes/" in r.path]
    assert scene_reads and all(r.start is not None and r.start > 0 for r in scene_reads)
    assert no_local_files(isolated) == []


def test_hf_revision_and_missing_paths(hf: tuple[ObjectServer, dict]) -> None:
    server, _ = hf
    loaded = rasteret.load(f"hf://{REPO}@main/data/index.parquet")
    assert len(loaded) == ROWS
    with pytest.raises(FileNotFoundError, match="cannot list a directory"):
        rasteret.load(f"hf://{REPO}/data")
    server.inject("*/secret.parquet", "status", status=401, times=None)
    with pytest.raises(FetchError, match="401"):
        rasteret.load(f"hf://{REPO}/data/secret.parquet")


def test_hub_redirects_are_followed(hf: tuple[ObjectServer, dict], monkeypatch) -> None:
    """The Hub answers a resolve URL of a large file with a redirect to its CDN: the
    ranges are read there (and only the footer and one row group)."""
    server, files = hf
    cdn = server.url

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", cdn + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    front = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{front.server_address[1]}")
        loaded = rasteret.load(f"hf://{REPO}/data/index.parquet")
        assert loaded.where(pc.field("id") == "r0042").record_ids == ["r0042"]
    finally:
        front.shutdown()
        front.server_close()
    rel = f"{REPO}/resolve/main/data/index.parquet"
    ranges = [(r.start, r.end) for r in server.records(path=rel, method="GET")]
    assert ranges and groups_read(ranges, files["index"]) == {0}


# -------------------------------------------------------------------------- S3 (moto)
BUCKET = "rasteret-index-stream"
_AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
)


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, dict]]:
    """A public bucket holding two COGs, a wide single-file index and a monthly hive
    export of a narrower one (``s3://`` hrefs)."""
    pytest.importorskip("moto", reason="moto[server] is not installed (test extra)")
    from rasteret.testing import moto as moto_server

    root = tmp_path_factory.mktemp("s3index")
    scenes = write_scenes(root / "scenes")
    with moto_server.MotoS3Server() as s3:
        s3.create_bucket(BUCKET, public=True)
        for name, path in scenes.items():
            s3.put(BUCKET, f"cogs/{name}", path.read_bytes())
        stores = {"s3://": {"endpoint": s3.endpoint, "region": "us-east-1", "anonymous": True}}
        with fetch_settings(stores=stores):
            built = rasteret.build_from_files([f"s3://{BUCKET}/cogs/{n}" for n in NAMES])
        wide = wide_index(built.table, ROWS, dt.datetime(2020, 1, 1), dt.timedelta(days=1))
        index = write_index(wide, root / "index.parquet")
        s3.put(BUCKET, "indexes/index.parquet", index.read_bytes())
        monthly = wide_index(built.table, 180, dt.datetime(2021, 1, 1), dt.timedelta(days=1))
        rasteret.as_collection(monthly, name="monthly").export(root / "monthly")
        parts = sorted((root / "monthly").rglob("*.parquet"))
        for part in parts:
            s3.put(BUCKET, f"indexes/{part.relative_to(root).as_posix()}", part.read_bytes())
        yield s3, {"scenes": scenes, "index": index, "monthly": root / "monthly", "stores": stores}


@pytest.fixture
def s3(bucket: tuple[object, dict], monkeypatch: pytest.MonkeyPatch) -> tuple[object, dict]:
    server, files = bucket
    clear_env(monkeypatch, _AWS_ENV)
    server.reset()  # type: ignore[attr-defined]
    return server, files


def object_ranges(server: object, key: str) -> list[tuple[int, int]]:
    gets = [r for r in server.records("GET") if r.path.endswith(key)]  # type: ignore[attr-defined]
    assert all(r.start is not None for r in gets), "a whole-object GET"
    return [(r.start, r.end) for r in gets]


def test_load_from_s3_file_reads_footer_and_selected_row_groups(
    s3: tuple[object, dict], isolated: Path
) -> None:
    server, files = s3
    index: Path = files["index"]
    with fetch_settings(stores=files["stores"]):
        loaded = rasteret.load(f"s3://{BUCKET}/indexes/index.parquet")
        assert len(loaded) == ROWS and not loaded.is_read
        picked = loaded.subset(date_range=("2021-06-13", "2021-06-14"))  # rows 529, 530
        assert picked.record_ids == ["r0529", "r0530"]
        assert_pixels(open_ds(picked), [files["scenes"][NAMES[1]], files["scenes"][NAMES[0]]])
    ranges = object_ranges(server, "indexes/index.parquet")
    assert groups_read(ranges, index) == {5}
    assert sum(e - s for s, e in ranges) < index.stat().st_size / 4
    assert no_local_files(isolated) == []


def test_load_from_s3_directory_reads_only_the_selected_month(
    s3: tuple[object, dict], isolated: Path
) -> None:
    server, files = s3
    root: Path = files["monthly"]
    parts = sorted(root.rglob("*.parquet"))
    assert len(parts) == 6
    with fetch_settings(stores=files["stores"]):
        loaded = rasteret.load(f"s3://{BUCKET}/indexes/monthly")
        assert len(loaded) == 180 and not loaded.is_read
        march = loaded.subset(date_range=("2021-03-01", "2021-03-31"))
        assert len(march.record_ids) == 31
    for part in parts:
        key = f"indexes/monthly/{part.relative_to(root).as_posix()}"
        ranges = object_ranges(server, key)
        if "month=3/" in key:
            assert sum(e - s for s, e in ranges) >= part.stat().st_size - FOOTER_READ
        else:  # other months: their footer only
            assert all(s >= footer_start(part) for s, _ in ranges), key
    assert no_local_files(isolated) == []
