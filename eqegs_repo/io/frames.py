"""The declared interface of a run's raw arrays, whatever format holds them.

A raw-data format (:mod:`eqegs_repo.io.formats`) opens one :class:`FrameSource` per sensor and
one :class:`ValueSource` for the drive waveform. Everything above the formats uses only what is
declared here: the streaming passes of :mod:`eqegs_repo.cooking.passes` (``read_frames`` into
reused buffers, ``prefetch``, ``nbytes``, ``path`` in error messages), the lazy raw dataset and
the xarray engine (``shape``, ``dtype``, ``read`` with a basic index).

:class:`SensorStack` puts the sensors of a run side by side as one (sensor, frame, row, col)
array; :class:`eqegs_repo.io.raw.LazyArray` hands any source to xarray without reading it (this
module imports no xarray: a listing needs none).
"""
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ValueSource(Protocol):
    """One array of a run (e.g. the drive waveform, shape ``(frames,)``), read lazily.

    Instances must pickle (Dask ships them to workers) without open handles.
    """

    path: str
    """The file the values come from (a path on the run's filesystem, or ``file[key]`` for one
    array inside a container file), named in error messages and in ``sample.info()``."""
    shape: tuple
    """The array's shape as a tuple of ints."""
    dtype: np.dtype
    """The numpy dtype of the values as stored."""

    def read(self, key=()):
        """``array[key]`` as a numpy array for a numpy basic index (ints and slices; the first
        axis may also be an integer array); reads no more than the frames it needs."""


@runtime_checkable
class FrameSource(ValueSource, Protocol):
    """The frames of one sensor: ``shape == (frames, rows, cols)``, counts per pixel (any integer
    or float ``dtype``; floats must be finite), frame ``i`` being the ``i``-th time bin of the
    velocity cycle.

    Streaming reads go through :meth:`read_frames`, several threads at once on different frame
    ranges; they must be safe from several threads.
    """

    nbytes: int
    """Bytes of counts in the source as stored, headers excluded (frames x rows x cols x
    itemsize): the memory estimates and the read speed reported by the passes use it.

    Optional: ``chunk_frames`` (int), the frames of one compressed chunk of a source stored in
    chunks (HDF5); the streaming passes then read whole chunks per block, so that each chunk is
    decompressed once. Sources without it are read in blocks of any length."""

    def read_frames(self, start, stop, out=None):
        """Frames ``start..stop-1`` as a C-ordered ``(stop - start, rows, cols)`` array of
        ``dtype``; ``out``, when given, is such an array and is filled and returned (the passes
        reuse their buffers). Raise :class:`~eqegs_repo.errors.BadSample` naming :attr:`path`
        when the data end early or cannot be decoded."""

    def prefetch(self, start, stop):
        """Hint that frames ``start..stop-1`` are read next (start reading them in the
        background); True when something was done, False when the source cannot (a no-op is a
        valid implementation)."""


def _declared(protocol):
    """The attribute and method names ``protocol`` declares (its own and its bases')."""
    names = set()
    for cls in protocol.__mro__:
        if cls in (Protocol, object) or not getattr(cls, "_is_protocol", False):
            continue
        names.update(getattr(cls, "__annotations__", {}))
        names.update(name for name, value in vars(cls).items() if callable(value) and not name.startswith("_"))
    return tuple(sorted(names))


_DECLARED = {protocol: _declared(protocol) for protocol in (ValueSource, FrameSource)}


def provides(source, protocol):
    """``isinstance(source, protocol)`` for :class:`ValueSource` and :class:`FrameSource`: every
    declared attribute is there. (The ``typing`` check works the protocol's attributes out at
    every call; a listing checks thousands of sources.)"""
    return all(hasattr(source, name) for name in _DECLARED[protocol])


def basic_key(key, ndim):
    """A numpy basic index as a tuple of ``ndim`` slices/ints (no Ellipsis, no newaxis)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1 :]
    return key + (slice(None),) * (ndim - len(key))


class SensorStack:
    """The sensors of one run as one array of shape (sensor, frame, row, col).

    ``files`` are the sensors' :class:`FrameSource` objects (same frame count and frame shape);
    ``dtype`` is their common numpy type.
    """

    def __init__(self, files):
        self.files = list(files)
        first = self.files[0]
        self.shape = (len(self.files),) + tuple(first.shape)
        self.dtype = np.result_type(*[f.dtype for f in self.files])
        self.ndim = len(self.shape)

    @property
    def nbytes(self):
        """Bytes of counts in all sensors (headers excluded)."""
        return sum(f.nbytes for f in self.files)

    def prefetch(self, start, stop):
        """:meth:`FrameSource.prefetch` of frames ``start..stop-1`` of every sensor."""
        for f in self.files:
            f.prefetch(start, stop)

    def read(self, key=()):
        """``stack[key]`` for a numpy basic index; reads only the sensors and frames asked for."""
        key = basic_key(key, self.ndim)
        which, rest = key[0], key[1:]
        if isinstance(which, (int, np.integer)):
            return self.files[which].read(rest).astype(self.dtype, copy=False)
        picked = [self.files[i] for i in range(*which.indices(len(self.files)))]
        parts = [f.read(rest).astype(self.dtype, copy=False) for f in picked]
        if not parts:
            return np.empty((0,) + self.shape[1:], self.dtype)[(slice(None),) + rest]
        return np.stack(parts)

    __getitem__ = read  # lets dask.array.from_array slice it
