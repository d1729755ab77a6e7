"""The result of :meth:`Collection.describe`: a dict with a text and an HTML view."""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from typing import Any


class DescribeResult(Mapping[str, Any]):
    """A read-only summary of a collection.

    ``.data`` is a plain dict (``name, records, bands, bounds, crs, dates, source``
    and, when builds recorded failures, ``errors``: ``{band: failed records}``);
    ``result["bands"]`` indexes it; ``repr()`` is a two-column text table and
    ``_repr_html_()`` an HTML table for notebooks.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def _rows(self) -> list[tuple[str, str]]:
        return [(key, _format(value)) for key, value in self.data.items()]

    def __repr__(self) -> str:
        rows = self._rows()
        width = max((len(k) for k, _ in rows), default=0)
        title = f"Collection summary: {self.data.get('name') or '(unnamed)'}"
        lines = [title, "-" * len(title)]
        lines += [f"{key.ljust(width)}  {value}" for key, value in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._rows()
        )
        return f"<table class='rasteret-describe'>{body}</table>"


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple) and value and all(isinstance(v, float) for v in value):
        return "(" + ", ".join(f"{v:.6g}" for v in value) + ")"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) if value else "-"
    return str(value)
