"""GeoKeys → CRS against GDAL (rasterio): the corpus and GeoTIFFs GDAL writes for many
projection methods, user-defined datums, ESRI PE strings and GeoTIFF 1.1 vertical keys."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pyproj import CRS
from pyproj.crs import ProjectedCRS

from rasteret.errors import TiffError
from rasteret.tiff.geokeys import crs_from_geokeys, parse_geokey_directory
from rasteret.tiff.header import parse_header

rasterio = pytest.importorskip("rasterio")


def _east_north(crs: CRS) -> CRS:
    """``crs`` with a plain easting/northing CS (GDAL gives polar CRSs south-pointing axes)."""
    if not crs.is_projected or crs.is_compound or crs.is_bound:
        return crs
    return ProjectedCRS(
        conversion=crs.coordinate_operation, geodetic_crs=crs.geodetic_crs, name=crs.name
    )


def same_crs(ours_wkt: str, gdal_wkt: str) -> bool:
    """PROJ equivalence, axis order and direction ignored. A WKT1 round trip of both sides is
    the fallback for float noise GDAL leaves in ellipsoids read from keys (1/f
    298.257222101004 for 298.257222101)."""
    ours, theirs = CRS.from_wkt(ours_wkt), CRS.from_wkt(gdal_wkt)
    if ours.equals(theirs, ignore_axis_order=True):
        return True
    if _east_north(ours).equals(_east_north(theirs), ignore_axis_order=True):
        return True
    ours1 = CRS.from_wkt(ours.to_wkt("WKT1_GDAL"))
    theirs1 = CRS.from_wkt(theirs.to_wkt("WKT1_GDAL"))
    return ours1.equals(theirs1, ignore_axis_order=True)


def gdal_crs_wkt(path: Path) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as src:
            crs = src.crs
            if crs is None and src.gcps[0]:
                crs = src.gcps[1]  # GCP georeferencing: GDAL attaches the CRS to the GCPs
    return None if crs is None else crs.to_wkt()


def test_corpus_crs_matches_gdal(corpus_dir: Path, corpus_manifest: dict) -> None:
    failures, compared = [], 0
    for entry in corpus_manifest["files"]:
        if not entry["gdal_readable"]:
            continue
        path = corpus_dir / entry["path"]
        try:
            geo = parse_header(path.read_bytes(), str(path)).geo
        except TiffError as exc:
            failures.append(f"{entry['path']}: {exc}")
            continue
        gdal_wkt = gdal_crs_wkt(path)
        if entry.get("crs_error"):
            if geo.crs_error is None or geo.crs_wkt is not None:
                failures.append(f"{entry['path']}: GDAL rejects the CRS, we built {geo.crs_wkt}")
            continue
        if gdal_wkt is None:
            if geo.crs_wkt is not None or geo.crs_error is not None:
                failures.append(f"{entry['path']}: GDAL has no CRS, we have {geo}")
            continue
        compared += 1
        if geo.crs_wkt is None or not same_crs(geo.crs_wkt, gdal_wkt):
            failures.append(
                f"{entry['path']}: ours {geo.crs_wkt or geo.crs_error}\n  GDAL {gdal_wkt}"
            )
            continue
        manifest_epsg = (entry["crs"] or {}).get("epsg")
        if geo.epsg != manifest_epsg and not (
            manifest_epsg is None and same_crs(CRS.from_epsg(geo.epsg).to_wkt(), gdal_wkt)
        ):
            failures.append(f"{entry['path']}: epsg ours {geo.epsg} manifest {manifest_epsg}")
    print(f"\nCRS compared with GDAL for {compared} corpus files")
    assert compared > 70
    assert not failures, "\n".join(failures)


def test_bad_crs_keeps_data_readable(corpus_dir: Path) -> None:
    header = parse_header((corpus_dir / "tiff/georust-geotiff/merc.tif").read_bytes(), "merc.tif")
    assert header.geo.crs_wkt is None and "Mercator" in (header.geo.crs_error or "")
    assert header.geo.transform is not None and header.full.width > 0


USER_DEFINED_CRSS = [
    "+proj=lcc +lat_1=33 +lat_2=45 +lat_0=39 +lon_0=-96 +x_0=1000 +y_0=2000 +datum=NAD83 +units=m",
    "+proj=lcc +lat_1=45 +lat_0=45 +lon_0=3 +k_0=0.9996 +x_0=700000 +y_0=6600000 +ellps=GRS80",
    "+proj=aea +lat_1=29.5 +lat_2=45.5 +lat_0=23 +lon_0=-96 +x_0=0 +y_0=0 +datum=WGS84",
    "+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80",
    "+proj=tmerc +lat_0=49 +lon_0=-2 +k=0.9996012717 +x_0=400000 +y_0=-100000 +ellps=airy",
    "+proj=stere +lat_0=90 +lat_ts=70 +lon_0=-45 +k=1 +x_0=0 +y_0=0 +datum=WGS84",
    "+proj=stere +lat_0=-90 +lon_0=0 +k=0.994 +x_0=2000000 +y_0=2000000 +datum=WGS84",
    "+proj=sterea +lat_0=52.15616 +lon_0=5.38763 +k=0.9999079 +x_0=155000 +y_0=463000 "
    "+ellps=bessel",
    "+proj=omerc +lat_0=4 +lonc=102.25 +alpha=323.0257905 +gamma=323.1301 +k=0.99984 "
    "+x_0=804671 +y_0=0 +ellps=evrstSS",
    "+proj=cea +lat_ts=30 +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84",
    "+proj=eqc +lat_ts=0 +lat_0=0 +lon_0=180 +x_0=0 +y_0=0 +R=3396190",
    "+proj=merc +lat_ts=41 +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84",
    "+proj=merc +lon_0=10 +k=0.99 +x_0=0 +y_0=0 +ellps=intl",
    "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181",
    "+proj=robin +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84",
    "+proj=aeqd +lat_0=49 +lon_0=2 +x_0=0 +y_0=0 +datum=WGS84",
    "+proj=eqdc +lat_0=40 +lon_0=-96 +lat_1=20 +lat_2=60 +x_0=0 +y_0=0 +datum=NAD83",
    "+proj=cass +lat_0=10.44166666666667 +lon_0=-61.33333333333334 +x_0=86501.46392051999 "
    "+y_0=65379.0134283 +a=6378293.645208759 +b=6356617.987679838 +to_meter=0.201166195164",
    "+proj=poly +lat_0=0 +lon_0=-54 +x_0=5000000 +y_0=10000000 +ellps=aust_SA",
    "+proj=ortho +lat_0=40 +lon_0=-100 +x_0=0 +y_0=0 +datum=WGS84",
    "+proj=gnom +lat_0=90 +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84",
    "+proj=mill +lat_0=0 +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84",
    "+proj=vandg +lon_0=0 +x_0=0 +y_0=0 +R_A +datum=WGS84",
    "+proj=nzmg +lat_0=-41 +lon_0=173 +x_0=2510000 +y_0=6023150 +ellps=intl",
    "+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0=500000 +y_0=0 +a=6378000 +rf=299 +pm=paris",
    "+proj=utm +zone=33 +datum=WGS84 +units=us-ft",
    "+proj=longlat +a=6378000 +rf=290 +no_defs",
    "+proj=longlat +ellps=clrk80ign +pm=paris +no_defs",
    "+proj=lcc +lat_1=46.8 +lat_0=46.8 +lon_0=0 +k_0=0.99987742 +x_0=600000 +y_0=2200000 "
    "+ellps=clrk80ign +pm=paris +units=m",
    "+proj=longlat +ellps=bessel +pm=ferro "
    "+towgs84=577.326,90.129,463.919,5.137,1.474,5.297,2.4232",
    "+proj=geos +lon_0=-75 +h=35786023 +x_0=0 +y_0=0 +ellps=GRS80 +units=m +sweep=x",
]

EPSG_CRSS = [
    "EPSG:27572",
    "EPSG:4807",
    "EPSG:32633",
    "EPSG:4326",
    "EPSG:3857",
    "EPSG:2056",
    "EPSG:3035",
    "EPSG:27700",
]


def write_geotiff(path: Path, crs: str, **options: str) -> None:
    from rasterio.transform import from_origin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=8,
            height=8,
            count=1,
            dtype="uint8",
            crs=crs,
            transform=from_origin(1000, 2000, 10, 10),
            **options,
        ) as dst:
            dst.write(np.zeros((1, 8, 8), np.uint8))


@pytest.mark.parametrize("crs", USER_DEFINED_CRSS + EPSG_CRSS)
def test_written_crs_round_trips_like_gdal(tmp_path: Path, crs: str) -> None:
    path = tmp_path / "crs.tif"
    write_geotiff(path, crs)
    geo = parse_header(path.read_bytes(), str(path)).geo
    gdal_wkt = gdal_crs_wkt(path)
    assert gdal_wkt is not None
    assert geo.crs_wkt is not None, geo.crs_error
    assert same_crs(geo.crs_wkt, gdal_wkt), f"\nours {geo.crs_wkt}\nGDAL {gdal_wkt}"
    if crs.startswith("EPSG:"):
        assert geo.epsg == int(crs.split(":")[1])
    else:
        assert geo.epsg is None or CRS.from_epsg(geo.epsg).equals(CRS.from_wkt(gdal_wkt))
    assert geo.transform == (10.0, 0.0, 1000.0, 0.0, -10.0, 2000.0)


@pytest.mark.parametrize(
    "crs, options",
    [
        ("EPSG:32631+5773", {"GEOTIFF_VERSION": "1.1"}),
        ("EPSG:4326+3855", {"GEOTIFF_VERSION": "1.1"}),
        ("EPSG:32631", {"GEOTIFF_KEYS_FLAVOR": "ESRI_PE"}),
        ("ESRI:102003", {}),
    ],
)
def test_compound_and_esri_forms(tmp_path: Path, crs: str, options: dict) -> None:
    path = tmp_path / "crs.tif"
    write_geotiff(path, crs, **options)
    geo = parse_header(path.read_bytes(), str(path)).geo
    gdal_wkt = gdal_crs_wkt(path)
    assert gdal_wkt is not None and geo.crs_wkt is not None, geo.crs_error
    assert same_crs(geo.crs_wkt, gdal_wkt), f"\nours {geo.crs_wkt}\nGDAL {gdal_wkt}"
    if "+" in crs:
        assert CRS.from_wkt(geo.crs_wkt).is_compound and geo.epsg is None


def test_pixel_is_point_shift_matches_gdal(tmp_path: Path) -> None:
    path = tmp_path / "point.tif"
    write_geotiff(path, "EPSG:32633")
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(AREA_OR_POINT="Point")
    geo = parse_header(path.read_bytes(), str(path)).geo
    with rasterio.open(path) as src:
        assert geo.pixel_is_point
        assert geo.transform == pytest.approx(tuple(src.transform)[:6])


def test_geokey_directory_parsing_and_malformed_keys() -> None:
    directory = np.array(
        [1, 1, 0, 4, 1024, 0, 1, 1, 1026, 34737, 6, 0, 3072, 0, 1, 32633, 3080, 34736, 1, 0]
    )
    keys = parse_geokey_directory(directory, np.array([9.0]), "hello|")
    assert keys == {1024: 1, 1026: "hello", 3072: 32633, 3080: 9.0}
    assert crs_from_geokeys(keys).epsg == 32633
    with pytest.raises(ValueError):
        parse_geokey_directory(np.array([1, 1, 0, 5, 1024, 0, 1, 1]), None, None)
    with pytest.raises(ValueError):
        parse_geokey_directory(np.array([1, 1, 0, 1, 3080, 34736, 1, 4]), np.array([1.0]), None)
    bad = crs_from_geokeys({1024: 1, 3072: 32767, 3074: 32767, 3075: 2})
    assert bad.wkt is None and bad.error
    assert crs_from_geokeys({1024: 1, 3072: 12345}).error  # unknown EPSG code
