"""The Hugging Face Hub token, sent as ``huggingface_hub`` sends it.

A URL on the Hub's endpoint (``$HF_ENDPOINT``, else ``https://huggingface.co``: every
``hf://`` URL resolves there) is read with ``Authorization: Bearer <token>`` when a token
is found: ``$HF_TOKEN``, else ``$HUGGING_FACE_HUB_TOKEN``, else the token file that
``huggingface-cli login`` writes (``$HF_TOKEN_PATH``, else ``$HF_HOME/token``, else
``~/.cache/huggingface/token``) — unless ``$HF_HUB_DISABLE_IMPLICIT_TOKEN`` is set, or the
store options already carry an ``Authorization`` header. The token is read in each
process when the repository's store is built (never pickled, never logged); the Hub's
redirects to its CDN do not carry it (the HTTP clients drop it on a change of host).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rasteret.fetch.routing import hf_endpoint

_TRUE = frozenset({"1", "on", "true", "yes"})


def hub_token() -> str | None:
    """This process's Hugging Face token (module docs), or ``None``."""
    if os.environ.get("HF_HUB_DISABLE_IMPLICIT_TOKEN", "").strip().lower() in _TRUE:
        return None
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    home = os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface")
    path = os.environ.get("HF_TOKEN_PATH") or os.path.join(home, "token")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return value or None


def on_hub(url: str) -> bool:
    """Whether ``url`` is on the Hugging Face Hub's endpoint (``$HF_ENDPOINT``)."""
    endpoint = hf_endpoint()
    return url == endpoint or url.startswith(endpoint + "/")


def hub_headers(url: str, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``headers`` plus the Hub token's ``Authorization`` for a URL on the Hub, when a
    token is found and ``headers`` has no ``Authorization`` of its own."""
    out = dict(headers or {})
    if not on_hub(url) or any(k.lower() == "authorization" for k in out):
        return out
    token = hub_token()
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    return out
