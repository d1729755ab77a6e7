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
BOUNDS = (500000.0, 5299360.0, 500640.0, 5300000.0)  # of a 64 × 64 COG at TRANSFORM
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


# --------------------------------------------- allow-listed query strings, clean exception chains

#: One distinct secret per way a credential rides in a URL or a store setting.
PLANTED = {
    "sas": "SASsig0planted1",
    "token": "TOKENplanted2",
    "auth": "AUTHplanted3",
    "amz": "AMZsignature4planted",
    "amz_key": "AKIAPLANTEDKEY5",
    "cf_policy": "CFpolicy6planted",
    "cf_sig": "CFsignature7planted",
    "cf_kpid": "CFkeypair8planted",
    "code": "OAUTHcode9planted",
    "signer": "SIGNERsig10planted",
    "s3_secret": "S3secretKey11planted",
    "s3_key": "AKIAS3CONFIGKEY12",
    "bearer": "BEARERtoken13planted",
}


def _signature_appender(url: str) -> str:
    """A careless signer: appends ``?sig=`` even when ``url`` already has a query."""
    return f"{url}?sig={PLANTED['signer']}"


def _leaked(text: str) -> list[str]:
    return [name for name, secret in PLANTED.items() if secret in text]


def test_only_allow_listed_query_parameters_survive() -> None:
    from rasteret.fetch.secrets import has_credentials, redact, redact_url, strip_credentials

    base = "https://cdn.example.com/a.tif"
    signed = [
        f"{base}?token={PLANTED['token']}&auth={PLANTED['auth']}",
        f"{base}?access-token={PLANTED['token']}&sas_token={PLANTED['sas']}",
        f"{base}?code={PLANTED['code']}",
        f"{base}?Policy={PLANTED['cf_policy']}&Signature={PLANTED['cf_sig']}"
        f"&Key-Pair-Id={PLANTED['cf_kpid']}",
        f"https://user:{PLANTED['auth']}@cdn.example.com/a.tif",
    ]
    for url in signed:
        assert strip_credentials(url) == base, url
        assert has_credentials(url)
        assert _leaked(redact_url(url)) == [] and _leaked(redact(f"GET {url} -> 403")) == []
    # public parameters stay, also when a signer appended a second '?' after them
    versioned = f"{base}?versionId=7&generation=3"
    assert strip_credentials(versioned) == versioned and not has_credentials(versioned)
    twice = _signature_appender(f"{base}?versionId=7")
    assert strip_credentials(twice) == f"{base}?versionId=7"
    assert redact_url(twice) == f"{base}?versionId=7?sig=REDACTED"
    assert _leaked(redact(f"Error performing GET {twice} in 1ms")) == []
    assert redact(f"path a.tif?token={PLANTED['token']}") == "path a.tif?token=REDACTED"
    assert strip_credentials("/data/x?y.tif") == "/data/x?y.tif"  # local paths untouched


def _format_all(error: BaseException) -> str:
    """Everything a user can print about ``error``: str, repr, the formatted traceback
    (chain included) and ``logging.exception`` output."""
    import io
    import traceback

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.secrets.format")
    logger.addHandler(handler)
    try:
        try:
            raise error
        except BaseException:
            logger.exception("read failed")
    finally:
        logger.removeHandler(handler)
    return "\n".join(
        [str(error), repr(error), "".join(traceback.format_exception(error)), stream.getvalue()]
    )


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


@pytest.mark.parametrize("transport", ["obstore", "python"])
@pytest.mark.parametrize("status", [403, 404])
def test_fetch_errors_chain_no_transport_exception(
    object_server, transport: str, status: int
) -> None:
    import asyncio

    from rasteret.fetch import FetchConfig, RangeReader

    (object_server.root / "obj.bin").write_bytes(b"x" * 100)
    if status == 403:
        object_server.inject("obj.bin", "status", status=403, times=None)
    name = "obj.bin" if status == 403 else "gone.bin"
    url = f"{object_server.url_for(name)}?versionId=7&token={PLANTED['token']}"
    reader = RangeReader(FetchConfig(signer=_signature_appender), transport=transport)
    with pytest.raises(FetchError) as caught:
        asyncio.run(reader.read_range(url, 0, 10))
    # the server got the signed request (the secret was really in play) ...
    assert any(PLANTED["signer"] in r.query for r in object_server.log)
    # ... yet no part of the error, its chain, traceback or log output shows it
    error = caught.value
    assert _chain(error) == [error]
    assert _leaked(_format_all(error)) == [], _format_all(error)
    assert "versionId=7" in str(error) and "token=REDACTED" in str(error)


def test_build_errors_name_no_secret(object_server, tmp_path: Path) -> None:
    from rasteret.ingest import NothingIndexedError

    url = object_server.url_for("gone_20240101.tif") + f"?code={PLANTED['code']}"
    with pytest.raises(NothingIndexedError) as caught:
        build_from_files(url, workspace_dir=tmp_path / "ws")
    assert "gone_20240101.tif?code=REDACTED" in str(caught.value)
    assert _leaked(_format_all(caught.value)) == []


def test_every_rasteret_logger_redacts() -> None:
    import importlib

    from rasteret.fetch.secrets import RedactingFilter

    names = set()
    for path in SRC.rglob("*.py"):
        found = re.findall(r'getLogger\("([^"]+)"\)', path.read_text())
        if found:
            module = ".".join(("rasteret", *path.relative_to(SRC).with_suffix("").parts))
            importlib.import_module(module.removesuffix(".__init__"))
            names.update(found)
    assert names
    for name in names:
        filters = logging.getLogger(name).filters
        assert any(isinstance(f, RedactingFilter) for f in filters), name
    record = logging.LogRecord("rasteret.ingest", logging.INFO, "", 0, "%s", ("x?auth=1",), None)
    assert RedactingFilter().filter(record) and record.getMessage() == "x?auth=REDACTED"


def test_writes_and_listings_fail_typed_and_unchained(tmp_path: Path) -> None:
    import asyncio

    from rasteret.fetch import RangeReader

    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    reader = RangeReader()
    with pytest.raises(FetchError) as caught:
        asyncio.run(reader.put(str(blocker / "below" / "x.parquet"), b"data"))
    assert _chain(caught.value) == [caught.value]


# ------------------------------------------------------------------ pickles hold no credentials


def _secret_stores() -> dict[str, dict]:
    return {
        "s3://private": {
            "config": {
                "aws_access_key_id": PLANTED["s3_key"],
                "aws_secret_access_key": PLANTED["s3_secret"],
                "region": "eu-west-1",
            },
        },
        "https://cdn.example.com": {
            "client_options": {"default_headers": {"Authorization": f"Bearer {PLANTED['bearer']}"}},
        },
    }


def test_pickled_settings_hold_no_credentials() -> None:
    from rasteret.fetch import FetchConfig, RangeReader, StoreOptions
    from rasteret.fetch.options import with_local_credentials

    config = FetchConfig(stores=_secret_stores(), coalesce_gap=0)
    reader = RangeReader(config)
    for value in (config, reader, dict(config.stores)["s3://private"]):
        assert _leaked(pickle.dumps(value).decode("latin-1")) == [], value
        assert _leaked(repr(value)) == []
    restored = pickle.loads(pickle.dumps(dict(config.stores)["s3://private"]))
    assert isinstance(restored, StoreOptions)
    assert restored.withheld == ("config.aws_access_key_id", "config.aws_secret_access_key")
    assert restored.config_dict() == {"region": "eu-west-1"}
    # the unpickling process supplies its own credentials for the same store
    local = StoreOptions(config={"secret_access_key": "mine", "access_key_id": "MINE"})
    assert with_local_credentials(restored, local).config_dict() == {
        "region": "eu-west-1",
        "secret_access_key": "mine",
        "access_key_id": "MINE",
    }
    cdn = pickle.loads(pickle.dumps(dict(config.stores)["https://cdn.example.com"]))
    assert cdn.withheld == ("client_options.default_headers.Authorization",)
    local = dict(config.stores)["https://cdn.example.com"]
    headers = with_local_credentials(cdn, local).client_options_dict()["default_headers"]
    assert headers == {"Authorization": f"Bearer {PLANTED['bearer']}"}  # a dict, for obstore
    # settings that differ only in their credentials are different settings
    other = RangeReader(FetchConfig(stores={"s3://private": {"config": {"token": "x"}}}))
    again = RangeReader(FetchConfig(stores={"s3://private": {"config": {"token": "y"}}}))
    assert other.settings_key() != again.settings_key()


def test_torchgeo_dataset_pickle_holds_no_credentials(tmp_path: Path, cog: Path) -> None:
    pytest.importorskip("torchgeo", reason="the torchgeo extra is not installed")
    import rasteret
    from rasteret.fetch import FetchConfig, RangeReader

    collection = rasteret.build_from_files(cog, workspace_dir=tmp_path / "ws")
    reader = RangeReader(FetchConfig(stores=_secret_stores()))
    dataset = collection.to_torchgeo_dataset(bands="b1", reader=reader)
    payload = pickle.dumps(dataset)
    assert _leaked(payload.decode("latin-1")) == []
    assert pickle.loads(payload).fetch_reader.config.stores  # the settings still travel


# ----------------------------------------------------------------------- the whole-journey grep


def _scene(root: Path, name: str, value: int) -> None:
    array = np.full((64, 64), value, np.uint16)
    write_cog(root / name, array, transform=TRANSFORM, epsg=32633, tile=32)


def test_no_planted_secret_is_written_logged_or_printed(
    object_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import traceback

    import rasteret
    from rasteret.errors import UnindexedAssetError
    from rasteret.fetch import configure
    from rasteret.store import open_store

    root = object_server.root
    for k, name in enumerate(("a_20240101.tif", "b_20240102.tif", "c_20240103.tif")):
        _scene(root, name, k + 1)
    _scene(root, "d_20240104.tif", 4)
    object_server.inject("d_20240104.tif", "status", status=403, times=None)
    hrefs = [
        object_server.url_for("a_20240101.tif") + f"?sv=2024&se=2030&sig={PLANTED['sas']}",
        object_server.url_for("b_20240102.tif")
        + f"?token={PLANTED['token']}&auth={PLANTED['auth']}",
        object_server.url_for("c_20240103.tif")
        + f"?Policy={PLANTED['cf_policy']}&Signature={PLANTED['cf_sig']}"
        + f"&Key-Pair-Id={PLANTED['cf_kpid']}",
        object_server.url_for("d_20240104.tif")  # 403
        + f"?X-Amz-Credential={PLANTED['amz_key']}&X-Amz-Signature={PLANTED['amz']}",
        object_server.url_for("e_20240105.tif")  # 404
        + f"?versionId=7&code={PLANTED['code']}",
    ]
    log_file = tmp_path / "debug.log"
    file_handler = logging.FileHandler(log_file)
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(file_handler)
    caplog.set_level(logging.DEBUG)
    printed: list[str] = []
    configure(stores=_secret_stores(), signer=_signature_appender)
    try:
        collection = rasteret.build_from_files(hrefs, name="leaky", workspace_dir=tmp_path / "ws")
        collection.export(str(tmp_path / "export.parquet"))
        collection.export(str(tmp_path / "export_dir"))
        window = {"bands": "b1", "bounds": BOUNDS, "res": 10.0}
        with pytest.raises(UnindexedAssetError) as unindexed:
            collection.read_window(**window)
        printed.append(_format_all(unindexed.value))
        pixels = collection.read_window(**window, errors="skip", group_by="id")
        assert sorted(np.unique(pixels).tolist()) == [1, 2, 3]
        plan = collection.explain("b1")
        printed += [str(plan), repr(plan)]
        object_server.inject("a_20240101.tif", "status", status=403, times=None)
        with pytest.raises(FetchError) as failed_read:
            collection.read_window(**window, errors="skip", group_by="id")
        printed.append(_format_all(failed_read.value))
        (tmp_path / "store.pickle").write_bytes(pickle.dumps(open_store(collection)))
        logging.getLogger("rasteret.ingest").error("href %s", hrefs[1], exc_info=failed_read.value)
    finally:
        configure()
        logging.getLogger().removeHandler(file_handler)
        file_handler.close()

    # the planted secrets were in play: the server saw the signatures ...
    queries = " ".join(r.query for r in object_server.log)
    assert {"sas", "token", "cf_sig", "amz", "code", "signer"} <= set(_leaked(queries))
    # ... and the failed assets are recorded as such
    errors = [e for e in collection.table["b1_error"].to_pylist() if e]
    assert len(errors) == 2 and any("403" in e for e in errors)
    # no written file (workspace parquet, exports, log file, pickle) holds any of them
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"debug.log", "store.pickle", "export.parquet"} <= {p.name for p in written}
    assert any(p.suffix == ".parquet" and "ws" in p.parts for p in written)
    leaks = {str(p): _leaked(p.read_bytes().decode("latin-1")) for p in written}
    # nor any log record, formatted with its traceback
    formatter = logging.Formatter("%(message)s")
    assert caplog.records
    for k, record in enumerate(caplog.records):
        leaks[f"log record {k}"] = _leaked(formatter.format(record) + repr(record.args))
    # nor anything printed: errors, tracebacks, the read plan, the table
    printed.append(str(collection.table.to_pylist()))
    printed.append("".join(traceback.format_exception(failed_read.value)))
    for k, text in enumerate(printed):
        leaks[f"printed {k}"] = _leaked(text)
    assert {where: found for where, found in leaks.items() if found} == {}
