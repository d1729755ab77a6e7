"""GeoKey directory → full CRS (WKT2_2019), as GDAL builds it.

Handles EPSG projected / geographic / geocentric CRSs, vertical CRSs (compound),
user-defined projections from the projection keys, user-defined datums and
ellipsoids, ESRI PE-string citations and GeoTIFF 1.1 keys. A CRS PROJ cannot build is
reported in ``CrsResult.error``; it never raises.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pyproj import CRS
from pyproj.crs import CompoundCRS, Datum, Ellipsoid, PrimeMeridian, ProjectedCRS
from pyproj.database import get_units_map
from pyproj.exceptions import CRSError

from rasteret.tiff.projections import projection_wkt1

GT_MODEL_TYPE = 1024
GT_RASTER_TYPE = 1025
GT_CITATION = 1026
GEOGRAPHIC_TYPE = 2048
GEOG_CITATION = 2049
GEOG_GEODETIC_DATUM = 2050
GEOG_PRIME_MERIDIAN = 2051
GEOG_ANGULAR_UNITS = 2054
GEOG_ANGULAR_UNIT_SIZE = 2055
GEOG_ELLIPSOID = 2056
GEOG_SEMI_MAJOR_AXIS = 2057
GEOG_SEMI_MINOR_AXIS = 2058
GEOG_INV_FLATTENING = 2059
GEOG_PRIME_MERIDIAN_LONG = 2061
GEOG_TOWGS84 = 2062
PROJECTED_CS_TYPE = 3072
PCS_CITATION = 3073
PROJECTION = 3074
PROJ_COORD_TRANS = 3075
PROJ_LINEAR_UNITS = 3076
PROJ_LINEAR_UNIT_SIZE = 3077
VERTICAL_CS_TYPE = 4096

USER_DEFINED = 32767
RASTER_PIXEL_IS_POINT = 2
ESRI_PE_PREFIX = "ESRI PE String = "

GeoKeys = dict[int, int | float | str | tuple[float, ...]]


@dataclass(frozen=True, slots=True)
class CrsResult:
    """The CRS of a GeoTIFF: WKT2_2019 text, EPSG code when exactly EPSG, or an error."""

    wkt: str | None = None
    epsg: int | None = None
    error: str | None = None


def parse_geokey_directory(
    directory: np.ndarray, doubles: np.ndarray | None, ascii_params: str | None
) -> GeoKeys:
    """Decode GeoKeyDirectoryTag (+ double / ASCII params) into ``{key id: value}``.

    Raises ``ValueError`` when the directory is malformed.
    """
    shorts = [int(v) for v in directory]
    if len(shorts) < 4:
        raise ValueError("GeoKeyDirectory shorter than its header")
    n_keys = shorts[3]
    if len(shorts) < 4 + 4 * n_keys:
        raise ValueError(f"GeoKeyDirectory declares {n_keys} keys but holds {len(shorts)} values")
    keys: GeoKeys = {}
    for i in range(n_keys):
        key, location, count, value = shorts[4 + 4 * i : 8 + 4 * i]
        if location == 0:
            keys[key] = value
        elif location == 34736:
            if doubles is None or value + count > len(doubles):
                raise ValueError(f"GeoKey {key} points past GeoDoubleParams")
            values = tuple(float(v) for v in doubles[value : value + count])
            keys[key] = values[0] if count == 1 else values
        elif location == 34737:
            if ascii_params is None or value + count > len(ascii_params) + 1:
                raise ValueError(f"GeoKey {key} points past GeoAsciiParams")
            keys[key] = ascii_params[value : value + count].rstrip("|\0").strip()
        elif location == 34735:
            if value + count > len(shorts):
                raise ValueError(f"GeoKey {key} points past GeoKeyDirectory")
            keys[key] = shorts[value] if count == 1 else tuple(shorts[value : value + count])
    return keys


def crs_from_geokeys(keys: Mapping[int, object]) -> CrsResult:
    """Build the CRS a GeoKey set describes; never raises."""
    try:
        crs, epsg = _build(keys)
    except Exception as exc:
        return CrsResult(error=f"{type(exc).__name__}: {exc}")
    if crs is None:
        return CrsResult()
    try:
        wkt = crs.to_wkt("WKT2_2019")
    except Exception as exc:
        return CrsResult(error=f"{type(exc).__name__}: {exc}")
    if not wkt:
        return CrsResult(error="PROJ could not export the CRS as WKT2_2019")
    return CrsResult(wkt=wkt, epsg=epsg)


def _code(keys: Mapping[int, object], key: int) -> int | None:
    value = keys.get(key)
    if isinstance(value, int) and 0 < value < USER_DEFINED:
        return value
    return None


def _build(keys: Mapping[int, object]) -> tuple[CRS | None, int | None]:
    model = keys.get(GT_MODEL_TYPE)
    pcs_code = _code(keys, PROJECTED_CS_TYPE)
    gcs_code = _code(keys, GEOGRAPHIC_TYPE)
    esri = _esri_pe_string(keys)
    if esri is not None and pcs_code is None:
        crs = CRS.from_wkt(esri)
        return crs, crs.to_epsg(min_confidence=100)
    projected = model == 1 or (
        model != 2 and (PROJECTED_CS_TYPE in keys or PROJ_COORD_TRANS in keys)
    )
    horizontal: CRS | None
    epsg: int | None = None
    if projected and pcs_code is not None:
        horizontal = CRS.from_epsg(pcs_code)
        epsg = pcs_code
        geog = _geographic(keys, horizontal.geodetic_crs)
        if geog is not None:
            horizontal, epsg = _replace_geodetic(horizontal, geog), None
    elif projected:
        horizontal = _user_projected(keys)
    elif model == 3 and gcs_code is not None:
        horizontal, epsg = CRS.from_epsg(gcs_code), gcs_code
    elif gcs_code is not None or any(k in keys for k in (GEOG_GEODETIC_DATUM, GEOG_ELLIPSOID)):
        base = CRS.from_epsg(gcs_code) if gcs_code is not None else None
        custom = _geographic(keys, base)
        if custom is None:
            horizontal, epsg = base, gcs_code
        else:
            horizontal = custom
    else:
        horizontal = None
    vertical_code = _code(keys, VERTICAL_CS_TYPE)
    if vertical_code is not None and horizontal is not None:
        vertical = CRS.from_epsg(vertical_code)
        name = f"{horizontal.name} + {vertical.name}"
        return CompoundCRS(name=name, components=[horizontal, vertical]), None
    return horizontal, epsg


def _esri_pe_string(keys: Mapping[int, object]) -> str | None:
    for key in (PCS_CITATION, GT_CITATION, GEOG_CITATION):
        value = keys.get(key)
        if isinstance(value, str) and ESRI_PE_PREFIX in value:
            return value.split(ESRI_PE_PREFIX, 1)[1]
    return None


def _citation_names(keys: Mapping[int, object]) -> dict[str, str]:
    """Names GDAL writes into GeogCitationGeoKey (``GCS Name = ...|Datum = ...|``)."""
    citation = keys.get(GEOG_CITATION)
    names: dict[str, str] = {}
    if not isinstance(citation, str):
        return names
    if "=" not in citation:
        names["GCS Name"] = citation
        return names
    for part in citation.split("|"):
        if "=" in part:
            label, _, value = part.partition("=")
            names[label.strip()] = value.strip()
    return names


def _ellipsoid_override(keys: Mapping[int, object], a: float, inv_f: float) -> bool:
    """Whether explicit ellipsoid keys contradict ``(a, 1/f)`` of the EPSG definition."""
    key_a = keys.get(GEOG_SEMI_MAJOR_AXIS)
    if isinstance(key_a, float) and not math.isclose(key_a, a, rel_tol=1e-12):
        return True
    key_inv_f = _key_inv_flattening(keys, key_a if isinstance(key_a, float) else a)
    if key_inv_f is None:
        return False
    return not math.isclose(key_inv_f, inv_f, rel_tol=1e-12, abs_tol=1e-12)


def _key_inv_flattening(keys: Mapping[int, object], a: float) -> float | None:
    """Inverse flattening from the keys; a semi-minor axis wins, as in GDAL."""
    b = keys.get(GEOG_SEMI_MINOR_AXIS)
    if isinstance(b, float):
        return 0.0 if b == a else a / (a - b)
    inv_f = keys.get(GEOG_INV_FLATTENING)
    if isinstance(inv_f, float):
        return inv_f
    return None


def _geographic(keys: Mapping[int, object], base: CRS | None) -> CRS | None:
    """A geographic CRS built from the keys, or None when ``base`` (EPSG) is used as is."""
    if base is not None:
        ellipsoid = base.ellipsoid
        if ellipsoid is None or not _ellipsoid_override(
            keys, ellipsoid.semi_major_metre, ellipsoid.inverse_flattening
        ):
            return None
    names = _citation_names(keys)
    datum_code = _code(keys, GEOG_GEODETIC_DATUM)
    ellipsoid_code = _code(keys, GEOG_ELLIPSOID)
    datum_name = names.get("Datum", "unknown" if base is None else "unnamed")
    ellipsoid_name = names.get("Ellipsoid", "unnamed")
    pm_name, pm_lon = "Greenwich", 0.0
    a, inv_f = 6378137.0, 298.257223563
    towgs84: tuple[float, ...] | None = None
    if base is not None:
        datum = base.datum
        datum_name = datum.name if datum is not None else datum_name
        if base.ellipsoid is not None:
            ellipsoid_name = base.ellipsoid.name
            a, inv_f = base.ellipsoid.semi_major_metre, base.ellipsoid.inverse_flattening
        if base.prime_meridian is not None:
            pm_name, pm_lon = base.prime_meridian.name, _pm_degrees(base.prime_meridian)
    elif datum_code is not None:
        datum = Datum.from_epsg(datum_code)
        datum_name = datum.name
        if datum.ellipsoid is not None:
            ellipsoid_name = datum.ellipsoid.name
            a, inv_f = datum.ellipsoid.semi_major_metre, datum.ellipsoid.inverse_flattening
    if ellipsoid_code is not None and base is None:
        ellipsoid = Ellipsoid.from_epsg(ellipsoid_code)
        a, inv_f = ellipsoid.semi_major_metre, ellipsoid.inverse_flattening
        if "Ellipsoid" not in names:
            ellipsoid_name = ellipsoid.name
    key_a = keys.get(GEOG_SEMI_MAJOR_AXIS)
    if isinstance(key_a, float):
        a = key_a
    key_inv_f = _key_inv_flattening(keys, a)
    if key_inv_f is not None:
        inv_f = key_inv_f
    pm_code = _code(keys, GEOG_PRIME_MERIDIAN)
    if pm_code is not None:
        pm = PrimeMeridian.from_epsg(pm_code)
        pm_name, pm_lon = pm.name, _pm_degrees(pm)
    unit_name, unit_factor = _angular_unit(keys)
    pm_lon = pm_lon * math.radians(1.0) / unit_factor  # WKT1 PRIMEM is in the GEOGCS unit
    pm_key = keys.get(GEOG_PRIME_MERIDIAN_LONG)
    if isinstance(pm_key, float) and pm_code is None:
        pm_lon = pm_key  # GeoTIFF: in GeogAngularUnits already
    if base is None:
        value = keys.get(GEOG_TOWGS84)
        if isinstance(value, tuple) and len(value) in (3, 7):
            towgs84 = value + (0.0,) * (7 - len(value))
    gcs_name = names.get("GCS Name") or (base.name if base is not None else "unknown")
    pm_name = names.get("Primem", pm_name)
    towgs = f",TOWGS84[{','.join(repr(v) for v in towgs84)}]" if towgs84 else ""
    wkt = (
        f'GEOGCS["{_q(gcs_name)}",DATUM["{_q(datum_name)}",SPHEROID["{_q(ellipsoid_name)}",'
        f'{a!r},{inv_f!r}]{towgs}],PRIMEM["{_q(pm_name)}",{pm_lon!r}],'
        f'UNIT["{_q(unit_name)}",{unit_factor!r}]]'
    )
    return CRS.from_wkt(wkt)


def _pm_degrees(pm: PrimeMeridian) -> float:
    return pm.longitude * pm.unit_conversion_factor / math.radians(1.0)


def _q(name: str) -> str:
    return name.replace('"', "'")


_ANGULAR_WKT1 = {9102: ("degree", 0.0174532925199433), 9101: ("radian", 1.0)}


def _angular_unit(keys: Mapping[int, object]) -> tuple[str, float]:
    code = keys.get(GEOG_ANGULAR_UNITS)
    if isinstance(code, int) and code in _ANGULAR_WKT1:
        return _ANGULAR_WKT1[code]
    if isinstance(code, int) and 0 < code < USER_DEFINED:
        for name, unit in get_units_map(auth_name="EPSG", category="angular").items():
            if unit.code == str(code) and unit.conv_factor:
                return name, unit.conv_factor
    size = keys.get(GEOG_ANGULAR_UNIT_SIZE)
    if isinstance(size, float) and size > 0:
        return "unknown", size
    return _ANGULAR_WKT1[9102]


def _linear_unit(keys: Mapping[int, object]) -> tuple[str, float]:
    code = keys.get(PROJ_LINEAR_UNITS)
    if isinstance(code, int) and 0 < code < USER_DEFINED:
        if code == 9001:
            return "metre", 1.0
        for name, unit in get_units_map(auth_name="EPSG", category="linear").items():
            if unit.code == str(code):
                return name, unit.conv_factor
    size = keys.get(PROJ_LINEAR_UNIT_SIZE)
    if isinstance(size, float) and size > 0:
        return "unknown", size
    return "metre", 1.0


def _pcs_name(keys: Mapping[int, object]) -> str:
    for key in (GT_CITATION, PCS_CITATION):
        value = keys.get(key)
        if isinstance(value, str) and value:
            return value.removeprefix("PCS Name = ")
    return "unnamed"


def _user_projected(keys: Mapping[int, object]) -> CRS:
    gcs_code = _code(keys, GEOGRAPHIC_TYPE)
    base = CRS.from_epsg(gcs_code) if gcs_code is not None else None
    geog = _geographic(keys, base) or base
    if geog is None:
        raise ValueError("user-defined projected CRS without a geographic CRS")
    conversion_code = _code(keys, PROJECTION)
    name = _pcs_name(keys)
    if conversion_code is not None:
        from pyproj.crs import CoordinateOperation

        conversion = CoordinateOperation.from_epsg(conversion_code)
        return ProjectedCRS(conversion=conversion, name=name, geodetic_crs=geog)
    method = keys.get(PROJ_COORD_TRANS)
    if not isinstance(method, int):
        raise ValueError("user-defined projected CRS without ProjCoordTransGeoKey")
    unit_name, unit_factor = _linear_unit(keys)
    wkt = (
        f'PROJCS["{_q(name)}",{geog.to_wkt("WKT1_GDAL")},{projection_wkt1(keys, method)},'
        f'UNIT["{_q(unit_name)}",{unit_factor!r}],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
    )
    crs = CRS.from_wkt(wkt)
    # PROJ imports some parameter sets it cannot use (e.g. Mercator 1SP with a non-zero
    # latitude of natural origin); GDAL rejects those, and so do we.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            crs.to_proj4()
        except CRSError as exc:
            raise ValueError(
                f"PROJ rejects the projection parameters of {name!r} (method {method})"
            ) from exc
    return crs


def _replace_geodetic(projected: CRS, geog: CRS) -> CRS:
    """``projected`` with its geodetic CRS swapped for ``geog`` (ellipsoid overrides)."""
    return ProjectedCRS(
        conversion=projected.coordinate_operation,
        name=projected.name,
        cartesian_cs=projected.coordinate_system,
        geodetic_crs=geog,
    )
