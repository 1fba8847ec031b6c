"""A C-ordered array stored as raw bytes at an offset of a file: the reading half of every format
whose counts are uncompressed (the built-in npy format, a detector's raw binary file).

:class:`BinaryArray` is a :class:`~eqegs_repo.io.frames.FrameSource` (and a
:class:`~eqegs_repo.io.frames.ValueSource`) given the file, the byte offset, the shape and the
dtype; a format that knows them from its own header needs nothing else to read its frames
(docs/formats.md). It reads only the frames asked for: by positioned reads on one kept
descriptor for local files (never a memory map: a file truncated under a map kills the process
with SIGBUS), by byte ranges through fsspec otherwise. Every local read is checked against the
file's identity (:mod:`eqegs_repo.io.file_identity`), taken with the header by a format that
reads one, else when the file is first opened: a file truncated or rewritten while it is open is
a BadSample naming it and both sizes. Streaming (:meth:`BinaryArray.read_frames`) gives the
kernel read-ahead hints (sequential access; the next block asked for ahead of time with
:meth:`BinaryArray.prefetch`).
"""
import os
import threading

import numpy as np

from eqegs_repo.errors import BadSample
from eqegs_repo.io.file_identity import (
    FileIdentity,
    check_unchanged,
    pread_into,
    unchanged,
)
from eqegs_repo.io.frames import basic_key
from eqegs_repo.io.layout import is_local

_READ_BLOCK_BYTES = 16 << 20
"""Most bytes one positioned read of :meth:`BinaryArray.read` fills besides its result."""


class BinaryArray:
    """The array of ``shape`` (frames first) and ``dtype`` whose C-ordered bytes start
    ``offset`` bytes into ``file`` on the fsspec filesystem ``fs``; nothing is read when made.

    ``path`` (what error messages and ``sample.info()`` name) is ``name`` when given (e.g.
    ``"detector.dat[module 1]"`` for one array of several in a file), else ``file``. Raises
    :class:`~eqegs_repo.errors.BadSample` naming it when the shape is not a tuple of integers
    >= 0 or the dtype holds Python objects (the dtype's kind is checked against the marker by
    :func:`~eqegs_repo.io.run.check_frames`, for every format alike). ``identity`` (a
    :class:`~eqegs_repo.io.file_identity.FileIdentity`) is the local file's when its header was
    read; without it the identity is taken when the file is first opened for a read (and a file
    shorter than ``offset`` + the array's bytes is refused then). :meth:`read` takes a numpy index
    whose first axis is an int, a slice or an integer array and reads only the rows (frames) it
    needs. Instances pickle without open handles; :meth:`read_frames` is safe from several threads.
    """

    def __init__(self, fs, file, offset, shape, dtype, *, name=None, identity=None):
        self.fs, self.file, self.path = fs, file, name or file
        try:
            self.shape, self.dtype = tuple(int(n) for n in shape), np.dtype(dtype)
            self.offset = int(offset)
        except (TypeError, ValueError) as exc:
            raise BadSample(f"{self.path}: expected a shape of integers and a numpy dtype, found shape "
                            f"{shape!r} and dtype {dtype!r} ({exc})") from None
        if min(self.shape, default=0) < 0 or self.offset < 0 or self.dtype.hasobject:
            raise BadSample(f"{self.path}: expected sizes >= 0 and no Python objects, found shape "
                            f"{self.shape}, dtype {self.dtype} at offset {self.offset}")
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.identity = identity
        self._fd = None
        self._fd_lock = threading.Lock()

    @property
    def is_local(self):
        return is_local(self.fs)

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
        """Close the descriptor that the reads keep open (reopened when needed)."""
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def _descriptor(self):
        """The file's descriptor for positioned reads, opened once with the sequential hint
        (the kernel reads further ahead); BadSample when the file at the path is no longer the
        one whose header was read, or is shorter than the array."""
        with self._fd_lock:
            if self._fd is None:
                try:
                    fd = os.open(self.file, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                except FileNotFoundError:
                    raise BadSample(f"{self.path}: removed while the sample was open") from None
                try:
                    if self.identity is None:
                        identity = FileIdentity.of(fd)
                        if identity.size < self.offset + self.nbytes:
                            raise BadSample(f"{self.path}: expected {self.offset + self.nbytes} bytes "
                                            f"({self.shape} of {self.dtype} at byte {self.offset}), found "
                                            f"{identity.size} bytes")
                        self.identity = identity
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
        if self.nbytes == 0:
            return np.empty(self.shape, self.dtype)[key]
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
        with self.fs.open(self.file, "rb") as f:
            f.seek(offset)
            buf = f.read(length)
        if len(buf) != length:
            raise BadSample(f"{self.path}: file ended while reading frames {lo}..{hi - 1} (expected "
                            f"{self.offset + self.nbytes} bytes, found {self.fs.size(self.file)} bytes; "
                            "if it changed since it was opened, open the sample again)")
        return np.frombuffer(buf, dtype=self.dtype).reshape((hi - lo,) + self.shape[1:])

    def __repr__(self):
        return f"<{type(self).__name__} {self.path}: {self.shape} {self.dtype}>"


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
