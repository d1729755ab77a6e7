"""A TorchGeo ``GeoDataset`` over a rasteret collection (TorchGeo >= 0.9, GeoSlice API).

``RasteretGeoDataset`` plugs into TorchGeo's samplers (``RandomGeoSampler``,
``GridGeoSampler``...), ``IntersectionDataset`` / ``UnionDataset`` (``&`` / ``|``),
``stack_samples`` and ``DataLoader`` workers unchanged; every pixel comes from
:func:`rasteret.read.window.read_window` (one concurrent batch per sample through the
virtual Zarr store, no header reads).

* ``index``: a GeoDataFrame, one row per record (column ``record_id``), footprints in the
  dataset CRS, a closed ``datetime`` IntervalIndex (``start_datetime`` /
  ``end_datetime`` when the collection has them, else ``[datetime, datetime + 1 µs]``:
  TorchGeo queries ``(tmin, tmax]``, which is empty for a zero-width instant, so
  ``dataset & RasterDataset(...)`` and ``|`` could not find the record).
* ``crs``: ``target_crs``, else the CRS most records are in (ties: the earliest
  record's). Records in other CRSs are reprojected, never dropped.
* ``res``: ``res``, else the finest native resolution of the first band in that CRS.
* samples: ``{"image" | "mask", "bounds", "transform"[, "label"]}``; ``image`` is
  ``[C, H, W]`` (a mosaic: records painted in time order, first valid pixel wins) or,
  with ``time_series=True``, ``[T, C, H, W]`` (one mosaic per acquisition time);
  ``mask`` drops the channel axis when there is one band. Native dtypes, except those
  torch cannot hold: uint16 -> int32, uint32 -> int64 (TorchGeo's ``array_to_tensor``
  rule); pass ``dtype=torch.float32`` (or ``torch.long`` for class masks) to cast.
  ``transform`` is the window's affine ``[a, b, c, d, e, f, 0, 0, 1]`` as float64
  (float32 would lose metres at UTM magnitudes); ``label`` is the ``label_field`` value
  of the first record in the window as a 1-D tensor ``[1]`` (``[T]`` for time series;
  ``stack_samples`` gives ``[B, 1]``; omitted when null): a 0-d tensor could not be
  concatenated by TorchGeo's ``concat_samples`` when the dataset is intersected (``&``).
* resampling: nearest for integer bands and for ``is_image=False`` (class masks),
  bilinear for floating-point bands, or ``resampling=``.

Pickling is by reference (collection URI + record selection), or embeds the Arrow table
(IPC) for collections that live only in memory, so ``spawn`` / ``forkserver`` workers
work: pass ``DataLoader(..., multiprocessing_context="spawn")`` (or ``"forkserver"``).
Workers forked after obstore's runtime ran in the parent (Linux's default start method;
rasteret's reads or any other obstore use) cannot run obstore: they read local files and
HTTP(S) through the fetch layer's pure-Python transport, cloud URLs fail, and the first
sample of such a worker warns (``RuntimeWarning``) with that fix. Each sample's read is
checked against the read budget (:mod:`rasteret.read.budget`) before it fetches.
"""

from __future__ import annotations

import math
import os
import pickle
import threading
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

try:
    import pandas as pd
    import shapely
    import torch
    from geopandas import GeoDataFrame
    from pyproj import CRS
    from torch.utils.data import get_worker_info
    from torchgeo.datasets import GeoDataset
    from torchgeo.datasets.utils import GeoSlice
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the TorchGeo integration needs torch and torchgeo>=0.9: pip install 'rasteret[torchgeo]'"
    ) from exc

from rasteret.fetch import RangeReader
from rasteret.geo.transform import crs_key, to_crs, transform_bounds, transform_points
from rasteret.index import CollectionTable
from rasteret.index.failed import OnFailedAsset, check_indexed
from rasteret.integrations.torchgeo_query import IndexQuery
from rasteret.read.selection import drop_legacy_options
from rasteret.read.stacks import BandSource
from rasteret.read.window import GroupBy, Resampling, WindowReader, target_grid

Sample = dict[str, Any]

#: Options of the original ``to_torchgeo_dataset`` that the fetch layer now owns.


class RasteretGeoDataset(GeoDataset):
    """A ``torchgeo.datasets.GeoDataset`` reading ``bands`` of a collection (module docs)."""

    def __init__(
        self,
        collection: CollectionTable,
        bands: str | Sequence[str],
        *,
        time_series: bool = False,
        group_by: GroupBy = None,
        label_field: str | None = None,
        is_image: bool = True,
        target_crs: Any = None,
        res: float | tuple[float, float] | None = None,
        resampling: Resampling = None,
        transforms: Callable[[Sample], Sample] | None = None,
        fill_value: float | None = None,
        dtype: torch.dtype | None = None,
        overviews: bool = True,
        reader: RangeReader | None = None,
        errors: OnFailedAsset = "raise",
    ) -> None:
        self.bands = (bands,) if isinstance(bands, str) else tuple(bands)
        collection = check_indexed(collection, self.bands, errors)
        self.collection: CollectionTable | None = collection
        self.fetch_reader = reader  # pickles by reference (the worker's own environment)
        self.time_series = time_series
        self.group_by = group_by if group_by is not None else ("time" if time_series else None)
        self.label_field = label_field
        self.is_image = is_image
        self.resampling = resampling if resampling is not None or is_image else "nearest"
        self.transforms = transforms
        self.fill_value = fill_value
        self.dtype = dtype
        self.overviews = overviews
        self.paths = collection.uri or "<in-memory collection>"
        if label_field is not None and label_field not in collection.table.column_names:
            raise ValueError(
                f"label_field={label_field!r} is not a column of the collection "
                f"(columns: {collection.table.column_names})"
            )
        reader = WindowReader.of(collection, self.bands, reader=self.fetch_reader)
        self._reader: WindowReader | None = reader
        self._reference: Any = None
        self._bounds: tuple[Any, Any, tuple[slice, slice, slice]] | None = None
        self._index_query: tuple[Any, IndexQuery] | None = None
        self._token = reader.store.token
        crs, xy_res = _dataset_grid(reader, target_crs, res)
        self.index = _build_index(reader, crs)
        self._res = xy_res
        self._labels = _labels(collection, label_field) if label_field else {}

    # -- GeoDataset -----------------------------------------------------------------------
    def __getitem__(self, index: GeoSlice) -> Sample:
        """The sample of a ``[xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres]`` slice."""
        _warn_if_forked_worker()
        x, y, t = self._disambiguate_slice(index)
        # closed on both sides (TorchGeo's RasterDataset leaves it right-closed): records
        # are instants, and a sampler's query for one is the empty-looking [t, t]
        records = self._query().records(x, y, t)
        if not records:
            raise IndexError(f"index: {index} not found in dataset with bounds: {self.bounds}")
        reader = self._window_reader()
        grid = target_grid((x.start, y.start, x.stop, y.stop), (x.step, y.step), self.crs)
        result = reader.read(
            grid,
            reader.rows_of(records),
            group_by=self.group_by,
            resampling=self.resampling,
            fill_value=self.fill_value,
            overviews=self.overviews,
            validity=False,  # a sample holds the pixels only
        )
        data = array_to_tensor(result.data)
        if self.dtype is not None:
            data = data.to(self.dtype)
        a, b, c, d, e, f = grid.transform
        sample: Sample = {
            "bounds": self._slice_to_tensor(index),
            "transform": torch.tensor([a, b, c, d, e, f, 0.0, 0.0, 1.0], dtype=torch.float64),
        }
        if self.is_image:
            sample["image"] = data
        else:
            sample["mask"] = data.squeeze(-3)
        if self.label_field is not None:
            label = self._label(result.record_ids)
            if label is not None:
                sample["label"] = label
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    @property
    def bounds(self) -> tuple[slice, slice, slice]:
        """Bounding x, y and t slices of the index (TorchGeo's, computed once per index and
        resolution instead of on every sample)."""
        cached = getattr(self, "_bounds", None)
        if cached is None or cached[0] is not self.index or cached[1] != self.res:
            computed = GeoDataset.bounds.fget(self)  # type: ignore[attr-defined]
            cached = self._bounds = (self.index, self.res, computed)
        return cached[2]

    def _query(self) -> IndexQuery:
        cached = getattr(self, "_index_query", None)
        if cached is None or cached[0] is not self.index:
            cached = self._index_query = (self.index, IndexQuery.of(self.index))
        return cached[1]

    def __getitems__(self, indices: Sequence[GeoSlice]) -> list[Sample]:
        """A DataLoader batch (PyTorch calls this instead of ``__getitem__`` per sample):
        every sample's reads are in flight together, so a batch costs about one round
        trip to the object store instead of one per sample. Samples (and ``transforms``)
        run on a small per-process thread pool; the result equals ``[self[i] for i in
        indices]``."""
        if len(indices) <= 1:
            return [self[index] for index in indices]
        self._window_reader()  # built once, here, not raced by the threads
        return list(_batch_pool().map(self.__getitem__, indices))

    def __str__(self) -> str:
        return (
            f"RasteretGeoDataset Dataset\n    type: GeoDataset\n    bbox: {self.bounds}\n"
            f"    size: {len(self)}\n    bands: {list(self.bands)}\n    source: {self.paths}"
        )

    # -- labels ---------------------------------------------------------------------------
    def _label(self, record_ids: tuple[tuple[str, ...], ...]) -> torch.Tensor | None:
        values = [self._labels.get(ids[0]) if ids else None for ids in record_ids]
        if not self.time_series:
            values = values[:1]
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
            return None
        if all(isinstance(v, (bool, int, np.integer, np.bool_)) for v in values):
            tensor = torch.tensor([int(v) for v in values], dtype=torch.long)
        elif all(isinstance(v, (float, np.floating, int, np.integer)) for v in values):
            tensor = torch.tensor([float(v) for v in values], dtype=torch.float32)
        else:
            return values if self.time_series else values[0]  # type: ignore[return-value]
        # 1-D ([1], or [T]) so TorchGeo's concat_samples (``&``) can concatenate it
        return tensor

    # -- pickling (DataLoader workers) ----------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_reference"] = self.reference()
        state["collection"] = None
        state["_reader"] = None
        state["_bounds"] = state["_index_query"] = None  # rebuilt from the index
        # a pickled GeoDataFrame is ~500 bytes per record; compressed ~20x smaller
        state["index"] = _PackedIndex(zlib.compress(pickle.dumps(self.index), 6))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        packed = state.get("index")
        if isinstance(packed, _PackedIndex):
            state["index"] = pickle.loads(zlib.decompress(packed.blob))
        self.__dict__.update(state)

    def reference(self) -> Any:
        """What a pickled dataset carries instead of the collection: a
        :class:`rasteret.store.reference.StoreReference` (URI + selection, or the
        embedded table of an in-memory collection)."""
        if self._reference is None:
            from rasteret.store.reference import make_reference

            assert self.collection is not None
            self._reference = make_reference(self.collection, self.bands, self._token)
        return self._reference

    def _window_reader(self) -> WindowReader:
        if self._reader is None:
            if self.collection is None:
                self.collection = self._reference.collection()
            reader = WindowReader.of(self.collection, self.bands, reader=self.fetch_reader)
            if reader.store.token != self._token:
                from rasteret.errors import StaleIndexError

                raise StaleIndexError(
                    self.paths,
                    "the collection's records or tile tables changed since it was pickled",
                    fix=StaleIndexError.RESEND,
                )
            self._reader = reader
        return self._reader


#: Samples of one batch read concurrently (each waits on the object store, not the CPU).
BATCH_THREADS = 16
_pool_state: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _batch_pool() -> ThreadPoolExecutor:
    """This process's batch pool (rebuilt in a forked DataLoader worker)."""
    global _pool_state
    with _pool_lock:
        if _pool_state is None or _pool_state[0] != os.getpid():
            pool = ThreadPoolExecutor(BATCH_THREADS, thread_name_prefix="rasteret-batch")
            _pool_state = (os.getpid(), pool)
        return _pool_state[1]


#: The process that already warned it is a forked DataLoader worker (warn once).
_warned_pid: int | None = None


def _warn_if_forked_worker() -> None:
    """Warn once per process when this is a DataLoader worker forked after obstore's
    runtime ran in the parent: obstore cannot run here (:mod:`rasteret._fork`)."""
    global _warned_pid
    from rasteret.fetch.stores import obstore_usable

    if obstore_usable() or _warned_pid == os.getpid():
        return
    if get_worker_info() is None:
        return  # not a DataLoader worker: the fetch layer's errors say what to do
    from rasteret.fetch.fallback import FORK_FIX

    _warned_pid = os.getpid()
    warnings.warn(
        "RasteretGeoDataset is read in a DataLoader worker forked after obstore's runtime "
        "started in the parent process: obstore cannot run here, so local files and HTTP(S) "
        "are read through a slower pure-Python transport and cloud URLs (s3://, gs://, "
        f"az://) fail. To fix it, {FORK_FIX}",
        RuntimeWarning,
        stacklevel=3,
    )


class _PackedIndex:
    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self) -> tuple[Any, ...]:
        return (_PackedIndex, (self.blob,))


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """``array`` as a tensor in its own dtype, except uint16 -> int32 and uint32 -> int64
    (as TorchGeo's ``array_to_tensor``); no copy where torch can share the memory."""
    if array.dtype == np.uint16:
        array = array.astype(np.int32)
    elif array.dtype == np.uint32:
        array = array.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(array))


def to_torchgeo_dataset(
    collection: CollectionTable,
    *,
    bands: str | Sequence[str],
    time_series: bool = False,
    label_field: str | None = None,
    split: str | Sequence[str] | None = None,
    split_column: str = "split",
    cloud_cover_lt: float | None = None,
    date_range: Sequence[Any] | None = None,
    bbox: Sequence[float] | None = None,
    geometries: Any = None,
    target_crs: Any = None,
    res: float | tuple[float, float] | None = None,
    resampling: Resampling = None,
    is_image: bool = True,
    transforms: Callable[[Sample], Sample] | None = None,
    group_by: GroupBy = None,
    fill_value: float | None = None,
    dtype: torch.dtype | None = None,
    overviews: bool = True,
    chip_size: int | None = None,
    geometries_crs: Any = 4326,
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    **legacy: Any,
) -> RasteretGeoDataset:
    """A :class:`RasteretGeoDataset` over ``collection`` after ``subset(split=,
    cloud_cover_lt=, date_range=, bbox=, geometries=)`` (``bbox`` / ``geometries`` in
    lon/lat). See the module docs for the sample format and defaults.

    ``chip_size`` is not used (samplers choose the patch size: ``RandomGeoSampler(ds,
    size=256)``); ``max_concurrent`` / ``allow_resample`` of the original API are
    ignored with a ``DeprecationWarning`` (:data:`rasteret.read.selection.LEGACY_OPTIONS`);
    its ``backend`` / ``cloud_config`` are honoured by ``Collection.to_torchgeo_dataset``
    (here: pass ``reader=``; they raise ``TypeError``). A record whose asset of a
    selected band could not be indexed raises
    :class:`~rasteret.errors.UnindexedAssetError` unless ``errors="skip"``.
    """
    unknown = sorted(drop_legacy_options(legacy))
    if unknown:
        raise TypeError(f"to_torchgeo_dataset() got unexpected arguments {unknown}")
    if chip_size is not None:
        warnings.warn(
            "chip_size is not used: pass the patch size to the sampler, e.g. "
            "RandomGeoSampler(dataset, size=chip_size)",
            FutureWarning,
            stacklevel=2,
        )
    if geometries is not None and crs_key(geometries_crs) != "EPSG:4326":
        raise ValueError("geometries must be in lon/lat (EPSG:4326); reproject them first")
    filters = {
        "split": split,
        "cloud_cover_lt": cloud_cover_lt,
        "date_range": date_range,
        "bbox": bbox,
        "geometries": geometries,
    }
    active = {k: v for k, v in filters.items() if v is not None}
    if active:
        collection = collection.subset(split_column=split_column, **active)
    if len(collection) == 0:
        raise ValueError(f"no record of the collection matches the filters {active}")
    return RasteretGeoDataset(
        collection,
        bands,
        time_series=time_series,
        group_by=group_by,
        label_field=label_field,
        is_image=is_image,
        target_crs=target_crs,
        res=res,
        resampling=resampling,
        transforms=transforms,
        fill_value=fill_value,
        dtype=dtype,
        overviews=overviews,
        reader=reader,
        errors=errors,
    )


# ----------------------------------------------------------------------------- index


def _first_sources(reader: WindowReader) -> list[BandSource]:
    """Per record (time order), the first requested band it has."""
    out = []
    for row in reader.order:
        for band in reader.bands:
            src = reader.index.source(band, int(row))
            if src is not None:
                out.append(src)
                break
    return out


def _dataset_grid(
    reader: WindowReader, target_crs: Any, res: Any
) -> tuple[CRS, tuple[float, float]]:
    sources = _first_sources(reader)
    if not sources:
        raise ValueError(f"no record of the collection has any of the bands {list(reader.bands)}")
    if target_crs is None:
        counts = Counter(s.crs_key for s in sources)
        top = max(counts.values())
        key = next(s.crs_key for s in sources if counts[s.crs_key] == top)
    else:
        key = crs_key(target_crs)
    crs = to_crs(key)
    if res is not None:
        xy = (float(res), float(res)) if isinstance(res, (int, float)) else tuple(res)
        return crs, (abs(float(xy[0])), abs(float(xy[1])))
    first_band = [s for s in reader.sources(reader.bands[0]) if s.crs_key == key]
    if first_band:
        return crs, (
            min(abs(s.transform[0]) for s in first_band),
            min(abs(s.transform[4]) for s in first_band),
        )
    src = sources[0]  # no record in the target CRS: its pixel size there
    left, bottom, right, top = transform_bounds(_extent(src), to_crs(src.crs_key), crs)
    size = min((right - left) / src.width, (top - bottom) / src.height)
    return crs, (size, size)


def _extent(src: BandSource) -> tuple[float, float, float, float]:
    a, _, c, _, e, f = src.transform
    xs = (c, c + a * src.width)
    ys = (f, f + e * src.height)
    return (min(xs), min(ys), max(xs), max(ys))


#: The width of a record's time interval when it has only an instant ``datetime``.
INSTANT = pd.Timedelta(1, "us")


def _build_index(reader: WindowReader, crs: CRS) -> GeoDataFrame:
    key = crs_key(crs)
    ids: list[str] = []
    geometries: list[Any] = []
    starts: list[Any] = []
    stops: list[Any] = []
    table = reader.collection.table
    start_col = _time_column(table, "start_datetime")
    end_col = _time_column(table, "end_datetime")
    for row in reader.order:
        row = int(row)
        src = next(
            (s for b in reader.bands if (s := reader.index.source(b, row)) is not None), None
        )
        if src is None:
            continue  # the record has none of the bands: nothing to sample
        box = shapely.box(*_extent(src))
        if src.crs_key != key:
            box = _reproject_polygon(box, src.crs_key, crs)
        ids.append(reader.ids[row])
        geometries.append(box)
        when = reader.times[row]
        start = start_col[row] if start_col is not None else when
        stop = end_col[row] if end_col is not None else when
        first = pd.Timestamp.min if np.isnat(start) else pd.Timestamp(start)
        last = pd.Timestamp.max if np.isnat(stop) else pd.Timestamp(stop)
        if last <= first:  # an instant: TorchGeo's right-closed (t, t] queries are empty
            last = first + INSTANT
        starts.append(first)
        stops.append(last)
    index = pd.IntervalIndex.from_arrays(starts, stops, closed="both", name="datetime")
    return GeoDataFrame({"record_id": ids}, index=index, geometry=geometries, crs=crs)


def _time_column(table: Any, name: str) -> np.ndarray | None:
    if name not in table.column_names:
        return None
    from rasteret.index.columns import datetimes

    values = datetimes(table[name])
    return None if np.isnat(values).all() else values


def _reproject_polygon(box: Any, src_crs: str, dst: CRS) -> Any:
    left, bottom, right, top = box.bounds
    dense = shapely.segmentize(box, max(right - left, top - bottom) / 20)
    xy = shapely.get_coordinates(dense)
    xs, ys = transform_points(xy[:, 0], xy[:, 1], to_crs(src_crs), dst)
    ok = np.isfinite(xs) & np.isfinite(ys)
    return shapely.Polygon(np.column_stack([xs[ok], ys[ok]]))


def _labels(collection: CollectionTable, label_field: str) -> dict[str, Any]:
    ids = [str(v) for v in collection.table["id"].to_pylist()]
    return dict(zip(ids, collection.table[label_field].to_pylist(), strict=True))


__all__ = ["RasteretGeoDataset", "array_to_tensor", "to_torchgeo_dataset"]
