"""Writing a run in the HDF5 raw-data format (:mod:`eqegs_repo.io.formats.hdf5`), frames block
by block: what the simulator uses for ``format="hdf5"`` (docs/layout.md#hdf5).
"""
import numpy as np

from eqegs_repo.errors import BadInput, optional_import
from eqegs_repo.io.formats.hdf5 import FILE_NAME, SENSOR_DATASET, STACKED_DATASET, VELOCITY_DATASET, h5py_module

COMPRESSIONS = ("zstd", "lz4", "bitshuffle", "gzip", "none")
"""Compression of the counts: Zstandard (default), LZ4, bitshuffle with LZ4 (all three through
``hdf5plugin``), gzip (built into HDF5) or none."""
CHUNK_FRAMES = 8
"""Frames per chunk of the counts by default (one sensor per chunk): 3 MB of full-size uint32
frames."""


def compression_options(compression):
    """The ``create_dataset`` keywords of ``compression`` (one of :data:`COMPRESSIONS`)."""
    if compression not in COMPRESSIONS:
        raise BadInput(f"compression must be one of {', '.join(COMPRESSIONS)}; got {compression!r}")
    if compression == "none":
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4}
    plugin = optional_import("hdf5plugin", f"{compression} compression of HDF5 files")
    return dict({"zstd": plugin.Zstd(), "lz4": plugin.LZ4(),
                 "bitshuffle": plugin.Bitshuffle(cname="lz4")}[compression])


def marker_attribute(name, value):
    """A marker field as an HDF5 attribute value: numbers, text and lists of them; BadInput
    otherwise (a nested object has no attribute form)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                for v in value):
        return np.asarray(value)
    raise BadInput(f"marker field {name!r}: {value!r} cannot be an HDF5 attribute; expected a number, "
                   "a text or a list of numbers")


class RunWriter:
    """``<folder>/train_integrated.h5`` written frame block by frame block (a context manager).

    ``n_frames``, ``n_sensors``, ``sensor_shape`` (rows, cols) and ``dtype`` give the counts'
    datasets: ``sensor_<k>`` (frames, rows, cols) each, or with ``stacked`` one ``counts``
    (sensors, frames, rows, cols); chunks of ``chunk_frames`` frames of one sensor, compressed
    with ``compression`` (:data:`COMPRESSIONS`). ``marker`` (a dict) goes into the attributes of
    ``/``. Blocks that start on a chunk boundary compress each chunk once.
    """

    def __init__(self, folder, *, n_frames, n_sensors, sensor_shape, dtype, compression="zstd",
                 stacked=False, chunk_frames=CHUNK_FRAMES, marker=None):
        h5py = h5py_module()
        options = compression_options(compression)
        self.path = f"{folder}/{FILE_NAME}"
        self.stacked = stacked
        rows, cols = sensor_shape
        chunk = (min(int(chunk_frames), n_frames), rows, cols)
        self.h5 = h5py.File(self.path, "w", locking=False)
        try:
            if stacked:
                self.datasets = [self.h5.create_dataset(STACKED_DATASET, (n_sensors, n_frames, rows, cols),
                                                        dtype=dtype, chunks=(1,) + chunk, **options)]
            else:
                self.datasets = [self.h5.create_dataset(SENSOR_DATASET.format(k=k), (n_frames, rows, cols),
                                                        dtype=dtype, chunks=chunk, **options)
                                 for k in range(n_sensors)]
            for name, value in (marker or {}).items():
                self.h5.attrs[name] = marker_attribute(name, value)
        except BaseException:
            self.h5.close()
            raise

    def write_counts(self, sensor, start, counts):
        """Frames ``start..`` of sensor ``sensor``: ``counts`` (frames, rows, cols)."""
        stop = start + len(counts)
        if self.stacked:
            self.datasets[0][sensor, start:stop] = counts
        else:
            self.datasets[sensor][start:stop] = counts

    def write_velocity(self, values):
        """The measured drive waveform, (frames,)."""
        self.h5.create_dataset(VELOCITY_DATASET, data=np.asarray(values))

    def close(self):
        self.h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
