"""``DatasetDescriptor``: what ``rasteret.build("<id>", ...)`` needs to know about a dataset."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SURFACES = {"record_table", "index", "collection"}
_ROLES = {"id", "datetime", "geometry", "bbox", "href", "proj:epsg", "crs", "assets"}


@dataclass(frozen=True)
class DatasetDescriptor:
    """A dataset of the catalog (field names follow the original system).

    Access is one of: a STAC API (``stac_api`` + ``stac_collection``, or a static catalog
    with ``static_catalog=True``), a record table (``record_table_uri`` / ``index_uri``,
    read with ``build_from_table``), or an existing collection (``collection_uri``; what
    ``register_local`` creates). ``band_map`` maps band codes to STAC asset keys;
    ``band_index_map`` band codes to samples of multi-band files. ``field_roles`` maps
    canonical columns (``id``, ``datetime``, ``geometry``, ``href``, ``proj:epsg``...)
    to the record table's own column names.
    """

    id: str
    name: str
    description: str = ""
    stac_api: str | None = None
    stac_collection: str | None = None
    record_table_uri: str | None = None
    index_uri: str | None = None
    collection_uri: str | None = None
    geoparquet_uri: str | None = None  # deprecated alias of record_table_uri
    field_roles: dict[str, str] | None = None
    surface_fields: dict[str, list[str]] | None = None
    filter_capabilities: dict[str, list[str]] | None = None
    column_map: dict[str, str] | None = None
    href_column: str | None = None
    band_index_map: dict[str, int] | None = None
    bbox_columns: dict[str, str] | None = None
    band_map: dict[str, str] | None = None
    separate_files: bool = True
    spatial_coverage: str = ""
    temporal_range: tuple[str, str] | None = None
    requires_auth: bool = False
    license: str = ""
    license_url: str = ""
    commercial_use: bool = True
    static_catalog: bool = False
    s3_credentials_url: str | None = None
    cloud_config: dict[str, Any] | None = None
    example_bbox: tuple[float, float, float, float] | None = None
    example_date_range: tuple[str, str] | None = None
    torchgeo_class: str | None = None
    torchgeo_verified: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip() or self.id != self.id.strip():
            raise ValueError(f"DatasetDescriptor.id must be a non-empty string, got {self.id!r}")
        if not self.name:
            raise ValueError(f"DatasetDescriptor {self.id!r}: name is required")
        if self.field_roles:
            unknown = set(self.field_roles) - _ROLES
            if unknown:
                raise ValueError(
                    f"DatasetDescriptor {self.id!r}: unknown field_roles {sorted(unknown)} "
                    f"(known: {sorted(_ROLES)})"
                )
            if self.column_map is None:
                derived = {src: role for role, src in self.field_roles.items() if role != "href"}
                object.__setattr__(self, "column_map", derived)
            if self.href_column is None and "href" in self.field_roles:
                object.__setattr__(self, "href_column", self.field_roles["href"])
        for name in ("surface_fields", "filter_capabilities"):
            value = getattr(self, name) or {}
            bad = set(value) - _SURFACES
            if bad:
                raise ValueError(
                    f"DatasetDescriptor {self.id!r}: {name} surfaces {sorted(bad)} are not "
                    f"one of {sorted(_SURFACES)}"
                )
        for name in ("temporal_range", "example_bbox", "example_date_range"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if not (self.stac_api or self.build_source_uri or self.collection_uri):
            raise ValueError(
                f"DatasetDescriptor {self.id!r}: give stac_api (+ stac_collection), "
                "record_table_uri / index_uri, or collection_uri"
            )

    @property
    def build_source_uri(self) -> str | None:
        """The table ``build`` reads: record table, else index, else (deprecated) geoparquet."""
        return self.record_table_uri or self.index_uri or self.geoparquet_uri

    @property
    def runtime_index_uri(self) -> str | None:
        return self.index_uri or self.geoparquet_uri or self.record_table_uri

    @property
    def kind(self) -> str:
        """``stac``, ``record_table`` or ``collection`` (how ``build`` reaches the data)."""
        if self.collection_uri and not self.build_source_uri and not self.stac_api:
            return "collection"
        if self.build_source_uri:
            return "record_table"
        return "stac"

    def source_field(self, canonical: str) -> str:
        """The record-table column playing ``canonical``'s role (itself by default)."""
        return (self.field_roles or {}).get(canonical, canonical)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples as lists)."""
        return json_ready(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetDescriptor:
        """Inverse of :meth:`to_dict`; unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        if unknown:
            known["extra"] = {**known.get("extra", {}), **unknown}
        return cls(**known)


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
