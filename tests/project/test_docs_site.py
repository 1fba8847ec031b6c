"""The documentation site (mkdocs.yml over docs/) builds with --strict, and a broken link fails it.

Skipped only when mkdocs or markdown-exec is not installed (both are in the ``test`` and ``docs``
extras). Without the material theme the build uses mkdocs' default theme, so the check still runs.
"""
import re
import shutil

import pytest

from tests.helpers import ROOT
from tests.helpers.docsite import build

pytest.importorskip("mkdocs")
pytest.importorskip("markdown_exec")


def copy_site_sources(tmp_path):
    """A copy of mkdocs.yml and docs/ whose blocks are not executed (a faster build)."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    for page in (tmp_path / "docs").glob("*.md"):
        page.write_text(page.read_text().replace(' exec="on"', ""))
    return tmp_path / "mkdocs.yml"


def test_site_builds_strict_with_every_page_and_figure(built_site):
    pages = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    for page in pages:
        target = built_site / ("index.html" if page == "index" else f"{page}/index.html")
        assert target.exists(), f"docs/{page}.md was not built"
    assert (built_site / "figures" / "q-integration.png").exists()
    # the API reference is generated from the docstrings, reST roles shown as plain code
    for room, name in [("kernels", "isf_from_spectra"), ("params", "StepParameters"),
                       ("spice", "ResolvedView"), ("cooking", "Cooker")]:
        html = (built_site / "api" / room / "index.html").read_text()
        assert f'.{name}"' in html, f"{name} has no heading in api/{room}"
        assert ":func:" not in html and ":class:" not in html


def test_executed_blocks_show_their_output_and_formulas_are_not_links(built_site):
    started = (built_site / "getting-started" / "index.html").read_text()
    assert "Dimensions:" in started and "Data variables:" in started  # print(raw), run at build
    spice_page = (built_site / "spice" / "index.html").read_text()
    assert "written r1" in spice_page and "poni_version: 2.1" in spice_page
    synthetic = (built_site / "synthetic" / "index.html").read_text()
    assert "<code>𝒯[ρ](δ) = " in synthetic and 'href="δ"' not in synthetic
    assert "stylesheets/extra.css" in started and (built_site / "stylesheets" / "extra.css").exists()


# The build's self-tests share one build of a copy with every defect below, each on its own page
# (one strict build reports every warning before it aborts): each test asserts that the build
# failed and that a warning names its own defect.
DEFECTS = {"failing block": ("formats.md", '```python exec="on"\nraise ValueError("no such sample S999")\n```', "S999"),
           "missing page": ("glossary.md", "See [gone](no-such-page.md).", "no-such-page.md"),
           "missing image": ("layout.md", "See ![gone](figures/no-such.png).", "figures/no-such.png"),
           "missing anchor": ("configuration.md", "See [gone](tutorial.md#no-such-section).", "no-such-section")}


@pytest.fixture(scope="module")
def broken_build(tmp_path_factory):
    """(returncode, stdout + stderr) of ``mkdocs build --strict`` of a copy with every defect of DEFECTS and
    a page missing from the nav (orphan.md)."""
    base = tmp_path_factory.mktemp("broken")
    config = copy_site_sources(base)
    for page, text, _ in DEFECTS.values():
        path = base / "docs" / page
        path.write_text(path.read_text() + f"\n{text}\n")
    (base / "docs" / "orphan.md").write_text("# Orphan\n")
    result = build(config, base / "site")
    return result.returncode, result.stdout + result.stderr


def test_a_failing_executed_block_fails_the_build(broken_build):
    returncode, output = broken_build
    assert returncode != 0
    assert "WARNING -  markdown_exec: Execution of python code block exited with errors" in output
    assert "S999" in output


@pytest.mark.parametrize("defect", ["missing page", "missing image", "missing anchor"])
def test_a_broken_reference_fails_the_build(broken_build, defect):
    returncode, output = broken_build
    page, _, named = DEFECTS[defect]
    assert returncode != 0
    assert any(named in line and page in line for line in output.splitlines() if "WARNING" in line), output


def test_a_page_missing_from_the_nav_fails_the_build(broken_build):
    returncode, output = broken_build
    assert returncode != 0
    assert re.search(r'WARNING .*not included in the "nav" configuration:\n(  - .*\n)*  - orphan\.md\n', output), output
