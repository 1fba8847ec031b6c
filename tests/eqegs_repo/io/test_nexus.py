"""eqegs_repo.io.nexus: a tree of groups and fields written through a temporary file, read back."""
import os

import numpy as np
import pytest

pytest.importorskip("h5py")

import h5py  # noqa: E402

from eqegs_repo.errors import BadInput, ResultExists  # noqa: E402
from eqegs_repo.io.nexus import Field, Group, check_writable, read_nexus, tree_text, write_nexus  # noqa: E402


def _entry():
    data = Group("NXdata", {"I": Field(np.array([3.0, 2.0, 1.0]), "counts"),
                            "I_errors": Field(np.array([0.3, 0.2, 0.1]), "counts"),
                            "q": Field(np.array([10.0, 11.0, 12.0]), "1/nm"),
                            "label": Field(["a", "b", "é"])},
                 {"signal": "I", "axes": ["q"]})
    return Group("NXentry", {"title": Field("ünïcode title"), "data": data}, {"default": "data"})


def test_written_tree_reads_back_with_h5py_and_read_nexus(tmp_path):
    path = write_nexus(tmp_path / "a.nxs", {"entry": _entry()})
    with h5py.File(path, "r") as f:
        assert f.attrs["NX_class"] == "NXroot" and f.attrs["default"] == "entry"
        assert f["entry"].attrs["NX_class"] == "NXentry"
        assert f["entry/data"].attrs["signal"] == "I"
        assert list(f["entry/data"].attrs["axes"]) == ["q"]
        assert f["entry/data/q"].attrs["units"] == "1/nm"
        assert np.array_equal(f["entry/data/I"][()], [3.0, 2.0, 1.0])
        assert h5py.check_string_dtype(f["entry/title"].dtype).encoding == "utf-8"
        assert f["entry/title"].asstr()[()] == "ünïcode title"
    root = read_nexus(path)
    assert root["entry/data/label"].value == ["a", "b", "é"]
    assert root["entry/data/I_errors"].units == "counts"
    assert root["entry/data"].attrs["axes"] == ["q"]
    assert "I float64 (3,) [counts]" in tree_text(root)


def test_existing_file_refused_unless_overwrite(tmp_path):
    path = tmp_path / "a.nxs"
    path.write_bytes(b"keep me")
    with pytest.raises(ResultExists, match="exists; pass overwrite=True"):
        write_nexus(path, {"entry": _entry()})
    assert path.read_bytes() == b"keep me"
    write_nexus(path, {"entry": _entry()}, overwrite=True)
    assert read_nexus(path)["entry/title"].value == "ünïcode title"


def test_failing_write_leaves_no_file(tmp_path):
    bad = Group("NXentry", {"ok": Field(np.arange(3), "1"), "x": Field(np.arange(3))})  # no units
    with pytest.raises(BadInput, match="x: a number without units"):
        write_nexus(tmp_path / "bad.nxs", {"entry": bad})
    assert os.listdir(tmp_path) == []


def test_bad_paths_named(tmp_path):
    with pytest.raises(BadInput, match="only local paths"):
        check_writable("memory://x/a.nxs")
    with pytest.raises(BadInput, match="folder .* does not exist"):
        check_writable(tmp_path / "no" / "a.nxs")
    with pytest.raises(BadInput, match="it is a folder"):
        check_writable(tmp_path, overwrite=True)
    (tmp_path / "text.nxs").write_text("not hdf5")
    with pytest.raises(BadInput, match="not an HDF5"):
        read_nexus(tmp_path / "text.nxs")


def test_file_appearing_during_the_write_is_kept(tmp_path, monkeypatch):
    """Of two writers of one file, the second's move refuses (a hard link never replaces): the file
    that appeared after the check stays as it is, and no temporary file is left."""
    path = tmp_path / "a.nxs"
    path.write_bytes(b"the other writer's file")
    monkeypatch.setattr("eqegs_repo.io.nexus.check_writable", lambda p, overwrite=False: str(p))
    with pytest.raises(ResultExists, match="appeared while it was written"):
        write_nexus(path, {"entry": _entry()})
    assert path.read_bytes() == b"the other writer's file"
    assert os.listdir(tmp_path) == ["a.nxs"]
