"""Where rasteret keeps the collections it builds: the workspace directory.

``workspace_dir`` argument, else ``$RASTERET_WORKSPACE``, else ``~/rasteret_workspace``.
Builds and caches live here (:mod:`rasteret.ingest.workspace`); collections loaded from
here are rasteret's own builds, so their local hrefs are trusted
(:mod:`rasteret.index.local_access`).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_WORKSPACE = "~/rasteret_workspace"


def workspace_root(workspace_dir: str | os.PathLike[str] | None = None) -> Path:
    """The workspace: argument, else ``$RASTERET_WORKSPACE``, else ``~/rasteret_workspace``."""
    root = workspace_dir or os.environ.get("RASTERET_WORKSPACE") or DEFAULT_WORKSPACE
    return Path(root).expanduser()
