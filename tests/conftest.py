import sys
import uuid

import fsspec
import pytest

from tests.helpers import ROOT


@pytest.fixture
def memroot():
    """A fresh folder on fsspec's memory filesystem; removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/t{uuid.uuid4().hex}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)


@pytest.fixture(scope="session")
def eqegs_engine(tmp_path_factory):
    """Make xarray's ``eqegs`` engine available as pyproject.toml declares it.

    An editable install made before the entry point was added has no such entry point until
    ``pip install -e .`` runs again; then a throw-away dist-info holding the declaration of
    pyproject.toml is put on sys.path for the session. Yields the declared ``module:Class``.
    """
    import tomllib

    import xarray as xr

    table = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = table["project"]["entry-points"]["xarray.backends"]["eqegs"]
    if "eqegs" in xr.backends.list_engines():
        yield declared
        return
    dist = tmp_path_factory.mktemp("site") / "eqegs_engine_probe-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: eqegs-engine-probe\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[xarray.backends]\neqegs = {declared}\n")
    sys.path.insert(0, str(dist.parent))
    xr.backends.refresh_engines()
    try:
        yield declared
    finally:
        sys.path.remove(str(dist.parent))
        xr.backends.refresh_engines()
