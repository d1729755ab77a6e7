"""Small collection tables for the index tests (built by hand, no network)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import shapely

from rasteret.index.schema import ASSET_TYPE, BAND_METADATA_TYPE, BBOX_TYPE


def band_struct(
    width: int = 1000,
    height: int = 800,
    tile: int = 256,
    *,
    epsg: int | None = 32633,
    crs_wkt: str | None = None,
    origin: tuple[float, float] = (500000.0, 5000000.0),
    res: float = 10.0,
    dtype: str = "uint16",
    seed: int = 0,
    overviews: int = 2,
    mask: bool = False,
) -> dict[str, Any]:
    """A plausible ``{band}_metadata`` dict (offsets made up but unique per ``seed``)."""
    across, down = -(-width // tile), -(-height // tile)
    n = across * down

    def level(w: int, h: int, base: int) -> dict[str, Any]:
        count = (-(-w // tile)) * (-(-h // tile))
        return {
            "image_width": w,
            "image_height": h,
            "tile_width": tile,
            "tile_height": tile,
            "tiled": True,
            "compression": 8,
            "predictor": 2,
            "jpeg_tables": None,
            "tile_offsets": [base + 1000 * i for i in range(count)],
            "tile_byte_counts": [900 + i for i in range(count)],
        }

    return {
        "image_width": width,
        "image_height": height,
        "tile_width": tile,
        "tile_height": tile,
        "dtype": dtype,
        "transform": [res, 0.0, origin[0], 0.0, -res, origin[1]],
        "predictor": 2,
        "compression": 8,
        "tile_offsets": [seed * 10**6 + 4096 + 1000 * i for i in range(n)],
        "tile_byte_counts": [990 - i % 7 for i in range(n)],
        "pixel_scale": [res, res, 0.0],
        "tiepoint": [0.0, 0.0, 0.0, origin[0], origin[1], 0.0],
        "nodata": 0.0,
        "samples_per_pixel": 1,
        "planar_configuration": 1,
        "photometric": 1,
        "extra_samples": [],
        "band_index": 0,
        "bits_per_sample": 16,
        "sample_format": 1,
        "byte_order": "<",
        "tiled": True,
        "crs_wkt": crs_wkt,
        "epsg": epsg,
        "pixel_is_point": False,
        "scale": None,
        "offset": None,
        "jpeg_tables": None,
        "lerc_parameters": None,
        "ycbcr_subsampling": None,
        "overviews": [
            level(-(-width // 2**k), -(-height // 2**k), 9 * 10**5 * k)
            for k in range(1, overviews + 1)
        ],
        "mask": (
            {**level(width, height, 7 * 10**5), "bits_per_sample": 1, "overviews": []}
            if mask
            else None
        ),
        "file_size": (seed + 10) * 10**6,  # holds every made-up block
        "etag": f'"etag-{seed}"',
        "last_modified": "Mon, 01 Jan 2024 00:00:00 GMT",
    }


def make_table(records: list[dict[str, Any]], bands: tuple[str, ...] = ("B04", "B08")) -> pa.Table:
    """A collection table from record dicts.

    Each record: ``id, datetime, bbox (4-tuple)`` and optional ``epsg``, ``crs``,
    ``eo:cloud_cover``, ``split``, ``label``, ``band_kwargs``.
    """
    columns: dict[str, list] = {
        "id": [],
        "datetime": [],
        "geometry": [],
        "bbox": [],
        "assets": [],
        "proj:epsg": [],
        "crs": [],
    }
    extras = ("eo:cloud_cover", "split", "label")
    for name in extras:
        if any(name in r for r in records):
            columns[name] = []
    for band in bands:
        columns[f"{band}_metadata"] = []
    for i, r in enumerate(records):
        minx, miny, maxx, maxy = r["bbox"]
        columns["id"].append(r["id"])
        columns["datetime"].append(r["datetime"])
        columns["geometry"].append(shapely.box(minx, miny, maxx, maxy).wkb)
        columns["bbox"].append(dict(zip(("xmin", "ymin", "xmax", "ymax"), r["bbox"], strict=True)))
        columns["assets"].append(
            {b: {"href": f"https://example.com/{r['id']}/{b}.tif", "band_index": 0} for b in bands}
        )
        epsg = r.get("epsg", 32633)
        columns["proj:epsg"].append(epsg)
        columns["crs"].append(r.get("crs", f"EPSG:{epsg}" if epsg else None))
        for name in extras:
            if name in columns:
                columns[name].append(r.get(name))
        for j, band in enumerate(bands):
            kwargs = {"epsg": epsg, "seed": i * 10 + j, **r.get("band_kwargs", {})}
            columns[f"{band}_metadata"].append(band_struct(**kwargs))
    types = {
        "id": pa.string(),
        "datetime": pa.timestamp("us"),
        "geometry": pa.binary(),
        "bbox": BBOX_TYPE,
        "assets": pa.struct([(b, ASSET_TYPE) for b in bands]),
        "proj:epsg": pa.int32(),
        "crs": pa.string(),
        "eo:cloud_cover": pa.float64(),
        "split": pa.string(),
        "label": pa.int64(),
    }
    arrays = {
        name: pa.array(values, type=types.get(name, BAND_METADATA_TYPE))
        for name, values in columns.items()
    }
    return pa.table(arrays)


def sample_records() -> list[dict[str, Any]]:
    """Six records: two UTM zones, Jan–Mar 2024, cloud cover, splits, labels."""
    return [
        {
            "id": "r0",
            "datetime": dt.datetime(2024, 1, 1, 10, 0),
            "bbox": (10.0, 45.0, 11.0, 46.0),
            "eo:cloud_cover": 5.0,
            "split": "train",
            "label": 1,
        },
        {
            "id": "r1",
            "datetime": dt.datetime(2024, 1, 31, 15, 0),
            "bbox": (10.5, 45.5, 11.5, 46.5),
            "eo:cloud_cover": 40.0,
            "split": "train",
            "label": 2,
        },
        {
            "id": "r2",
            "datetime": dt.datetime(2024, 2, 1, 0, 0),
            "bbox": (14.0, 45.0, 15.0, 46.0),
            "eo:cloud_cover": 12.5,
            "split": "val",
            "label": 1,
            "epsg": 32634,
        },
        {
            "id": "r3",
            "datetime": dt.datetime(2024, 2, 15, 23, 59, 59, 999999),
            "bbox": (20.0, 10.0, 21.0, 11.0),
            "eo:cloud_cover": 80.0,
            "split": "test",
            "label": 3,
            "epsg": 32634,
        },
        {
            "id": "r4",
            "datetime": dt.datetime(2024, 3, 1, 0, 0),
            "bbox": (10.2, 45.2, 10.8, 45.8),
            "eo:cloud_cover": None,
            "split": "val",
            "label": None,
        },
        {
            "id": "r5",
            "datetime": dt.datetime(2023, 12, 31, 23, 0),
            "bbox": (-11.0, -1.0, -10.0, 0.0),
            "eo:cloud_cover": 0.0,
            "split": "train",
            "label": 0,
        },
    ]
