"""Resource limits: a lazy 1,000-scene read stays small; concurrency and retries are bounded.

* A synthetic 1,000-record collection (records point at a few generated COGs, 2 MiB of
  pixels each: 2 GiB if read eagerly) is opened with ``chunks={}`` and reduced over time
  in a fresh subprocess; its peak RSS (``VmHWM``) must stay far below the eager size,
  and the result must equal numpy's over the written arrays.
* ``FetchConfig.max_in_flight`` bounds the requests the object server sees at once;
  ``max_retries`` / ``retry_deadline`` bound the attempts on a failing object.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rasteret.errors import FetchError
from rasteret.fetch import FetchConfig, RangeReader
from rasteret.ingest import build_from_files
from rasteret.samples import write_cog

MiB = 1024 * 1024
SCENES = 1000
FILES = 4
SIZE = 1024
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0)


def _thousand_scenes(root: Path) -> tuple[Path, np.ndarray]:
    """A 1,000-record collection over ``FILES`` COGs; returns its path and the expected max."""
    arrays = []
    for i in range(FILES):
        array = np.random.default_rng(i).integers(0, 10000, (SIZE, SIZE), dtype=np.uint16)
        write_cog(root / f"f{i}_2024010{i + 1}.tif", array, transform=TRANSFORM, epsg=32633)
        arrays.append(array)
    base = build_from_files(root, workspace_dir=root / "ws").table
    rows = pa.array(np.arange(SCENES) % FILES)
    table = base.take(rows)
    start = dt.datetime(2020, 1, 1)
    table = table.set_column(0, "id", pa.array([f"scene-{i:04d}" for i in range(SCENES)]))
    times = [start + dt.timedelta(hours=i) for i in range(SCENES)]
    table = table.set_column(
        table.schema.get_field_index("datetime"), "datetime", pa.array(times, pa.timestamp("us"))
    )
    path = root / "thousand.parquet"
    pq.write_table(table, path)
    return path, np.max(np.stack(arrays), axis=0)


_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    import xarray as xr

    def rss():
        # peak RSS of this process image: VmHWM (ru_maxrss keeps the parent's peak
        # across exec on Linux)
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    dataset = xr.open_dataset(sys.argv[1], engine="rasteret", chunks={})
    array = dataset["b1"]
    opened = rss()
    started = time.perf_counter()
    result = array.max("time").values
    np.save(sys.argv[2], result)
    print(json.dumps({
        "opened_rss": opened,
        "peak_rss": rss(),
        "seconds": time.perf_counter() - started,
        "shape": list(array.shape),
        "chunks": [list(map(int, c)) for c in array.chunks],
        "eager_bytes": int(array.size * array.dtype.itemsize),
    }))
    """
)


@pytest.mark.slow  # 1,000 scenes read in a child process (about 10 s)
def test_lazy_read_of_1000_scenes_has_bounded_memory(tmp_path: Path) -> None:
    path, expected = _thousand_scenes(tmp_path)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    out = tmp_path / "result.npy"
    env = {**os.environ, "DASK_NUM_WORKERS": "2"}
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"1000-scene lazy max over time: eager size {report['eager_bytes'] / MiB:.0f} MiB, "
        f"RSS after open {report['opened_rss'] / MiB:.0f} MiB, peak RSS "
        f"{report['peak_rss'] / MiB:.0f} MiB, {report['seconds']:.1f} s"
    )
    np.testing.assert_array_equal(np.load(out), expected)
    assert report["shape"] == [SCENES, SIZE, SIZE]
    assert report["eager_bytes"] == SCENES * SIZE * SIZE * 2  # 2000 MiB if read eagerly
    growth = report["peak_rss"] - report["opened_rss"]
    # generous bound: a few dask chunks (64 MiB each) in flight, never the whole stack
    assert growth < 700 * MiB, report
    assert report["peak_rss"] < report["eager_bytes"] / 2, report


# ----------------------------------------------------------------------------- fetch bounds


def test_concurrency_is_bounded_by_max_in_flight(object_server, tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(os.urandom(4 * MiB))
    object_server.latency = 0.05
    url = object_server.url_for("blob.bin")
    reader = RangeReader(FetchConfig(max_in_flight=3, coalesce_gap=0), transport="python")

    async def many() -> list[bytes]:
        jobs = [reader.read_range(url, i * 100_000, i * 100_000 + 10) for i in range(30)]
        return await asyncio.gather(*jobs)

    results = asyncio.run(many())
    assert len(results) == 30
    assert object_server.requests == 30
    assert object_server.max_in_flight <= 3


def test_retries_are_bounded_by_max_retries(object_server, tmp_path: Path) -> None:
    (tmp_path / "flaky.bin").write_bytes(b"x" * 1000)
    object_server.inject("flaky.bin", "status", times=None, status=503)
    url = object_server.url_for("flaky.bin")
    config = FetchConfig(max_retries=2, backoff_initial=0.01, backoff_max=0.02)
    reader = RangeReader(config, transport="python")
    with pytest.raises(FetchError, match=r"flaky\.bin"):
        asyncio.run(reader.read_range(url, 0, 10))
    assert len(object_server.records("flaky.bin")) == 3  # the first attempt + 2 retries


def test_retries_stop_at_the_deadline(object_server, tmp_path: Path) -> None:
    (tmp_path / "down.bin").write_bytes(b"x" * 1000)
    object_server.inject("down.bin", "status", times=None, status=503)
    url = object_server.url_for("down.bin")
    config = FetchConfig(
        max_retries=1000, backoff_initial=0.05, backoff_max=0.1, retry_deadline=0.5
    )
    reader = RangeReader(config, transport="python")
    started = time.monotonic()
    with pytest.raises(FetchError):
        asyncio.run(reader.read_range(url, 0, 10))
    assert time.monotonic() - started < 5.0
    assert len(object_server.records("down.bin")) < 20


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_retries": -1}, "max_retries"),
        ({"coalesce_gap": -1}, "coalesce"),
    ],
)
def test_fetch_limits_are_validated(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FetchConfig(**changes)


def test_fetch_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASTERET_FETCH_MAX_IN_FLIGHT", "7")
    monkeypatch.setenv("RASTERET_FETCH_MAX_RETRIES", "1")
    config = FetchConfig.from_env()
    assert (config.max_in_flight, config.max_retries) == (7, 1)
    monkeypatch.setenv("RASTERET_FETCH_MAX_IN_FLIGHT", "lots")
    with pytest.raises(ValueError, match="RASTERET_FETCH_MAX_IN_FLIGHT='lots'"):
        FetchConfig.from_env()


# ----------------------------------------------------------------------------- byte budget


@pytest.fixture
def small_collection(tmp_path: Path):
    for i in range(2):
        array = np.random.default_rng(i).integers(0, 999, (300, 300), dtype=np.uint16)
        write_cog(tmp_path / f"s{i}_2024010{i + 1}.tif", array, transform=TRANSFORM, epsg=32633)
    return build_from_files(tmp_path, workspace_dir=tmp_path / "ws")


def test_a_read_over_the_byte_budget_is_refused_with_its_plan(small_collection) -> None:
    import xarray as xr

    from rasteret.fetch import track
    from rasteret.read.budget import ReadBudgetExceeded, check_read_budget, explain_within_budget
    from rasteret.read.explain import explain

    plan = explain(small_collection, ["b1"])
    with track() as tracked:
        xr.open_dataset(small_collection, engine="rasteret", bands=["b1"])["b1"].values  # noqa: B018
    assert plan.bytes == tracked.bytes  # the budget counts what a read really fetches
    assert check_read_budget(plan, plan.bytes) is plan
    with pytest.raises(ReadBudgetExceeded) as caught:
        explain_within_budget(small_collection, ["b1"], budget=plan.bytes - 1)
    message = str(caught.value)
    assert (
        f"would fetch {plan.bytes:,} bytes, over the read budget of {plan.bytes - 1:,}" in message
    )
    assert str(plan) in message  # the same explanation explain() prints
    assert caught.value.plan.tiles == plan.tiles


def test_budget_from_environment_and_context(small_collection, monkeypatch) -> None:
    from rasteret.read.budget import (
        ReadBudgetExceeded,
        current_budget,
        explain_within_budget,
        parse_bytes,
        read_budget,
    )

    assert parse_bytes("2GiB") == 2**31 and parse_bytes("500MB") == 5 * 10**8
    assert parse_bytes("1e3") == 1000
    with pytest.raises(ValueError, match="not a byte size"):
        parse_bytes("lots")
    monkeypatch.setenv("RASTERET_MAX_READ_BYTES", "1KB")
    assert current_budget() == 1000
    with pytest.raises(ReadBudgetExceeded, match="RASTERET_MAX_READ_BYTES"):
        explain_within_budget(small_collection, ["b1"])
    with read_budget(None):  # a context overrides the environment
        assert explain_within_budget(small_collection, ["b1"]).bytes > 1000
    with read_budget("1GB"):
        assert current_budget() == 10**9
    monkeypatch.setenv("RASTERET_MAX_READ_BYTES", "many")
    with pytest.raises(ValueError, match="RASTERET_MAX_READ_BYTES='many'"):
        current_budget()


BOMB_DRIVER = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from rasteret.errors import CorruptTiffError
    from rasteret.tiff.decode import BlockDecoding, decode_block
    data = Path(sys.argv[1]).read_bytes()
    decoding = BlockDecoding.from_dict(json.loads(sys.argv[2]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    errors = 0
    for _ in range(16):  # 16 tiles of a bomb file, as the issue's 525 KB example
        try:
            decode_block(memoryview(data), decoding, source="bomb.tif")
        except CorruptTiffError as exc:
            errors += 1
            message = str(exc)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"errors": errors, "grew_mb": (peak - before) / 1024, "message": message}))
    """
)


@pytest.mark.parametrize("codec", ["zstd", "packbits"])
def test_decompression_bomb_is_bounded_by_the_block(tmp_path: Path, codec: str) -> None:
    """A tile declaring 64 KiB that inflates to 256 MiB (#14): refused as corrupt, with
    memory bounded by the block, not by what the stream claims."""
    import imagecodecs

    from rasteret.tiff.decode import BlockDecoding

    if codec == "zstd":
        encoded = imagecodecs.zstd_encode(np.zeros(256 * 2**20, np.uint8).tobytes())
    else:  # PackBits runs: (-127, byte) repeats the byte 128 times
        encoded = bytes([0x81, 0]) * (256 * 2**20 // 128)
    (tmp_path / "tile.bin").write_bytes(encoded)
    decoding = BlockDecoding(
        compression=50000 if codec == "zstd" else 32773,
        dtype="uint8",
        block_width=256,
        block_height=256,
    )
    result = subprocess.run(
        [sys.executable, "-c", BOMB_DRIVER, str(tmp_path / "tile.bin"),
         json.dumps(decoding.to_dict())],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["errors"] == 16 and "more than" in report["message"]
    assert report["grew_mb"] < 64, report  # was gigabytes: an unbounded retry
