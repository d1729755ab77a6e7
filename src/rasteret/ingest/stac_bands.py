"""Band maps (band code → STAC asset key): argument checks, inference, validation.

Everything here runs before any TIFF header is fetched, so a wrong band map costs one
search, never a crawl plus thousands of header reads (the original's issue #27).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rasteret.errors import RasteretError

log = logging.getLogger("rasteret.ingest")

_NOT_DATA_ROLES = {"thumbnail", "overview", "metadata", "visual"}


class BandMapError(RasteretError, ValueError):
    """A band map does not fit the items (the message says what to change)."""


def check_band_arguments(
    band_map: Mapping[str, str] | None, band_index_map: Mapping[str, int] | None
) -> None:
    """Types and internal consistency of ``band_map`` / ``band_index_map`` (no items needed)."""
    if band_map is not None:
        if not isinstance(band_map, Mapping) or not band_map:
            raise BandMapError(
                f"band_map must be a non-empty dict {{band code: asset key}}, got {band_map!r}"
            )
        bad = {k: v for k, v in band_map.items() if not isinstance(k, str) or not k}
        bad |= {k: v for k, v in band_map.items() if not isinstance(v, str) or not v}
        if bad:
            raise BandMapError(
                f"band_map entries must map a band code (str) to an asset key (str); bad: {bad}"
            )
    if band_index_map is not None:
        if not isinstance(band_index_map, Mapping):
            raise BandMapError(
                f"band_index_map must be a dict {{band code: sample index}}, got {band_index_map!r}"
            )
        bad_idx = {
            k: v
            for k, v in band_index_map.items()
            if isinstance(v, bool) or not isinstance(v, int) or v < 0
        }
        if bad_idx:
            raise BandMapError(f"band_index_map values must be sample indices >= 0; bad: {bad_idx}")
        if band_map is not None:
            unknown = [b for b in band_index_map if b not in band_map]
            if unknown:
                raise BandMapError(
                    f"band_index_map names band(s) {unknown} that are not in band_map "
                    f"(bands: {list(band_map)}); add them to band_map={{band: asset key}}"
                )
    if band_map is not None:
        shared = [k for k, n in Counter(band_map.values()).items() if n > 1]
        for key in shared:
            codes = [b for b, k in band_map.items() if k == key]
            missing = [b for b in codes if b not in (band_index_map or {})]
            if missing:
                hint = ", ".join(f"{b!r}: {i}" for i, b in enumerate(codes))
                raise BandMapError(
                    f"bands {codes} all map to asset {key!r} (a multi-band file); say which "
                    f"sample each band is with band_index_map={{{hint}}}"
                )


def _looks_like_data(asset: Mapping[str, Any]) -> bool:
    media = str(asset.get("type") or "").lower()
    href = str(asset.get("href") or "").lower().split("?")[0]
    roles = set(asset.get("roles") or [])
    is_tiff = "tiff" in media or (not media and href.endswith((".tif", ".tiff")))
    return is_tiff and not (roles and roles <= _NOT_DATA_ROLES)


def _sample_count(asset: Mapping[str, Any]) -> int | None:
    for key in ("raster:bands", "eo:bands", "bands"):
        entries = asset.get(key)
        if isinstance(entries, list) and entries:
            return len(entries)
    return None


def infer_band_map(item: Mapping[str, Any]) -> dict[str, str]:
    """Identity map over the single-band GeoTIFF data assets of ``item``.

    Multi-band assets (e.g. a true-colour ``visual``) and thumbnails / overviews /
    metadata are left out (logged): map them explicitly with ``band_map`` and
    ``band_index_map``.
    """
    assets = item.get("assets") or {}
    chosen, skipped = {}, []
    for key, asset in assets.items():
        if not isinstance(asset, Mapping) or not _looks_like_data(asset):
            continue
        if (_sample_count(asset) or 1) > 1:
            skipped.append(key)
            continue
        chosen[key] = key
    if skipped:
        log.info(
            "assets %s hold several bands; not indexed without band_map + band_index_map",
            skipped,
        )
    if not chosen:
        raise BandMapError(
            f"item {item.get('id')}: no single-band GeoTIFF asset to index (assets: "
            f"{sorted(assets)}); pass band_map={{'<band code>': '<asset key>', ...}}"
        )
    return chosen


def check_first_item(band_map: Mapping[str, str], item: Mapping[str, Any], label: str) -> None:
    """Fail fast when the first item found has none of the mapped asset keys."""
    assets = item.get("assets") or {}
    if not any(k in assets for k in band_map.values()):
        raise BandMapError(
            f"{label}: the first item ({item.get('id')}) has none of the asset keys of the band "
            f"map {dict(band_map)}; its asset keys are {sorted(assets)}. Fix band_map="
            "{'<band code>': '<asset key>', ...} (nothing was indexed)"
        )


def check_band_map(
    band_map: Mapping[str, str],
    band_index_map: Mapping[str, int] | None,
    items: Sequence[Mapping[str, Any]],
    label: str,
    *,
    require_all: bool = True,
) -> dict[str, str]:
    """Every mapped asset key must exist in at least one item; sample indices must fit.

    Raises :class:`BandMapError` naming the missing keys and the asset keys the items do
    have. Items lacking a key that others have are not an error (recorded per asset).
    With ``require_all=False`` (catalog band maps listing every possible band) bands
    absent from all items are dropped (logged); it is an error only if none is left.
    Returns the band map to use.
    """
    seen: Counter[str] = Counter()
    samples: dict[str, int] = {}
    for item in items:
        for key, asset in (item.get("assets") or {}).items():
            seen[key] += 1
            if isinstance(asset, Mapping) and key not in samples:
                count = _sample_count(asset)
                if count:
                    samples[key] = count
    missing = {b: k for b, k in band_map.items() if k not in seen}
    if missing and not require_all and len(missing) < len(band_map):
        log.info("%s: bands %s have no asset in these items; not indexed", label, list(missing))
        band_map = {b: k for b, k in band_map.items() if b not in missing}
        missing = {}
    if missing:
        raise BandMapError(
            f"{label}: asset key(s) {sorted(set(missing.values()))} (band(s) {list(missing)}) "
            f"are in none of the {len(items)} item(s); their asset keys are "
            f"{sorted(seen)}. Fix band_map={{'<band code>': '<asset key>', ...}} "
            "(nothing was indexed)"
        )
    for band, index in (band_index_map or {}).items():
        if band not in band_map:
            continue
        count = samples.get(band_map[band])
        if count is not None and index >= count:
            raise BandMapError(
                f"{label}: band_index_map[{band!r}] = {index}, but asset {band_map[band]!r} "
                f"has {count} "
                f"band(s) (indices 0..{count - 1})"
            )
    return dict(band_map)
