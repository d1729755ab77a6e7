"""Bridges to other libraries, imported lazily (each needs its own optional extra).

* :func:`to_torchgeo_dataset` — a ``torchgeo.datasets.GeoDataset`` over a collection
  (``pip install 'rasteret[torchgeo]'``); the class is
  ``rasteret.integrations.torchgeo.RasteretGeoDataset``.
"""

from __future__ import annotations

from typing import Any


def to_torchgeo_dataset(collection: Any, **kwargs: Any) -> Any:
    """A TorchGeo ``GeoDataset`` over ``collection`` (see
    :func:`rasteret.integrations.torchgeo.to_torchgeo_dataset`)."""
    from rasteret.integrations.torchgeo import to_torchgeo_dataset as build

    return build(collection, **kwargs)


__all__ = ["to_torchgeo_dataset"]
