"""Secrets and paths: names cannot leave the workspace, an index never runs code, and
signed query strings are neither persisted nor logged."""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rasteret import load
from rasteret.errors import FetchError
from rasteret.ingest import build_from_files, build_from_table
from rasteret.ingest.safe_names import UnsafeNameError, safe_collection_name
from rasteret.samples import write_cog

SRC = Path(__file__).resolve().parents[1] / "src" / "rasteret"
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0)
UNSAFE_NAMES = [
    "../evil",
    "..",
    ".",
    "a/../../evil",
    "/tmp/evil",
    "..\\evil",
    "C:\\evil",
    "C:evil",
    "evil\x00.txt",
    "line\nbreak",
    "CON",
    "nul.tif",
    " ",
    "trailing.",
    "x" * 300,
]


@pytest.fixture
def cog(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "scene_20240101.tif"
    path.parent.mkdir()
    array = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    write_cog(path, array, transform=TRANSFORM, epsg=32633, tile=32)
    return path


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


# ----------------------------------------------------------------------------- paths


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_build_from_files_refuses_names_that_leave_the_workspace(
    tmp_path: Path, cog: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "a" / "ws"
    workspace.mkdir(parents=True)
    monkeypatch.setenv("RASTERET_WORKSPACE", str(workspace))
    before = _files_under(tmp_path)
    with pytest.raises(UnsafeNameError, match="collection name"):
        build_from_files(cog, name=name)
    with pytest.raises(UnsafeNameError):
        build_from_files(cog, name=name, workspace_dir=workspace)
    assert _files_under(tmp_path) == before  # nothing written anywhere
    assert not list(Path("/tmp").glob("evil*_records"))


@pytest.mark.parametrize("name", ["../evil", "/abs/evil", "sub\\..\\evil"])
def test_build_from_table_refuses_unsafe_names(tmp_path: Path, cog: Path, name: str) -> None:
    table = pa.table({"id": ["a"], "datetime": [None], "href": [str(cog)]})
    before = _files_under(tmp_path)
    with pytest.raises(UnsafeNameError):
        build_from_table(table, name=name, href_column="href", workspace_dir=tmp_path / "ws")
    assert _files_under(tmp_path) == before


@pytest.mark.parametrize("name", ["sentinel-2_2024", "my.collection.v2", "S2 L2A", "über"])
def test_ordinary_names_are_kept(tmp_path: Path, cog: Path, name: str) -> None:
    assert safe_collection_name(name) == name
    collection = build_from_files(cog, name=name, workspace_dir=tmp_path / "ws")
    assert (tmp_path / "ws" / f"{name}_records").is_dir()
    assert collection.name == name


# ------------------------------------------------------------------ no code from an index


_DANGEROUS = re.compile(
    r"\b(pickle|cloudpickle|dill|marshal|shelve|joblib)\.(loads?|Unpickler|open)\b"
    r"|(^|[^.\w])(eval|exec|compile|__import__)\("
    r"|yaml\.(unsafe_)?load\(|read_pickle|allow_pickle\s*=\s*True|torch\.load"
    r"|PyExtensionType|py_extension_type|literal_eval"
)


#: Reviewed exceptions: (file, code) -> why it cannot run code from an index.
_REVIEWED = {
    (
        "integrations/torchgeo.py",
        'state["index"] = pickle.loads(zlib.decompress(packed.blob))',
    ): "in __setstate__: a blob nested in the dataset's own pickle (same trust as that "
    "pickle, which the user chose to load); never read from a collection",
}


def test_no_deserialisation_or_eval_in_the_library() -> None:
    hits = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0].strip()
            if _DANGEROUS.search(code) and (relative, code) not in _REVIEWED:
                hits.append(f"{relative}:{number}: {code}")
    assert hits == []


class _Payload:
    """Unpickling this creates ``marker`` (proof that code ran)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_loading_an_index_never_executes_code_from_it(tmp_path: Path, cog: Path) -> None:
    marker = tmp_path / "PWNED"
    collection = build_from_files(cog, workspace_dir=tmp_path / "ws")
    payload = pickle.dumps(_Payload(marker))
    expression = "__import__('os').system('touch " + str(marker) + "')"
    # a column whose Arrow type claims to be a pickled Python extension type
    storage = pa.array([payload] * len(collection.table), pa.binary())
    field = pa.field(
        "evil",
        pa.binary(),
        metadata={
            b"ARROW:extension:name": b"arrow.py_extension_type",
            b"ARROW:extension:metadata": payload,
        },
    )
    table = collection.table.append_column(field, storage)
    metadata = dict(table.schema.metadata or {})
    metadata.update(
        {
            b"name": expression.encode(),
            b"description": payload,
            b"pandas": b'{"columns": [], "index_columns": [], "pandas_version": "eval()"}',
            b"rasteret_partitioning": b'{"columns": ["__import__(\'os\')"]}',
        }
    )
    path = tmp_path / "evil.parquet"
    pq.write_table(table.replace_schema_metadata(metadata), path)

    loaded = load(path)
    loaded.describe()
    loaded.table.to_pylist()
    loaded.export(str(tmp_path / "again.parquet"))
    assert not marker.exists()
    assert loaded.name == expression  # inert text
    assert loaded.table["evil"].type == pa.binary()  # the storage, not an unpickled type
    assert loaded.table["evil"][0].as_py() == payload


# ----------------------------------------------------------------------------- credentials


SECRET = "deadbeefSIGNATURE0123456789"
ACCESS_KEY = "AKIAEXAMPLEKEYID7"


def _signed(url: str) -> str:
    return (
        f"{url}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={ACCESS_KEY}%2F20240101%2Feu-west-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
        f"&X-Amz-Signature={SECRET}"
    )


def _leaks(text: str) -> bool:
    return SECRET in text or ACCESS_KEY in text


def test_signed_urls_are_neither_persisted_nor_logged(
    object_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = object_server.root
    write_cog(
        root / "a_20240101.tif",
        np.ones((64, 64), np.uint16),
        transform=TRANSFORM,
        epsg=32633,
        tile=32,
    )
    good = _signed(object_server.url_for("a_20240101.tif"))
    missing = _signed(object_server.url_for("missing_20240102.tif"))
    caplog.set_level(logging.DEBUG)
    collection = build_from_files([good, missing], name="signed", workspace_dir=tmp_path / "ws")

    # the signature reached the server (the build used the URL as given) ...
    assert any(SECRET in r.query for r in object_server.log if r.query)
    # ... but the index holds none of it: not in the table, not in any byte on disk
    assert not _leaks(str(collection.table.to_pylist()))
    written = [p for p in (tmp_path / "ws").rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert not _leaks(path.read_bytes().decode("latin-1")), path
    # the failed record keeps its error, redacted
    errors = [e for e in collection.table["b1_error"].to_pylist() if e]
    assert errors and not any(_leaks(e) for e in errors)
    # and no log record, formatted or raw, carries the secret
    for record in caplog.records:
        assert not _leaks(record.getMessage()), record.getMessage()
        assert not _leaks(repr(record.args)), record.args


def test_fetch_errors_do_not_print_signatures(object_server) -> None:
    import asyncio

    from rasteret.fetch import RangeReader

    url = _signed(object_server.url_for("nowhere.tif"))
    with pytest.raises(FetchError) as caught:
        asyncio.run(RangeReader(transport="python").read_range(url, 0, 10))
    assert not _leaks(str(caught.value))
    assert not _leaks(caught.value.url)
