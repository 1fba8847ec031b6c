"""The built-in raw-data format: one ``.npy`` file per sensor and one for the drive waveform.

::

    <sample>/train_integrated/sensor_<k>.npy  (frames, rows, cols) counts, k = 0..n_sensors-1
    <sample>/train_integrated/velocity.npy    (frames,) measured drive waveform

(file and folder names from :class:`~eqegs_repo.io.layout.TreeLayout`: ``raw_dir``,
``sensor_file``, ``velocity_file``). :class:`NpyFile` reads a ``.npy`` file's header once and
then reads only the frames asked for: by positioned reads on one kept descriptor for local files
(never a memory map: a file truncated under a map kills the process with SIGBUS), by byte ranges
through fsspec otherwise. Every local read is checked against the file's identity taken with the
header (:mod:`eqegs_repo.io.file_identity`): a file truncated or rewritten while it is open is a
BadSample naming it and both sizes. Streaming (:meth:`NpyFile.read_frames`) gives the kernel
read-ahead hints (sequential access; the next block asked for ahead of time with
:meth:`NpyFile.prefetch`).
"""
import functools
import io
import math
import os
import stat
import threading

import numpy as np

from eqegs_repo.errors import BadSample
from eqegs_repo.io.file_identity import FileIdentity, check_unchanged, pread_into, unchanged
from eqegs_repo.io.frames import basic_key
from eqegs_repo.io.layout import check_regular_file

_MAX_HEADER = 1 << 16
_READ_BLOCK_BYTES = 16 << 20
"""Frames a local :meth:`NpyFile.read` reads per positioned read (at least one frame), and the
most memory it uses besides its result."""
# Header readers by format version, as numpy writes them: 2.0 when the header outgrows 64 KiB,
# 3.0 when it is not latin-1 (UTF-8 field names of a structured dtype, refused later as counts).
# A 3.0 header differs from a 2.0 one only in its text encoding, and numpy has no public reader
# for it: the 2.0 reader parses every 3.0 header whose text is ASCII, i.e. every numeric dtype.
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
    (3, 0): np.lib.format.read_array_header_2_0,
}


class NpyFile:
    """One ``.npy`` array on a filesystem, read lazily.

    ``shape``/``dtype`` come from the header. :meth:`read` takes a numpy index whose first
    axis is an int, a slice or an integer array and reads only the rows (frames) it needs.
    ``identity`` (a :class:`~eqegs_repo.io.file_identity.FileIdentity`, None for files not on
    the local filesystem) is the file's when its header was read; every later read checks it.
    Instances pickle without open handles.
    """

    def __init__(self, fs, path):
        self.fs, self.path = fs, path
        protocol = fs.protocol
        self.is_local = "file" in ((protocol,) if isinstance(protocol, str) else protocol)
        self.identity = None
        try:
            if self.is_local:
                flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # never waits on a FIFO
                with os.fdopen(os.open(path, flags), "rb") as f:
                    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                        check_regular_file(fs, path)  # refuses it, naming what it is
                    self.identity = FileIdentity.of(f.fileno())
                    shape, fortran, dtype = _read_header(f)
                    self.offset = f.tell()
                size = self.identity.size
            else:
                check_regular_file(fs, path)
                with fs.open(path, "rb") as f:
                    shape, fortran, dtype = _read_header(f)
                    self.offset = f.tell()
                size = fs.size(path)
        except BadSample:
            raise
        except FileNotFoundError:
            raise BadSample(f"{path}: file not found") from None
        except PermissionError as exc:
            raise BadSample(f"{path}: cannot be read ({exc.strerror or exc})") from None
        except (ValueError, OSError, EOFError) as exc:
            raise BadSample(f"{path}: not a readable .npy file ({exc})") from None
        if fortran:
            raise BadSample(f"{path}: Fortran-ordered arrays are not supported; expected C order")
        if dtype.hasobject:
            raise BadSample(f"{path}: object arrays are refused; expected numeric counts, found {dtype}")
        self.shape, self.dtype = tuple(shape), dtype
        self.nbytes = math.prod(shape) * dtype.itemsize
        expected = self.offset + self.nbytes
        if size < expected:
            raise BadSample(
                f"{path}: truncated: the header says shape {self.shape} of {dtype}, i.e. "
                f"{expected} bytes, but the file has {size} bytes"
            )
        if size > expected:
            raise BadSample(
                f"{path}: {size - expected} bytes after the array: the header says shape {self.shape} "
                f"of {dtype}, i.e. {expected} bytes, but the file has {size} bytes; trailing bytes "
                "mean a different array was meant (a file overwritten in place by a smaller one?)"
            )
        self._fd = None
        self._fd_lock = threading.Lock()

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_fd=None, _fd_lock=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._fd_lock = threading.Lock()

    def __del__(self):
        self.close()

    def close(self):
        """Close the descriptor that :meth:`read_frames` keeps open (reopened when needed)."""
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def _descriptor(self):
        """The file's descriptor for positioned reads, opened once with the sequential hint
        (the kernel reads further ahead); BadSample when the file at the path is no longer the
        one whose header was read."""
        with self._fd_lock:
            if self._fd is None:
                try:
                    fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                except FileNotFoundError:
                    raise BadSample(f"{self.path}: removed while the sample was open") from None
                try:
                    check_unchanged(fd, self.path, self.identity)
                except BadSample:
                    os.close(fd)
                    raise
                _advise(fd, self.offset, 0, "POSIX_FADV_SEQUENTIAL")
                self._fd = fd
            return self._fd

    def _frame_range(self, start, stop):
        row_bytes = self.nbytes // self.shape[0]
        return self.offset + start * row_bytes, (stop - start) * row_bytes

    def prefetch(self, start, stop):
        """Ask the kernel to start reading frames ``start..stop-1`` of a local file in the
        background (``POSIX_FADV_WILLNEED``), so a later :meth:`read_frames` finds them in the page
        cache. Returns False (nothing done) for other filesystems or without ``posix_fadvise``."""
        if not self.is_local:
            return False
        return _advise(self._descriptor(), *self._frame_range(start, stop), "POSIX_FADV_WILLNEED")

    def read(self, key=()):
        """``array[key]`` as a numpy array, reading only the frames (first-axis rows) needed.

        Local files: positioned reads of whole frames for runs of consecutive frames, of the
        part of each frame the rest of ``key`` touches otherwise (one pixel of every frame
        reads one value per frame), at most :data:`_READ_BLOCK_BYTES` besides the result.
        """
        key = basic_key(key, len(self.shape))
        first, rest = key[0], key[1:]
        n = self.shape[0]
        contiguous = isinstance(first, slice) and first.indices(n)[2] == 1
        rows = np.arange(n)[first] if isinstance(first, slice) else np.asarray(first)
        rows = np.where(rows < 0, rows + n, rows)
        if rows.size == 0:
            return np.empty((0,) + self.shape[1:], self.dtype)[(slice(None),) + rest]
        if rows.min() < 0 or rows.max() >= n:
            raise IndexError(f"{self.path}: frame index out of range 0..{n - 1}")
        if self.is_local:
            out = self._read_local(rows.reshape(-1), rest)
            return out.reshape(rows.shape + out.shape[1:])
        lo, hi = int(rows.min()), int(rows.max()) + 1
        local = slice(None) if contiguous else rows - lo
        block = self._read_rows(lo, hi)
        return block[(local,) + rest]

    def _read_local(self, rows, rest):
        """Frames ``rows`` (1-d ints) indexed by ``rest``, read from the local file."""
        frame_shape = self.shape[1:]
        items = int(np.prod(frame_shape, dtype=np.int64))
        itemsize = self.dtype.itemsize
        first, last = _flat_span(rest, frame_shape)
        tail = np.empty((0,) + frame_shape, self.dtype)[(slice(None),) + rest].shape[1:]
        out = np.empty((rows.size,) + tail, self.dtype)
        if out.size == 0:
            return out
        group = min(rows.size, max(1, _READ_BLOCK_BYTES // max(1, items * itemsize)))
        buffer = np.empty((group,) + frame_shape, self.dtype)
        whole_frames = 2 * (last - first) > items
        fd = self._descriptor()
        with unchanged(fd, self.path, self.identity):
            for start in range(0, rows.size, group):
                chunk = rows[start:start + group]
                part = buffer[:chunk.size]
                if whole_frames and np.all(np.diff(chunk) == 1):
                    offset, _ = self._frame_range(int(chunk[0]), int(chunk[-1]) + 1)
                    pread_into(fd, self.path, _bytes_of(part), offset)
                else:
                    flat = part.reshape(chunk.size, -1)
                    for i, row in enumerate(chunk):
                        offset, _ = self._frame_range(int(row), int(row) + 1)
                        pread_into(fd, self.path, _bytes_of(flat[i, first:last]), offset + first * itemsize)
                out[start:start + chunk.size] = part[(slice(None),) + rest]
        return out

    def read_frames(self, start, stop, out=None):
        """Frames ``start..stop-1`` as a C-ordered array (``out`` is filled when given).

        Local files are read with one run of positioned reads (``os.preadv``, safe from several
        threads) on the kept descriptor, between two checks of the file's identity, so streaming
        a file that is larger than memory keeps the resident memory at one block. Other
        filesystems read one byte range.
        """
        shape = (stop - start,) + self.shape[1:]
        if out is None:
            out = np.empty(shape, self.dtype)
        elif out.shape != shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-ordered {self.dtype} array of shape {shape}")
        if not self.is_local:
            out[...] = self._read_rows(start, stop)
            return out
        offset, _ = self._frame_range(start, stop)
        fd = self._descriptor()
        with unchanged(fd, self.path, self.identity):
            pread_into(fd, self.path, _bytes_of(out), offset)
        return out

    def _read_rows(self, lo, hi):
        """Frames ``lo..hi-1`` through fsspec (files not on the local filesystem)."""
        offset, length = self._frame_range(lo, hi)
        with self.fs.open(self.path, "rb") as f:
            f.seek(offset)
            buf = f.read(length)
        if len(buf) != length:
            raise BadSample(f"{self.path}: changed while it was open (truncated: expected "
                            f"{self.offset + self.nbytes} bytes, found {self.fs.size(self.path)} bytes); "
                            "open the sample again to read the file as it is now")
        return np.frombuffer(buf, dtype=self.dtype).reshape((hi - lo,) + self.shape[1:])


def _read_header(f):
    """``(shape, fortran_order, dtype)`` from the ``.npy`` header of the binary file ``f``
    (left at the first byte of the array). Headers are parsed once per process: the files of
    a run, and the runs of a proposal, mostly share theirs."""
    version = np.lib.format.read_magic(f)
    if version not in _HEADER_READERS:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}; "
                         "expected 1.0, 2.0 or 3.0")
    length_bytes = 2 if version == (1, 0) else 4
    length_field = f.read(length_bytes)
    length = int.from_bytes(length_field, "little") if len(length_field) == length_bytes else 0
    header = f.read(min(length, _MAX_HEADER + 1))
    return _parse_header(version, length_field + header)


@functools.lru_cache(maxsize=256)
def _parse_header(version, raw):
    """The numpy reader of ``version`` on the length field and header text ``raw``."""
    return _HEADER_READERS[version](io.BytesIO(raw), max_header_size=_MAX_HEADER)


def _flat_span(rest, frame_shape):
    """``(first, stop)``: the range of flat element indices of one C-ordered frame of
    ``frame_shape`` that the basic index ``rest`` (ints and slices, one per axis) touches."""
    first, last = 0, 0
    for k, size, stride in zip(rest, frame_shape, _strides(frame_shape)):
        picked = range(size)[k] if isinstance(k, slice) else [range(size)[k]]
        if not picked:
            return 0, 0
        first += min(picked[0], picked[-1]) * stride
        last += max(picked[0], picked[-1]) * stride
    return first, last + 1


def _strides(shape):
    """Element strides of a C-ordered array of ``shape``."""
    strides = [1] * len(shape)
    for axis in range(len(shape) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    return strides


def _bytes_of(array):
    """A writable byte view of the C-contiguous ``array``."""
    return memoryview(array.reshape(-1).view(np.uint8))


def _advise(fd, offset, length, advice):
    """``os.posix_fadvise`` when the platform has it (Linux); True when given."""
    if not hasattr(os, "posix_fadvise"):
        return False
    os.posix_fadvise(fd, offset, length, getattr(os, advice))
    return True


class NpyFormat:
    """The npy layout as a :class:`~eqegs_repo.io.formats.RawFormat` (registered as ``"npy"``)."""

    name = "npy"

    def guess_can_open(self, fs, folder, names, marker, layout):
        """True when the sample folder holds the raw folder (``train_integrated/``)."""
        return layout.raw_dir in names

    def run_files(self, fs, folder, marker, layout):
        """The sensor files ``sensor_0.npy`` .. and ``velocity.npy``."""
        return ([layout.sensor_path(folder, k) for k in range(marker["n_sensors"])]
                + [layout.velocity_path(folder)])

    def open_frames(self, fs, folder, marker, layout):
        """One :class:`NpyFile` per sensor file, and the velocity file's (headers read)."""
        *sensors, velocity = [NpyFile(fs, path) for path in self.run_files(fs, folder, marker, layout)]
        return sensors, velocity

    def __repr__(self):
        return "<raw-data format npy>"


FORMAT = NpyFormat()
