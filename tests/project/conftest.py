"""The documentation site, built once per session for the tests that read it (the pages as
files in test_docs_site.py, in a browser in test_site_browser.py, the pages of executed
examples in test_docs.py). Under pytest-xdist (``-n 2 --dist loadgroup``, the README's test
command) every test using it runs on one worker (the ``xdist_group`` "built_site"), so the
site is built once, not once per worker."""
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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if "built_site" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("built_site"))
