"""Schema validation of collection tables.

:func:`validate_table` collects *every* problem of a table (missing or mistyped
required columns, band structs lacking fields, null ids) and raises one
:class:`~rasteret.errors.CollectionSchemaError` that names the file or table and
lists them, so a user fixes everything in one go.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from rasteret.errors import CollectionSchemaError
from rasteret.index.content import content_problems
from rasteret.index.schema import (
    BAND_METADATA_TYPE,
    ERROR_SUFFIX,
    METADATA_SUFFIX,
    REQUIRED_COLUMNS,
)

#: Fields a ``{band}_metadata`` struct must have to be readable.
REQUIRED_BAND_FIELDS: tuple[str, ...] = (
    "image_width",
    "image_height",
    "tile_width",
    "tile_height",
    "dtype",
    "transform",
    "compression",
    "tile_offsets",
    "tile_byte_counts",
)


def kind_of(t: pa.DataType) -> str:
    """A coarse type name used in messages and comparisons (``"integer"``, ``"list<float>"``)."""
    if isinstance(t, pa.ExtensionType):
        return kind_of(t.storage_type)
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_struct(t):
        return "struct"
    if _is_list(t):
        return f"list<{kind_of(t.value_type)}>"
    if pa.types.is_null(t):
        return "null"
    return str(t)


def _is_list(t: pa.DataType) -> bool:
    return (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
    )


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Whether ``actual`` can stand for ``expected`` (same kind; ints for floats; all-null)."""
    a, e = kind_of(actual), kind_of(expected)
    if a == e or a == "null":
        return True
    if e == "float" and a == "integer":
        return True
    if a.startswith("list<") and e.startswith("list<"):
        return _compatible(actual.value_type, expected.value_type)
    return False


def _struct_problems(t: pa.DataType, expected: pa.StructType, required: tuple[str, ...]) -> list:
    """``(missing, mistyped)`` fields of struct type ``t`` against ``expected``."""
    names = [t.field(i).name for i in range(t.num_fields)]
    missing = [name for name in required if name not in names]
    mistyped = []
    for i in range(expected.num_fields):
        want = expected.field(i)
        if want.name in names and not _compatible(t.field(want.name).type, want.type):
            got = kind_of(t.field(want.name).type)
            mistyped.append(f"{want.name} (expected {kind_of(want.type)}, got {got})")
    return [missing, mistyped]


_COLUMN_CHECKS: dict[str, tuple[str, Callable[[pa.DataType], bool]]] = {
    "id": ("string", lambda t: kind_of(t) == "string"),
    "datetime": ("timestamp", pa.types.is_timestamp),
    "geometry": ("binary (WKB)", lambda t: kind_of(t) == "binary"),
    "assets": (
        "struct (or map) of {band: struct<href, band_index>}",
        lambda t: pa.types.is_struct(t) or pa.types.is_map(t),
    ),
    "bbox": ("struct<xmin, ymin, xmax, ymax>", pa.types.is_struct),
    "proj:epsg": ("integer", lambda t: kind_of(t) in ("integer", "null")),
    "crs": ("string", lambda t: kind_of(t) in ("string", "null")),
}


def schema_problems(schema: pa.Schema, *, require_band_metadata: bool = True) -> list[str]:
    """Every problem of ``schema`` as a human-readable line (empty when valid)."""
    problems: list[str] = []
    missing = [name for name in REQUIRED_COLUMNS if name not in schema.names]
    if missing:
        problems.append(f"missing required columns: {missing}")
    mistyped = []
    for name, (expected, check) in _COLUMN_CHECKS.items():
        if name in schema.names and not check(schema.field(name).type):
            mistyped.append(f"{name} (expected {expected}, got {schema.field(name).type})")
    for name in schema.names:
        if name.endswith(ERROR_SUFFIX) and kind_of(schema.field(name).type) not in (
            "string",
            "null",
        ):
            mistyped.append(f"{name} (expected string, got {schema.field(name).type})")
    if mistyped:
        problems.append(f"mistyped columns: {', '.join(mistyped)}")
    problems += _nested_problems(schema)
    bands = [
        name
        for name in schema.names
        if name.endswith(METADATA_SUFFIX) and pa.types.is_struct(schema.field(name).type)
    ]
    if require_band_metadata and not bands:
        problems.append(
            "No '*_metadata' columns found: a readable collection needs at least one "
            "{band}_metadata struct column (parsed COG headers)"
        )
    for name in bands:
        missing_fields, mistyped_fields = _struct_problems(
            schema.field(name).type, BAND_METADATA_TYPE, REQUIRED_BAND_FIELDS
        )
        if missing_fields:
            problems.append(f"{name}: missing fields {missing_fields}")
        if mistyped_fields:
            problems.append(f"{name}: mistyped fields: {', '.join(mistyped_fields)}")
    return problems


def _nested_problems(schema: pa.Schema) -> list[str]:
    """Problems inside the ``bbox`` and ``assets`` structs."""
    problems = []
    if "bbox" in schema.names and pa.types.is_struct(schema.field("bbox").type):
        t = schema.field("bbox").type
        names = {t.field(i).name: t.field(i).type for i in range(t.num_fields)}
        missing = [k for k in ("xmin", "ymin", "xmax", "ymax") if k not in names]
        bad = [k for k, v in names.items() if k in ("xmin", "ymin", "xmax", "ymax")]
        bad = [k for k in bad if kind_of(names[k]) not in ("float", "integer")]
        if missing or bad:
            problems.append(f"bbox: missing fields {missing}, non-numeric fields {bad}")
    if "assets" in schema.names:
        t = schema.field("assets").type
        entries: list[tuple[str, pa.DataType]] = []
        if pa.types.is_struct(t):
            entries = [(t.field(i).name, t.field(i).type) for i in range(t.num_fields)]
        elif pa.types.is_map(t):
            entries = [("<map values>", t.item_type)]
        bad = [p for p in (_asset_problem(n, v) for n, v in entries) if p]
        if bad:
            problems.append(f"assets: malformed entries: {', '.join(bad)}")
    return problems


def _asset_problem(name: str, t: pa.DataType) -> str | None:
    """What is wrong with one asset entry type (``None`` when it is ``struct<href, ...>``)."""
    if not pa.types.is_struct(t):
        return f"{name} (expected struct<href, band_index>, got {t})"
    fields = {t.field(j).name: t.field(j).type for j in range(t.num_fields)}
    if kind_of(fields.get("href", pa.null())) != "string":
        return f"{name} (needs a string field 'href')"
    if "band_index" in fields and kind_of(fields["band_index"]) not in ("integer", "null"):
        return f"{name}.band_index (expected integer)"
    return None


def validate_table(
    table: pa.Table, *, source: str, require_band_metadata: bool = True, check_content: bool = True
) -> None:
    """Raise :class:`CollectionSchemaError` naming ``source`` unless ``table`` is a collection.

    With ``check_content`` (the default) a well-formed schema is followed by the content
    checks of :mod:`rasteret.index.content` (block arrays against the grid and the object
    size, dtypes, codecs, transforms, overviews), each problem naming record and band.
    """
    problems = schema_problems(table.schema, require_band_metadata=require_band_metadata)
    if "id" in table.column_names and table["id"].null_count:
        problems.append(f"column 'id' has {table['id'].null_count} null value(s)")
    if not problems and check_content:
        problems = content_problems(table)
    if problems:
        raise CollectionSchemaError(
            f"{source}: not a valid rasteret collection: " + "; ".join(problems)
        )
