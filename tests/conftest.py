import sys
import uuid
from pathlib import Path

import fsspec
import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def memroot():
    """A fresh folder on fsspec's memory filesystem; removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/t{uuid.uuid4().hex}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)
