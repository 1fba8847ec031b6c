"""The HDF5 raw-data format: one ``train_integrated.h5`` file per sample (docs/layout.md#hdf5).

::

    <sample>/train_integrated.h5
        /sensor_0, /sensor_1, ...   (frames, rows, cols) counts, one dataset per sensor, or
        /counts                     (sensors, frames, rows, cols) counts, the sensors stacked
        /velocity                   (frames,) measured drive waveform
        attributes of /             the marker's fields (n_frames, n_sensors, sensor_shape, ...)
    <sample>/train_integrated.json  the marker (optional when the file's attributes hold it)

The datasets may be chunked and compressed with any filter HDF5 has (gzip built in; Zstd, LZ4,
bitshuffle and others through the ``hdf5plugin`` package, imported when it is installed).
h5py is an optional dependency (extra ``hdf5``): nothing here imports it before a file is opened.

Before any value is read, every dataset's link and storage are checked: an external link, a
virtual dataset whose sources lie in another file, external raw storage or a filter that is not
installed are refused naming the file and dataset, so nothing outside the sample's file is ever
opened. :meth:`Hdf5Array.read_frames` reads whole frames into the caller's buffer;
:attr:`Hdf5Array.chunk_frames` tells the streaming passes the chunks' length along frames, so
that their blocks hold whole chunks and each chunk is decompressed once. h5py runs one HDF5
call at a time, so chunks compressed with Zstd or gzip (with or without shuffle), or not at all,
are decompressed outside HDF5 by :mod:`~eqegs_repo.io.formats.hdf5_chunks`, in every lane at
once; other filters are undone by HDF5, one lane at a time, while the other lanes compute
(docs/layout.md#hdf5-speed, benchmarks/bench_hdf5.py).
"""
import json
import threading

import numpy as np

from eqegs_repo.errors import BadSample, MissingExtra, optional_import
from eqegs_repo.io.formats.hdf5_chunks import chunk_reader
from eqegs_repo.io.frames import basic_key
from eqegs_repo.io.layout import HDF5_FILE, check_regular_file, is_local, opening, parse_marker

FILE_NAME = HDF5_FILE
"""The sample folder's HDF5 file (beside, or instead of, the JSON marker)."""
SENSOR_DATASET = "sensor_{k}"
"""One dataset per sensor, ``(frames, rows, cols)``, k = 0 .. n_sensors - 1."""
STACKED_DATASET = "counts"
"""Or every sensor in one dataset, ``(sensors, frames, rows, cols)``."""
VELOCITY_DATASET = "velocity"
"""The measured drive waveform, ``(frames,)``."""
CHUNK_CACHE_BYTES = 64 << 20
"""Upper bound of the chunk cache of a dataset (h5py's default is 1 MiB): a chunk that spans
several sensors of the stacked dataset stays decompressed until each sensor has read it."""

FILTER_PACKAGES = {
    32001: "Blosc", 32004: "LZ4", 32008: "bitshuffle", 32013: "zfp", 32015: "Zstandard",
    32017: "SZ", 32024: "SZ3", 32026: "Blosc2", 307: "bzip2", 32018: "FCIDECOMP", 32033: "HTJ2K",
    32028: "SPERR",
}
"""HDF5 filter ids that the ``hdf5plugin`` package provides (the registered ids of the HDF
Group), by name."""


def h5py_module():
    """h5py, with the filters of ``hdf5plugin`` registered when that package is installed."""
    h5py = optional_import("h5py", "reading and writing HDF5 raw data")
    optional_import("hdf5plugin", "HDF5 compression filters", required=False)
    return h5py


def open_file(fs, path, cache_bytes=1 << 20):
    """The HDF5 file ``path`` on ``fs`` opened read-only (``h5py.File``; a local file by its
    path, others through fsspec), after checking that it is a regular file. BadSample naming
    the file when it is missing, unreadable, truncated or not HDF5. ``cache_bytes``: the chunk
    cache of each dataset (decompressed chunks kept for the next read). Without h5py, a
    BadSample naming the file and the extra to install (a problem of that sample only)."""
    try:
        h5py = h5py_module()
    except MissingExtra as exc:
        raise BadSample(f"{path}: {exc}") from None
    with opening(path, "not a readable HDF5 file ({exc}); a truncated or partly copied file?"):
        check_regular_file(fs, path)
        if is_local(fs):
            return h5py.File(path, "r", locking=False, rdcc_nbytes=cache_bytes)
        return h5py.File(fs.open(path, "rb"), "r", rdcc_nbytes=cache_bytes)


def checked_dataset(h5file, name, path):
    """The dataset ``name`` of the open file ``h5file`` (``path``: its path, for messages) once it
    is known to be safe to read: a hard or soft link inside the file (never an external link), a
    dataset (not a group), its raw data inside the file (no external storage, no virtual dataset
    with sources in other files) and every filter of its pipeline installed. None when there is
    no such name. Nothing of another file is opened."""
    h5py = h5py_module()
    link = h5file.get(name, getlink=True)
    if link is None:
        return None
    where = f"{path}: dataset /{name}"
    if isinstance(link, h5py.ExternalLink):
        raise BadSample(f"{where} is an external link to {link.filename}:{link.path}; expected the "
                        "data inside this file (external links are never followed)")
    try:
        kind = h5file.get(name, getclass=True)
    except (KeyError, OSError) as exc:
        raise BadSample(f"{where}: the link cannot be resolved ({exc})") from None
    if kind is not h5py.Dataset:
        found = "a dangling link" if kind is None else f"a {kind.__name__.lower()}"
        raise BadSample(f"{where}: expected a dataset, found {found}")
    dset = h5file[name]
    if dset.is_virtual:
        outside = sorted({source.file_name for source in dset.virtual_sources() if source.file_name != "."})
        if outside:
            raise BadSample(f"{where} is a virtual dataset whose data lie in other files ({', '.join(outside)}); "
                            "expected the data inside this file (they are never read)")
    if dset.external:
        files = sorted({str(entry[0]) for entry in dset.external})
        raise BadSample(f"{where} stores its data in external files ({', '.join(files)}); expected "
                        "the data inside this file (they are never read)")
    _check_filters(dset, where)
    return dset


def _check_filters(dset, where):
    """BadSample naming the filter and the package to install when a filter of ``dset``'s
    pipeline is not available."""
    h5py = h5py_module()
    plist = dset.id.get_create_plist()
    for index in range(plist.get_nfilters()):
        code, _, _, name = plist.get_filter(index)
        if h5py.h5z.filter_avail(code):
            continue
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        if code in FILTER_PACKAGES:
            hint = (f"the {FILTER_PACKAGES[code]} filter comes with the hdf5plugin package: "
                    'pip install hdf5plugin (or pip install "eqegs_repo[hdf5]")')
        else:
            hint = ("install the HDF5 filter plugin of this id (the HDF Group's list of registered "
                    "filters names it) and point HDF5_PLUGIN_PATH at it")
        raise BadSample(f"{where} is compressed with HDF5 filter {code} ({name or 'unnamed'}), which "
                        f"is not installed: {hint}")


def chunk_frames(dset, frame_axis):
    """Frames per chunk along the frame axis (1 for a contiguous dataset)."""
    return int(dset.chunks[frame_axis]) if dset.chunks else 1


class SharedFile:
    """The sample's HDF5 file, opened on first use and shared by the arrays read from it (h5py
    runs one HDF5 call at a time anyway); ``cache_bytes`` is the chunk cache of each of its
    datasets. Pickles without the open file."""

    def __init__(self, fs, path, cache_bytes):
        self.fs, self.path, self.cache_bytes = fs, path, int(cache_bytes)
        self._lock = threading.Lock()
        self._h5 = None
        self._datasets = {}
        self._readers = {}

    def __getstate__(self):
        return {**self.__dict__, "_h5": None, "_datasets": {}, "_readers": {}, "_lock": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __del__(self):
        self.close()

    def close(self):
        """Close the file (reopened when read again)."""
        h5, self._h5, self._datasets, self._readers = getattr(self, "_h5", None), None, {}, {}
        if h5 is not None:
            h5.close()

    def dataset(self, name, shape):
        """The checked dataset ``name``; BadSample when it no longer has ``shape``."""
        with self._lock:
            if self._h5 is None:
                self._h5 = open_file(self.fs, self.path, self.cache_bytes)
            if name not in self._datasets:
                dset = checked_dataset(self._h5, name, self.path)
                if dset is None or tuple(dset.shape) != shape:
                    raise BadSample(f"{self.path}: dataset /{name} changed since the file was opened "
                                    f"(expected shape {shape}); was the file rewritten?")
                self._datasets[name] = dset
                self._readers[name] = chunk_reader(dset, frame_axis=len(shape) - 3) if len(shape) >= 3 else None
            return self._datasets[name]

    def chunk_reader(self, name):
        """The :class:`~eqegs_repo.io.formats.hdf5_chunks.ChunkReader` of the dataset ``name``
        opened by :meth:`dataset`, or None when HDF5 reads it."""
        return self._readers.get(name)


class Hdf5Array:
    """One array of the sample's HDF5 file, read lazily: a sensor's ``(frames, rows, cols)``
    counts (dataset ``sensor_<k>``, or index ``sensor`` of the stacked ``counts``), or the
    ``(frames,)`` velocity. ``shape``, ``dtype`` and :attr:`chunk_frames` (frames per chunk)
    come from the dataset's header; the file (a :class:`SharedFile`) is opened on first read."""

    def __init__(self, file, name, header, sensor=None):
        self.file, self.name, self.sensor = file, name, sensor
        self.path = f"{file.path}[{name}]" if sensor is None else f"{file.path}[{name}][{sensor}]"
        self.dataset_shape, dtype, self.chunk_frames = header
        self.shape = self.dataset_shape if sensor is None else self.dataset_shape[1:]
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def read(self, key=()):
        """``array[key]`` for a numpy basic index (the first axis may be an integer array): the
        frames from the first to the last asked for are read, then indexed."""
        key = basic_key(key, len(self.shape))
        first, rest = key[0], key[1:]
        n = self.shape[0]
        rows = np.atleast_1d(np.arange(n)[first] if isinstance(first, slice) else np.asarray(first))
        rows = np.where(rows < 0, rows + n, rows)
        if rows.size == 0:
            return np.empty((0,) + self.shape[1:], self.dtype)[(slice(None),) + rest]
        if rows.min() < 0 or rows.max() >= n:
            raise IndexError(f"{self.path}: frame index out of range 0..{n - 1}")
        lo, hi = int(rows.min()), int(rows.max()) + 1
        if isinstance(first, (int, np.integer)):
            local = 0
        elif isinstance(first, slice) and first.indices(n)[2] == 1:
            local = slice(None)
        else:
            local = rows - lo
        return self.read_frames(lo, hi)[(local,) + rest]

    def read_frames(self, start, stop, out=None):
        """Frames ``start..stop-1`` as a C-ordered array, read into ``out`` when given (chunk by
        chunk, decompressed in this thread, where :mod:`~eqegs_repo.io.formats.hdf5_chunks` can;
        else straight by HDF5); BadSample naming the dataset when they cannot be read or
        decompressed."""
        shape = (stop - start,) + self.shape[1:]
        if out is None:
            out = np.empty(shape, self.dtype)
        elif out.shape != shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-ordered {self.dtype} array of shape {shape}")
        if stop > start:
            dset = self.file.dataset(self.name, self.dataset_shape)
            reader = self.file.chunk_reader(self.name)
            frames = slice(start, stop)
            try:
                if reader is None:
                    dset.read_direct(out, source_sel=frames if self.sensor is None else (self.sensor, frames))
                else:
                    reader.read(dset, start, stop, out, sensor=self.sensor)
            except OSError as exc:
                raise BadSample(f"{self.path}: frames {start}..{stop - 1} cannot be read ({exc})") from None
        return out

    def prefetch(self, start, stop):
        """Nothing to announce: HDF5 reads the chunks it needs. Returns False."""
        return False


def marker_from_file(fs, folder):
    """The marker held by the attributes of ``folder``'s HDF5 file (the fields of
    ``train_integrated.json``, validated the same way), or None when the file has none of them.
    BadSample naming the file when it cannot be read."""
    path = f"{folder}/{FILE_NAME}"
    with open_file(fs, path) as h5file:
        attrs = {name: _plain(value) for name, value in h5file.attrs.items()}
    if not attrs:
        return None
    return parse_marker(json.dumps(attrs), f"{path} (attributes of /)")


def _plain(value):
    """An attribute's value as JSON would hold it (numbers, text, lists)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Hdf5Format:
    """The HDF5 layout as a :class:`~eqegs_repo.io.formats.RawFormat` (registered as ``"hdf5"``)."""

    name = "hdf5"

    def guess_can_open(self, fs, folder, names, marker, layout):
        """True when the sample folder holds ``train_integrated.h5``."""
        return FILE_NAME in names

    def why_not(self, fs, folder, names, marker, layout):
        """The file :meth:`guess_can_open` looks for is missing."""
        return f"no {FILE_NAME} in the sample folder"

    def run_files(self, fs, folder, marker, layout):
        """The one HDF5 file."""
        return [f"{folder}/{FILE_NAME}"]

    def open_frames(self, fs, folder, marker, layout):
        """One :class:`Hdf5Array` per sensor and the velocity's, from the file's headers: the
        per-sensor datasets when ``sensor_0`` exists, the stacked ``counts`` otherwise."""
        path = f"{folder}/{FILE_NAME}"
        with open_file(fs, path) as h5file:
            velocity = checked_dataset(h5file, VELOCITY_DATASET, path)
            stacked = checked_dataset(h5file, STACKED_DATASET, path)
            first = checked_dataset(h5file, SENSOR_DATASET.format(k=0), path)
            if velocity is None or (first is None and stacked is None):
                found = ", ".join(sorted(h5file)) or "nothing"
                raise BadSample(f"{path}: expected the datasets {SENSOR_DATASET.format(k=0)}, "
                                f"{SENSOR_DATASET.format(k=1)}, ... (or one {STACKED_DATASET}) and "
                                f"{VELOCITY_DATASET}; found {found}")
            if first is not None:
                names = [SENSOR_DATASET.format(k=k) for k in range(marker["n_sensors"])]
                datasets = [checked_dataset(h5file, name, path) for name in names]
                missing = [name for name, dset in zip(names, datasets) if dset is None]
                if missing:
                    raise BadSample(f"{path}: dataset /{missing[0]} is missing; the marker says "
                                    f"n_sensors={marker['n_sensors']}")
                headers = [(name, _header(dset, 0), None) for name, dset in zip(names, datasets)]
                shared_chunks = 1
            else:
                if stacked.ndim != 4:
                    raise BadSample(f"{path}: dataset /{STACKED_DATASET}: expected a (sensors, frames, "
                                    f"rows, cols) array, found shape {stacked.shape}")
                headers = [(STACKED_DATASET, _header(stacked, 1), k) for k in range(stacked.shape[0])]
                shared_chunks = stacked.chunks[0] if stacked.chunks else 1
                datasets = [stacked]
            vel_header = _header(velocity, 0)
            chunk_bytes = max(_chunk_bytes(dset) for dset in datasets)
        # one chunk per dataset; several blocks' worth when a chunk spans several sensors, so that
        # each sensor's read finds it decompressed (the lanes read their blocks in turn)
        cache = min(CHUNK_CACHE_BYTES, max(1 << 20, chunk_bytes * (1 if shared_chunks == 1 else 4)))
        file = SharedFile(fs, path, cache)
        sensors = [Hdf5Array(file, name, header, sensor=k) for name, header, k in headers]
        return sensors, Hdf5Array(file, VELOCITY_DATASET, vel_header)

    def __repr__(self):
        return "<raw-data format hdf5>"


def _header(dset, frame_axis):
    """``(shape, dtype, frames per chunk)`` of a checked dataset."""
    return tuple(int(n) for n in dset.shape), dset.dtype, chunk_frames(dset, frame_axis)


def _chunk_bytes(dset):
    """Bytes of one decompressed chunk of ``dset`` (its whole size when it is not chunked)."""
    shape = dset.chunks or dset.shape
    return int(np.prod(shape, dtype=np.int64)) * dset.dtype.itemsize


FORMAT = Hdf5Format()
