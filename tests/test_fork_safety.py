"""Forked children never hang on obstore, whoever started its runtime in the parent.

obstore's Tokio runtime does not survive ``fork``. Here the parent's *user code* uses
obstore directly (rasteret itself has not read anything), then forks: the child must
read through rasteret's pure-Python transport (not hang), cloud URLs must fail with an
error naming ``DataLoader(..., multiprocessing_context="spawn")``, and a forked TorchGeo
DataLoader worker must warn. Each scenario runs in a fresh interpreter (so no earlier
test has used obstore) and every child is joined with a timeout, so a hang fails the
test instead of hanging it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _cloudscenes import NAMES, oracle, write_scenes
from rasteret.ingest import build_from_files

#: Run in a fresh interpreter: argv[1] is the directory holding ``c.parquet``.
USER_OBSTORE_THEN_FORK = """
import hashlib, json, multiprocessing, os, sys, warnings

import obstore
from obstore.store import LocalStore

root = sys.argv[1]
obstore.get(LocalStore(root), "c.parquet").bytes()  # user code starts obstore's runtime

import rasteret
import xarray as xr
from rasteret._async import run_sync
from rasteret.errors import FetchError
from rasteret.fetch import default_reader
from rasteret.fetch import stores

collection = rasteret.load(os.path.join(root, "c.parquet"))
assert stores._obstore_pid is None, "rasteret itself must not have used obstore here"


def child(queue):
    try:
        values = xr.open_dataset(collection, engine="rasteret")["b1"].values
        digests = [hashlib.sha256(v.tobytes()).hexdigest() for v in values]
        try:
            run_sync(default_reader().read_range("s3://a-bucket/a-key.tif", 0, 10))
            message = "no error"
        except FetchError as exc:
            message = str(exc)
        queue.put({"digests": digests, "s3": message})
    except BaseException as exc:
        queue.put({"error": repr(exc)})


ctx = multiprocessing.get_context("fork")
queue = ctx.Queue()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded process forked"
    process = ctx.Process(target=child, args=(queue,))
    process.start()
process.join(60)
if process.is_alive():
    process.kill()
    print(json.dumps({"error": "the forked child hung"}))
else:
    print(json.dumps(queue.get(timeout=10)))
"""

#: The same, with a TorchGeo dataset read by forked DataLoader workers.
USER_OBSTORE_THEN_DATALOADER = """
import os, sys

import obstore
from obstore.store import LocalStore

root = sys.argv[1]
obstore.get(LocalStore(root), "c.parquet").bytes()  # user code starts obstore's runtime

import rasteret
import torch
from torch.utils.data import DataLoader
from torchgeo.datasets import stack_samples
from torchgeo.samplers import RandomGeoSampler

dataset = rasteret.load(os.path.join(root, "c.parquet")).to_torchgeo_dataset(bands=["b1"])
sampler = RandomGeoSampler(dataset, size=32, length=4, generator=torch.Generator().manual_seed(1))
loader = DataLoader(
    dataset, sampler=sampler, batch_size=2, num_workers=1, collate_fn=stack_samples,
    multiprocessing_context="fork", timeout=120,  # a hung worker fails instead of hanging
)
print([tuple(batch["image"].shape) for batch in loader])
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fork")
    write_scenes(root)
    build_from_files([str(root / n) for n in NAMES]).export(root / "c.parquet")
    return root


def _run(script: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=600
    )


def test_child_of_a_parent_that_used_obstore_itself_reads(exported: Path) -> None:
    done = _run(USER_OBSTORE_THEN_FORK, exported)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, result
    want = [hashlib.sha256(np.ascontiguousarray(oracle(exported / n)).tobytes()).hexdigest()
            for n in NAMES]  # fmt: skip
    assert result["digests"] == want  # GDAL's pixels, read through the fallback transport
    assert 'DataLoader(..., multiprocessing_context="spawn")' in result["s3"]
    assert "s3://a-bucket/a-key.tif" in result["s3"]


@pytest.mark.slow  # forked DataLoader workers import torchgeo (about 15 s)
def test_forked_dataloader_workers_read_and_warn(exported: Path) -> None:
    pytest.importorskip("torchgeo", reason="the torchgeo extra is not installed")
    done = _run(USER_OBSTORE_THEN_DATALOADER, exported)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[(2, 1, 32, 32), (2, 1, 32, 32)]"
    assert "RuntimeWarning" in done.stderr and "forked after obstore" in done.stderr
    assert 'multiprocessing_context="spawn"' in done.stderr
