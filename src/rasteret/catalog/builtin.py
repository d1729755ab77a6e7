"""The built-in datasets: the original system's twelve, plus newer Earth Search collections.

Band maps are band code → STAC asset key, as the collections' items name their assets
(checked against the real items in ``shared/corpus/stac``). Each entry carries its
licence and whether reading needs credentials.
"""

from __future__ import annotations

from rasteret.catalog.descriptor import DatasetDescriptor

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"
SF_BBOX = (-122.45, 37.74, -122.35, 37.84)

_S2_EARTHSEARCH = {
    "B01": "coastal",
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B09": "nir09",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
}
_S2_CODES = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
_LANDSAT = {
    "B1": "coastal",
    "B2": "blue",
    "B3": "green",
    "B4": "red",
    "B5": "nir08",
    "B6": "swir16",
    "B7": "swir22",
    "qa_aerosol": "qa_aerosol",
    "qa_pixel": "qa_pixel",
    "qa_radsat": "qa_radsat",
}
_SENTINEL_LICENSE = "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"
_S3_LANDSAT = {
    "provider": "aws",
    "requester_pays": True,
    "region": "us-west-2",
    "url_patterns": {"https://landsatlook.usgs.gov/data/": "s3://usgs-landsat/"},
}
_REQUESTER_PAYS = {"provider": "aws", "requester_pays": True, "region": "us-west-2"}


def _pc(id_: str, name: str, collection: str, band_map: dict, **kw) -> DatasetDescriptor:
    kw.setdefault("license", "proprietary(free)")
    kw.setdefault("spatial_coverage", "global")
    kw.setdefault("example_bbox", SF_BBOX)
    return DatasetDescriptor(
        id=f"pc/{id_}",
        name=name,
        stac_api=PLANETARY_COMPUTER,
        stac_collection=collection,
        band_map=band_map,
        requires_auth=True,
        cloud_config={"provider": "azure", "sas_signing": "planetary-computer"},
        **kw,
    )


def _es(id_: str, name: str, band_map: dict, **kw) -> DatasetDescriptor:
    kw.setdefault("license", "proprietary(free)")
    kw.setdefault("spatial_coverage", "global")
    kw.setdefault("example_bbox", SF_BBOX)
    return DatasetDescriptor(
        id=f"earthsearch/{id_}",
        name=name,
        stac_api=EARTH_SEARCH,
        stac_collection=kw.pop("collection", id_),
        band_map=band_map,
        **kw,
    )


BUILTIN_DATASETS: tuple[DatasetDescriptor, ...] = (
    DatasetDescriptor(
        id="aef/v1-annual",
        name="AlphaEarth Foundation Embeddings (Annual)",
        description="64-band int8 annual embeddings, one COG per UTM tile and year.",
        record_table_uri="s3://us-west-2.opendata.source.coop/terrafloww/aef-v1-annual-rasteret/index.parquet",
        index_uri="s3://us-west-2.opendata.source.coop/terrafloww/aef-v1-annual-rasteret/index.parquet",
        collection_uri="s3://us-west-2.opendata.source.coop/terrafloww/aef-v1-annual-rasteret/data",
        field_roles={
            "id": "fid",
            "geometry": "geom",
            "datetime": "year",
            "href": "path",
            "proj:epsg": "crs",
        },
        surface_fields={"index": ["fid", "geom", "year", "bbox", "path", "crs", "utm_zone"]},
        filter_capabilities={"index": ["bbox", "year", "utm_zone"]},
        band_index_map={f"A{i:02d}": i for i in range(64)},
        bbox_columns={"minx": "xmin", "miny": "ymin", "maxx": "xmax", "maxy": "ymax"},
        separate_files=False,
        spatial_coverage="global",
        temporal_range=("2018-01-01", "2023-12-31"),
        license="CC-BY-4.0",
        license_url="https://creativecommons.org/licenses/by/4.0/",
        cloud_config={
            "provider": "aws",
            "region": "us-west-2",
            "url_patterns": {"https://data.source.coop/": "s3://us-west-2.opendata.source.coop/"},
        },
        example_bbox=(11.3, -0.002, 11.5, 0.001),
        example_date_range=("2023-01-01", "2023-12-31"),
    ),
    _es(
        "sentinel-2-l2a",
        "Sentinel-2 Level-2A",
        _S2_EARTHSEARCH,
        description="Sentinel-2 L2A surface reflectance COGs (Element 84 Earth Search).",
        temporal_range=("2015-06-23", ""),
        license_url=_SENTINEL_LICENSE,
        example_date_range=("2024-06-01", "2024-07-15"),
        torchgeo_class="Sentinel2",
    ),
    _es(
        "sentinel-2-c1-l2a",
        "Sentinel-2 Collection 1 Level-2A",
        _S2_EARTHSEARCH,
        description="Sentinel-2 Collection 1 L2A (reprocessed, offsets harmonised).",
        temporal_range=("2015-06-27", ""),
        license_url=_SENTINEL_LICENSE,
        example_date_range=("2024-06-01", "2024-07-15"),
        torchgeo_class="Sentinel2",
    ),
    _es(
        "sentinel-2-l1c",
        "Sentinel-2 Level-1C",
        {k: v for k, v in _S2_EARTHSEARCH.items() if k != "SCL"},
        description="Sentinel-2 L1C top-of-atmosphere reflectance (JPEG 2000 converted to COG).",
        temporal_range=("2015-06-27", ""),
        license_url=_SENTINEL_LICENSE,
        example_date_range=("2024-06-01", "2024-07-15"),
    ),
    _es(
        "landsat-c2-l2",
        "Landsat Collection 2 Level-2",
        _LANDSAT,
        description="Landsat 4-9 surface reflectance and temperature (USGS, requester pays).",
        temporal_range=("1982-08-22", ""),
        requires_auth=True,
        license_url="https://www.usgs.gov/core-science-systems/hdds/data-policy",
        cloud_config=_S3_LANDSAT,
        example_date_range=("2024-06-01", "2024-07-15"),
        torchgeo_class="Landsat9",
    ),
    _es(
        "sentinel-1-grd",
        "Sentinel-1 GRD (HH/HV/VV/VH)",
        {"HH": "hh", "HV": "hv", "VV": "vv", "VH": "vh"},
        description="Sentinel-1 Level-1 GRD backscatter (requester pays).",
        temporal_range=("2014-10-10", ""),
        requires_auth=True,
        license_url=_SENTINEL_LICENSE,
        cloud_config=_REQUESTER_PAYS,
        example_date_range=("2024-06-01", "2024-07-15"),
    ),
    _es(
        "naip",
        "NAIP",
        {"R": "image", "G": "image", "B": "image", "NIR": "image"},
        description="USDA National Agriculture Imagery Program, 4-band aerial imagery (beta).",
        band_index_map={"R": 0, "G": 1, "B": 2, "NIR": 3},
        separate_files=False,
        spatial_coverage="north-america",
        temporal_range=("2010-01-01", "2023-12-31"),
        requires_auth=True,
        license_url="https://www.fsa.usda.gov/help/policies-and-links/",
        cloud_config=_REQUESTER_PAYS,
        example_date_range=("2022-01-01", "2022-12-31"),
        torchgeo_class="NAIP",
    ),
    _es(
        "cop-dem-glo-30",
        "Copernicus DEM 30m",
        {"DEM": "data"},
        description="Copernicus GLO-30 digital surface model.",
        temporal_range=("2021-04-22", "2021-04-22"),
        license_url="https://spacedata.copernicus.eu/documents/20126/0/CSCDA_ESA_Mission-specific+Annex.pdf",
        example_date_range=("2021-04-22", "2021-04-22"),
    ),
    _es(
        "cop-dem-glo-90",
        "Copernicus DEM 90m",
        {"DEM": "data"},
        description="Copernicus GLO-90 digital surface model.",
        temporal_range=("2021-04-22", "2021-04-22"),
        license_url="https://spacedata.copernicus.eu/documents/20126/0/CSCDA_ESA_Mission-specific+Annex.pdf",
        example_date_range=("2021-04-22", "2021-04-22"),
    ),
    _pc(
        "sentinel-2-l2a",
        "Sentinel-2 Level-2A (Planetary Computer)",
        "sentinel-2-l2a",
        {**{c: c for c in _S2_CODES}, "SCL": "SCL"},
        temporal_range=("2015-06-27", ""),
        license_url=_SENTINEL_LICENSE,
        example_date_range=("2024-06-01", "2024-07-15"),
        torchgeo_class="Sentinel2",
    ),
    _pc(
        "landsat-c2-l2",
        "Landsat Collection 2 Level-2 (Planetary Computer)",
        "landsat-c2-l2",
        _LANDSAT,
        temporal_range=("1982-08-22", ""),
        license_url="https://www.usgs.gov/core-science-systems/hdds/data-policy",
        example_date_range=("2024-06-01", "2024-07-15"),
    ),
    _pc(
        "io-lulc-annual-v02",
        "ESRI 10m Land Use/Land Cover",
        "io-lulc-annual-v02",
        {"LULC": "data"},
        temporal_range=("2017-01-01", ""),
        license="CC-BY-4.0",
        license_url="https://creativecommons.org/licenses/by/4.0/",
        example_date_range=("2023-01-01", "2023-12-31"),
    ),
    _pc(
        "alos-dem",
        "ALOS World 3D 30m DEM",
        "alos-dem",
        {"DEM": "data"},
        license_url="https://earth.jaxa.jp/policy/en.html",
        example_date_range=("2016-12-01", "2016-12-31"),
    ),
    _pc(
        "nasadem",
        "NASADEM",
        "nasadem",
        {"DEM": "elevation"},
        temporal_range=("2000-02-20", "2000-02-20"),
        example_date_range=("2000-02-20", "2000-02-20"),
    ),
    _pc(
        "esa-worldcover",
        "ESA WorldCover",
        "esa-worldcover",
        {"MAP": "map"},
        temporal_range=("2020-01-01", "2021-12-31"),
        license="CC-BY-4.0",
        license_url="https://creativecommons.org/licenses/by/4.0/",
        example_date_range=("2021-01-01", "2021-12-31"),
    ),
    _pc(
        "usda-cdl",
        "USDA Cropland Data Layer",
        "usda-cdl",
        {"CDL": "cultivated"},
        spatial_coverage="conus",
        temporal_range=("2008-01-01", ""),
        example_bbox=(-93.8, 41.9, -93.6, 42.1),
        example_date_range=("2021-01-01", "2021-12-31"),
    ),
)
