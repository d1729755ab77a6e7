"""A shared index cannot read the user's files: local hrefs of a loaded collection.

A dataset directory ``shared/`` holds its scenes and its exported index. Its hrefs are
then edited to point at a private COG elsewhere on disk (absolute path, ``file://``,
``../`` traversal, a symbolic link inside ``shared/``) or at ``/etc/hostname``: the first
read refuses them with LocalHrefRefusedError naming the collection, record, band and
href. The user opts in with ``load(..., local_roots=[...])``, ``$RASTERET_LOCAL_ROOTS``
or ``"any"``, and then reads the private file's true pixels (rasterio is the oracle).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio

import rasteret
from rasteret.errors import LocalHrefRefusedError
from rasteret.samples import write_cog

TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0)
#: Uncompressed: every file has the same byte layout, so an edited href reads another
#: file's pixels unnoticed (the threat) unless it is refused.
LAYOUT = {"transform": TRANSFORM, "epsg": 32633, "tile": 32, "compression": "none"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("local_hrefs")
    shared, private = root / "shared", root / "private"
    (shared / "scenes").mkdir(parents=True)
    private.mkdir()
    for name, seed in (("scene_a_20240101", 1), ("scene_b_20240201", 2)):
        array = np.random.default_rng(seed).integers(1, 4000, (64, 64), dtype=np.uint16)
        write_cog(shared / "scenes" / f"{name}.tif", array, **LAYOUT)
    secret = np.random.default_rng(9).integers(1, 4000, (64, 64), dtype=np.uint16)
    write_cog(private / "secret.tif", secret, **LAYOUT)  # same bytes layout, other pixels
    stat = (shared / "scenes" / "scene_a_20240101.tif").stat()  # and the same mtime: the
    os.utime(private / "secret.tif", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # edit is unseen
    collection = rasteret.build_from_files(shared / "scenes", workspace_dir=root / "ws")
    collection.export(shared / "index.parquet")
    return {"root": root, "shared": shared, "private": private, "index": shared / "index.parquet"}


def _with_href(dataset: dict[str, Path], href: str, name: str = "edited.parquet") -> Path:
    """The shared index with record 0's ``b1`` href replaced by ``href``."""
    table = pq.read_table(dataset["index"])
    assets = table["assets"].to_pylist()
    assets[0] = {**assets[0], "b1": {**assets[0]["b1"], "href": href}}
    column = pa.array(assets, type=table.schema.field("assets").type)
    edited = table.set_column(table.schema.get_field_index("assets"), "assets", column)
    path = dataset["shared"] / name
    pq.write_table(edited, path)
    return path


def _read(collection: rasteret.Collection) -> np.ndarray:
    """``b1`` of the first record on its native grid."""
    import xarray as xr

    return xr.open_dataset(collection, engine="rasteret").b1.isel(time=0).values


def test_a_dataset_beside_its_index_reads(dataset: dict[str, Path]) -> None:
    collection = rasteret.load(dataset["index"])
    pixels = _read(collection)
    with rasterio.open(dataset["shared"] / "scenes" / "scene_a_20240101.tif") as src:
        expected = src.read(1)
    np.testing.assert_array_equal(pixels, expected)


@pytest.mark.parametrize(
    "kind", ["absolute", "file-url", "traversal", "symlink", "etc-hostname", "relative-cwd"]
)
def test_hrefs_outside_the_dataset_are_refused(
    dataset: dict[str, Path], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RASTERET_LOCAL_ROOTS", raising=False)
    secret = dataset["private"] / "secret.tif"
    if kind == "absolute":
        href = str(secret)
    elif kind == "file-url":
        href = secret.as_uri()
    elif kind == "traversal":
        href = str(dataset["shared"] / "scenes" / ".." / ".." / "private" / "secret.tif")
    elif kind == "symlink":
        link = dataset["shared"] / "scenes" / "link.tif"
        if not link.exists():
            link.symlink_to(secret)
        href = str(link)
    elif kind == "etc-hostname":
        href = "/etc/hostname"
    else:  # relative to the working directory, as reads resolve relative hrefs
        monkeypatch.chdir(dataset["private"])
        href = "secret.tif"
    path = _with_href(dataset, href, f"{kind}.parquet")
    collection = rasteret.load(path)
    with pytest.raises(LocalHrefRefusedError) as caught:
        _read(collection)
    message = str(caught.value)
    assert message.startswith(f"{path}: record 'scene_a_20240101' band 'b1'"), message
    assert repr(href) in message and "local_roots" in message
    assert isinstance(caught.value, PermissionError)
    with pytest.raises(LocalHrefRefusedError):  # get_numpy too
        collection.get_numpy(collection.bounds, "b1")


def test_the_user_opts_in(dataset: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RASTERET_LOCAL_ROOTS", raising=False)
    secret = dataset["private"] / "secret.tif"
    path = _with_href(dataset, secret.as_uri(), "opt-in.parquet")
    with rasterio.open(secret) as src:
        expected = src.read(1)
    for collection in (
        rasteret.load(path, local_roots=[dataset["private"]]),
        rasteret.load(path, local_roots="any"),
    ):
        np.testing.assert_array_equal(_read(collection), expected)
    monkeypatch.setenv(
        "RASTERET_LOCAL_ROOTS", os.pathsep.join(["/nonexistent", str(secret.parent)])
    )
    np.testing.assert_array_equal(_read(rasteret.load(path)), expected)


def test_a_pickled_store_keeps_the_allowance(
    dataset: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import xarray as xr

    from rasteret.store import open_store

    monkeypatch.delenv("RASTERET_LOCAL_ROOTS", raising=False)
    secret = dataset["private"] / "secret.tif"
    path = _with_href(dataset, str(secret), "pickled.parquet")
    allowed = rasteret.load(path, local_roots=[dataset["private"]]).subset(
        date_range=("2024-01-01", "2024-01-02")
    )
    clone = pickle.loads(pickle.dumps(open_store(allowed)))
    values = xr.open_dataset(clone, engine="rasteret").b1.values
    with rasterio.open(secret) as src:
        np.testing.assert_array_equal(values[0], src.read(1))
    refused = rasteret.load(path).subset(date_range=("2024-01-01", "2024-01-02"))
    with pytest.raises(LocalHrefRefusedError):
        open_store(refused)


def test_workspace_collections_are_trusted(
    tmp_path: Path, dataset: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RASTERET_LOCAL_ROOTS", raising=False)
    monkeypatch.setenv("RASTERET_WORKSPACE", str(tmp_path / "ws"))
    built = rasteret.build_from_files(dataset["private"], name="mine")
    reloaded = rasteret.load(built.uri)  # the scenes are elsewhere: our own build
    with rasterio.open(dataset["private"] / "secret.tif") as src:
        np.testing.assert_array_equal(_read(reloaded), src.read(1))


def test_remote_hrefs_are_not_local(dataset: dict[str, Path]) -> None:
    from rasteret.index.local_access import is_local_href

    assert is_local_href("/data/x.tif") and is_local_href("file:///data/x.tif")
    assert is_local_href("relative/x.tif") and is_local_href("C:/data/x.tif")
    for remote in ("s3://b/k.tif", "https://h/k.tif", "az://c/k.tif", "gs://b/k.tif"):
        assert not is_local_href(remote)


@pytest.mark.parametrize("files", [3, 12])  # one lstat per file / one listing of the directory
@pytest.mark.parametrize("target", ["outside", "inside"])
def test_links_among_many_files_of_one_directory(tmp_path: Path, files: int, target: str) -> None:
    """The files of one directory are checked together: a symbolic link among them is
    followed whether the directory is listed (many files) or each file is asked (few),
    and a refusal names the first record that holds it; two bands of one multi-band file
    share an href and are both checked."""
    from rasteret.index.local_access import LocalAccess

    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir()
    private.mkdir()
    (private / "secret.tif").write_bytes(b"secret")
    names = [f"scene_{i:02d}.tif" for i in range(files)]
    for name in names:
        (shared / name).write_bytes(b"scene")
    linked = shared / names[-1]
    linked.unlink()
    linked.symlink_to(private / "secret.tif" if target == "outside" else shared / names[0])
    hrefs = [str(shared / name) for name in names]
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(files)] + ["again"],
            "assets": [{"b1": {"href": h}, "b2": {"href": h}} for h in [*hrefs, hrefs[-1]]],
        }
    )
    access = LocalAccess.for_source(str(shared / "index.parquet"))
    assert access is not None and access.roots == (os.path.realpath(shared),)
    if target == "inside":
        access.check(table, ["b1", "b2"], "index.parquet")
        return
    with pytest.raises(LocalHrefRefusedError) as caught:
        access.check(table, ["b1", "b2"], "index.parquet")
    assert f"record 'r{files - 1}' band 'b1'" in str(caught.value)
    assert repr(str(linked)) in str(caught.value)
    assert not access.allows(str(linked)) and access.allows(hrefs[0])
