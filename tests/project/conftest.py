"""The documentation site, built once per run for the tests that read it (the pages as files in
test_docs_site.py, in a browser in test_site_browser.py, the pages of executed examples in
test_docs.py). Under pytest-xdist (the README's test command runs two workers) the first worker
that needs it builds it into the run's shared folder and the others wait for it and read it, so
the site is built once, not once per worker."""
import fcntl
import os

import pytest

from tests.helpers import ROOT
from tests.helpers.docsite import build


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The folder of the site built with ``mkdocs build --strict`` from the repository's mkdocs.yml."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("markdown_exec")
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, holding each worker's own (popen-gw0, ...)
    folder = shared / "built-site"
    with open(shared / "built-site.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / "returncode").exists():  # the first worker to come builds
            folder.mkdir(exist_ok=True)
            result = build(ROOT / "mkdocs.yml", folder / "site")
            (folder / "output.txt").write_text(result.stdout + result.stderr)
            (folder / "returncode").write_text(str(result.returncode))
    assert (folder / "returncode").read_text() == "0", (folder / "output.txt").read_text()
    return folder / "site"
