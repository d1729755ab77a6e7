"""odc-geo interop: ``GeoBox`` ⇄ :class:`~rasteret.geo.grid.GridSpec`, and target grids.

odc-geo is optional and never imported by rasteret itself: :func:`is_geobox` recognises a
``GeoBox`` only through ``sys.modules`` (an instance exists only once its module is
loaded), and :func:`grid_to_geobox` imports odc-geo when it is called. Conversions are
exact: the CRS, the six affine coefficients and the shape ``(height, width)`` round-trip
unchanged (``GridSpec.from_geobox(gb).to_geobox() == gb``).

:func:`as_grid` turns the target-grid arguments of the read surfaces and the xarray
engine (``grid=`` / ``geobox=`` / ``like=``) into a ``GridSpec``: a ``GridSpec``, a
``GeoBox``, or an xarray object with ``x`` / ``y`` coordinates and a CRS
(:meth:`GridSpec.from_xarray`; an object with odc-geo's ``.odc`` accessor loaded falls
back to its ``.odc.geobox``). :func:`pick_grid` accepts at most one of them.
"""

from __future__ import annotations

import sys
from typing import Any

from rasteret.geo.grid import GridError, GridSpec
from rasteret.geo.transform import crs_key


def is_geobox(value: Any) -> bool:
    """Whether ``value`` is an ``odc.geo.geobox.GeoBox`` (without importing odc-geo)."""
    module = sys.modules.get("odc.geo.geobox")
    return module is not None and isinstance(value, module.GeoBox)


def _is_gcp_geobox(value: Any) -> bool:
    module = sys.modules.get("odc.geo.gcp")
    return module is not None and isinstance(value, module.GCPGeoBox)


def grid_from_geobox(geobox: Any) -> GridSpec:
    """The :class:`GridSpec` of an ``odc.geo.geobox.GeoBox`` (same CRS, affine, shape).

    Raises :class:`GridError` for a GeoBox without a CRS or a ``GCPGeoBox`` (ground
    control points, no affine), ``TypeError`` for anything else."""
    if _is_gcp_geobox(geobox):
        raise GridError(
            "a GCPGeoBox (ground control points) has no affine transform; "
            "warp it to a GeoBox first (odc-geo: gbox.approx / geobox_from_gcp)"
        )
    if not is_geobox(geobox):
        raise TypeError(f"expected an odc.geo.geobox.GeoBox, got {type(geobox).__name__}")
    if geobox.crs is None:
        raise GridError(f"{geobox!r} has no CRS; build the GeoBox with crs=")
    shape = geobox.shape
    return GridSpec(geobox.crs.proj, tuple(geobox.affine)[:6], (int(shape.y), int(shape.x)))


def grid_to_geobox(grid: GridSpec) -> Any:
    """``grid`` as an ``odc.geo.geobox.GeoBox`` (imports odc-geo; ``ImportError`` says
    how to install it)."""
    try:
        from affine import Affine
        from odc.geo.geobox import GeoBox
    except ImportError as exc:
        raise ImportError(
            "GridSpec.to_geobox() needs odc-geo: pip install odc-geo (it brings affine)"
        ) from exc
    return GeoBox(grid.shape, Affine(*grid.transform), crs_key(grid.crs))


def as_grid(value: Any, what: str = "grid=") -> GridSpec:
    """``value`` (a :class:`GridSpec`, an odc-geo ``GeoBox`` or an xarray object with a
    CRS and ``x`` / ``y`` coordinates) as a :class:`GridSpec`; ``what`` names the
    argument in errors."""
    if isinstance(value, GridSpec):
        return value
    if is_geobox(value) or _is_gcp_geobox(value):
        return grid_from_geobox(value)
    if hasattr(value, "coords") and hasattr(value, "dims"):
        try:
            return GridSpec.from_xarray(value)
        except GridError as exc:
            geobox = _odc_accessor_geobox(value)
            if geobox is None:
                raise GridError(f"{what} {exc}") from exc
            return grid_from_geobox(geobox)
    raise TypeError(
        f"{what} must be a rasteret.geo.GridSpec, an odc.geo GeoBox or an xarray object "
        f"with x / y coordinates and a CRS; got {type(value).__name__}"
    )


def _odc_accessor_geobox(value: Any) -> Any:
    """``value.odc.geobox`` when odc-geo's xarray accessor is loaded (else ``None``)."""
    if "odc.geo.xr" not in sys.modules:
        return None
    try:
        geobox = value.odc.geobox
    except (AttributeError, ValueError):
        return None
    return geobox if is_geobox(geobox) else None


def pick_grid(**candidates: Any) -> GridSpec | None:
    """The one target grid among ``candidates`` (e.g. ``grid=``, ``geobox=``, ``like=``)
    that is not ``None``, as a :class:`GridSpec`; ``None`` when none is given.
    ``ValueError`` when several are."""
    given = {k: v for k, v in candidates.items() if v is not None}
    if not given:
        return None
    if len(given) > 1:
        names = " / ".join(f"{k}=" for k in given)
        raise ValueError(f"pass only one of {names}: each is a whole target grid")
    (name, value), *_ = given.items()
    return as_grid(value, what=f"{name}=")
