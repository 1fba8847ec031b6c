"""BinaryArray: a C-ordered array at an offset of a file, read like the npy format's files (only
the frames asked for, locally and through fsspec), named as its format names it."""
import pickle

import fsspec
import numpy as np
import pytest

from eqegs_repo.errors import BadSample
from eqegs_repo.io.formats.binary import BinaryArray
from eqegs_repo.io.frames import FrameSource

HEADER = b"VENDOR-HEADER\x00\x00\x00"   # 16 bytes before the first array


@pytest.fixture(params=["file", "memory"])
def stored(request, tmp_path):
    """``(fs, path, arrays)``: a header, two (5, 3, 4) uint16 arrays and a (5,) float64 array."""
    rng = np.random.default_rng(3)
    arrays = [rng.integers(0, 60000, (5, 3, 4)).astype("<u2") for _ in range(2)] + [np.linspace(-1, 1, 5)]
    fs = fsspec.filesystem(request.param)
    path = f"{tmp_path}/detector.dat" if request.param == "file" else "/binary-test/detector.dat"
    fs.pipe(path, HEADER + b"".join(a.tobytes() for a in arrays))
    yield fs, path, arrays
    if request.param == "memory":
        fs.rm("/binary-test", recursive=True)


def blocks(fs, path, arrays):
    offsets = np.cumsum([len(HEADER)] + [a.nbytes for a in arrays])
    return [BinaryArray(fs, path, int(offsets[k]), a.shape, a.dtype, name=f"{path}[{k}]")
            for k, a in enumerate(arrays)]


@pytest.mark.parametrize("key", [(), 2, -1, slice(1, 4), slice(None, None, 2), (slice(1, 3), 2),
                                 (np.array([4, 0, 2]), slice(None), 1), (Ellipsis, 0), slice(3, 3)])
def test_reads_what_numpy_would_index(stored, key):
    fs, path, arrays = stored
    first, _, velocity = blocks(fs, path, arrays)
    np.testing.assert_array_equal(first.read(key), arrays[0][key])
    if not isinstance(key, tuple):
        np.testing.assert_array_equal(velocity.read(key), arrays[2][key])


def test_streams_frames_into_a_buffer_and_follows_the_interface(stored):
    fs, path, arrays = stored
    second = blocks(fs, path, arrays)[1]
    assert isinstance(second, FrameSource) and second.nbytes == arrays[1].nbytes
    out = np.empty((2, 3, 4), "<u2")
    assert second.read_frames(2, 4, out=out) is out
    np.testing.assert_array_equal(out, arrays[1][2:4])
    again = pickle.loads(pickle.dumps(second))
    np.testing.assert_array_equal(again.read_frames(0, 5), arrays[1])
    assert again.path == f"{path}[1]" and again.file == path


def test_a_short_file_is_a_bad_sample_naming_the_array(stored):
    fs, path, arrays = stored
    fs.pipe(path, HEADER + arrays[0].tobytes() + arrays[1].tobytes()[:50])
    second = blocks(fs, path, arrays)[1]
    for read in (lambda: second.read_frames(0, 5), second.read):
        with pytest.raises(BadSample, match=r"detector.dat\[1\]: (file ended while reading frames 0..4|"
                                            r"expected 256 bytes \(\(5, 3, 4\) of uint16 at byte 136\), found 186 bytes)"):
            read()


@pytest.mark.parametrize("shape, dtype, message", [
    ((5, "x", 4), "<u2", "expected a shape of integers and a numpy dtype"),
    ((5, 3, 4), "no-such-type", "expected a shape of integers and a numpy dtype"),
    ((5, -3, 4), "<u2", r"expected sizes >= 0 and no Python objects, found shape \(5, -3, 4\)"),
    ((5, 3, 4), object, r"expected sizes >= 0 and no Python objects, found shape \(5, 3, 4\), dtype object"),
])
def test_a_wrong_shape_or_dtype_is_refused_naming_the_array(shape, dtype, message):
    with pytest.raises(BadSample, match=r"^d.dat\[module 0\]: " + message):
        BinaryArray(fsspec.filesystem("memory"), "/d.dat", 0, shape, dtype, name="d.dat[module 0]")
