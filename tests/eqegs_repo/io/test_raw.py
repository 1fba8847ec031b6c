import numpy as np
import pytest

from eqegs_repo import BadSample, Repository
from eqegs_repo.io.formats.npy import NpyFile
from tests.helpers.treeutil import npy_bytes, sample_arrays, write_sample, write_tree


@pytest.fixture
def repo(memroot):
    fs, root = memroot
    arrays = write_tree(fs, root, {"2025A1234": ["S1", "S2", "S3"]})
    return Repository(f"memory://{root}/{{proposal}}/{{sample}}"), arrays, fs, root


def test_raw_is_a_lazy_dataset_with_the_right_values(repo):
    repo, arrays, _, _ = repo
    raw = repo["2025A1234"]["S2"].raw
    assert raw.counts.dims == ("sensor", "frame", "row", "col")
    assert raw.counts.shape == (3, 6, 4, 2) and raw.counts.dtype == np.uint32
    assert raw.velocity.dims == ("frame",)
    assert raw.attrs["n_frames"] == 6 and raw.attrs["trains_integrated"] == 10
    expected = np.stack(arrays["2025A1234", "S2"])
    np.testing.assert_array_equal(raw.counts.values, expected)
    np.testing.assert_array_equal(raw.counts[1, 2:5, :, 1].values, expected[1, 2:5, :, 1])
    np.testing.assert_array_equal(raw.counts.isel(frame=[4, 0]).values, expected[:, [4, 0]])
    np.testing.assert_array_equal(raw.velocity.values, np.linspace(-10, 10, 6))


def test_only_the_frames_asked_for_are_read(repo, monkeypatch):
    repo, _, _, _ = repo
    calls = []
    original = NpyFile._read_rows
    monkeypatch.setattr(NpyFile, "_read_rows", lambda self, lo, hi: calls.append((self.path, lo, hi)) or original(self, lo, hi))
    raw = repo["2025A1234"]["S1"].raw
    assert calls == []
    raw.counts[:, 2:4].values
    assert sorted((p.rsplit("/", 1)[-1], lo, hi) for p, lo, hi in calls) == [
        ("sensor_0.npy", 2, 4), ("sensor_1.npy", 2, 4), ("sensor_2.npy", 2, 4)]


def test_local_files_are_read_by_positioned_reads_for_every_kind_of_index(tmp_path, monkeypatch):
    import fsspec

    from eqegs_repo.io.formats import binary

    fs = fsspec.filesystem("file")
    counts = np.arange(9 * 5 * 4, dtype=np.int32).reshape(9, 5, 4)
    fs.pipe(f"{tmp_path}/a.npy", npy_bytes(counts))
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load (a memory map) used"))
    monkeypatch.setattr(np, "memmap", lambda *a, **k: pytest.fail("np.memmap used"))
    monkeypatch.setattr(binary, "_READ_BLOCK_BYTES", 2 * 5 * 4 * 4)  # two frames per read: several groups
    source = NpyFile(fs, f"{tmp_path}/a.npy")
    keys = [(), 3, -1, (slice(2, 7),), (slice(None, None, 3),), (slice(8, 1, -2),), ([4, 0, 4, 8],),
            (slice(None), 2), (slice(None), 1, 3), (slice(1, 8), slice(1, 4), slice(3, 0, -1)),
            (np.array([7, 2]), slice(None), 0), (slice(None), -1, -1), (slice(3, 3),), (Ellipsis, 2),
            (slice(None), slice(2, 2))]
    for key in keys:
        np.testing.assert_array_equal(source.read(key), counts[key], err_msg=repr(key))
    sizes = []
    original = binary.pread_into
    monkeypatch.setattr(binary, "pread_into", lambda fd, path, target, offset: sizes.append(len(target)) or original(fd, path, target, offset))
    np.testing.assert_array_equal(source.read((slice(None), 2, 1)), counts[:, 2, 1])
    assert sizes == [4] * 9  # one pixel of every frame: one value read per frame, not whole frames
    sizes.clear()
    np.testing.assert_array_equal(source.read((slice(0, 6),)), counts[:6])
    assert sizes == [2 * 5 * 4 * 4] * 3  # consecutive frames: whole frames, a block per read


def test_dask_backed_raw(repo):
    pytest.importorskip("dask")
    repo, arrays, _, _ = repo
    ds = repo["2025A1234"]["S3"].open_raw(chunks=4)
    assert ds.counts.chunks == ((1, 1, 1), (4, 2), (4,), (2,))
    np.testing.assert_array_equal(ds.counts.sum("sensor").compute().values,
                                  np.stack(arrays["2025A1234", "S3"]).sum(0))


def _break(fs, root, kind):
    path = f"{root}/2025A1234/S2"
    if kind == "json":
        fs.pipe(f"{path}/train_integrated.json", b"{not json")
        return "not valid JSON", "train_integrated.json"
    if kind == "n_frames":
        fs.pipe(f"{path}/train_integrated.json", b'{"n_sensors": 3, "sensor_shape": [4, 2]}')
        return "'n_frames' is missing", "train_integrated.json"
    if kind == "truncated":
        data = npy_bytes(sample_arrays(0)[0][1])
        fs.pipe(f"{path}/train_integrated/sensor_1.npy", data[:-7])
        return "truncated", "sensor_1.npy"
    if kind == "frames":
        sensors, _ = sample_arrays(0)
        fs.pipe(f"{path}/train_integrated/sensor_2.npy", npy_bytes(sensors[2][:5]))
        return r"frame counts differ \(sensor_0.npy: 6, sensor_1.npy: 6, sensor_2.npy: 5\)", "S2"
    if kind == "velocity":
        fs.pipe(f"{path}/train_integrated/velocity.npy", npy_bytes(np.zeros(5)))
        return r"shape \(6,\).*found shape \(5,\)", "velocity.npy"
    if kind == "velocity_text":  # a string velocity once cooked to a wrong tau silently
        fs.pipe(f"{path}/train_integrated/velocity.npy", npy_bytes(np.array(["1.5"] * 6)))
        return r"expected a real-valued velocity.*found dtype <U3", "velocity.npy"
    if kind == "velocity_complex":  # a complex one lost its imaginary part
        fs.pipe(f"{path}/train_integrated/velocity.npy", npy_bytes(np.zeros(6, complex)))
        return r"expected a real-valued velocity.*found dtype complex128", "velocity.npy"
    if kind == "velocity_bool":  # once an error blaming q_range
        fs.pipe(f"{path}/train_integrated/velocity.npy", npy_bytes(np.ones(6, bool)))
        return r"expected a real-valued velocity.*found dtype bool", "velocity.npy"
    if kind == "counts_int8":  # wrapped counts once cooked to an error blaming isf_error_threshold
        fs.pipe(f"{path}/train_integrated/sensor_1.npy", npy_bytes(sample_arrays(0)[0][1].astype(np.int8)))
        return r"found dtype int8, signed counts of 8 bits: they wrap to negative values above 127", "sensor_1.npy"
    if kind == "trailing":  # once accepted: the first frames of a longer array were read
        data = npy_bytes(sample_arrays(0)[0][1])
        fs.pipe(f"{path}/train_integrated/sensor_1.npy", data + bytes(64))
        return (rf"64 bytes after the array: the header says shape \(6, 4, 2\) of uint32, i.e. {len(data)} "
                rf"bytes, but the file has {len(data) + 64} bytes; trailing bytes mean a different array"), "sensor_1.npy"
    if kind == "marker_sjis":  # once "not valid JSON"
        text = '{"n_frames": 6, "n_sensors": 3, "sensor_shape": [4, 2],\n "comment": "ゲル"}'
        fs.pipe(f"{path}/train_integrated.json", text.encode("shift_jis"))
        return r"not UTF-8 text: byte 0x83 at offset 69 \(line 2, column 14\)", "train_integrated.json"
    if kind == "shape":
        fs.pipe(f"{path}/train_integrated/sensor_0.npy", npy_bytes(np.zeros((6, 4, 3), np.uint32)))
        return "sensor_shape", "sensor_0.npy"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["json", "n_frames", "truncated", "frames", "velocity", "velocity_text",
                                  "velocity_complex", "velocity_bool", "counts_int8", "trailing",
                                  "marker_sjis", "shape"])
def test_a_broken_sample_is_named_and_does_not_hide_the_others(repo, kind):
    repo, _, fs, root = repo
    message, filename = _break(fs, root, kind)
    prop = repo["2025A1234"]
    assert list(prop.all()) == ["S1", "S2", "S3"]
    table = prop.table().set_index("key")
    assert table.loc["S1", "problem"] == "" and table.loc["S3", "problem"] == ""
    assert filename in table.loc["S2", "problem"]
    with pytest.raises(BadSample, match=message) as exc:
        prop["S2"].raw
    assert filename in str(exc.value)
    assert prop["S1"].raw.counts.shape == (3, 6, 4, 2)


def test_npy_versions_numpy_writes_are_read(tmp_path, memroot):
    import io

    import fsspec
    sensors, velocity = sample_arrays(7)
    memory_fs, memory_root = memroot
    for fs, root, url in ((fsspec.filesystem("file"), str(tmp_path), str(tmp_path)),  # memory map
                          (memory_fs, memory_root, f"memory://{memory_root}")):  # byte ranges
        path = f"{root}/P/S1"
        write_sample(fs, path, sensors=sensors, velocity=velocity)
        for k, version in ((0, (1, 0)), (1, (2, 0)), (2, (3, 0))):  # 3.0 was refused
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, sensors[k], version=version)
            fs.pipe(f"{path}/train_integrated/sensor_{k}.npy", buffer.getvalue())
        raw = Repository(url + "/{proposal}/{sample}")["P"]["S1"].raw
        np.testing.assert_array_equal(raw.counts.values, np.stack(sensors))
        assert NpyFile(fs, f"{path}/train_integrated/sensor_2.npy").read_frames(1, 3).tolist() == sensors[2][1:3].tolist()
    fs.pipe(f"{path}/train_integrated/sensor_1.npy", b"\x93NUMPY\x04\x00" + bytes(8))
    with pytest.raises(BadSample, match=r"sensor_1.npy: not a readable .npy file \(unsupported .npy format "
                                        r"version 4.0; expected 1.0, 2.0 or 3.0\)"):
        Repository(url + "/{proposal}/{sample}")["P"]["S1"].raw


def test_table_summarises_samples(repo):
    repo, _, fs, root = repo
    fs.makedirs(f"{root}/2025A1234/S1/q_integration/sub1", exist_ok=True)
    fs.pipe(f"{root}/2025A1234/S1/q_integration/rdf.npz", b"x")
    table = repo["2025A1234"].table().set_index("key")
    row = table.loc["S1"]
    assert tuple(row[["frames", "sensors", "sensor_shape", "dtype", "trains", "exposure_s"]]) == (
        6, 3, "4x2", "uint32", 10, 1.5)
    assert row.q_integration == "main,sub1" and row.reconstruction == ""
    assert repo["2025A1234"]["S1"].info()["files"]["sensor_0.npy"] > 6 * 4 * 2 * 4


def test_read_frames_fills_a_buffer_with_plain_reads(tmp_path, memroot):
    import fsspec
    sensors, _ = write_sample(fsspec.filesystem("file"), f"{tmp_path}/P1/S1")
    local = NpyFile(fsspec.filesystem("file"), f"{tmp_path}/P1/S1/train_integrated/sensor_1.npy")
    out = np.empty((3, 4, 2), np.uint32)
    assert local.read_frames(2, 5, out=out) is out
    np.testing.assert_array_equal(out, sensors[1][2:5])
    fs, root = memroot
    remote_sensors, _ = write_sample(fs, f"{root}/P1/S1")
    remote = NpyFile(fs, f"{root}/P1/S1/train_integrated/sensor_0.npy")
    np.testing.assert_array_equal(remote.read_frames(0, 6), remote_sensors[0])
    with pytest.raises(ValueError, match="C-ordered uint32 array of shape"):
        local.read_frames(0, 2, out=np.empty((3, 4, 2), np.uint32))


def test_read_frames_from_threads_on_one_descriptor_with_hints(tmp_path, memroot):
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    import fsspec
    local_fs = fsspec.filesystem("file")
    sensors, _ = write_sample(local_fs, f"{tmp_path}/P1/S1")
    local = NpyFile(local_fs, f"{tmp_path}/P1/S1/train_integrated/sensor_2.npy")
    with ThreadPoolExecutor(3) as pool:  # positioned reads: no shared file offset between threads
        parts = list(pool.map(lambda i: local.read_frames(i, i + 1).copy(), [5, 0, 3, 1, 4, 2] * 20))
    for i, part in zip([5, 0, 3, 1, 4, 2] * 20, parts):
        np.testing.assert_array_equal(part[0], sensors[2][i])
    assert local._fd is not None and local.prefetch(1, 4) is hasattr(__import__("os"), "posix_fadvise")
    copy = pickle.loads(pickle.dumps(local))  # no descriptor travels; the copy opens its own
    assert copy._fd is None
    np.testing.assert_array_equal(copy.read_frames(2, 4), sensors[2][2:4])
    local.close()
    assert local._fd is None
    np.testing.assert_array_equal(local.read_frames(0, 1)[0], sensors[2][0])  # reopened
    fs, root = memroot
    write_sample(fs, f"{root}/P1/S1")
    assert NpyFile(fs, f"{root}/P1/S1/train_integrated/sensor_0.npy").prefetch(0, 2) is False


def test_a_result_holding_only_dl_counts_as_the_main_result(repo):
    repo, _, fs, root = repo
    fs.makedirs(f"{root}/2025A1234/S3/e_spectrum_and_isf/dl/info", exist_ok=True)
    fs.pipe(f"{root}/2025A1234/S3/e_spectrum_and_isf/dl/info/info.json", b"{}")
    fs.makedirs(f"{root}/2025A1234/S3/e_spectrum_and_isf/10_14/dl", exist_ok=True)
    assert repo["2025A1234"]["S3"].step_results()["e_spectrum_and_isf"] == ["main", "10_14"]


def test_hidden_staging_folders_are_not_results(repo):
    repo, _, fs, root = repo
    fs.makedirs(f"{root}/2025A1234/S3/q_integration/.stage-1234/dl", exist_ok=True)
    assert repo["2025A1234"]["S3"].step_results()["q_integration"] == []
