"""The documentation site, built once per session for the tests that read it (the pages as
files in test_docs_site.py, in a browser in test_site_browser.py)."""
import pytest

from tests.helpers import ROOT
from tests.helpers.docsite import build


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The folder of the site built with ``mkdocs build --strict`` from the repository's mkdocs.yml."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("markdown_exec")
    site = tmp_path_factory.mktemp("built") / "site"
    result = build(ROOT / "mkdocs.yml", site)
    assert result.returncode == 0, result.stdout + result.stderr
    return site
