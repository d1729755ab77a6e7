"""Regenerate the cold-start tables of ``docs/benchmarks.md`` from ``coldstart.py --json``.

    python benchmarks/make_table.py out.json                       # print the tables
    python benchmarks/make_table.py out.json --docs docs/benchmarks.md

The page keeps everything outside the ``<!-- coldstart:begin -->`` /
``<!-- coldstart:end -->`` markers; between them it gets the tables and the machine.
``coldstart.py --update-docs docs/benchmarks.md`` does the same at the end of a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from coldstart_report import machine_line, markdown

BEGIN, END = "<!-- coldstart:begin -->", "<!-- coldstart:end -->"


def block(report: dict[str, Any]) -> str:
    return f"{BEGIN}\n{markdown(report)}\n\n{machine_line(report)}\n{END}"


def update_page(page: Path, report: dict[str, Any]) -> None:
    """Replace the marked block of ``page`` (append it when the markers are absent)."""
    text = page.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block(report) + tail
    else:
        text = text.rstrip() + "\n\n" + block(report) + "\n"
    page.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="JSON written by coldstart.py --json")
    parser.add_argument("--docs", type=Path, help="page to update in place")
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    if args.docs:
        update_page(args.docs, report)
    else:
        print(block(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
