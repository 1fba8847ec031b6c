"""Chunks decompressed outside HDF5 (eqegs_repo.io.formats.hdf5_chunks): the same values as HDF5
gives, to the bit, for every pipeline it undoes; HDF5 keeps the others; a damaged chunk is one
error naming the file."""
import sys
import zlib

import fsspec
import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
hdf5plugin = pytest.importorskip("hdf5plugin")
pytest.importorskip("zstandard")

from eqegs_repo.errors import BadSample  # noqa: E402
from eqegs_repo.io.formats import hdf5, hdf5_chunks  # noqa: E402

FRAMES, ROWS, COLS = 21, 6, 5  # 21 frames in chunks of 4: the last chunk is partial
PIPELINES = {
    "zstd": dict(**hdf5plugin.Zstd()),
    "gzip": dict(compression="gzip", compression_opts=4),
    "gzip + shuffle": dict(compression="gzip", shuffle=True),
    "shuffle": dict(shuffle=True),
    "none": {},
    "zstd + shuffle": dict(shuffle=True, **hdf5plugin.Zstd()),
}


def counts(dtype, shape=(FRAMES, ROWS, COLS), seed=0):
    values = np.random.default_rng(seed).poisson(50, shape)
    values[..., 0, 0] = np.iinfo(dtype).max if np.dtype(dtype).kind == "u" else 1e6  # every byte in use
    return values.astype(dtype)


def array_of(path, name="counts", sensor=None):
    """An Hdf5Array of ``name`` in ``path`` as the format opens it, and its dataset's reader."""
    with h5py.File(path, "r", locking=False) as f:
        dset = f[name]
        header = hdf5._header(dset, 0 if sensor is None else 1)
    shared = hdf5.SharedFile(fsspec.filesystem("file"), str(path), 1 << 20)
    array = hdf5.Hdf5Array(shared, name, header, sensor=sensor)
    array.read_frames(0, 1)
    return array, shared.chunk_reader(name)


def every_range(n):
    return [(start, stop) for start in range(n) for stop in range(start + 1, n + 1)]


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "float32"])
@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_every_pipeline_it_undoes_gives_hdf5_s_values_for_every_range(tmp_path, pipeline, dtype, monkeypatch):
    data = counts(dtype)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("counts", data=data, chunks=(4, ROWS, COLS), **PIPELINES[pipeline])
    array, reader = array_of(tmp_path / "f.h5")
    assert reader is not None
    decoded = []  # whether each chunk was decoded here (False: HDF5 read it instead)
    decode = reader.decode

    def spy(mask, stored):
        chunk = decode(mask, stored)
        decoded.append(chunk is not None)
        return chunk

    monkeypatch.setattr(reader, "decode", spy)
    for start, stop in every_range(FRAMES):
        assert np.array_equal(array.read_frames(start, stop), data[start:stop]), (start, stop)
    assert decoded and all(decoded)


def test_a_stacked_dataset_of_one_sensor_per_chunk_is_read_per_sensor(tmp_path):
    data = counts("uint32", (3, FRAMES, ROWS, COLS))
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("counts", data=data, chunks=(1, 4, ROWS, COLS), **hdf5plugin.Zstd())
    for sensor in range(3):
        array, reader = array_of(tmp_path / "f.h5", sensor=sensor)
        assert reader is not None
        assert np.array_equal(array.read_frames(2, 19), data[sensor, 2:19])


def test_a_chunk_stored_without_its_filter_is_decoded_as_stored(tmp_path):
    """HDF5 marks a filter it skipped for one chunk in that chunk's filter mask."""
    data = counts("uint32")
    with h5py.File(tmp_path / "f.h5", "w") as f:
        dset = f.create_dataset("counts", data=data, chunks=(4, ROWS, COLS), **hdf5plugin.Zstd())
        dset.id.write_direct_chunk((8, 0, 0), data[8:12].tobytes(), filter_mask=1)
    array, reader = array_of(tmp_path / "f.h5")
    assert reader is not None
    dset = array.file.dataset("counts", data.shape)
    mask, stored = dset.id.read_direct_chunk((8, 0, 0))
    assert mask == 1 and np.array_equal(reader.decode(mask, stored), data[8:12])
    assert np.array_equal(array.read_frames(0, FRAMES), data)


@pytest.mark.parametrize("case", ["lz4", "bitshuffle", "fletcher32", "chunks split frames", "chunks across sensors",
                                  "contiguous"])
def test_other_pipelines_and_layouts_are_left_to_hdf5(tmp_path, case):
    data = counts("uint32", (2, FRAMES, ROWS, COLS) if case == "chunks across sensors" else (FRAMES, ROWS, COLS))
    options = {"lz4": dict(chunks=(4, ROWS, COLS), **hdf5plugin.LZ4()),
               "bitshuffle": dict(chunks=(4, ROWS, COLS), **hdf5plugin.Bitshuffle(cname="lz4")),
               "fletcher32": dict(chunks=(4, ROWS, COLS), fletcher32=True),
               "chunks split frames": dict(chunks=(4, 3, COLS), **hdf5plugin.Zstd()),
               "chunks across sensors": dict(chunks=(2, 4, ROWS, COLS), **hdf5plugin.Zstd()),
               "contiguous": {}}[case]
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("counts", data=data, **options)
    array, reader = array_of(tmp_path / "f.h5", sensor=1 if data.ndim == 4 else None)
    assert reader is None
    assert np.array_equal(array.read_frames(3, 17), data[1, 3:17] if data.ndim == 4 else data[3:17])


def test_without_zstandard_hdf5_decompresses_zstd(tmp_path, monkeypatch):
    data = counts("uint32")
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("counts", data=data, chunks=(4, ROWS, COLS), **hdf5plugin.Zstd())
    monkeypatch.setitem(sys.modules, "zstandard", None)
    array, reader = array_of(tmp_path / "f.h5")
    assert reader is None
    assert np.array_equal(array.read_frames(0, FRAMES), data)


@pytest.mark.parametrize("pipeline", ["zstd", "gzip + shuffle"])
def test_a_damaged_chunk_is_one_error_naming_the_file_and_its_frames(tmp_path, pipeline):
    data = counts("uint32")
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        dset = f.create_dataset("counts", data=data, chunks=(4, ROWS, COLS), **PIPELINES[pipeline])
        info = dset.id.get_chunk_info(2)  # frames 8..11
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset)
        raw.write(b"\xff" * info.size)
    array, reader = array_of(path)
    assert reader is not None
    assert np.array_equal(array.read_frames(0, 8), data[:8])  # the others read
    with pytest.raises(BadSample, match=rf"{path.name}\[counts\]: frames 4\.\.13 cannot be read"):
        array.read_frames(4, 14)


def test_a_chunk_that_decodes_to_the_wrong_size_is_left_to_hdf5():
    reader = hdf5_chunks.ChunkReader(4, (ROWS, COLS), [hdf5_chunks.DEFLATE], np.uint32)
    assert reader.decode(0, zlib.compress(b"\x00" * 7)) is None
    assert reader.decode(0, b"not deflate") is None
    good = reader.decode(0, zlib.compress(np.arange(4 * ROWS * COLS, dtype=np.uint32).tobytes()))
    assert good.shape == (4, ROWS, COLS) and good[3, 5, 4] == 4 * ROWS * COLS - 1
