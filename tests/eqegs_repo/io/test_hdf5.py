"""The HDF5 raw-data format: a simulated tree written as HDF5 lists, cooks, exports and
reanalyses exactly like its npy twin (same seed: the same counts), in every variant of the layout
(one dataset per sensor or one stacked dataset; the marker in JSON or as the file's attributes;
Zstd, LZ4, bitshuffle, gzip), and its arrays are read lazily, chunk by chunk."""
import json
import os
import pickle

import numpy as np
import pytest
import xarray as xr

from eqegs_repo import Repository
from eqegs_repo.cooking import passes
from eqegs_repo.io import formats
from eqegs_repo.io.formats import hdf5
from eqegs_repo.io.run import open_run
from eqegs_repo.simulate import demo, synthetic

h5py = pytest.importorskip("h5py")
pytest.importorskip("hdf5plugin")

PROPOSAL = "2025A1234"
VARIANTS = {
    "zstd, one dataset per sensor, JSON marker": dict(compression="zstd"),
    "bitshuffle, stacked, marker as attributes": dict(compression="bitshuffle", stacked=True, json_marker=False),
    "lz4": dict(compression="lz4"),
    "gzip": dict(compression="gzip"),
}


def write_twin(base, fmt, **hdf5):
    """One background run and one sample, tiny preset, seed 3, in format ``fmt``; spice seeded."""
    params = synthetic.preset_params("tiny", n_frames=256)
    folder = f"{base}/{PROPOSAL}"
    synthetic.write_sample(f"{folder}/S000_noise", params, seed=11, background=True, format=fmt, **hdf5)
    synthetic.write_sample(f"{folder}/S001", params, seed=3, format=fmt, **hdf5)
    repo = Repository(f"{base}/{{proposal}}/{{sample}}", cache_url=f"{base}/.cache")  # spice in the tree
    demo.seed_spice(repo[PROPOSAL], params, (11.0, 13.0), "S000_noise", bg_n_points=10, n_mc=20)
    return repo


@pytest.fixture(scope="module")
def npy_twin(tmp_path_factory):
    repo = write_twin(tmp_path_factory.mktemp("npy"), "npy")
    return repo, repo[PROPOSAL]["S001"].cook("e_spectrum_and_isf")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_an_hdf5_tree_cooks_bit_identical_to_its_npy_twin(tmp_path, npy_twin, variant):
    npy_repo, expected = npy_twin
    repo = write_twin(tmp_path, "hdf5", **VARIANTS[variant])
    folder = f"{tmp_path}/{PROPOSAL}/S001"
    assert os.listdir(folder) == ["train_integrated.h5"] if VARIANTS[variant].get("json_marker") is False \
        else sorted(os.listdir(folder)) == ["train_integrated.h5", "train_integrated.json"]
    prop, npy_prop = repo[PROPOSAL], npy_repo[PROPOSAL]
    assert prop.keys() == npy_prop.keys() == ["S000_noise", "S001"]
    columns = ["key", "frames", "sensors", "sensor_shape", "dtype", "trains", "exposure_s", "role", "problem"]
    assert prop.table()[columns].equals(npy_prop.table()[columns])
    s = prop["S001"]
    assert s.marker == npy_prop["S001"].marker
    assert list(s.info()["files"]) == ["train_integrated.h5"]
    assert open_run(s.fs, s.path, s.marker, s.layout).format is formats.raw_formats()["hdf5"]

    cooked = s.cook("e_spectrum_and_isf")
    for name in list(expected.data_vars) + list(expected.coords):
        np.testing.assert_array_equal(cooked[name].values, expected[name].values, err_msg=name)
    for name in ("tau", "tau_error", "f_q", "f_q_error"):
        assert cooked[name].item() == expected[name].item(), name
    assert cooked.attrs["parameters"] == expected.attrs["parameters"]


def test_export_and_reanalysis_of_the_hdf5_twin_are_identical(tmp_path, npy_twin):
    npy_repo, _ = npy_twin
    repo = write_twin(tmp_path, "hdf5", compression="zstd")
    exported = {}
    for name, r in (("npy", npy_repo), ("hdf5", repo)):
        r[PROPOSAL]["S001"].export("e_spectrum_and_isf", overwrite=True)
        step = f"{r[PROPOSAL]['S001'].path}/e_spectrum_and_isf"
        exported[name] = {os.path.relpath(os.path.join(d, f), step): open(os.path.join(d, f), "rb").read()
                          for d, _, files in os.walk(step) for f in files
                          if f.endswith((".csv", ".txt", ".dat"))}
    assert exported["hdf5"] and exported["hdf5"] == exported["npy"]

    tables = {name: r.reanalyze(overrides={"n_mc": 30}, workers=1, progress=False).set_index("sample")
              for name, r in (("npy", npy_repo), ("hdf5", repo))}
    columns = ["status", "tau_ns", "tau_error_ns", "f_q", "f_q_error", "beta", "chi2_red", "centre_x", "centre_y"]
    assert tables["hdf5"].loc["S001", "status"] == "ok", tables["hdf5"].loc["S001", "error"]
    assert tables["hdf5"][columns].equals(tables["npy"][columns])


def test_the_raw_data_are_lazy_and_equal_to_the_npy_twin(tmp_path, npy_twin, monkeypatch):
    npy_repo, _ = npy_twin
    repo = write_twin(tmp_path, "hdf5", compression="bitshuffle", stacked=True, json_marker=False)
    reads = []
    read_frames = hdf5.Hdf5Array.read_frames
    monkeypatch.setattr(hdf5.Hdf5Array, "read_frames",
                        lambda self, start, stop, out=None: reads.append((self.sensor, start, stop))
                        or read_frames(self, start, stop, out))
    raw, twin = repo[PROPOSAL]["S001"].raw, npy_repo[PROPOSAL]["S001"].raw
    assert reads == []                                                   # headers only
    raw.counts[1, 10:20, :3].values
    assert reads == [(1, 10, 20)]                                        # the frames asked for
    assert raw.counts.shape == twin.counts.shape and raw.attrs == twin.attrs
    for key in [(1, slice(10, 20)), (slice(None), -1), (2, [3, 250, 7], slice(2, 9, 3), -1),
                (0, slice(200, 3, -7)), (slice(0, 2), 5, slice(None), slice(1, 2))]:
        np.testing.assert_array_equal(raw.counts[key].values, twin.counts[key].values, err_msg=str(key))
    np.testing.assert_array_equal(raw.velocity.values, twin.velocity.values)
    folder = f"{tmp_path}/{PROPOSAL}/S001"
    xr.testing.assert_identical(xr.open_dataset(folder), raw)             # engine guessed from the .h5
    chunked = xr.open_dataset(folder, engine="eqegs", chunks={"frame": 64})
    np.testing.assert_array_equal(chunked.counts.sum(("frame", "row", "col")).values,
                                  twin.counts.sum(("frame", "row", "col")).values)


def test_the_sources_pickle_and_the_passes_read_whole_chunks(tmp_path):
    repo = write_twin(tmp_path, "hdf5", compression="zstd")
    s = repo[PROPOSAL]["S001"]
    stack = open_run(s.fs, s.path, s.marker, s.layout).stack
    assert [f.chunk_frames for f in stack.files] == [8, 8, 8]
    again = pickle.loads(pickle.dumps(stack))
    np.testing.assert_array_equal(again.read((slice(None), slice(3, 5))), stack.read((slice(None), slice(3, 5))))
    # blocks hold whole chunks (8 frames): at least one even when over the byte budget, up to 4 budgets
    frame = 3 * 64 * 16 * 2                                  # bytes of one frame of every sensor
    assert [passes.frames_per_block(stack, budget) for budget in (3 * frame, 20 * frame, 1 << 24)] == [8, 16, 256]
    assert passes.frames_per_block(stack, frame) == 1        # a chunk over 4 budgets: blocks not aligned
    for f in stack.files:
        f.chunk_frames = 5                                   # odd chunks: blocks of 10 (pairs of frames)
    assert [passes.frames_per_block(stack, budget) for budget in (4 * frame, 32 * frame)] == [10, 30]


def test_the_cache_follows_the_hdf5_file(tmp_path):
    repo = write_twin(tmp_path, "hdf5", compression="lz4")
    s = repo[PROPOSAL]["S001"]
    key = s.cook("reconstruction").attrs["fingerprint"]
    assert s.cache_status()["reconstruction"] == "fresh"
    path = f"{s.path}/train_integrated.h5"
    with h5py.File(path, "r+") as f:
        f["sensor_0"][0, 0, 0] += 1
    os.utime(path, ns=(1, 1))
    assert repo[PROPOSAL]["S001"].cache_status()["reconstruction"] == "stale"
    assert repo[PROPOSAL]["S001"].cook("reconstruction").attrs["fingerprint"] != key


def test_the_simulator_refuses_an_unknown_format_or_compression(tmp_path):
    params = synthetic.preset_params("tiny", n_frames=16)
    with pytest.raises(Exception, match="format must be one of npy, hdf5; got 'tiff'"):
        synthetic.write_sample(tmp_path / "S1", params, seed=1, format="tiff")
    with pytest.raises(Exception, match="compression must be one of zstd, lz4, bitshuffle, gzip, none; got 'xz'"):
        synthetic.write_tree(tmp_path, format="hdf5", compression="xz")
    assert not os.path.exists(tmp_path / "S1") and not os.path.exists(tmp_path / "UserData")


def test_a_marker_held_only_by_the_attributes_is_listed_read_and_exported(tmp_path, npy_twin):
    npy_repo, _ = npy_twin
    repo = write_twin(tmp_path, "hdf5", compression="gzip", json_marker=False)
    s = repo[PROPOSAL]["S001"]
    assert not os.path.exists(f"{s.path}/train_integrated.json")
    assert s.marker == npy_repo[PROPOSAL]["S001"].marker
    assert xr.open_dataset(s.path).attrs == s.marker                    # the engine finds the folder too
    s.export("reconstruction")
    with open(f"{s.path}/reconstruction/dl/info/train_integrated.json") as f:
        assert json.load(f) == s.marker                                  # the app's marker copy


def test_a_file_written_elsewhere_with_chunks_across_sensors_reads_like_its_twin(tmp_path, npy_twin):
    """A stacked dataset chunked (3 sensors, 4 frames), gzip and shuffle, int32 velocity: not what
    the simulator writes, read the same."""
    npy_repo, _ = npy_twin
    twin = npy_repo[PROPOSAL]["S001"]
    folder = tmp_path / PROPOSAL / "S001"
    folder.mkdir(parents=True)
    counts = twin.raw.counts.values
    with h5py.File(folder / "train_integrated.h5", "w") as f:
        f.create_dataset("counts", data=counts, chunks=(3, 4, 64, 16), compression="gzip", shuffle=True)
        f.create_dataset("velocity", data=twin.raw.velocity.values)
    (folder / "train_integrated.json").write_text(json.dumps(twin.marker))
    repo = Repository(f"{tmp_path}/{{proposal}}/{{sample}}", spice_url="memory://hdf5-elsewhere", cache_url=False)
    s = repo[PROPOSAL]["S001"]
    stack = open_run(s.fs, s.path, s.marker, s.layout).stack
    assert [f.chunk_frames for f in stack.files] == [4, 4, 4]
    np.testing.assert_array_equal(s.raw.counts.values, counts)
    np.testing.assert_array_equal(s.cook("reconstruction").image.values, twin.cook("reconstruction").image.values)
