"""A sample's raw data as a lazy ``xarray.Dataset``, in whatever format the run is held.

:func:`open_raw` opens the run (:func:`eqegs_repo.io.run.open_run`: format picked, headers
checked against the marker) and returns ``counts(sensor, frame, row, col)`` and
``velocity(frame)``; ``chunks=`` gives the same dataset backed by Dask arrays.
"""
import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from eqegs_repo.errors import optional_import
from eqegs_repo.io.run import open_run

RAW_VELOCITY_UNITS = "a.u."
"""Units of the raw ``velocity``: the drive monitor's signal as recorded, in arbitrary units; the
velocity calibration turns it into mm/s (the ``velocity`` coordinate of the E-spectrum dataset)."""


class LazyArray(BackendArray):
    """xarray adapter: defers every read to ``source.read`` with a basic index (``source``: a
    :class:`~eqegs_repo.io.frames.ValueSource`, a :class:`~eqegs_repo.io.frames.FrameSource` or a
    :class:`~eqegs_repo.io.frames.SensorStack`)."""

    def __init__(self, source):
        self.source = source
        self.shape, self.dtype = tuple(source.shape), np.dtype(source.dtype)

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self.source.read
        )


def open_raw(fs, sample_path, marker, layout, chunks=None):
    """A sample's raw data as a lazy ``xarray.Dataset``.

    Variables: ``counts(sensor, frame, row, col)`` in the sensor files' dtype and
    ``velocity(frame)`` (float, the uncalibrated drive waveform, :data:`RAW_VELOCITY_UNITS`);
    coordinates ``sensor`` and ``frame`` (indices, units ``"1"``), ``row`` and ``col`` (px). ``attrs`` hold the marker. The run's format is picked by
    :func:`eqegs_repo.io.run.open_run`. Nothing but headers is read until
    values are asked for. ``chunks``: None for lazy numpy-backed variables, or the number of
    frames per Dask chunk (int) for Dask-backed variables (needs the ``dask`` extra).
    """
    run = open_run(fs, sample_path, marker, layout)
    stack, velocity = run.stack, run.velocity
    n_sensors, n_frames, rows, cols = stack.shape
    if chunks is None:
        counts = indexing.LazilyIndexedArray(LazyArray(stack))
        vel = indexing.LazilyIndexedArray(LazyArray(velocity))
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
