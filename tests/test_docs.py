"""The documentation's code runs: every ```` ```python ```` block of the pages below.

Blocks of one page run in order in one namespace, in a fresh directory with ``HOME``
pointing there (so ``~/rasteret_workspace`` is private to the test). Pages that show
code needing the network or credentials use ```` ```py ```` fences for those blocks:
highlighted the same, not executed here. Also checks that every page is in the nav
(``mkdocs build --strict`` checks the links and the API reference targets).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXECUTED = ["index.md", "building.md", "collections.md", "migrating.md", "notebooks.md"]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: str) -> list[str]:
    return FENCE.findall((DOCS / page).read_text())


@pytest.mark.parametrize("page", EXECUTED)
def test_page_code_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page)
    assert blocks, f"{page} has no ```python block to run"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RASTERET_WORKSPACE", raising=False)
    pytest.importorskip("matplotlib").use("Agg")
    namespace: dict[str, object] = {"__name__": f"docs_{page.removesuffix('.md')}"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"docs/{page} block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"docs/{page}, python block {number} failed:\n{block}") from exc


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    missing = [page for page in pages if f": {page}" not in nav]
    assert not missing, f"pages not in mkdocs.yml nav: {missing}"
