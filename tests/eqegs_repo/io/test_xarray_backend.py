"""xr.open_dataset(sample_folder, engine="eqegs"): the lazy raw dataset of sample.raw."""
import importlib.metadata
import tomllib

import numpy as np
import pytest
import xarray as xr

from eqegs_repo import BadSample, Repository
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.io.xarray_backend import EqegsBackendEntrypoint
from tests.helpers import ROOT
from tests.helpers.treeutil import local_fs, write_sample


@pytest.fixture
def folder(tmp_path):
    """A tiny local sample folder (3 sensors of 4 x 2 px, 6 frames)."""
    path = tmp_path / "2025A1234" / "S1"
    sensors, velocity = write_sample(local_fs(), str(path), seed=3)
    return path, np.stack(sensors), velocity


def test_open_dataset_equals_sample_raw(folder):
    path, counts, velocity = folder
    ds = xr.open_dataset(path, engine=EqegsBackendEntrypoint)
    raw = Repository(f"{path.parent.parent}/{{proposal}}/{{sample}}")["2025A1234"]["S1"].raw
    xr.testing.assert_identical(ds.load(), raw.load())
    np.testing.assert_array_equal(ds.counts.values, counts)
    np.testing.assert_array_equal(ds.velocity.values, velocity)
    assert ds.counts.dims == ("sensor", "frame", "row", "col") and ds.attrs["n_frames"] == 6


def test_only_the_frames_asked_for_are_read(folder, monkeypatch):
    path, counts, _ = folder
    keys = []
    original = NpyFile.read
    monkeypatch.setattr(NpyFile, "read", lambda self, key=(): keys.append((self.path, key)) or original(self, key))
    ds = xr.open_dataset(str(path), engine=EqegsBackendEntrypoint)
    assert keys == []  # opening reads the headers only
    np.testing.assert_array_equal(ds.counts[:, 2:4].values, counts[:, 2:4])
    sensor_keys = [key for p, key in keys if "sensor_" in p]
    assert len(sensor_keys) == 3
    assert all(key[0] == slice(2, 4, 1) for key in sensor_keys), sensor_keys


def test_remote_folder_with_chunks_and_drop_variables(memroot):
    fs, root = memroot
    sensors, _ = write_sample(fs, f"{root}/P/S9", seed=5)
    ds = xr.open_dataset(f"memory://{root}/P/S9", engine=EqegsBackendEntrypoint, chunks={"frame": 2},
                         drop_variables=["velocity"])
    assert list(ds.data_vars) == ["counts"]
    assert ds.counts.chunks[1] == (2, 2, 2)
    np.testing.assert_array_equal(ds.counts.sum("frame").values, np.stack(sensors).sum(axis=1))


def test_guess_can_open_recognises_sample_folders_only(folder, tmp_path):
    path, _, _ = folder
    backend = EqegsBackendEntrypoint()
    assert backend.guess_can_open(path) and backend.guess_can_open(str(path))
    assert not backend.guess_can_open(path.parent)  # a proposal folder: no marker
    assert not backend.guess_can_open(path / "train_integrated.json")
    assert not backend.guess_can_open("s3://bucket/P/S1")  # remote: never guessed (no request)
    assert not backend.guess_can_open(b"bytes")


def test_bad_folders_name_the_file(folder, tmp_path):
    path, _, _ = folder
    with pytest.raises(BadSample, match=r"S404: the sample folder does not exist"):
        xr.open_dataset(tmp_path / "S404", engine=EqegsBackendEntrypoint)
    (path / "train_integrated" / "sensor_1.npy").unlink()
    with pytest.raises(BadSample, match=r"sensor_1.npy: file not found"):
        xr.open_dataset(path, engine=EqegsBackendEntrypoint)


def test_engine_name_eqegs_is_registered(folder):
    """The installed package carries the ``xarray.backends`` entry point pyproject.toml declares,
    and xarray finds the backend by name and by guessing. An install without it (made before the
    entry point was declared: ``pip install -e .`` again) fails here."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared["xarray.backends"]["eqegs"] == "eqegs_repo.io.xarray_backend:EqegsBackendEntrypoint"
    installed = importlib.metadata.entry_points(group="xarray.backends", name="eqegs")
    assert [entry.value for entry in installed] == [declared["xarray.backends"]["eqegs"]]
    assert isinstance(xr.backends.list_engines()["eqegs"], EqegsBackendEntrypoint)
    path, counts, _ = folder
    np.testing.assert_array_equal(xr.open_dataset(path, engine="eqegs").counts.values, counts)
    np.testing.assert_array_equal(xr.open_dataset(path).counts.values, counts)  # guessed
