"""The ``rasteret`` command line end to end, in subprocesses, against a local STAC API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stac_server import earth_search_api

BAND_MAP = '{"B04": "red", "B08": "nir", "SCL": "scl"}'


@pytest.fixture(scope="module")
def api(objects, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("api")
    with earth_search_api(objects, workdir, ["red", "nir", "scl"], drop_other_tiffs=True) as server:
        yield server


def rasteret(
    *args: str, env: dict | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "rasteret.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def as_json(result: subprocess.CompletedProcess):
    return json.loads(result.stdout)


def test_collections_build_list_info_delete(api, tmp_path):
    ws = str(tmp_path / "ws")
    built = as_json(
        rasteret(
            "collections", "build", "cli_s2",
            "--stac-api", api.url, "--collection", "sentinel-2-l2a",
            "--band-map", BAND_MAP,
            "--bbox", "-180,-90,180,90", "--date-range", "2023-01-01,2023-12-31",
            "--workspace-dir", ws, "--json",
        )
    )  # fmt: skip
    assert built["records"] == 1 and built["bands"] == ["B04", "B08", "SCL"]
    assert built["failed"] == 0 and built["indexed"] == 3
    assert Path(built["path"]).name == "cli-s2_202301-12_sentinel_stac"
    grown = as_json(
        rasteret("collections", "update", "cli-s2", "--date-range", "2023-01-01,2025-12-31",
                 "--workspace-dir", ws, "--json")
    )  # fmt: skip
    assert grown["records"] == 7 and grown["path"] == built["path"]
    listed = as_json(rasteret("collections", "list", "--workspace-dir", ws, "--json"))
    assert [(c["name"], c["kind"], c["size"]) for c in listed] == [
        ("cli-s2_202301-12_sentinel", "stac", 7)
    ]
    info = as_json(rasteret("collections", "info", "cli-s2", "--workspace-dir", ws, "--json"))
    assert info["records"] == 7 and info["bands"] == ["B04", "B08", "SCL"]
    assert info["stac"]["band_map"] == json.loads(BAND_MAP) and info["split"] is False
    text = rasteret("collections", "list", "--workspace-dir", ws).stdout
    assert "cli-s2_202301-12_sentinel" in text and "sentinel-2-l2a" in text
    full = "cli-s2_202301-12_sentinel"
    refused = rasteret("collections", "delete", full, "--workspace-dir", ws, check=False)
    assert refused.returncode == 1 and "--yes" in refused.stderr and Path(built["path"]).exists()
    prefix = rasteret(
        "collections", "delete", "cli-s2", "--workspace-dir", ws, "--yes", check=False
    )
    assert prefix.returncode == 1 and "exactly" in prefix.stderr  # never by prefix
    assert Path(built["path"]).exists()
    rasteret("collections", "delete", full, "--workspace-dir", ws, "--yes")
    assert not Path(built["path"]).exists()
    assert as_json(rasteret("collections", "list", "--workspace-dir", ws, "--json")) == []


def test_datasets_commands_and_build_alias(api, tmp_path):
    env = {"RASTERET_LOCAL_DATASETS_PATH": str(tmp_path / "registry.json")}
    listed = as_json(rasteret("datasets", "list", "--json", env=env))
    ids = {d["id"] for d in listed}
    assert {"earthsearch/sentinel-2-l2a", "pc/usda-cdl", "aef/v1-annual"} <= ids
    info = as_json(rasteret("datasets", "info", "earthsearch/naip", "--json", env=env))
    assert info["band_index_map"] == {"R": 0, "G": 1, "B": 2, "NIR": 3} and info["requires_auth"]
    ws = str(tmp_path / "ws")
    built = as_json(
        rasteret(
            "build", "earthsearch/sentinel-2-l2a", "alias",
            "--stac-api", api.url, "--bbox", "-41,-6,-37,-3",
            "--date-range", "2025-07-01,2025-07-31", "--workspace-dir", ws, "--json", env=env,
        )
    )  # fmt: skip
    assert built["records"] == 5 and built["bands"] == ["B04", "B08", "SCL"]
    assert built["data_source"] == "earthsearch/sentinel-2-l2a"
    registered = as_json(
        rasteret("datasets", "register-local", "local/alias", "alias", "--workspace-dir", ws,
                 "--json", env=env)
    )  # fmt: skip
    assert registered["collection_uri"] == str(Path(built["path"]).resolve())
    assert json.loads((tmp_path / "registry.json").read_text())[0]["id"] == "local/alias"
    out = tmp_path / "alias.json"
    rasteret("datasets", "export-local", "local/alias", str(out), "--json", env=env)
    assert json.loads(out.read_text())["id"] == "local/alias"
    rebuilt = as_json(
        rasteret("datasets", "build", "local/alias", "again", "--bbox", "-41,-6,-39.5,-3",
                 "--json", env=env)
    )  # fmt: skip
    assert 0 < rebuilt["records"] < 5
    rasteret("datasets", "unregister-local", "local/alias", "--json", env=env)
    assert json.loads((tmp_path / "registry.json").read_text()) == []


def test_collections_import_record_table(api, tmp_path):
    rustac = pytest.importorskip("rustac", reason="rustac writes the stac-geoparquet table")
    import urllib.request

    with urllib.request.urlopen(f"{api.url}/search?limit=100") as response:
        items = json.loads(response.read())["features"]
    table = tmp_path / "items.parquet"
    rustac.write_sync(str(table), items)
    ws = str(tmp_path / "ws")
    imported = as_json(
        rasteret("collections", "import", "imported", "--record-table", str(table),
                 "--band-codes", "red,nir", "--workspace-dir", ws, "--json")
    )  # fmt: skip
    assert imported["records"] == 7 and imported["bands"] == ["red", "nir"]
    files = list(Path(imported["path"]).rglob("*.parquet"))
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 7


def test_errors_exit_non_zero_with_a_message(api, tmp_path):
    bad = rasteret(
        "collections", "build", "x", "--stac-api", api.url, "--collection", "sentinel-2-l2a",
        "--bbox", "10,51,11,50", "--workspace-dir", str(tmp_path), check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and "south (51.0) must be less than north" in bad.stderr
    unknown = rasteret("datasets", "info", "nope/none", check=False)
    assert unknown.returncode == 1 and "unknown dataset 'nope/none'" in unknown.stderr
    missing = rasteret(
        "collections", "info", "ghost", "--workspace-dir", str(tmp_path), check=False
    )
    assert missing.returncode == 1 and "no collection 'ghost'" in missing.stderr
    usage = rasteret("collections", "build", "x", check=False)
    assert usage.returncode == 2 and "--stac-api" in usage.stderr


def test_closed_pipe_is_a_quiet_exit() -> None:
    """``rasteret ... --json | head``: the reader went away; no traceback (#14)."""
    driver = (
        "import os, sys\n"
        "import rasteret.cli\n"
        "r, w = os.pipe()\n"
        "os.close(r)\n"  # nobody will read stdout
        "os.dup2(w, 1)\n"
        "sys.exit(rasteret.cli.main(['datasets', 'list', '--json']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 141 and result.stderr == ""


def test_json_errors_are_json_and_usage_errors_exit_2(tmp_path: Path) -> None:
    failed = rasteret(
        "collections", "info", "nope", "--workspace-dir", str(tmp_path), "--json", check=False
    )
    assert failed.returncode == 1
    document = json.loads(failed.stdout)
    assert "nope" in document["error"]["message"] and document["error"]["type"]
    assert "nope" in failed.stderr
    assert rasteret(check=False).returncode == 2  # no command
    assert rasteret("collections", check=False).returncode == 2
