"""The raw-data seam: a format declared outside the package (here a toy, every array of a run in
one ``train_integrated.npz``), registered through the same registry the entry points feed, lists,
``info()``s, opens lazily, fingerprints and cooks like the npy copy of the same data."""
import os
import pickle
import zipfile

import numpy as np
import pytest
import xarray as xr

from eqegs_repo.errors import BadInput, BadSample
from eqegs_repo.io import formats
from eqegs_repo.io.frames import FrameSource, ValueSource
from eqegs_repo.io.run import open_run
from tests.helpers.cooktrees import PROPOSAL, seeded_tree

NPZ_NAME = "train_integrated.npz"


class NpzArray:
    """One array of the toy's ``.npz`` file (a :class:`FrameSource`): its header is read when
    opened, the whole array on first read."""

    loads = []  # keys of the arrays read, for the tests

    def __init__(self, fs, file, key):
        self.fs, self.file, self.key = fs, file, key
        self.path = f"{file}[{key}]"
        self._array = None
        with fs.open(file, "rb") as f, zipfile.ZipFile(f) as archive:
            if f"{key}.npy" not in archive.namelist():
                raise BadSample(f"{file}: no array {key!r}; found {archive.namelist()}")
            with archive.open(f"{key}.npy") as member:
                np.lib.format.read_magic(member)
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        self.shape, self.dtype = shape, dtype
        self.nbytes = int(np.prod(shape)) * dtype.itemsize

    def _load(self):
        if self._array is None:
            NpzArray.loads.append(self.key)
            with self.fs.open(self.file, "rb") as f, np.load(f) as npz:
                self._array = npz[self.key]
        return self._array

    def __getstate__(self):
        return {**self.__dict__, "_array": None}

    def read(self, key=()):
        return np.asarray(self._load()[key])

    def read_frames(self, start, stop, out=None):
        frames = self._load()[start:stop]
        if out is None:
            return np.ascontiguousarray(frames)
        out[...] = frames
        return out

    def prefetch(self, start, stop):
        return False


class NpzFormat:
    """The toy format: ``<sample>/train_integrated.npz`` holds ``sensor_<k>`` and ``velocity``."""

    name = "toy-npz"

    def guess_can_open(self, fs, folder, names, marker, layout):
        return NPZ_NAME in names

    def run_files(self, fs, folder, marker, layout):
        return [f"{folder}/{NPZ_NAME}"]

    def open_frames(self, fs, folder, marker, layout):
        file = f"{folder}/{NPZ_NAME}"
        sensors = [NpzArray(fs, file, f"sensor_{k}") for k in range(marker["n_sensors"])]
        return sensors, NpzArray(fs, file, "velocity")


@pytest.fixture
def toy_format():
    fmt = formats.register_format(NpzFormat())
    yield fmt
    formats.unregister_format(fmt.name)


def npz_copy(npy_folder, folder):
    """The run of ``npy_folder`` rewritten as the toy format in ``folder`` (marker copied)."""
    os.makedirs(folder)
    raw = f"{npy_folder}/train_integrated"
    arrays = {name[:-4]: np.load(f"{raw}/{name}") for name in os.listdir(raw)}
    np.savez(f"{folder}/{NPZ_NAME}", **arrays)
    with open(f"{npy_folder}/train_integrated.json", "rb") as src, \
            open(f"{folder}/train_integrated.json", "wb") as dst:
        dst.write(src.read())
    return arrays


def test_a_registered_format_lists_opens_fingerprints_and_cooks_like_npy(tmp_path, toy_format):
    repo = seeded_tree(tmp_path)
    arrays = npz_copy(f"{tmp_path}/{PROPOSAL}/S001", f"{tmp_path}/{PROPOSAL}/S002")
    prop = repo[PROPOSAL]
    assert "S002" in prop.keys()
    npy, npz = prop["S001"], prop["S002"]
    run = open_run(npz.fs, npz.path, npz.marker, npz.layout)
    assert run.format is toy_format and run.files == [f"{npz.path}/{NPZ_NAME}"]
    assert open_run(npy.fs, npy.path, npy.marker, npy.layout).format is formats.raw_formats()["npy"]

    info = npz.info()
    size = os.path.getsize(f"{npz.path}/{NPZ_NAME}")
    assert info["files"] == {NPZ_NAME: size} and info["raw_bytes"] == size
    row = prop.table().set_index("key").loc["S002"]
    assert row["problem"] == "" and row["dtype"] == str(arrays["sensor_0"].dtype)

    NpzArray.loads.clear()
    raw = npz.raw                                          # lazy: headers only
    assert raw.counts.shape == npy.raw.counts.shape and NpzArray.loads == []
    np.testing.assert_array_equal(raw.counts[1, 10:20].values, arrays["sensor_1"][10:20])
    assert NpzArray.loads == ["sensor_1"]
    np.testing.assert_array_equal(raw.velocity.values, arrays["velocity"])
    xr.testing.assert_identical(xr.open_dataset(npz.path, engine="eqegs"), npz.raw)

    cooked_npy, cooked_npz = npy.cook("e_spectrum_and_isf"), npz.cook("e_spectrum_and_isf")
    for name in list(cooked_npy.data_vars) + list(cooked_npy.coords):
        np.testing.assert_array_equal(cooked_npz[name].values, cooked_npy[name].values, err_msg=name)
    assert cooked_npz.attrs["fingerprint"] != cooked_npy.attrs["fingerprint"]  # other files

    # the fingerprint follows the toy's file: rewrite it with other counts, the key changes
    key = npz.cook("reconstruction").attrs["fingerprint"]
    assert npz.cache_status()["reconstruction"] == "fresh"
    arrays["sensor_0"][:, 0, 0] += 1
    np.savez(f"{npz.path}/{NPZ_NAME}", **arrays)
    os.utime(f"{npz.path}/{NPZ_NAME}", ns=(1, 1))
    assert npz.cache_status()["reconstruction"] == "stale"
    assert prop["S002"].cook("reconstruction").attrs["fingerprint"] != key


def test_the_sources_pickle_and_follow_the_declared_interface(tmp_path, toy_format):
    repo = seeded_tree(tmp_path)
    npz_copy(f"{tmp_path}/{PROPOSAL}/S001", f"{tmp_path}/{PROPOSAL}/S002")
    for key in ("S001", "S002"):
        s = repo[PROPOSAL][key]
        run = open_run(s.fs, s.path, s.marker, s.layout)
        assert all(isinstance(f, FrameSource) for f in run.stack.files)
        assert isinstance(run.velocity, ValueSource)
        again = pickle.loads(pickle.dumps(run.stack))
        np.testing.assert_array_equal(again.read((slice(None), slice(3, 5))),
                                      run.stack.read((slice(None), slice(3, 5))))


def test_a_format_s_arrays_are_checked_against_the_marker(tmp_path, toy_format):
    repo = seeded_tree(tmp_path)
    arrays = npz_copy(f"{tmp_path}/{PROPOSAL}/S001", f"{tmp_path}/{PROPOSAL}/S002")
    np.savez(f"{tmp_path}/{PROPOSAL}/S002/{NPZ_NAME}", **{**arrays, "velocity": arrays["velocity"][:-1]})
    sample = repo[PROPOSAL]["S002"]
    with pytest.raises(BadSample, match=r"train_integrated.npz\[velocity\]: expected a velocity array of shape"):
        sample.raw
    assert "train_integrated.npz[velocity]" in repo[PROPOSAL].table().set_index("key").loc["S002", "problem"]


def test_the_registry_refuses_a_second_format_of_a_name_and_an_incomplete_one(toy_format):
    assert list(formats.raw_formats())[:2] == ["npy", "hdf5"] and "toy-npz" in formats.raw_formats()
    with pytest.raises(BadInput, match="'toy-npz' is already registered"):
        formats.register_format(NpzFormat())
    with pytest.raises(BadInput, match="missing run_files, open_frames"):
        formats.register_format(type("Half", (), {"name": "half", "guess_can_open": None})())
    formats.unregister_format("toy-npz")
    assert list(formats.raw_formats()) == ["npy", "hdf5"]
    formats.register_format(NpzFormat())                    # the fixture removes this one


def test_a_registered_format_is_asked_before_the_built_in_npy(tmp_path, toy_format):
    repo = seeded_tree(tmp_path)
    folder = f"{tmp_path}/{PROPOSAL}/S001"
    arrays = npz_copy(folder, f"{tmp_path}/{PROPOSAL}/S002")
    np.savez(f"{folder}/{NPZ_NAME}", **{**arrays, "velocity": -arrays["velocity"]})  # beside the .npy files
    s = repo[PROPOSAL]["S001"]
    assert open_run(s.fs, s.path, s.marker, s.layout).format is toy_format
    np.testing.assert_array_equal(s.raw.velocity.values, -arrays["velocity"])


def test_a_folder_no_format_claims_is_read_as_npy_and_names_the_missing_file(tmp_path, toy_format):
    repo = seeded_tree(tmp_path)
    os.rename(f"{tmp_path}/{PROPOSAL}/S001/train_integrated", f"{tmp_path}/{PROPOSAL}/S001/elsewhere")
    with pytest.raises(BadSample, match=r"S001/train_integrated/sensor_0.npy: file not found"):
        repo[PROPOSAL]["S001"].raw
