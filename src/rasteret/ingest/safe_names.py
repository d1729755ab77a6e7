"""Collection names that are safe to use as one directory name inside the workspace.

A build named ``name`` writes ``<workspace>/<name>_records/``, so a name is a path
component chosen by whoever calls the API (or whatever table/catalog supplies it).
:func:`safe_collection_name` refuses every name that could leave the workspace or
mean something else to the file system: path separators (``/`` and ``\\``), ``.`` and
``..``, absolute or drive paths (``C:``), NUL and other control characters, Windows
device names (``CON``, ``NUL``, ``COM1``...) and names too long for a file name.
"""

from __future__ import annotations

import re

from rasteret.errors import RasteretError

#: Longest name accepted (the directory adds ``_records`` / ``_stac``; 255 is the usual limit).
MAX_NAME_LENGTH = 200
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\:]")


class UnsafeNameError(RasteretError, ValueError):
    """A collection name that could escape the workspace or is not a portable file name."""


def safe_collection_name(name: str) -> str:
    """Return ``name`` unchanged if it is one safe path component, else raise UnsafeNameError.

    ``""`` is accepted (it means "no name": an in-memory build or the default name).
    """
    if not isinstance(name, str):
        raise UnsafeNameError(f"collection name must be a string, not {type(name).__name__}")
    if name == "":
        return name
    problem = _problem(name)
    if problem is not None:
        raise UnsafeNameError(
            f"collection name {name!r} {problem}: use letters, digits, '-', '_' and '.' "
            "(the name becomes one directory inside the workspace)"
        )
    return name


def _problem(name: str) -> str | None:
    if name.strip(" .") == "":
        return "is only dots or spaces"
    found = _FORBIDDEN.search(name)
    if found is not None:
        return (
            f"contains {found.group()!r} (path separators, ':' and control characters are refused)"
        )
    if name != name.strip() or name.endswith("."):
        return "starts or ends with a space, or ends with a dot"
    if name.split(".")[0].lower() in _WINDOWS_DEVICES:
        return "is a reserved device name on Windows"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    return None
