"""Docstrings, comments and messages of eqegs_repo/ and spice/ cite the project's own pages.

A citation is ``docs/<page>.md`` or ``docs/<page>.md#<anchor>``; the page must exist under docs/
and the anchor must be one of its headings (as the site's table of contents slugs them). Documents
outside the repository (the shared ``PHYSICS.md`` and ``DESIGN.md``, numbered sections of the
app's manual, any ``§``) are never cited: a reader of the code cannot follow them.
"""
import re

import pytest

from tests.helpers import ROOT

markdown = pytest.importorskip("markdown")

DOCS = ROOT / "docs"
SOURCES = ("eqegs_repo", "spice")
OUTSIDE = re.compile(r"PHYSICS\.md|DESIGN\.md|manual\s*§|§")
CITATION = re.compile(r"docs/([\w./-]+?\.md)(?:#([\w-]+))?")


def page_anchors(page):
    """The heading ids of a docs page, as mkdocs' ``toc`` extension makes them."""
    md = markdown.Markdown(extensions=["toc", "fenced_code", "tables"])
    # fences with markdown-exec options (```python exec="on" ...) as plain fences
    md.convert(re.sub(r"^(```+)[^`\n]*$", r"\1", page.read_text(encoding="utf-8"), flags=re.M))

    def walk(tokens):
        for token in tokens:
            yield token["id"]
            yield from walk(token["children"])

    return set(walk(md.toc_tokens))


def citation_problems(text, where, docs=DOCS, _anchors={}):
    """One message per outside citation or broken ``docs/...`` citation in ``text``."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in OUTSIDE.finditer(line):
            problems.append(f"{where}:{number}: cites {match.group(0)!r}, a document outside the "
                            f"repository; cite docs/<page>.md#<anchor>: {line.strip()}")
        for match in CITATION.finditer(line):
            page_name, anchor = match.groups()
            page = docs / page_name
            if not page.is_file():
                problems.append(f"{where}:{number}: cites docs/{page_name}, which does not exist")
                continue
            if anchor is not None:
                key = (str(page), page.stat().st_mtime_ns)
                if key not in _anchors:
                    _anchors[key] = page_anchors(page)
                if anchor not in _anchors[key]:
                    problems.append(f"{where}:{number}: cites docs/{page_name}#{anchor}, but that page "
                                    f"has no heading with this anchor; it has "
                                    f"{', '.join(sorted(_anchors[key]))}")
    return problems


def source_files():
    return sorted(p for folder in SOURCES for p in (ROOT / folder).rglob("*.py"))


def test_the_package_cites_only_existing_project_pages():
    files = source_files()
    assert len(files) > 40
    problems = [problem for path in files
                for problem in citation_problems(path.read_text(encoding="utf-8"),
                                                 path.relative_to(ROOT))]
    assert not problems, "\n".join(problems)


def test_the_package_cites_the_physics_page():
    cited = {match.group(0) for path in source_files()
             for match in CITATION.finditer(path.read_text(encoding="utf-8"))}
    for citation in ("docs/physics.md#parameters", "docs/physics.md#q-integration",
                     "docs/physics.md#energy-spectrum-and-isf", "docs/physics.md#forward-model"):
        assert citation in cited


def test_docs_pages_do_not_cite_the_shared_notes():
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"PHYSICS\.md|DESIGN\.md", text), f"{page.relative_to(ROOT)} cites a shared note"


@pytest.mark.parametrize("text, named", [
    ('"""Q integration (PHYSICS.md §3.2)."""', "PHYSICS.md"),
    ("# see DESIGN.md", "DESIGN.md"),
    ('"""Zip name (manual §6.3)."""', "manual §"),
    ('"""Steps 1-6 of §3.3."""', "§"),
    ('"""See docs/no-such-page.md."""', "docs/no-such-page.md, which does not exist"),
    ('"""See docs/physics.md#no-such-anchor."""', "physics.md#no-such-anchor"),
])
def test_outside_or_broken_citations_are_reported(text, named):
    problems = citation_problems(text, "x.py")
    assert problems and named in problems[0] and problems[0].startswith("x.py:1:")


def test_existing_citations_pass_and_anchors_follow_the_headings():
    text = ('"""See docs/physics.md#q-integration, docs/physics.md#type-sensor_layout,\n'
            'docs/outputs.md#naming-choices and docs/spice.md."""')
    assert citation_problems(text, "x.py") == []
    anchors = page_anchors(DOCS / "physics.md")
    assert {"the-measurement", "forward-model", "app-conventions", "type-e_spectrum"} <= anchors
