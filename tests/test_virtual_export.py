"""Virtual exports (Icechunk, kerchunk) open without rasteret, with GDAL's pixels.

The readers run in subprocesses that import only xarray / zarr / icechunk / fsspec and
assert at the end that rasteret was never imported (or, for the ``rasteret.tiff`` codec,
that only zarr's codec entry point imported it). The oracle is rasterio (GDAL) reading
the source files; request logs of the local object server show what an HTTP export reads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rasteret
from rasteret.integrations.virtual_export import VirtualExportError
from rasteret.samples import make_sentinel2_like, write_cog

icechunk = pytest.importorskip("icechunk")
rasterio = pytest.importorskip("rasterio", reason="rasterio (GDAL) is the pixel oracle")

ROWS, COLS, TILE = 300, 420, 128  # 3 x 4 tiles; edge tiles stored full size
SCENES = [
    ("S_32N_20240101", 32632, 1),
    ("S_33N_20240111", 32633, 11),
    ("S_32N_20240121", 32632, 21),
]
# band → (dtype, compression, scale / offset): deflate, zstd and uncompressed, no predictor
BANDS = {
    "B04": ("uint16", "deflate", (1e-4, -0.1)),
    "B08": ("uint16", "zstd", (1e-4, -0.1)),
    "SCL": ("uint8", "none", None),
}


def _by_file(path: str) -> tuple[str, str]:
    return (Path(path).parent.name, Path(path).stem)


def _scene_pixels(seed: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 250 if dtype == "uint8" else 20000, (ROWS, COLS)).astype(dtype)
    values[:TILE, :TILE] = 0  # one all-nodata tile: written sparse (no bytes)
    values[200:, :50] = 0  # nodata inside a stored tile
    return values


def _write_scene(
    root: Path,
    scene: str,
    zone: int,
    band: str,
    seed: int,
    pixels: np.ndarray | None = None,
    **options: Any,
) -> Path:
    dtype, compression, scaling = BANDS[band]
    path = root / scene / f"{band}.tif"
    settings: dict[str, Any] = {
        "nodata": 0,
        "compression": compression,
        "predictor": 1,
        "overviews": (2,),
        "sparse": True,
        "scale": None if scaling is None else scaling[0],
        "offset": None if scaling is None else scaling[1],
    }
    transform = (10.0, 0.0, 500000.0 + 700.0 * (zone - 32632), 0.0, -10.0, 5200000.0)
    write_cog(
        path,
        _scene_pixels(seed, dtype) if pixels is None else pixels,
        transform=transform,
        epsg=zone,
        tile=TILE,
        **{**settings, **options},
    )
    return path


def _build(sources: Any, **options: Any) -> rasteret.Collection:
    """Records from ``{scene}/{band}.tif``; dated by the scene name, else 2024-02-01."""
    from rasteret.ingest.files import datetime_from_name

    return rasteret.build_from_files(
        sources,
        group_by=options.pop("group_by", _by_file),
        datetime=lambda p: datetime_from_name(p) or dt.datetime(2024, 2, 1),
        **options,
    )


@pytest.fixture(scope="module")
def two_zones(tmp_path_factory: pytest.TempPathFactory) -> rasteret.Collection:
    root = tmp_path_factory.mktemp("two zones")  # a space: locations are percent-encoded
    for k, (scene, zone, _) in enumerate(SCENES):
        for b, band in enumerate(BANDS):
            _write_scene(root, scene, zone, band, 10 * k + b)
    collection = _build(root)
    return collection.subset(date_range=("2024-01-01", "2024-01-31"))  # a selection


def _reader_script(body: str) -> str:
    return textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import xarray as xr
        args = json.loads(sys.argv[1])
        out = {}

        def dump(prefix, ds):
            for name in ds.variables:
                values = ds[name].values
                if values.dtype.kind in "OUT":
                    values = np.asarray([str(v) for v in values.ravel()]).reshape(values.shape)
                if values.dtype.kind == "M":
                    values = values.astype("datetime64[us]").astype("int64")
                out[f"{prefix}/{name}"] = values
                out[f"{prefix}/{name}.attrs"] = np.asarray(json.dumps(ds[name].attrs, default=str))
        """
    ) + textwrap.dedent(body)


def _run_reader(script: str, args: dict[str, Any], result: Path) -> dict[str, np.ndarray]:
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps({**args, "out": str(result)})],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(result) as found:
        return dict(found)


READ_BOTH = """
import icechunk
repo = icechunk.Repository.open(
    icechunk.local_filesystem_storage(args["repo"]),
    authorize_virtual_chunk_access={
        p: icechunk.credentials.LocalFileSystemAccess for p in args["containers"]
    },
)
store = repo.readonly_session("main").store
for group in args["groups"]:
    raw = xr.open_zarr(store, group=group, consolidated=False, mask_and_scale=False)
    dump(f"icechunk/{group}", raw)
    decoded = xr.open_zarr(store, group=group, consolidated=False)
    out[f"icechunk/{group}/B04.decoded"] = decoded["B04"].values
    kerchunk = xr.open_dataset(
        "reference://", engine="zarr", group=group, mask_and_scale=False,
        backend_kwargs={"consolidated": False, "storage_options": {"fo": args["refs"]}},
    )
    dump(f"kerchunk/{group}", kerchunk)
mods = sorted(m for m in sys.modules if m.split(".")[0] == "rasteret")
assert not mods, f"rasteret was imported: {mods}"
np.savez(args["out"], **out)
"""


@pytest.fixture(scope="module")
def exported(
    two_zones: rasteret.Collection, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    where = tmp_path_factory.mktemp("exports")
    result = two_zones.to_icechunk(where / "scenes.icechunk")
    refs = two_zones.to_kerchunk(where / "refs.json")
    args = {
        "repo": str(where / "scenes.icechunk"),
        "containers": list(result.containers),
        "groups": list(result.groups),
        "refs": str(where / "refs.json"),
    }
    read = _run_reader(_reader_script(READ_BOTH), args, where / "read.npz")
    return {"result": result, "refs": refs, "read": read, "path": where / "refs.json"}


def _records(collection: rasteret.Collection) -> dict[str, dict[str, str]]:
    table = collection.table.to_pylist()
    return {row["id"]: {b: row["assets"][b]["href"] for b in BANDS} for row in table}


@pytest.mark.parametrize("source", ["icechunk", "kerchunk"])
def test_two_zone_export_opens_without_rasteret_with_gdal_pixels(
    two_zones: rasteret.Collection, exported: dict[str, Any], source: str
) -> None:
    from pyproj import CRS

    result, read = exported["result"], exported["read"]
    assert result.groups == ("epsg32632_10m", "epsg32633_10m")
    assert result.custom_codec_arrays == ()
    hrefs = _records(two_zones)
    for group, zone in zip(result.groups, (32632, 32633), strict=True):
        ids = [str(v) for v in read[f"{source}/{group}/id"]]
        expected_ids = sorted(s for s, z, _ in SCENES if z == zone)
        assert ids == expected_ids
        days = [d for s, z, d in SCENES if z == zone]
        times = [np.datetime64(dt.datetime(2024, 1, d), "us").astype("int64") for d in days]
        assert read[f"{source}/{group}/time"].tolist() == times
        for t, record in enumerate(ids):
            for band, (dtype, _, _) in BANDS.items():
                values = read[f"{source}/{group}/{band}"]
                assert values.dtype == np.dtype(dtype)
                with rasterio.open(hrefs[record][band]) as src:
                    np.testing.assert_array_equal(values[t], src.read(1))
                    transform, crs = src.transform, src.crs
        x, y = read[f"{source}/{group}/x"], read[f"{source}/{group}/y"]
        np.testing.assert_allclose(x, [transform.c + transform.a * (i + 0.5) for i in range(COLS)])
        np.testing.assert_allclose(y, [transform.f + transform.e * (i + 0.5) for i in range(ROWS)])
        ref = json.loads(str(read[f"{source}/{group}/spatial_ref.attrs"]))
        assert CRS.from_wkt(ref["crs_wkt"]) == CRS.from_wkt(crs.to_wkt())
        assert [float(v) for v in ref["GeoTransform"].split()] == list(transform.to_gdal())
        attrs = json.loads(str(read[f"{source}/{group}/B04.attrs"]))
        assert attrs["grid_mapping"] == "spatial_ref"
        assert (attrs["scale_factor"], attrs["add_offset"]) == (1e-4, -0.1)


def test_cf_decoding_applies_nodata_and_scale(exported: dict[str, Any]) -> None:
    read = exported["read"]
    raw = read["icechunk/epsg32632_10m/B04"]
    decoded = read["icechunk/epsg32632_10m/B04.decoded"]
    assert np.isnan(decoded[raw == 0]).all() and (raw == 0).any()
    np.testing.assert_allclose(decoded[raw != 0], raw[raw != 0] * 1e-4 - 0.1, rtol=1e-6)


def test_sparse_tiles_get_no_reference(exported: dict[str, Any]) -> None:
    refs = exported["refs"]["refs"]
    assert json.loads(Path(exported["path"]).read_text()) == exported["refs"]
    chunks = [k for k in refs if k.startswith("epsg32632_10m/B04/") and "/." not in k]
    assert len(chunks) == 2 * 12 - 2  # 2 records x 3 x 4 tiles, tile (0, 0) sparse in both
    assert "epsg32632_10m/B04/0.0.0" not in refs and "epsg32632_10m/B04/1.0.3" in refs
    meta = json.loads(refs["epsg32632_10m/B04/.zarray"])
    assert meta["compressor"]["id"] == "zlib" and meta["chunks"] == [1, TILE, TILE]
    assert json.loads(refs["epsg32632_10m/B08/.zarray"])["compressor"]["id"] == "zstd"
    assert json.loads(refs["epsg32632_10m/SCL/.zarray"])["compressor"] is None
    url, offset, length = refs["epsg32632_10m/B04/0.0.1"]
    with open(url.removeprefix("file://"), "rb") as f:  # the reference is the tile's bytes
        f.seek(offset)
        assert len(f.read(length)) == length


PREDICTOR_2 = """
import icechunk, zarr
repo = icechunk.Repository.open(
    icechunk.local_filesystem_storage(args["repo"]),
    authorize_virtual_chunk_access={
        p: icechunk.credentials.LocalFileSystemAccess for p in args["containers"]
    },
)
store = repo.readonly_session("main").store
for group in args["groups"]:
    dump(group, xr.open_zarr(store, group=group, consolidated=False, mask_and_scale=False))
    codec = zarr.open_array(store, path=f"{group}/B04").metadata.codecs[0]
    out[f"{group}/codec"] = np.asarray(codec.to_dict()["name"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "rasteret")
out["loaded"] = np.asarray(loaded)
np.savez(args["out"], **out)
"""


def test_predictor_2_uses_the_rasteret_codec_found_through_the_entry_point(
    tmp_path: Path,
) -> None:
    records = make_sentinel2_like(
        tmp_path / "s2", scenes=2, size=256, tile=128, bands=("B04",), zones=(32632, 32633)
    )
    collection = _build(tmp_path / "s2")
    with pytest.raises(VirtualExportError, match="predictor 2") as refused:
        collection.to_icechunk(tmp_path / "strict.icechunk", codecs="standard")
    assert records[0]["id"] in str(refused.value) or records[1]["id"] in str(refused.value)
    assert not (tmp_path / "strict.icechunk").exists()  # refused before writing
    with pytest.raises(VirtualExportError, match="predictor 2"):
        collection.to_kerchunk(tmp_path / "refs.json")
    assert not (tmp_path / "refs.json").exists()

    result = collection.to_icechunk(tmp_path / "s2.icechunk", message="predictor 2 scenes")
    assert sorted(result.custom_codec_arrays) == [f"{g}/B04" for g in sorted(result.groups)]
    args = {
        "repo": str(tmp_path / "s2.icechunk"),
        "containers": list(result.containers),
        "groups": list(result.groups),
    }
    assert "import rasteret" not in PREDICTOR_2 and "from rasteret" not in PREDICTOR_2
    read = _run_reader(_reader_script(PREDICTOR_2), args, tmp_path / "read.npz")
    # the script imports no rasteret: zarr's codec entry point loaded the codec module
    assert "rasteret.store.codec" in read["loaded"].tolist()
    by_id = {r["id"]: r["hrefs"]["B04"] for r in records}
    for group in result.groups:
        assert str(read[f"{group}/codec"]) == "rasteret.tiff"
        (record,) = [str(v) for v in read[f"{group}/id"]]
        with rasterio.open(by_id[record]) as src:
            np.testing.assert_array_equal(read[f"{group}/B04"][0], src.read(1))
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(args["repo"]))
    assert next(iter(repo.ancestry(branch="main"))).message == "predictor 2 scenes"


def _open_group(path: Path, result: Any, group: str, branch: str = "main") -> Any:
    import xarray as xr

    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(path)),
        authorize_virtual_chunk_access=result.credentials(),
    )
    store = repo.readonly_session(branch).store
    return xr.open_zarr(store, group=group, consolidated=False, mask_and_scale=False)


def test_records_that_decode_differently_are_refused_by_name(tmp_path: Path) -> None:
    _write_scene(tmp_path, "plain", 32632, "B04", 1)
    _write_scene(tmp_path, "predicted", 32632, "B04", 2, predictor=2)
    collection = _build(tmp_path)
    for export in (
        lambda: collection.to_icechunk(tmp_path / "out.icechunk"),
        lambda: collection.to_kerchunk(),
    ):
        with pytest.raises(VirtualExportError, match="decode differently") as refused:
            export()
        message = str(refused.value)
        assert "'plain'" in message and "'predicted'" in message and "predictor 2" in message
    assert not (tmp_path / "out.icechunk").exists()
    import pyarrow.compute as pc

    refs = collection.where(pc.field("id") == "plain").to_kerchunk()["refs"]
    assert "epsg32632_10m/B04/0.1.1" in refs  # each kind exports on its own


def test_scale_that_differs_per_record_becomes_a_coordinate(tmp_path: Path) -> None:
    _write_scene(tmp_path, "old", 32632, "B04", 1, offset=0.0)
    _write_scene(tmp_path, "new", 32632, "B04", 2)
    collection = _build(tmp_path)
    result = collection.to_icechunk(tmp_path / "out.icechunk")
    (group,) = result.groups
    ds = _open_group(tmp_path / "out.icechunk", result, group)
    assert [str(v) for v in ds["id"].values] == ["new", "old"]  # same datetime: by id
    assert ds["B04_add_offset"].values.tolist() == [-0.1, 0.0]
    assert ds["B04_scale_factor"].values.tolist() == [1e-4, 1e-4]
    assert "scale_factor" not in ds["B04"].attrs and "add_offset" not in ds["B04"].attrs
    for t, scene in enumerate(["new", "old"]):
        with rasterio.open(tmp_path / scene / "B04.tif") as src:
            np.testing.assert_array_equal(ds["B04"].values[t], src.read(1))


def test_nodata_that_differs_with_sparse_tiles_is_refused(tmp_path: Path) -> None:
    _write_scene(tmp_path, "zero", 32632, "B04", 1)
    fives = _scene_pixels(2, "uint16")
    fives[fives == 0] = 5  # its nodata tile is sparse too
    _write_scene(tmp_path, "five", 32632, "B04", 2, pixels=fives, nodata=5)
    collection = _build(tmp_path)
    with pytest.raises(VirtualExportError, match="sparse tiles") as refused:
        collection.to_kerchunk()
    assert "'five'" in str(refused.value)


def test_a_branch_holds_a_selection_and_main_is_unchanged(
    two_zones: rasteret.Collection, tmp_path: Path
) -> None:
    path = tmp_path / "repo.icechunk"
    first = two_zones.to_icechunk(path, bands="SCL")
    later = two_zones.subset(date_range=("2024-01-15", "2024-01-31"))
    second = later.to_icechunk(path, bands=["SCL"], branch="late")
    assert second.branch == "late" and first.snapshot_id != second.snapshot_id
    main = _open_group(path, first, "epsg32632_10m")
    late = _open_group(path, second, "epsg32632_10m", branch="late")
    assert main.sizes["time"] == 2 and late.sizes["time"] == 1
    assert [str(v) for v in late["id"].values] == ["S_32N_20240121"]
    np.testing.assert_array_equal(late["SCL"].values[0], main["SCL"].values[1])
    assert list(late.data_vars) == ["SCL"]


def test_a_file_changed_after_indexing_fails_instead_of_reading_other_bytes(
    tmp_path: Path,
) -> None:
    path = _write_scene(tmp_path, "scene", 32632, "SCL", 1)
    collection = _build(tmp_path)
    result = collection.to_icechunk(tmp_path / "out.icechunk")
    ds = _open_group(tmp_path / "out.icechunk", result, "epsg32632_10m")
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(ds["SCL"].values[0], src.read(1))
    later = path.stat().st_mtime + 60
    os.utime(path, (later, later))
    ds = _open_group(tmp_path / "out.icechunk", result, "epsg32632_10m")
    with pytest.raises(icechunk.IcechunkError, match="checksum"):
        ds["SCL"].load()


def _assert_reads_whole_tiles(
    reads: list[tuple[int | None, int | None]], collection: rasteret.Collection
) -> None:
    """Every byte read lies in a stored tile (no header read) and each of the 11 stored
    tiles (3 x 4, one sparse) is read once, whole (Icechunk may split one into ranges)."""
    from rasteret.store.layout import build_layout

    (group,) = build_layout(collection.table).grid_groups
    tiles = {
        (int(o), int(o) + int(n))
        for a in build_layout(collection.table).groups[group].arrays.values()
        for s in a.sources
        if s is not None
        for o, n in zip(s.offsets, s.byte_counts, strict=True)
        if n > 0
    }
    assert len(tiles) == 11
    read_per_tile = dict.fromkeys(tiles, 0)
    for start, end in reads:
        assert start is not None and end is not None  # ranged GETs only
        (tile,) = [t for t in tiles if t[0] <= start and end <= t[1]]
        read_per_tile[tile] += end - start
    assert read_per_tile == {t: t[1] - t[0] for t in tiles}


def test_http_export_reads_only_the_tiles(tmp_path: Path, object_server: Any) -> None:
    import xarray as xr

    _write_scene(tmp_path, "remote", 32633, "B04", 3)
    urls = [object_server.url_for("remote/B04.tif")]
    collection = _build(urls, group_by=lambda u: ("remote", "B04"))
    result = collection.to_icechunk(tmp_path / "http.icechunk")
    assert result.containers == (object_server.url.rstrip("/") + "/",)
    (group,) = result.groups
    object_server.reset()
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(tmp_path / "http.icechunk")),
        authorize_virtual_chunk_access=result.credentials(),
    )
    ds = xr.open_zarr(
        repo.readonly_session("main").store, group=group, consolidated=False, mask_and_scale=False
    )
    with rasterio.open(tmp_path / "remote" / "B04.tif") as src:
        np.testing.assert_array_equal(ds["B04"].values[0], src.read(1))
    reads = [(r.start, r.end) for r in object_server.records() if r.method == "GET"]
    _assert_reads_whole_tiles(reads, collection)


@pytest.mark.parametrize(
    ("method", "module"),
    [("to_icechunk", "virtual_export_icechunk"), ("to_kerchunk", "virtual_export_kerchunk")],
)
def test_facade_methods_take_the_implementations_options(method: str, module: str) -> None:
    import importlib
    import inspect

    implementation = getattr(importlib.import_module(f"rasteret.integrations.{module}"), method)
    facade = dict(inspect.signature(getattr(rasteret.Collection, method)).parameters)
    implemented = dict(inspect.signature(implementation).parameters)
    facade.pop("self"), implemented.pop("collection")
    assert list(facade) == list(implemented)
    assert [p.default for p in facade.values()] == [p.default for p in implemented.values()]


@pytest.mark.parametrize(
    ("dtype", "endianness", "nodata"),
    [("uint16", "BIG", 0), ("int16", "BIG", -9999), ("float32", "LITTLE", float("nan"))],
)
def test_byte_order_and_float_nodata_survive_both_formats(
    tmp_path: Path, dtype: str, endianness: str, nodata: float
) -> None:
    import xarray as xr

    from _testcollections import smooth_image, write_gtiff

    pixels = smooth_image((ROWS, COLS), dtype=dtype).astype(dtype)
    pixels[:20, :30] = nodata
    path = tmp_path / "scene_20240301" / "B01.tif"
    path.parent.mkdir()
    options = {"tiled": True, "blockxsize": TILE, "blockysize": TILE, "compress": "deflate"}
    write_gtiff(path, pixels, dtype=dtype, nodata=nodata, endianness=endianness, **options)
    collection = _build(tmp_path)
    refs = collection.to_kerchunk()
    result = collection.to_icechunk(tmp_path / "out.icechunk")
    (group,) = result.groups
    meta = json.loads(refs["refs"][f"{group}/B01/.zarray"])
    assert meta["dtype"] == np.dtype(dtype).newbyteorder(">" if endianness == "BIG" else "<").str
    fs_options = {"fo": refs}
    opened = {
        "icechunk": _open_group(tmp_path / "out.icechunk", result, group),
        "kerchunk": xr.open_dataset(
            "reference://",
            engine="zarr",
            group=group,
            mask_and_scale=False,
            backend_kwargs={"consolidated": False, "storage_options": fs_options},
        ),
    }
    with rasterio.open(path) as src:
        expected = src.read(1)
    for ds in opened.values():
        np.testing.assert_array_equal(ds["B01"].values[0], expected)
        decoded = xr.decode_cf(ds)["B01"].values[0]
        assert np.isnan(decoded[:20, :30]).all() and not np.isnan(decoded[20:, 30:]).any()


def test_jpeg_tables_are_refused(tmp_path: Path) -> None:
    from _testcollections import smooth_image, write_gtiff

    path = tmp_path / "photo_20240301" / "B01.tif"
    path.parent.mkdir()
    pixels = smooth_image((256, 256), dtype="uint8")
    write_gtiff(path, pixels, dtype="uint8", tiled=True, compress="jpeg")
    collection = _build(tmp_path)
    with pytest.raises(VirtualExportError, match="JPEG tables") as refused:
        collection.to_icechunk(tmp_path / "out.icechunk")
    assert "'photo_20240301'" in str(refused.value)
    assert not (tmp_path / "out.icechunk").exists()


def test_exports_from_two_directories_share_one_repository(tmp_path: Path) -> None:
    first = _write_scene(tmp_path / "a", "one_20240101", 32632, "SCL", 1)
    second = _write_scene(tmp_path / "b", "two_20240102", 32633, "SCL", 2)
    path = tmp_path / "shared.icechunk"
    exports = [_build(p.parent.parent).to_icechunk(path) for p in (first, second)]
    assert exports[0].containers != exports[1].containers
    for export, source in zip(exports, (first, second), strict=True):
        (group,) = export.groups
        ds = _open_group(path, export, group)  # the repository kept both containers
        with rasterio.open(source) as src:
            np.testing.assert_array_equal(ds["SCL"].values[0], src.read(1))


def test_s3_export_reads_only_tiles_and_refuses_a_changed_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto = pytest.importorskip("rasteret.testing.moto", reason="moto[server] (test extra)")
    import xarray as xr

    path = _write_scene(tmp_path, "cloud_20240105", 32632, "B04", 4)
    keys = {"AWS_ACCESS_KEY_ID": "AKIAVIRTUALEXPORT001", "AWS_SECRET_ACCESS_KEY": "secret"}
    with moto.MotoS3Server() as s3:
        s3.create_bucket("scenes")
        s3.put("scenes", "cloud_20240105/B04.tif", path.read_bytes())
        for name, value in {**keys, "AWS_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
        url = "s3://scenes/cloud_20240105/B04.tif"
        collection = _build([url])
        result = collection.to_icechunk(tmp_path / "s3.icechunk")
        assert result.containers == ("s3://scenes/",)
        s3.reset()
        repo = icechunk.Repository.open(
            icechunk.local_filesystem_storage(str(tmp_path / "s3.icechunk")),
            authorize_virtual_chunk_access=result.credentials(),
        )
        store = repo.readonly_session("main").store
        (group,) = result.groups
        ds = xr.open_zarr(store, group=group, consolidated=False, mask_and_scale=False)
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(ds["B04"].values[0], src.read(1))
        gets = s3.records(method="GET")
        s3.put("scenes", "cloud_20240105/B04.tif", path.read_bytes()[::-1])  # a new ETag
        ds = xr.open_zarr(store, group=group, consolidated=False, mask_and_scale=False)
        with pytest.raises(icechunk.IcechunkError, match="checksum"):
            ds["B04"].load()
    _assert_reads_whole_tiles([(r.start, r.end) for r in gets], collection)


def _masked_scene(root: Path, scene: str, seed: int, masked: bool) -> Path:
    """``{scene}/B04.tif``: 512² uint16, 256-px deflate tiles, with an internal (1-bit,
    per-dataset) mask clearing a block when ``masked``."""
    from affine import Affine

    rng = np.random.default_rng(seed)
    path = root / scene / "B04.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff", "width": 512, "height": 512, "count": 1, "dtype": "uint16",
        "crs": "EPSG:32632", "transform": Affine(10, 0, 600000, 0, -10, 5200000),
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
    }  # fmt: skip
    mask = np.full((512, 512), 255, np.uint8)
    mask[40 + seed : 300, 100:420] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(rng.integers(1, 5000, (512, 512)).astype(np.uint16), 1)
        if masked:
            dst.write_mask(mask)
    return path


def test_internal_masks_are_exported_next_to_their_band(tmp_path: Path) -> None:
    """Before, the masks were dropped and their pixels read as data: now ``B04_mask``
    holds GDAL's mask (rasterio's ``read_masks``; 1-bit, so 0 / 1) and ``B04`` names it."""
    paths = {s: _masked_scene(tmp_path, s, k, True) for k, s in enumerate(("a", "b"))}
    collection = _build(tmp_path)
    result = collection.to_icechunk(tmp_path / "out.icechunk")
    ds = _open_group(tmp_path / "out.icechunk", result, "epsg32632_10m")
    assert ds["B04"].attrs["ancillary_variables"] == "B04_mask"
    assert ds["B04_mask"].attrs["flag_values"] == [0, 1]
    for t, record in enumerate(ds["id"].values):
        with rasterio.open(paths[str(record)]) as src:
            gdal = src.read_masks(1)
            assert (gdal == 0).mean() > 0.2
            np.testing.assert_array_equal(ds["B04_mask"].values[t], (gdal != 0).astype(np.uint8))
            np.testing.assert_array_equal(ds["B04"].values[t], src.read(1))
    # GDAL's masks are 1-bit: no standard Zarr codec decodes them
    with pytest.raises(VirtualExportError, match=r"band 'B04'.*1-bit.*internal_masks='omit'"):
        collection.to_kerchunk()
    omitted = collection.to_kerchunk(internal_masks="omit")["refs"]
    assert not any(key.startswith("epsg32632_10m/B04_mask") for key in omitted)
    attrs = json.loads(omitted["epsg32632_10m/B04/.zattrs"])
    assert attrs["rasteret_internal_mask"].startswith("omitted")


def test_a_band_masked_in_only_some_records_is_refused_by_name(tmp_path: Path) -> None:
    _masked_scene(tmp_path, "masked", 1, True)
    _masked_scene(tmp_path, "plain", 2, False)
    collection = _build(tmp_path)
    with pytest.raises(VirtualExportError, match=r"1 have none \(plain\)"):
        collection.to_icechunk(tmp_path / "out.icechunk")
    assert not (tmp_path / "out.icechunk").exists()
    result = collection.to_icechunk(tmp_path / "out.icechunk", internal_masks="omit")
    ds = _open_group(tmp_path / "out.icechunk", result, "epsg32632_10m")
    assert "B04_mask" not in ds and "rasteret_internal_mask" in ds["B04"].attrs
