"""Hostile cases that already held when issue 12 was filed, checked so that they keep holding
(docs/robustness.md): hostile .npy files, a cook killed while writing its cache, cooking a
read-only tree."""
import errno
import io
import os
import signal
import time

import fsspec
import numpy as np
import pytest

from eqegs_repo import BadSample, Repository
from tests.helpers.cooktrees import PROPOSAL, seeded_tree
from tests.helpers.treeutil import sample_arrays, write_tree


class _Trap:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def test_pickled_fortran_and_odd_dtype_npy_files(memroot, tmp_path):
    fs, root = memroot
    write_tree(fs, root, {"P": ["S1", "S2", "S3", "S4"]})
    counts = sample_arrays(0)[0][1]
    trap = tmp_path / "unpickled"
    pickled = np.empty(counts.shape, dtype=object)
    pickled[0, 0, 0] = _Trap(str(trap))
    fs.pipe(f"{root}/P/S1/train_integrated/sensor_1.npy", _npy(pickled))
    fs.pipe(f"{root}/P/S2/train_integrated/sensor_1.npy", _npy(np.asfortranarray(counts)))
    fs.pipe(f"{root}/P/S3/train_integrated/sensor_1.npy", _npy(counts.astype(np.complex64)))
    fs.pipe(f"{root}/P/S4/train_integrated/sensor_1.npy", _npy(counts.astype(">u4")))  # big-endian: fine
    prop = Repository(f"memory://{root}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)["P"]
    problems = prop.table().set_index("key")["problem"].to_dict()
    assert problems["S1"].endswith("sensor_1.npy: object arrays are refused; expected numeric counts, found object")
    assert problems["S2"].endswith("sensor_1.npy: Fortran-ordered arrays are not supported; expected C order")
    assert problems["S3"].endswith("sensor_1.npy: expected integer or float counts, found dtype complex64")
    assert problems["S4"] == ""
    assert np.array_equal(prop["S4"].raw.counts.values[1], counts)
    with pytest.raises(BadSample, match="object arrays are refused"):
        prop["S1"].raw
    assert not trap.exists()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return seeded_tree(tmp_path_factory.mktemp("robust_held"))


def test_a_cook_killed_while_writing_its_cache_leaves_a_correct_cache(tree):
    sample = tree[PROPOSAL]["S001"]
    expected = sample.cook("reconstruction", use_cache=False)
    folder = tree.cache.folder(sample.path, PROPOSAL, "S001", "reconstruction")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies while renaming its cache entry into place
        fs = tree.cache.fs
        fs.mv = lambda *args, **kwargs: os._exit(9)
        try:
            sample.cook("reconstruction")
        finally:
            os._exit(3)
    deadline = time.monotonic() + 120
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the cooking child hung")
        time.sleep(0.05)
    assert tree.cache.keys(folder) == []  # only a hidden temporary file is left
    again = sample.cook("reconstruction")
    np.testing.assert_array_equal(again.image.values, expected.image.values)
    assert tree.cache.keys(folder) == [again.attrs["fingerprint"]]


def test_a_read_only_tree_is_listed_and_cooked_with_the_cache_elsewhere(tree, tmp_path, monkeypatch):
    base = os.path.dirname(tree[PROPOSAL].path)
    local = type(fsspec.filesystem("file"))
    real_open, real_makedirs = local._open, local.makedirs

    def refuse(path):
        if str(path).startswith(base) and not str(path).startswith(f"{base}/.cache"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    def open_read_only(self, path, mode="rb", **kwargs):
        if "r" not in mode:
            refuse(path)
        return real_open(self, path, mode, **kwargs)

    def makedirs_read_only(self, path, exist_ok=False):
        refuse(path)
        return real_makedirs(self, path, exist_ok=exist_ok)

    monkeypatch.setattr(local, "_open", open_read_only)
    monkeypatch.setattr(local, "makedirs", makedirs_read_only)
    repo = Repository(tree.url, spice_url=tree.spice_url, cache_url=str(tmp_path / "user-cache"))
    assert repo[PROPOSAL].table()["problem"].eq("").all()
    ds = repo[PROPOSAL]["S001"].cook("q_integration")
    assert ds.sizes["q"] > 0 and repo[PROPOSAL]["S001"].cache_status()["q_integration"] == "fresh"
    with pytest.raises(OSError, match="Read-only file system"):  # the simulation holds
        fsspec.filesystem("file").pipe_file(f"{base}/x", b"")
