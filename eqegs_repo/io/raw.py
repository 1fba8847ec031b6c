"""Lazy readers of a sample's raw files.

:class:`NpyFile` reads a ``.npy`` file's header once and then reads only the frames asked for:
through ``numpy.memmap`` for local files, by byte ranges through fsspec otherwise. Streaming
(:meth:`NpyFile.read_frames`) reads local files with positioned reads on one descriptor per
file, with read-ahead hints to the kernel (sequential access; the next block asked for ahead
of time with :meth:`NpyFile.prefetch`).
:func:`open_raw` checks a sample's files against its marker and returns a lazy
``xarray.Dataset`` with ``counts(sensor, frame, row, col)`` and ``velocity(frame)``;
``chunks=`` gives the same dataset backed by Dask arrays.
"""
import os
import threading

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from eqegs_repo.errors import BadSample, optional_import
from eqegs_repo.io.layout import check_regular_file

_MAX_HEADER = 1 << 16


def _normalise_key(key, ndim):
    """A numpy basic index as a tuple of ``ndim`` slices/ints (no Ellipsis, no newaxis)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1 :]
    return key + (slice(None),) * (ndim - len(key))


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
                reader = {
                    (1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0,
                }.get(version)
                if reader is None:
                    raise ValueError(f"unsupported .npy format version {version}")
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
        if size < self.offset + self.nbytes:
            raise BadSample(
                f"{path}: truncated: the header says shape {self.shape} of {dtype}, i.e. "
                f"{self.offset + self.nbytes} bytes, but the file has {size} bytes"
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
        key = _normalise_key(key, len(self.shape))
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


class SensorStack:
    """The sensor files of one sample as one array of shape (sensor, frame, row, col)."""

    def __init__(self, files):
        self.files = list(files)
        first = self.files[0]
        self.shape = (len(self.files),) + first.shape
        self.dtype = np.result_type(*[f.dtype for f in self.files])
        self.ndim = len(self.shape)

    @property
    def nbytes(self):
        """Bytes of counts in all sensor files (headers excluded)."""
        return sum(f.nbytes for f in self.files)

    def prefetch(self, start, stop):
        """:meth:`NpyFile.prefetch` of frames ``start..stop-1`` of every sensor file."""
        for f in self.files:
            f.prefetch(start, stop)

    def read(self, key=()):
        """``stack[key]`` for a numpy basic index; reads only the sensors and frames asked for."""
        key = _normalise_key(key, self.ndim)
        which, rest = key[0], key[1:]
        if isinstance(which, (int, np.integer)):
            return self.files[which].read(rest).astype(self.dtype, copy=False)
        picked = [self.files[i] for i in range(*which.indices(len(self.files)))]
        parts = [f.read(rest).astype(self.dtype, copy=False) for f in picked]
        if not parts:
            return np.empty((0,) + self.shape[1:], self.dtype)[(slice(None),) + rest]
        return np.stack(parts)

    __getitem__ = read  # lets dask.array.from_array slice it


class _LazyArray(BackendArray):
    """xarray adapter: defers every read to ``source.read`` with a basic index."""

    def __init__(self, source):
        self.source = source
        self.shape, self.dtype = tuple(source.shape), np.dtype(source.dtype)

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self.source.read
        )


def check_sample_files(fs, sample_path, marker, layout):
    """Open the headers of a sample's raw files and check them against each other and the marker.

    Returns ``(SensorStack, NpyFile of the velocity)``; raises :class:`BadSample` naming the
    file, what was expected and what was found. Reads headers and file sizes only.
    """
    n_sensors, n_frames = marker["n_sensors"], marker["n_frames"]
    rows, cols = marker["sensor_shape"]
    sensors = [NpyFile(fs, layout.sensor_path(sample_path, k)) for k in range(n_sensors)]
    for f in sensors:
        if len(f.shape) != 3:
            raise BadSample(f"{f.path}: expected a (frames, rows, cols) array, found shape {f.shape}")
        if f.dtype.kind not in "uif":
            raise BadSample(f"{f.path}: expected integer or float counts, found dtype {f.dtype}")
    frames = {f.path: f.shape[0] for f in sensors}
    if len(set(frames.values())) > 1:
        listing = ", ".join(f"{p.rsplit('/', 1)[-1]}: {n}" for p, n in frames.items())
        raise BadSample(f"{sample_path}: the sensors' frame counts differ ({listing})")
    for f in sensors:
        if f.shape[0] != n_frames:
            raise BadSample(
                f"{f.path}: has {f.shape[0]} frames but the marker says n_frames={n_frames}"
            )
        if list(f.shape[1:]) != [rows, cols]:
            raise BadSample(
                f"{f.path}: frames of {f.shape[1]} x {f.shape[2]} but the marker says "
                f"sensor_shape=[{rows}, {cols}]"
            )
    velocity = NpyFile(fs, layout.velocity_path(sample_path))
    if velocity.shape != (n_frames,):
        raise BadSample(
            f"{velocity.path}: expected a velocity array of shape ({n_frames},) (one value per "
            f"frame), found shape {velocity.shape}"
        )
    return SensorStack(sensors), velocity


RAW_VELOCITY_UNITS = "a.u."
"""Units of the raw ``velocity``: the drive monitor's signal as recorded, in arbitrary units; the
velocity calibration turns it into mm/s (the ``velocity`` coordinate of the E-spectrum dataset)."""


def open_raw(fs, sample_path, marker, layout, chunks=None):
    """A sample's raw data as a lazy ``xarray.Dataset``.

    Variables: ``counts(sensor, frame, row, col)`` in the sensor files' dtype and
    ``velocity(frame)`` (float, the uncalibrated drive waveform, :data:`RAW_VELOCITY_UNITS`);
    coordinates ``sensor`` and ``frame`` (indices, units ``"1"``), ``row`` and ``col`` (px). ``attrs`` hold the marker. Nothing but headers is read until
    values are asked for. ``chunks``: None for lazy numpy-backed variables, or the number of
    frames per Dask chunk (int) for Dask-backed variables (needs the ``dask`` extra).
    """
    stack, velocity = check_sample_files(fs, sample_path, marker, layout)
    n_sensors, n_frames, rows, cols = stack.shape
    if chunks is None:
        counts = indexing.LazilyIndexedArray(_LazyArray(stack))
        vel = indexing.LazilyIndexedArray(_LazyArray(velocity))
    else:
        da = optional_import("dask.array", "Dask-backed raw data (chunks=...)")
        frames_per_chunk = int(chunks)
        if frames_per_chunk < 1:
            raise ValueError(f"chunks must be a number of frames >= 1, got {chunks!r}")
        counts = da.from_array(
            stack, chunks=(1, frames_per_chunk, rows, cols), meta=np.empty((0, 0, 0, 0), stack.dtype)
        )
        vel = da.from_array(velocity.read(), chunks=frames_per_chunk)
    coords = {name: xr.Variable(name, np.arange(size), {"units": unit, "long_name": long_name})
              for name, size, unit, long_name in (("sensor", n_sensors, "1", "sensor index"),
                                                  ("frame", n_frames, "1", "frame index"),
                                                  ("row", rows, "px", "pixel row on the sensor"),
                                                  ("col", cols, "px", "pixel column on the sensor"))}
    return xr.Dataset(
        {
            "counts": xr.Variable(("sensor", "frame", "row", "col"), counts,
                                  {"units": "counts", "long_name": "photon counts per pixel and frame"}),
            "velocity": xr.Variable(("frame",), vel, {"units": RAW_VELOCITY_UNITS,
                                                      "long_name": "measured drive waveform (uncalibrated)"}),
        },
        coords=coords,
        attrs=dict(marker),
    )
