"""A C-ordered array stored as raw bytes at an offset of a file: the reading half of every format
whose counts are uncompressed (the built-in npy format, a detector's raw binary file).

:class:`BinaryArray` is a :class:`~eqegs_repo.io.frames.FrameSource` (and a
:class:`~eqegs_repo.io.frames.ValueSource`) given the file, the byte offset, the shape and the
dtype; a format that knows them from its own header needs nothing else to read its frames
(docs/formats.md). It reads only the frames asked for: through ``numpy.memmap`` for local
files, by byte ranges through fsspec otherwise. Streaming (:meth:`BinaryArray.read_frames`)
reads local files with positioned reads on one descriptor per file, with read-ahead hints to the
kernel (sequential access; the next block asked for ahead of time with
:meth:`BinaryArray.prefetch`).
"""
import os
import threading

import numpy as np

from eqegs_repo.errors import BadSample
from eqegs_repo.io.frames import basic_key


class BinaryArray:
    """The array of ``shape`` (frames first) and ``dtype`` whose C-ordered bytes start
    ``offset`` bytes into ``file`` on the fsspec filesystem ``fs``; nothing is read when made.

    ``path`` (what error messages and ``sample.info()`` name) is ``name`` when given (e.g.
    ``"detector.dat[module 1]"`` for one array of several in a file), else ``file``. Raises
    :class:`~eqegs_repo.errors.BadSample` naming it when the shape is not a tuple of integers
    >= 0 or the dtype holds Python objects (the dtype's kind is checked against the marker by
    :func:`~eqegs_repo.io.run.check_frames`, for every format alike). :meth:`read` takes a numpy index whose first axis is an
    int, a slice or an integer array and reads only the rows (frames) it needs. Instances pickle
    without open handles; :meth:`read_frames` is safe from several threads.
    """

    def __init__(self, fs, file, offset, shape, dtype, *, name=None):
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
        self._memmap = None
        self._fd = None
        self._fd_lock = threading.Lock()

    @property
    def is_local(self):
        return "file" in np.atleast_1d(self.fs.protocol)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_memmap=None, _fd=None, _fd_lock=None)
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
        (the kernel reads further ahead)."""
        with self._fd_lock:
            if self._fd is None:
                self._fd = os.open(self.file, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                _advise(self._fd, self.offset, 0, "POSIX_FADV_SEQUENTIAL")
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
        """``array[key]`` as a numpy array, reading only the frames (first-axis rows) needed."""
        if self.nbytes == 0:
            return np.empty(self.shape, self.dtype)[key]
        if self.is_local:
            if self._memmap is None:
                try:
                    self._memmap = np.memmap(self.file, self.dtype, "r", offset=self.offset, shape=self.shape)
                except (ValueError, OSError) as exc:  # e.g. a file shorter than offset + nbytes
                    raise BadSample(f"{self.path}: cannot read {self.nbytes} bytes at offset {self.offset} "
                                    f"({exc})") from None
            return np.asarray(self._memmap[key])
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
        lo, hi = int(rows.min()), int(rows.max()) + 1
        local = slice(None) if contiguous else rows - lo
        block = self._read_rows(lo, hi)
        return block[(local,) + rest]

    def read_frames(self, start, stop, out=None):
        """Frames ``start..stop-1`` as a C-ordered array (``out`` is filled when given).

        Unlike :meth:`read`, local files are read with positioned reads (``os.preadv``, safe
        from several threads) on one kept descriptor into the array instead of a memory map, so
        streaming a file that is larger than memory keeps the resident memory at one block.
        Other filesystems read one byte range.
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
        target = memoryview(out.reshape(-1).view(np.uint8))
        fd = self._descriptor()
        done = 0
        while done < len(target):
            n = os.preadv(fd, [target[done:]], offset + done)
            if not n:
                raise BadSample(f"{self.path}: file ended while reading frames {start}..{stop - 1}")
            done += n
        return out

    def _read_rows(self, lo, hi):
        row_bytes = self.nbytes // self.shape[0]
        with self.fs.open(self.file, "rb") as f:
            f.seek(self.offset + lo * row_bytes)
            buf = f.read((hi - lo) * row_bytes)
        if len(buf) < (hi - lo) * row_bytes:
            raise BadSample(f"{self.path}: file ended while reading frames {lo}..{hi - 1}")
        return np.frombuffer(buf, dtype=self.dtype).reshape((hi - lo,) + self.shape[1:])

    def __repr__(self):
        return f"<{type(self).__name__} {self.path}: {self.shape} {self.dtype}>"


def _advise(fd, offset, length, advice):
    """``os.posix_fadvise`` when the platform has it (Linux); True when given."""
    if not hasattr(os, "posix_fadvise"):
        return False
    os.posix_fadvise(fd, offset, length, getattr(os, advice))
    return True
