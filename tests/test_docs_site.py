"""The documentation site (mkdocs.yml over docs/) builds with --strict, and a broken link fails it.

Skipped only when mkdocs is not installed (it is in the ``test`` and ``docs`` extras). Without
the material theme the build uses mkdocs' default theme, so the check still runs.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")

ROOT = Path(__file__).resolve().parent.parent


def build(config, site):
    """Run ``mkdocs build --strict``; returns the CompletedProcess (output in .stdout)."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    if importlib.util.find_spec("material") is None:
        command += ["-t", "mkdocs"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, stdin=subprocess.DEVNULL)


def copy_site_sources(tmp_path):
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    return tmp_path / "mkdocs.yml"


def test_site_builds_strict_with_every_page_and_figure(tmp_path):
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    pages = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    for page in pages:
        target = tmp_path / "site" / ("index.html" if page == "index" else f"{page}/index.html")
        assert target.exists(), f"docs/{page}.md was not built"
    tutorial = (tmp_path / "site" / "tutorial" / "index.html").read_text()
    assert "../figures/api-isf.png" in tutorial
    assert (tmp_path / "site" / "figures" / "api-isf.png").exists()
    # the API reference is generated from the docstrings, reST roles shown as plain code
    for room, name in [("steps", "isf_from_spectra"), ("params", "StepParameters"),
                       ("spice", "ResolvedView"), ("cooking", "Cooker")]:
        html = (tmp_path / "site" / "api" / room / "index.html").read_text()
        assert f'.{name}"' in html, f"{name} has no heading in api/{room}"
        assert ":func:" not in html and ":class:" not in html


@pytest.mark.parametrize("link, named", [("[gone](no-such-page.md)", "no-such-page.md"),
                                         ("![gone](figures/no-such.png)", "figures/no-such.png"),
                                         ("[gone](tutorial.md#no-such-section)", "no-such-section")])
def test_a_broken_reference_fails_the_build(tmp_path, link, named):
    config = copy_site_sources(tmp_path)
    page = tmp_path / "docs" / "tutorial.md"
    page.write_text(page.read_text() + f"\nSee {link}.\n")
    result = build(config, tmp_path / "site")
    assert result.returncode != 0
    assert named in result.stdout + result.stderr


def test_a_page_missing_from_the_nav_fails_the_build(tmp_path):
    config = copy_site_sources(tmp_path)
    (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n")
    result = build(config, tmp_path / "site")
    assert result.returncode != 0 and "orphan.md" in result.stdout + result.stderr
