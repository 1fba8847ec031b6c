"""Every ```python block in docs/*.md runs, in order, one namespace per page.

Blocks may carry markdown-exec attributes (```python exec="on" source="above" ...: run at site
build time, output shown). A page whose every block has exec="on" is run by the strict site
build (the session's ``built_site``: a block that raises fails it, see test_docs_site.py), so
its test asks for that build rather than running the blocks a second time; without mkdocs and
markdown-exec its blocks run here. The blocks of every other page run here.
"""
import importlib.util
import re

import pytest

from tests.helpers import ROOT

DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```python(?:[ \t][^\n]*)?\n(.*?)^```", re.S | re.M)
OPENING = re.compile(r"^```python\b", re.M)
EXECUTED = re.compile(r'^```python[ \t][^\n]*\bexec="on"', re.M)


def run_by_the_site_build(text):
    """True when every ```python block of a page's ``text`` has exec="on" and the site can be
    built here (mkdocs and markdown-exec installed)."""
    every_block = len(EXECUTED.findall(text)) == len(OPENING.findall(text)) > 0
    return every_block and all(importlib.util.find_spec(name) for name in ("mkdocs", "markdown_exec"))


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_python_examples_in_docs_run(page, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"docs_{page[:-3]}"}
    text = (DOCS / page).read_text()
    blocks = BLOCK.findall(text)
    assert len(blocks) == len(OPENING.findall(text)), f"{page}: a ```python block was not recognised"
    if run_by_the_site_build(text):
        site = request.getfixturevalue("built_site")  # built with --strict: every block ran without error
        assert (site / ("index.html" if page == "index.md" else f"{page[:-3]}/index.html")).exists()
        return
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page}[block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page}, python block {i} failed: {exc!r}\n{code}") from exc


def test_blocks_with_markdown_exec_attributes_are_found():
    text = '```python exec="on" source="above" session="x"\nprint(1)\n```\n\n```python\nprint(2)\n```\n'
    assert BLOCK.findall(text) == ["print(1)\n", "print(2)\n"]
    assert BLOCK.findall("```pycon\n>>> 1\n```\n") == []
    assert not run_by_the_site_build(text)  # one block without exec="on": the page runs here
    assert run_by_the_site_build(text.replace("```python\n", '```python exec="on"\n')) == bool(
        importlib.util.find_spec("mkdocs") and importlib.util.find_spec("markdown_exec"))
    assert not run_by_the_site_build("No code.\n")
