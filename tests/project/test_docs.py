"""Every ```python block in docs/*.md runs, in order, one namespace per page.

Blocks may carry markdown-exec attributes (```python exec="on" source="above" ...: run at site
build time, output shown); they are run here all the same.
"""
import re

import pytest

from tests.helpers import ROOT

DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```python(?:[ \t][^\n]*)?\n(.*?)^```", re.S | re.M)
OPENING = re.compile(r"^```python\b", re.M)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_python_examples_in_docs_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"docs_{page[:-3]}"}
    text = (DOCS / page).read_text()
    blocks = BLOCK.findall(text)
    assert len(blocks) == len(OPENING.findall(text)), f"{page}: a ```python block was not recognised"
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page}[block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page}, python block {i} failed: {exc!r}\n{code}") from exc


def test_blocks_with_markdown_exec_attributes_are_found():
    text = '```python exec="on" source="above" session="x"\nprint(1)\n```\n\n```python\nprint(2)\n```\n'
    assert BLOCK.findall(text) == ["print(1)\n", "print(2)\n"]
    assert BLOCK.findall("```pycon\n>>> 1\n```\n") == []
