"""The virtual Zarr v3 store and the rasteret.tiff codec, against GDAL (rasterio) reads."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr
from rasterio.transform import from_origin
from rasterio.windows import Window
from zarr.core.buffer import default_buffer_prototype

from _testcollections import (
    make_collection,
    rasterio_read,
    record,
    smooth_image,
    write_cog,
    write_gtiff,
)
from conftest import CORPUS  # ../shared/corpus, or $RASTERET_SHARED/corpus
from rasteret import load
from rasteret.errors import BandNotFoundError
from rasteret.store import TiffTileCodec, VirtualStore, open_store
from rasteret.store.reference import rebuild_store

T0 = dt.datetime(2024, 5, 1, 10, 0)


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small set of rasterio-written files covering the layouts the store must serve."""
    root = tmp_path_factory.mktemp("store")
    out: dict[str, Path] = {}
    for k in range(3):  # deflate + predictor 2, uint16, 512 tiles, edge tiles, overviews
        data = smooth_image((1, 1100, 1300), seed=k)
        data[0, :40, :40] = 0
        out[f"deflate{k}"] = write_cog(root / f"deflate{k}.tif", data, nodata=0, overviews=2)
    data = smooth_image((1, 1100, 1300), seed=9)
    out["lzw"] = write_cog(root / "lzw.tif", data, nodata=0, compress="LZW", overviews=2)
    sparse = smooth_image((1, 700, 900), seed=3)
    sparse[0, :512, :512] = 7  # whole tiles of nodata are not written (SPARSE_OK)
    out["sparse"] = write_cog(root / "sparse.tif", sparse, nodata=7, sparse=True, blocksize=256)
    rgb = smooth_image((3, 600, 700), dtype="uint8", seed=4)
    out["jpeg"] = write_cog(root / "jpeg.tif", rgb, compress="JPEG", predictor=None, blocksize=256)
    out["strips"] = write_gtiff(
        root / "strips.tif",
        smooth_image((1, 101, 150), dtype="int16", seed=5),
        compress="lzw",
        predictor=2,
        blockysize=7,
        nodata=-1,
    )
    for zone in (32, 33):
        out[f"zone{zone}"] = write_cog(
            root / f"zone{zone}.tif",
            smooth_image((1, 600, 600), seed=zone),
            crs=f"EPSG:326{zone}",
            transform=from_origin(400000, 5100000, 20, 20),
            nodata=0,
        )
    return out


def _read(store: VirtualStore, group: str, array: str = "B1") -> np.ndarray:
    ds = xr.open_dataset(store, engine="rasteret", group=group)
    return ds[array].values


def test_layout_sorts_time_and_keeps_duplicate_timestamps(files: dict[str, Path]) -> None:
    records = [
        record("c", day(2), {"B1": files["deflate2"]}),
        record("a", day(0), {"B1": files["deflate0"]}),
        record("b", day(0), {"B1": files["deflate1"]}),
    ]
    store = open_store(make_collection(records, ["B1"]))
    assert store.groups == [
        "epsg32633_10m",
        "epsg32633_10m_overview_0",
        "epsg32633_10m_overview_1",
    ]
    ds = xr.open_dataset(store, engine="rasteret")
    assert list(ds["id"].values) == ["a", "b", "c"]
    assert list(ds.time.values) == [
        np.datetime64(day(0)),
        np.datetime64(day(0)),
        np.datetime64(day(2)),
    ]
    assert ds.B1.dtype == np.uint16 and ds.B1.shape == (3, 1100, 1300)
    for t, name in enumerate(["deflate0", "deflate1", "deflate2"]):
        np.testing.assert_array_equal(ds.B1.isel(time=t).values, rasterio_read(files[name])[0])


def test_window_and_overviews_equal_rasterio(files: dict[str, Path]) -> None:
    records = [record(f"r{k}", day(k), {"B1": files[f"deflate{k}"]}) for k in range(2)]
    collection = make_collection(records, ["B1"])
    ds = xr.open_dataset(collection, engine="rasteret")
    window = ds.B1.isel(time=1, y=slice(500, 1037), x=slice(1000, 1300)).values
    expected = rasterio_read(files["deflate1"], window=Window(1000, 500, 300, 537))[0]
    np.testing.assert_array_equal(window, expected)
    for level in (0, 1):
        ovr = xr.open_dataset(collection, engine="rasteret", overview_level=level)
        expected = rasterio_read(files["deflate0"], overview_level=level)[0]
        np.testing.assert_array_equal(ovr.B1.isel(time=0).values, expected)
        assert (
            ovr.rio.transform() == rasterio.open(files["deflate0"], overview_level=level).transform
        )


def test_sparse_tiles_read_as_nodata(files: dict[str, Path]) -> None:
    collection = make_collection([record("s", day(0), {"B1": files["sparse"]})], ["B1"])
    counts = collection.band_levels("B1")[0].full.byte_counts
    assert (counts == 0).sum() >= 2, "the fixture must have sparse tiles"
    store = open_store(collection)
    key = f"{store.groups[0]}/B1/c/0/0/0"
    assert asyncio.run(store.get(key, default_buffer_prototype())) is None
    assert not asyncio.run(store.exists(key))
    values = _read(store, store.groups[0])[0]
    np.testing.assert_array_equal(values, rasterio_read(files["sparse"])[0])
    assert (values[:512, :512] == 7).all()


def test_jpeg_with_tables_within_tolerance(files: dict[str, Path]) -> None:
    bands = {"R": (files["jpeg"], 0), "G": (files["jpeg"], 1), "B": (files["jpeg"], 2)}
    collection = make_collection([record("j", day(0), bands)], ["R", "G", "B"])
    assert collection.band_levels("G")[0].full.jpeg_tables, "fixture must carry JPEGTables"
    ds = xr.open_dataset(collection, engine="rasteret")
    expected = rasterio_read(files["jpeg"]).astype(int)
    for k, band in enumerate(["R", "G", "B"]):
        got = ds[band].isel(time=0).values.astype(int)
        assert np.abs(got - expected[k]).max() <= 10


def test_stripped_file_short_last_strip(files: dict[str, Path]) -> None:
    collection = make_collection([record("s", day(0), {"B1": files["strips"]})], ["B1"])
    store = open_store(collection)
    array = zarr.open_group(store, mode="r")[f"{store.groups[0]}/B1"]
    assert array.chunks == (1, 7, 150) and array.shape == (1, 101, 150)
    np.testing.assert_array_equal(array[0], rasterio_read(files["strips"])[0])


def test_two_zones_two_groups(files: dict[str, Path]) -> None:
    records = [
        record("z32", day(0), {"B1": files["zone32"]}),
        record("z33", day(1), {"B1": files["zone33"]}),
    ]
    store = open_store(make_collection(records, ["B1"]))
    assert store.layout.grid_groups == ["epsg32632_20m", "epsg32633_20m"]
    with pytest.raises(ValueError, match="epsg32632_20m, epsg32633_20m"):
        xr.open_dataset(store, engine="rasteret")
    for zone in (32, 33):
        ds = xr.open_dataset(store, engine="rasteret", group=f"epsg326{zone}_20m")
        assert ds.rio.crs.to_epsg() == 32600 + zone
        assert list(ds["id"].values) == [f"z{zone}"]
        np.testing.assert_array_equal(ds.B1.values[0], rasterio_read(files[f"zone{zone}"])[0])


def test_codec_settings_split_into_arrays(files: dict[str, Path]) -> None:
    records = [
        record("d", day(0), {"B1": files["deflate0"]}),
        record("l", day(1), {"B1": files["lzw"]}),
    ]
    store = open_store(make_collection(records, ["B1"]))
    group = zarr.open_group(store, mode="r")["epsg32633_10m"]
    assert "B1__2" not in group.array_keys()  # one Zarr array per band, codecs per record
    raw = group["B1"][:]
    np.testing.assert_array_equal(raw[0], rasterio_read(files["deflate0"])[0])
    np.testing.assert_array_equal(raw[1], rasterio_read(files["lzw"])[0])
    ds = xr.open_dataset(store, engine="rasteret")
    assert set(ds.data_vars) == {"B1"}  # the engine does not: one variable per band
    assert ds.B1.attrs["records"] == 2
    np.testing.assert_array_equal(ds.B1.values[0], rasterio_read(files["deflate0"])[0])
    np.testing.assert_array_equal(ds.B1.values[1], rasterio_read(files["lzw"])[0])


def test_zarr_and_open_zarr_work_unchanged(files: dict[str, Path]) -> None:
    records = [record(f"r{k}", day(k), {"B1": files[f"deflate{k}"]}) for k in range(2)]
    store = open_store(make_collection(records, ["B1"]))
    group = zarr.open_group(store, mode="r")
    assert sorted(group.group_keys()) == store.groups
    array = group["epsg32633_10m/B1"]
    assert array.chunks == (1, 512, 512) and array.fill_value == 0
    np.testing.assert_array_equal(
        array[1, 600:700, 5:900], rasterio_read(files["deflate1"])[0, 600:700, 5:900]
    )
    ds = xr.open_zarr(store, group="epsg32633_10m", mask_and_scale=False)
    assert ds.rio.crs.to_epsg() == 32633
    assert ds.B1.rio.nodata == 0
    assert ds.rio.transform() == rasterio.open(files["deflate0"]).transform
    masked = xr.open_zarr(store, group="epsg32633_10m")  # CF masking: nodata → NaN
    assert np.isnan(masked.B1.isel(time=0, y=0, x=0).values)
    with pytest.raises((PermissionError, ValueError)):
        asyncio.run(store.set("x", default_buffer_prototype().buffer.from_bytes(b"1")))


def test_internal_mask_array(tmp_path: Path) -> None:
    path = tmp_path / "mask.tif"
    mask = np.zeros((600, 700), np.uint8)
    mask[100:400, 50:500] = 255
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=700,
            height=600,
            count=1,
            dtype="uint16",
            crs="EPSG:32633",
            transform=from_origin(300000, 5000000, 10, 10),
            tiled=True,
            blockxsize=256,
            blockysize=256,
            compress="deflate",
        ) as dst,
    ):
        dst.write(smooth_image((1, 600, 700)))
        dst.write_mask(mask)
    ds = xr.open_dataset(
        make_collection([record("m", day(0), {"B1": path})], ["B1"]), engine="rasteret"
    )
    with rasterio.open(path) as src:
        expected = src.dataset_mask() > 0
    np.testing.assert_array_equal(ds.B1_mask.values[0] > 0, expected)
    assert ds.B1_mask.dtype == np.uint8


def test_unknown_band(files: dict[str, Path]) -> None:
    collection = make_collection([record("a", day(0), {"B1": files["deflate0"]})], ["B1"])
    with pytest.raises(BandNotFoundError, match="B9"):
        open_store(collection, bands=["B9"])


def test_codec_round_trip_and_read_only() -> None:
    config = {"compression": 8, "dtype": "uint16", "block_width": 4, "block_height": 4, "sample": 0}
    codec = TiffTileCodec(configuration=config)
    assert TiffTileCodec.from_dict(codec.to_dict()) == codec
    assert codec.to_dict()["name"] == "rasteret.tiff"
    assert zarr.registry.get_codec_class("rasteret.tiff") is TiffTileCodec
    with pytest.raises(NotImplementedError):
        codec._encode_sync(None, None)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- pickling


def test_pickle_by_reference_is_small(tmp_path: Path, files: dict[str, Path]) -> None:
    base = record("r", day(0), {"B1": files["deflate0"]})
    records = [dict(base, id=f"r{k:04d}", datetime=day(k % 50)) for k in range(1000)]
    make_collection(records, ["B1"]).export(tmp_path / "big.parquet")
    collection = load(tmp_path / "big.parquet", local_roots=[files["deflate0"].parent])
    store = open_store(collection)
    blob = pickle.dumps(store)
    assert len(blob) < 2048, len(blob)  # the bound: < 2 KiB for 1,000 records
    clone = pickle.loads(blob)
    assert clone == store and clone.token == store.token
    subset = collection.select_records([f"r{k:04d}" for k in range(0, 1000, 7)])
    sub_blob = pickle.dumps(open_store(subset))
    assert len(sub_blob) < 4096, len(sub_blob)  # ids of 143 records, compressed
    in_memory = open_store(make_collection(records[:100], ["B1"]))
    embedded = pickle.dumps(in_memory)
    assert 2048 < len(embedded) < 200_000, len(embedded)  # embeds the Arrow table (zstd IPC)
    assert pickle.loads(embedded) == in_memory


def test_rebuild_checks_the_token(tmp_path: Path, files: dict[str, Path]) -> None:
    records = [record("a", day(0), {"B1": files["deflate0"]})]
    make_collection(records, ["B1"]).export(tmp_path / "one.parquet")
    store = open_store(load(tmp_path / "one.parquet", local_roots=[files["deflate0"].parent]))
    reference = store.source.reference()
    assert reference.uri is not None and reference.table_ipc is None
    from dask.base import tokenize

    assert tokenize(store) == tokenize(pickle.loads(pickle.dumps(store)))
    import dataclasses

    tampered = dataclasses.replace(reference, token="0" * 32)
    with pytest.raises(Exception, match="does not match"):
        rebuild_store(tampered)


# ----------------------------------------------------------------------------- over HTTP


def _served_collection(object_server, root: Path, name: str, **kwargs) -> tuple[Path, object]:  # type: ignore[no-untyped-def]
    path = write_cog(root / name, smooth_image((1, 1100, 1300), seed=1), nodata=0, **kwargs)
    collection = make_collection(
        [record("h", day(0), {"B1": path}, href_of=lambda p: object_server.url_for(p.name))],
        ["B1"],
    )
    return path, collection


def test_window_read_over_http_reads_only_tiles(object_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, collection = _served_collection(object_server, tmp_path, "w.tif", blocksize=256)
    ds = xr.open_dataset(collection, engine="rasteret")
    object_server.reset()
    window = ds.B1.isel(time=0, y=slice(300, 700), x=slice(300, 500)).values  # 2x1 tiles
    np.testing.assert_array_equal(window, rasterio_read(path, window=Window(300, 300, 200, 400))[0])
    log = [r for r in object_server.log if r.method == "GET"]
    assert log and all(r.start not in (0, None) for r in log)  # no header reads
    assert len(log) <= 2


def test_whole_scene_over_http_coalesces(object_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, collection = _served_collection(object_server, tmp_path, "s.tif", blocksize=256)
    assert collection.band_levels("B1")[0].full.tile_count == 30
    ds = xr.open_dataset(collection, engine="rasteret")
    object_server.reset()
    np.testing.assert_array_equal(ds.B1.values[0], rasterio_read(path)[0])
    requests = [r for r in object_server.log if r.method == "GET"]
    assert 1 <= len(requests) <= 3, [(r.start, r.end) for r in requests]


def test_store_reads_through_the_reader_it_was_built_with(object_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dask.base import tokenize

    from rasteret.fetch import FetchConfig, RangeReader, configure, default_reader, track

    path, collection = _served_collection(object_server, tmp_path, "r.tif", blocksize=256)
    oracle = rasterio_read(path)[0]
    plain = open_store(collection)
    assert plain.reader is default_reader()
    exact = RangeReader(FetchConfig(coalesce_gap=0))
    store = open_store(collection, reader=exact)
    assert store.reader is exact and store.token == plain.token
    assert store != plain and tokenize(store) != tokenize(plain)
    assert open_store(collection, reader=RangeReader(FetchConfig(coalesce_gap=0))) is store
    assert open_store(collection) is plain
    object_server.reset()
    with track() as t:
        np.testing.assert_array_equal(_read(store, plain.groups[0])[0], oracle)
    assert t.requests == object_server.requests == 30  # gap 0: one request per tile
    # configure() after opening changes neither store; stores opened afterwards take it
    configure(FetchConfig.from_env().with_(coalesce_gap=0))
    try:
        object_server.reset()
        np.testing.assert_array_equal(_read(plain, plain.groups[0])[0], oracle)
        assert object_server.requests <= 3
        later = open_store(collection)
        assert later is store  # the same content read with the same settings
    finally:
        configure(FetchConfig.from_env())
    assert open_store(collection) is plain
    again = pickle.loads(pickle.dumps(store))
    assert again == store and tokenize(again) == tokenize(store)


@pytest.mark.slow
def test_distributed_processes_equal_local_read(files: dict[str, Path], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    records = [record(f"r{k}", day(k), {"B1": files[f"deflate{k}"]}) for k in range(3)]
    make_collection(records, ["B1"]).export(tmp_path / "c.parquet")
    # the scenes live outside the collection's directory: allowed explicitly, and the
    # workers' stores, rebuilt from the pickled reference, keep that allowance
    path = load(tmp_path / "c.parquet", local_roots=[files["deflate0"].parent])
    local = xr.open_dataset(path, engine="rasteret").B1.values
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        ds = xr.open_dataset(path, engine="rasteret", chunks={})
        assert ds.B1.chunks is not None
        total = ds.B1.astype("uint64").sum(dim=("y", "x")).compute()
        window = ds.B1.isel(y=slice(100, 900)).compute()
    np.testing.assert_array_equal(total.values, local.astype("uint64").sum(axis=(1, 2)))
    np.testing.assert_array_equal(window.values, local[:, 100:900])


def test_listing_matches_the_chunks_that_exist(files: dict[str, Path]) -> None:
    collection = make_collection([record("s", day(0), {"B1": files["sparse"]})], ["B1"])
    store = open_store(collection)
    grid = store.groups[0]

    async def collect(iterator) -> list[str]:  # type: ignore[no-untyped-def]
        return [key async for key in iterator]

    top = asyncio.run(collect(store.list_dir("")))
    assert set(top) == {"zarr.json", *store.groups}
    members = asyncio.run(collect(store.list_dir(grid)))
    assert {"zarr.json", "B1", "x", "y", "time", "id", "spatial_ref"} <= set(members)
    chunks = asyncio.run(collect(store.list_prefix(f"{grid}/B1/c/")))
    counts = collection.band_levels("B1")[0].full.byte_counts
    assert len(chunks) == int((counts > 0).sum())
    assert asyncio.run(collect(store.list_dir(f"{grid}/B1/c/0/0"))) == ["2", "3"]
    plain = zarr.open_group(store, mode="r", use_consolidated=False)  # discovery by listing
    np.testing.assert_array_equal(plain[f"{grid}/B1"][0], rasterio_read(files["sparse"])[0])


# ----------------------------------------------------------------------------- corpus

_UNSUPPORTED_BY_DECODER = {"sgilog", "thunderscan", "ojpeg"}


def _corpus_entries() -> list[dict]:
    manifest = CORPUS / "manifest.json"
    if not manifest.is_file():
        return [{"path": "corpus-missing"}]
    files = json.loads(manifest.read_text())["files"]
    return [
        f
        for f in files
        if f.get("gdal_readable")
        and not f.get("bad_input")
        and f["compression"] not in _UNSUPPORTED_BY_DECODER
    ]


@pytest.mark.corpus
@pytest.mark.parametrize("entry", _corpus_entries(), ids=lambda f: f["path"])
def test_corpus_through_the_store(entry: dict, corpus_dir: Path) -> None:
    """Every readable corpus file, each sample a band: full image (or GDAL's reference
    windows) and every overview level equal GDAL (JPEG / WebP: mean difference <= 3 DN,
    at most 130 DN at sharp YCbCr edges, as between tifffile and GDAL in the corpus)."""
    path = corpus_dir / entry["path"]
    samples = entry["array_shape"][0]
    bands = {f"b{k}": (path, k) for k in range(samples)}
    store = open_store(make_collection([record("r", day(0), bands)], list(bands)))
    group = zarr.open_group(store, mode="r")
    lossy = entry["compression"] in ("jpeg", "webp")
    tolerance = 130 if lossy else 0

    def band_array(k: int, overview: int | None = None) -> zarr.Array:
        names = [
            f"{gname}/{aname}"
            for gname, g in store.layout.groups.items()
            if g.overview == overview
            for aname, a in g.arrays.items()
            if a.band == f"b{k}" and a.kind == "data"
        ]
        assert len(names) == 1, names
        return group[names[0]]

    expected = np.load(corpus_dir / entry["expected"])
    if entry["expected_stored"] == "full":
        got = np.stack([band_array(k)[0] for k in range(samples)])
        _assert_close(got, expected["data"], tolerance)
    else:
        for i in range(3):
            if f"win{i}_data" in expected:
                col, row, width, height = expected[f"win{i}_window"]
                rows, cols = slice(row, row + height), slice(col, col + width)
                got = np.stack([band_array(k)[0, rows, cols] for k in range(samples)])
                _assert_close(got, expected[f"win{i}_data"], tolerance)
    if lossy:
        return
    dtype = np.dtype(entry["array_dtype"])
    ours = sorted(g.overview for g in store.layout.groups.values() if g.overview is not None)
    by_shape = {tuple(o["shape"][1:]): o["sha256"] for o in entry.get("overviews") or []}
    assert len(ours) == len(by_shape)
    for level in ours:
        got = np.stack([band_array(k, level)[0] for k in range(samples)])
        little = np.ascontiguousarray(got.astype(dtype).astype(dtype.newbyteorder("<")))
        assert hashlib.sha256(little.tobytes()).hexdigest() == by_shape[got.shape[1:]]


def _assert_close(got: np.ndarray, expected: np.ndarray, tolerance: int) -> None:
    assert got.shape == expected.shape
    if tolerance:  # lossy: GDAL and libjpeg-turbo upsample chroma differently at edges
        difference = np.abs(got.astype(float) - expected.astype(float))
        assert difference.max() <= tolerance and difference.mean() <= 3.0
    else:
        np.testing.assert_array_equal(got.astype(expected.dtype), expected)
