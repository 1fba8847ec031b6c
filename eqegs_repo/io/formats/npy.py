"""The built-in raw-data format: one ``.npy`` file per sensor and one for the drive waveform.

::

    <sample>/train_integrated/sensor_<k>.npy  (frames, rows, cols) counts, k = 0..n_sensors-1
    <sample>/train_integrated/velocity.npy    (frames,) measured drive waveform

(file and folder names from :class:`~eqegs_repo.io.layout.TreeLayout`: ``raw_dir``,
``sensor_file``, ``velocity_file``). :class:`NpyFile` reads a ``.npy`` file's header once and
then reads only the frames asked for: through ``numpy.memmap`` for local files, by byte ranges
through fsspec otherwise. Streaming (:meth:`NpyFile.read_frames`) reads local files with
positioned reads on one descriptor per file, with read-ahead hints to the kernel (sequential
access; the next block asked for ahead of time with :meth:`NpyFile.prefetch`).
"""
import os
import threading

import numpy as np

from eqegs_repo.errors import BadSample
from eqegs_repo.io.frames import basic_key
from eqegs_repo.io.layout import check_regular_file

_MAX_HEADER = 1 << 16
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
    Instances pickle without open handles.
    """

    def __init__(self, fs, path):
        self.fs, self.path = fs, path
        try:
            check_regular_file(fs, path)
            with fs.open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                reader = _HEADER_READERS.get(version)
                if reader is None:
                    raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}; "
                                     "expected 1.0, 2.0 or 3.0")
                shape, fortran, dtype = reader(f, max_header_size=_MAX_HEADER)
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
        self.nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
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
                self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
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
        if self.is_local:
            if self._memmap is None:
                self._memmap = np.load(self.path, mmap_mode="r")
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
        with self.fs.open(self.path, "rb") as f:
            f.seek(self.offset + lo * row_bytes)
            buf = f.read((hi - lo) * row_bytes)
        return np.frombuffer(buf, dtype=self.dtype).reshape((hi - lo,) + self.shape[1:])


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

    def why_not(self, fs, folder, names, marker, layout):
        """The raw folder is missing (what :meth:`guess_can_open` looks for)."""
        return f"no {layout.raw_dir}/ folder in the sample folder"

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
