"""The original system's command-line examples (004 "CLI Workflow", 001 "Built-in datasets").

Each command is the document's text (checked against it, whitespace aside), run through
``rasteret.cli.main`` in this process with only local URLs changed: the STAC API
(``rustac serve`` over generated Bangalore scenes, tests/_originaldata.py) and the S3
bucket of ``collections import`` (moto's S3 server, read by pyarrow through
``AWS_ENDPOINT_URL``). ``~`` is a fresh directory, so the workspace is the test's own.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _originaldata import (
    EXAMPLE_MARKS,
    MANAGEMENT,
    README,
    REFERENCE,
    World,
    example_namespace,
    flat,
    original_world,
    scene_ids,
)
from rasteret.cli import main

pytestmark = EXAMPLE_MARKS
moto = pytest.importorskip("rasteret.testing.moto", reason="moto[server] is not installed")

BUILD = """rasteret collections build bangalore \\
  --stac-api https://earth-search.aws.element84.com/v1 \\
  --collection sentinel-2-l2a \\
  --bbox 77.55,13.01,77.58,13.08 \\
  --date-range 2024-01-01,2024-06-30"""
IMPORT = """rasteret collections import my-collection \\
  --record-table s3://my-bucket/stac-items.parquet"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with original_world(tmp_path_factory.mktemp("original")) as built:
        yield built


def command(
    doc: str, text: str, capsys: pytest.CaptureFixture, *changes: tuple[str, str]
) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of the document's command ``text`` after ``changes``."""
    document = (REFERENCE / doc).read_text(encoding="utf-8")
    assert flat(text) in flat(document), f"{doc}: {text!r} is not the document's command"
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    argv = shlex.split(text.replace("\\\n", " "))
    assert argv[0] == "rasteret"
    capsys.readouterr()
    code = main(argv[1:])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_workflow(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    example_namespace(world, tmp_path, monkeypatch)  # ~ and the working directory
    code, out, err = command(
        MANAGEMENT, BUILD, capsys, ("https://earth-search.aws.element84.com/v1", world.stac_url)
    )
    assert code == 0, err
    assert "Records    : 6" in out  # the six Bangalore scenes of the first half of 2024
    workspace = tmp_path / "rasteret_workspace"
    (built,) = workspace.glob("bangalore_*_stac")

    # import: a record table on S3 (moto), its COGs served over HTTP
    scenes = [r for r in world.records if r["id"] in scene_ids(world, 32643, lambda r: True)]
    table = pa.table(
        {
            "id": [r["id"] for r in scenes],
            "datetime": [r["datetime"] for r in scenes],
            "assets": [{"B04": {"href": world.href(r["hrefs"]["B04"])}} for r in scenes],
        }
    )
    with moto.MotoS3Server() as s3:
        s3.create_bucket("my-bucket")
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        s3.put("my-bucket", "stac-items.parquet", sink.getvalue().to_pybytes())
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto.ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto.SECRET_KEY)
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        code, out, err = command(MANAGEMENT, IMPORT, capsys)
        assert code == 0, err
        assert any(r.path == "my-bucket/stac-items.parquet" for r in s3.records("GET"))
    assert "Records    : 6" in out and (workspace / "my-collection_records").is_dir()

    code, out, err = command(MANAGEMENT, "rasteret collections list", capsys)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:] if line.strip() and "---" not in line]
    assert {(r[0], r[1]) for r in rows} == {
        (built.name[: -len("_stac")], "stac"),
        ("my-collection", "records"),
    }
    code, out, err = command(MANAGEMENT, "rasteret collections info bangalore", capsys)
    assert code == 0, err
    assert f"Path       : {built}" in out and "Records    : 6" in out

    # delete: unlike info, it wants the exact collection name (a prefix could match several
    # caches); the refusal names the candidates, and then there is the confirmation prompt,
    # which --yes skips (the document: "Use --yes with delete to skip the confirmation")
    name = built.name[: -len("_stac")]
    delete = "rasteret collections delete bangalore"
    code, out, err = command(MANAGEMENT, delete, capsys)
    assert code == 1 and "exactly 'bangalore'" in err and name in err and built.is_dir()
    code, out, err = command(MANAGEMENT, delete, capsys, ("bangalore", name))
    assert code == 1 and "--yes" in err and built.is_dir()  # no terminal to answer
    code, out, err = command(MANAGEMENT, delete, capsys, ("bangalore", f"{name} --yes"))
    assert code == 0, err
    assert not built.exists() and (workspace / "my-collection_records").is_dir()


def test_datasets_list(capsys: pytest.CaptureFixture) -> None:
    code, out, err = command(README, "rasteret datasets list", capsys)
    assert code == 0, err
    ids = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert {"earthsearch/sentinel-2-l2a", "earthsearch/landsat-c2-l2", "aef/v1-annual"} <= ids
