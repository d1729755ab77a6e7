"""Shared fixtures: the conformance corpus (optional) and the local object server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("RASTERET_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CORPUS = SHARED / "corpus"


def corpus_available() -> bool:
    return (CORPUS / "manifest.json").is_file()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """Root of ``../shared/corpus``; skips the test when it is not there."""
    if not corpus_available():
        pytest.skip(f"conformance corpus not found at {CORPUS} (set RASTERET_SHARED)")
    return CORPUS


@pytest.fixture(scope="session")
def corpus_manifest(corpus_dir: Path) -> dict:
    """``manifest.json`` of the corpus: one entry per TIFF under ``files``."""
    return json.loads((corpus_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """An object server shared by the tests of one module (serving a fresh temp folder)."""
    from rasteret.testing.objserver import ObjectServer

    with ObjectServer(tmp_path_factory.mktemp("objects")) as server:
        yield server


@pytest.fixture
def object_server(tmp_path: Path) -> Iterator[object]:
    """A range-capable HTTP object server on 127.0.0.1 serving ``tmp_path``.

    The server counts requests and bytes, logs every request's byte range, and can
    inject latency and faults (see :mod:`rasteret.testing.objserver`).
    """
    from rasteret.testing.objserver import ObjectServer

    with ObjectServer(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[object]:
    """gcp-storage-emulator on 127.0.0.1 with a request log and private buckets
    (``tests/_gcs.py``), shared by the whole session; skips when it is not installed."""
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator (test extra)")
    from _gcs import GcsEmulator

    with GcsEmulator() as server:
        yield server
