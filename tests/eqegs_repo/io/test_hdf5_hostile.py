"""Hostile HDF5 files: each is one clear error naming the file (and dataset), shown in the
proposal's table and the batch's row, while the healthy samples beside it list, cook and
reanalyse. Links, virtual datasets and external storage that point outside the tree are refused
before anything is read there: their targets are FIFOs, which would block whoever opened them,
and the checks run in a subprocess with a hard time limit."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from eqegs_repo.errors import BadSample
from eqegs_repo.simulate import demo, synthetic

h5py = pytest.importorskip("h5py")
pytest.importorskip("hdf5plugin")

ROOT = Path(__file__).resolve().parents[3]
PROPOSAL = "2025A1234"
H5 = "train_integrated.h5"
PARAMS = synthetic.preset_params("tiny", n_frames=64)


def replace_dataset(folder, name, make):
    """Replace dataset ``name`` of ``folder``'s file by ``make(h5file, name)``."""
    with h5py.File(f"{folder}/{H5}", "r+") as f:
        del f[name]
        make(f, name)


def truncate(folder):
    size = os.path.getsize(f"{folder}/{H5}")
    with open(f"{folder}/{H5}", "r+b") as f:
        f.truncate(size // 2)


def external_link(target):
    def make(f, name):
        f[name] = h5py.ExternalLink(target, "/data")
    return make


def virtual(target):
    def make(f, name):
        layout = h5py.VirtualLayout(shape=(64, 64, 16), dtype="uint16")
        layout[:] = h5py.VirtualSource(target, "data", shape=(64, 64, 16))
        f.create_virtual_dataset(name, layout)
    return make


def external_storage(target):
    def make(f, name):
        f.create_dataset(name, (64, 64, 16), dtype="uint16", external=[(target, 0, h5py.h5f.UNLIMITED)])
    return make


def unknown_filter(f, name):
    dset = f.create_dataset(name, (64, 64, 16), dtype="uint16", chunks=(8, 64, 16), compression=32767,
                            allow_unknown_filter=True)
    for start in range(0, 64, 8):
        dset.id.write_direct_chunk((start, 0, 0), b"not really compressed")


def wrong_shape(f, name):
    f.create_dataset(name, data=np.zeros((64, 64, 15), "uint16"))


def wrong_dtype(f, name):
    f.create_dataset(name, data=np.zeros((64, 64, 16), "complex64"))


def no_marker_attributes(folder):
    os.remove(f"{folder}/train_integrated.json")
    with h5py.File(f"{folder}/{H5}", "r+") as f:
        for name in list(f.attrs):
            del f.attrs[name]


def bad_marker_attribute(folder):
    os.remove(f"{folder}/train_integrated.json")
    with h5py.File(f"{folder}/{H5}", "r+") as f:
        f.attrs["n_frames"] = -3


HOSTILE = {  # sample: (how it is broken, what the message must say)
    "S002": (truncate, rf"S002/{H5}: not a readable HDF5 file \(.*truncated"),
    "S003": (lambda d: replace_dataset(d, "sensor_1", wrong_shape),
             rf"S003/{H5}\[sensor_1\]: frames of 64 x 15 but the marker says sensor_shape=\[64, 16\]"),
    "S004": (lambda d: replace_dataset(d, "sensor_2", wrong_dtype),
             rf"S004/{H5}\[sensor_2\]: expected integer or float counts, found dtype complex64"),
    "S005": (lambda d: replace_dataset(d, "sensor_1", unknown_filter),
             rf"S005/{H5}: dataset /sensor_1 is compressed with HDF5 filter 32767 .* not installed: install the "
             "HDF5 filter plugin"),
    "S006": (lambda d: replace_dataset(d, "velocity", lambda f, n: f.create_group(n)),
             rf"S006/{H5}: dataset /velocity: expected a dataset, found a group"),
    "S007": (no_marker_attributes, rf"S007/train_integrated.json: marker file not found, and .*S007/{H5} has no "
                                   "marker attributes"),
    "S008": (bad_marker_attribute, rf"S008/{H5} \(attributes of /\): field 'n_frames' must be an integer >= 1, found -3"),
}


def write_proposal(base):
    """Background, healthy S001 and one hostile sample per entry of HOSTILE, all HDF5."""
    folder = f"{base}/{PROPOSAL}"
    synthetic.write_sample(f"{folder}/S000_noise", PARAMS, seed=9, background=True, format="hdf5")
    synthetic.write_sample(f"{folder}/S001", PARAMS, seed=1, format="hdf5")
    for key, (breaks, _) in HOSTILE.items():
        shutil.copytree(f"{folder}/S001", f"{folder}/{key}")
        breaks(f"{folder}/{key}")
    return folder


def repository(base):
    from eqegs_repo import Repository

    repo = Repository(f"{base}/{{proposal}}/{{sample}}", cache_url=False)
    demo.seed_spice(repo[PROPOSAL], PARAMS, (11.0, 13.0), "S000_noise", bg_n_points=10, n_mc=20)
    return repo


def test_each_hostile_file_is_one_clear_error_and_the_rest_carries_on(tmp_path):
    write_proposal(tmp_path)
    repo = repository(tmp_path)
    prop = repo[PROPOSAL]
    assert prop.keys() == ["S000_noise", "S001", *HOSTILE]
    problems = prop.table().set_index("key")["problem"]
    assert problems["S001"] == "" and problems["S000_noise"] == ""
    for key, (_, message) in HOSTILE.items():
        with pytest.raises(BadSample, match=message):
            prop[key].raw
        assert problems[key] and f"{key}/" in problems[key], (key, problems[key])
    assert np.isfinite(prop["S001"].cook("e_spectrum_and_isf").tau.item())
    table = repo.reanalyze(workers=1, progress=False, timeout=120).set_index("sample")
    assert table.loc["S001", "status"] == "ok"
    for key in HOSTILE:
        assert table.loc[key, "status"] == "failed" and f"{key}/" in table.loc[key, "error"], key


def isolated(code, *args, timeout=60):
    """Run Python ``code`` in a subprocess with a hard time limit; the JSON it prints last."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


_OPEN_EVERY_SAMPLE = """
    import json, sys
    from eqegs_repo import Repository
    repo = Repository(sys.argv[1] + "/{proposal}/{sample}", cache_url=False)
    prop = repo["2025A1234"]
    out = {"problems": prop.table().set_index("key")["problem"].to_dict()}
    for key in prop.keys():
        try:
            prop[key].raw.counts.values
            out[key] = "read"
        except Exception as exc:
            out[key] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
"""


def test_links_virtual_datasets_and_external_storage_outside_the_tree_are_never_opened(tmp_path):
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    outside.mkdir()
    folder = f"{tree}/{PROPOSAL}"
    synthetic.write_sample(f"{folder}/S001", PARAMS, seed=1, format="hdf5")
    cases = {"S002": (external_link, "is an external link to {target}:/data"),
             "S003": (virtual, "is a virtual dataset whose data lie in other files \\({target}\\)"),
             "S004": (external_storage, "stores its data in external files \\({target}\\)")}
    for key, (make, _) in cases.items():
        target = str(outside / f"{key}.fifo")
        os.mkfifo(target)                                    # opening it would block
        shutil.copytree(f"{folder}/S001", f"{folder}/{key}")
        replace_dataset(f"{folder}/{key}", "sensor_1", make(target))
    out = isolated(_OPEN_EVERY_SAMPLE, str(tree))
    assert out["S001"] == "read" and out["problems"]["S001"] == ""
    for key, (_, message) in cases.items():
        expected = f"BadSample: {folder}/{key}/{H5}: dataset /sensor_1 " + message.format(target=outside / f"{key}.fifo")
        assert __import__("re").match(expected, out[key]), out[key]
        assert "never" in out[key] and out["problems"][key]


_WITHOUT_HDF5PLUGIN = """
    import json, sys
    sys.modules["hdf5plugin"] = None                      # not installed
    from eqegs_repo import Repository
    repo = Repository(sys.argv[1] + "/{proposal}/{sample}", cache_url=False)
    s = repo["2025A1234"]["S001"]
    try:
        s.raw
        print(json.dumps("opened"))
    except Exception as exc:
        print(json.dumps(f"{type(exc).__name__}: {exc}"))
"""


@pytest.mark.parametrize("compression, name", [("zstd", "Zstandard"), ("bitshuffle", "bitshuffle")])
def test_a_filter_that_is_not_installed_names_the_package_to_install(tmp_path, compression, name):
    synthetic.write_sample(f"{tmp_path}/{PROPOSAL}/S001", PARAMS, seed=1, format="hdf5", compression=compression)
    message = isolated(_WITHOUT_HDF5PLUGIN, str(tmp_path))
    assert message.startswith(f"BadSample: {tmp_path}/{PROPOSAL}/S001/{H5}: dataset /sensor_0 is compressed "
                              "with HDF5 filter "), message
    assert f"the {name} filter comes with the hdf5plugin package: pip install hdf5plugin" in message


_WITHOUT_H5PY = """
    import json, sys
    sys.modules["h5py"] = None                            # not installed
    from eqegs_repo import Repository
    repo = Repository(sys.argv[1] + "/{proposal}/{sample}", spice_url="memory://no-h5py", cache_url=False)
    prop = repo["2025A1234"]
    print(json.dumps({"problems": prop.table().set_index("key")["problem"].to_dict(),
                      "npy": list(prop["S002"].cook("reconstruction").image.shape)}))
"""


def test_without_h5py_an_hdf5_sample_is_a_problem_row_and_the_others_cook(tmp_path):
    synthetic.write_sample(f"{tmp_path}/{PROPOSAL}/S001", PARAMS, seed=1, format="hdf5")
    synthetic.write_sample(f"{tmp_path}/{PROPOSAL}/S002", PARAMS, seed=1)
    out = isolated(_WITHOUT_H5PY, str(tmp_path))
    assert out["problems"] == {"S001": f"{tmp_path}/{PROPOSAL}/S001/{H5}: reading and writing HDF5 raw data needs "
                                       'h5py, which is not installed: pip install "eqegs_repo[hdf5]"', "S002": ""}
    assert out["npy"] == [64, 48]
