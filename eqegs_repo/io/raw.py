"""A sample's raw data as a lazy ``xarray.Dataset``, in whatever format the run is held.

:func:`open_raw` opens the run (:func:`eqegs_repo.io.run.open_run`: format picked, headers
checked against the marker) and returns ``counts(sensor, frame, row, col)`` and
``velocity(frame)``; ``chunks=`` gives the same dataset backed by Dask arrays.
"""
import numpy as np
import xarray as xr
from xarray.core import indexing

from eqegs_repo.errors import optional_import
from eqegs_repo.io.frames import LazyArray
from eqegs_repo.io.run import open_run


def open_raw(fs, sample_path, marker, layout, chunks=None):
    """A sample's raw data as a lazy ``xarray.Dataset``.

    Variables: ``counts(sensor, frame, row, col)`` in the sensor files' dtype and
    ``velocity(frame)`` (float). ``attrs`` hold the marker. The run's format is picked by
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
    coords = {"sensor": np.arange(n_sensors), "frame": np.arange(n_frames)}
    return xr.Dataset(
        {
            "counts": xr.Variable(("sensor", "frame", "row", "col"), counts, {"units": "counts"}),
            "velocity": xr.Variable(("frame",), vel, {"long_name": "measured drive waveform"}),
        },
        coords=coords,
        attrs=dict(marker),
    )
