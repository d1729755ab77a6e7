"""GeoTIFF coordinate transformation codes (ProjCoordTransGeoKey) → WKT1 PROJECTION.

Mirrors GDAL's ``GTIFFetchProjParms`` + ``GTIFGetOGISDefnAsOSR``: for each method the
parameters are read from the keys GeoTIFF writers use, with the same fallbacks
(natural origin ↔ false origin ↔ centre), and written as GDAL-flavoured WKT1
parameters, which PROJ imports with GDAL's semantics.
"""

from __future__ import annotations

from collections.abc import Mapping

# GeoKey ids of projection parameters (GeoTIFF 1.0 names).
STD_PARALLEL_1 = 3078
STD_PARALLEL_2 = 3079
NAT_ORIGIN_LONG = 3080
NAT_ORIGIN_LAT = 3081
FALSE_EASTING = 3082
FALSE_NORTHING = 3083
FALSE_ORIGIN_LONG = 3084
FALSE_ORIGIN_LAT = 3085
FALSE_ORIGIN_EASTING = 3086
FALSE_ORIGIN_NORTHING = 3087
CENTER_LONG = 3088
CENTER_LAT = 3089
CENTER_EASTING = 3090
CENTER_NORTHING = 3091
SCALE_AT_NAT_ORIGIN = 3092
SCALE_AT_CENTER = 3093
AZIMUTH_ANGLE = 3094
STRAIGHT_VERT_POLE_LONG = 3095
RECTIFIED_GRID_ANGLE = 3096

_LAT_NAT = (NAT_ORIGIN_LAT, FALSE_ORIGIN_LAT, CENTER_LAT)
_LON_NAT = (NAT_ORIGIN_LONG, FALSE_ORIGIN_LONG, CENTER_LONG)
_LAT_CENTER = (CENTER_LAT, NAT_ORIGIN_LAT, FALSE_ORIGIN_LAT)
_LON_CENTER = (CENTER_LONG, NAT_ORIGIN_LONG, FALSE_ORIGIN_LONG)
_LAT_FALSE_ORIGIN = (FALSE_ORIGIN_LAT, NAT_ORIGIN_LAT, CENTER_LAT)
_LON_FALSE_ORIGIN = (FALSE_ORIGIN_LONG, NAT_ORIGIN_LONG, CENTER_LONG)
_FE = (FALSE_EASTING, CENTER_EASTING, FALSE_ORIGIN_EASTING)
_FN = (FALSE_NORTHING, CENTER_NORTHING, FALSE_ORIGIN_NORTHING)
_FE_ORIGIN = (FALSE_ORIGIN_EASTING, FALSE_EASTING, CENTER_EASTING)
_FN_ORIGIN = (FALSE_ORIGIN_NORTHING, FALSE_NORTHING, CENTER_NORTHING)
_K_NAT = (SCALE_AT_NAT_ORIGIN, SCALE_AT_CENTER)
_K_CENTER = (SCALE_AT_CENTER, SCALE_AT_NAT_ORIGIN)
_SP1 = (STD_PARALLEL_1,)
_SP2 = (STD_PARALLEL_2,)

Param = tuple[str, tuple[int, ...], float]  # (WKT1 parameter name, keys in order, default)


def _origin(lat: tuple[int, ...], lon: tuple[int, ...], center: bool = False) -> list[Param]:
    if center:
        return [("latitude_of_center", lat, 0.0), ("longitude_of_center", lon, 0.0)]
    return [("latitude_of_origin", lat, 0.0), ("central_meridian", lon, 0.0)]


_FALSE: list[Param] = [("false_easting", _FE, 0.0), ("false_northing", _FN, 0.0)]
_SCALE_NAT: list[Param] = [("scale_factor", _K_NAT, 1.0)]

#: ProjCoordTransGeoKey → (WKT1 projection name, parameters)
METHODS: dict[int, tuple[str, list[Param]]] = {
    1: ("Transverse_Mercator", _origin(_LAT_NAT, _LON_NAT) + _SCALE_NAT + _FALSE),
    3: (
        "Hotine_Oblique_Mercator",
        [
            *_origin(_LAT_CENTER, _LON_CENTER, center=True),
            ("azimuth", (AZIMUTH_ANGLE,), 0.0),
            ("rectified_grid_angle", (RECTIFIED_GRID_ANGLE,), 90.0),
            ("scale_factor", _K_CENTER, 1.0),
            *_FALSE,
        ],
    ),
    4: (
        "Laborde_Oblique_Mercator",
        [
            *_origin(_LAT_CENTER, _LON_CENTER, center=True),
            ("azimuth", (AZIMUTH_ANGLE,), 0.0),
            ("scale_factor", _K_CENTER, 1.0),
            *_FALSE,
        ],
    ),
    8: (
        "Lambert_Conformal_Conic_2SP",
        [
            ("standard_parallel_1", _SP1, 0.0),
            ("standard_parallel_2", _SP2, 0.0),
            *_origin(_LAT_FALSE_ORIGIN, _LON_FALSE_ORIGIN),
            ("false_easting", _FE_ORIGIN, 0.0),
            ("false_northing", _FN_ORIGIN, 0.0),
        ],
    ),
    9: ("Lambert_Conformal_Conic_1SP", _origin(_LAT_NAT, _LON_NAT) + _SCALE_NAT + _FALSE),
    10: ("Lambert_Azimuthal_Equal_Area", _origin(_LAT_CENTER, _LON_CENTER, True) + _FALSE),
    11: (
        "Albers_Conic_Equal_Area",
        [
            ("standard_parallel_1", _SP1, 0.0),
            ("standard_parallel_2", _SP2, 0.0),
            *_origin(_LAT_NAT, _LON_NAT, center=True),
            ("false_easting", _FE + _FE_ORIGIN, 0.0),
            ("false_northing", _FN + _FN_ORIGIN, 0.0),
        ],
    ),
    12: ("Azimuthal_Equidistant", _origin(_LAT_CENTER, _LON_CENTER, True) + _FALSE),
    13: (
        "Equidistant_Conic",
        [
            ("standard_parallel_1", _SP1, 0.0),
            ("standard_parallel_2", _SP2, 0.0),
            *_origin(_LAT_NAT, _LON_NAT, center=True),
            *_FALSE,
        ],
    ),
    14: ("Stereographic", _origin(_LAT_CENTER, _LON_CENTER) + _SCALE_NAT + _FALSE),
    15: (
        "Polar_Stereographic",
        [
            ("latitude_of_origin", _LAT_NAT, 0.0),
            ("central_meridian", (STRAIGHT_VERT_POLE_LONG, *_LON_NAT), 0.0),
            *_SCALE_NAT,
            *_FALSE,
        ],
    ),
    16: ("Oblique_Stereographic", _origin(_LAT_NAT, _LON_NAT) + _SCALE_NAT + _FALSE),
    17: (
        "Equirectangular",
        [*_origin(_LAT_CENTER, _LON_CENTER), ("standard_parallel_1", _SP1, 0.0), *_FALSE],
    ),
    18: ("Cassini_Soldner", _origin(_LAT_NAT, _LON_NAT) + _FALSE),
    19: ("Gnomonic", _origin(_LAT_CENTER, _LON_CENTER) + _FALSE),
    20: ("Miller_Cylindrical", [("longitude_of_center", _LON_CENTER, 0.0), *_FALSE]),
    21: ("Orthographic", _origin(_LAT_CENTER, _LON_CENTER) + _FALSE),
    22: ("Polyconic", _origin(_LAT_NAT, _LON_NAT) + _FALSE),
    23: ("Robinson", [("longitude_of_center", _LON_CENTER, 0.0), *_FALSE]),
    24: ("Sinusoidal", [("longitude_of_center", _LON_CENTER, 0.0), *_FALSE]),
    25: ("VanDerGrinten", [("central_meridian", _LON_CENTER, 0.0), *_FALSE]),
    26: ("New_Zealand_Map_Grid", _origin(_LAT_NAT, _LON_NAT) + _FALSE),
    27: (
        "Transverse_Mercator_South_Orientated",
        _origin(_LAT_NAT, _LON_NAT) + _SCALE_NAT + _FALSE,
    ),
    28: (
        "Cylindrical_Equal_Area",
        [("standard_parallel_1", _SP1, 0.0), ("central_meridian", _LON_NAT, 0.0), *_FALSE],
    ),
}

# GeoTIFF 1.1 / libgeotiff: Hotine oblique Mercator with the origin at the centre.
METHODS[9815] = ("Hotine_Oblique_Mercator_Azimuth_Center", METHODS[3][1])

_MERCATOR_1SP: list[Param] = _origin(_LAT_NAT, _LON_NAT) + _SCALE_NAT + _FALSE
_MERCATOR_2SP: list[Param] = [
    ("standard_parallel_1", _SP1, 0.0),
    *_origin(_LAT_NAT, _LON_NAT),
    *_FALSE,
]


def _value(keys: Mapping[int, object], candidates: tuple[int, ...], default: float) -> float:
    for key in candidates:
        value = keys.get(key)
        if isinstance(value, int | float):
            return float(value)
    return default


def projection_wkt1(keys: Mapping[int, object], method: int) -> str:
    """``PROJECTION[...],PARAMETER[...]...`` for a ProjCoordTransGeoKey value.

    Raises ``ValueError`` naming the method when it is not supported.
    """
    if method == 7:  # Mercator: 2SP when a standard parallel is given (as GDAL does)
        name, params = (
            ("Mercator_2SP", _MERCATOR_2SP)
            if STD_PARALLEL_1 in keys
            else ("Mercator_1SP", _MERCATOR_1SP)
        )
    elif method in METHODS:
        name, params = METHODS[method]
    else:
        raise ValueError(f"unsupported ProjCoordTransGeoKey {method}")
    parts = [f'PROJECTION["{name}"]']
    for param_name, candidates, default in params:
        parts.append(f'PARAMETER["{param_name}",{_value(keys, candidates, default)!r}]')
    return ",".join(parts)
