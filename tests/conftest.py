import uuid

import fsspec
import pytest


@pytest.fixture
def memroot():
    """A fresh folder on fsspec's memory filesystem; removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/t{uuid.uuid4().hex}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)
