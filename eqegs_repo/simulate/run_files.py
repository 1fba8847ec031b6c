"""The files of one synthetic run, written in either raw-data format: the drive waveform, the
sensor counts streamed in blocks of frames (``.npy`` files mapped one block at a time, or the
compressed HDF5 file of :mod:`eqegs_repo.io.formats.hdf5_writing`) and, last, the marker.
:mod:`eqegs_repo.simulate.synthetic` writes a sample folder with :func:`write_files` (beside its
place, then renamed) or grows one in place.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.io.formats.hdf5 import FILE_NAME, SENSOR_DATASET
from eqegs_repo.io.formats.hdf5_writing import CHUNK_FRAMES, RunWriter, compression_options
from eqegs_repo.io.layout import TreeLayout
from eqegs_repo.kernels.sensors import split
from eqegs_repo.simulate import drive, image
from eqegs_repo.simulate.parameters import SyntheticParams

FORMATS = ("npy", "hdf5")
"""Raw-data formats the simulator writes (docs/layout.md)."""
_RUN_STREAM = {"sample": 0, "background": 1}
_MAX_BLOCK_VALUES = 4_000_000
"""Pixels per streamed block of frames (about 16 MB of float32 expected counts)."""


def _generators(seed: int, run: str, n_sensors: int) -> tuple[np.random.Generator, list[np.random.Generator]]:
    """Independent PCG64 streams: one for the velocity monitor, one per sensor."""
    children = np.random.SeedSequence([int(seed), _RUN_STREAM[run]]).spawn(1 + n_sensors)
    gens = [np.random.Generator(np.random.PCG64(c)) for c in children]
    return gens[0], gens[1:]


def _check_range(counts: np.ndarray, dtype: np.dtype, path: Path) -> None:
    if dtype.kind in "ui":
        top = np.iinfo(dtype).max
        if counts.size and counts.max() > top:
            raise BadInput(
                f"{path}: simulated counts reach {int(counts.max())}, above the {dtype.name} maximum {top}; "
                "use a wider dtype (e.g. dtype='uint32') or a lower flux"
            )


def check_format(format, compression):
    """BadInput naming the choices when ``format`` or, for HDF5, ``compression`` is unknown."""
    if format not in FORMATS:
        raise BadInput(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    if format == "hdf5":
        compression_options(compression)


class _NpyRun:
    """The ``.npy`` files of a run written block by block (the npy twin of
    :class:`~eqegs_repo.io.formats.hdf5_writing.RunWriter`): full-size sparse files, each mapped
    only while a block is written, so written pages leave the resident memory."""

    def __init__(self, folder, files, shape, dtype):
        (folder / files.raw_dir).mkdir(exist_ok=True)  # exists when a grown sample is rewritten in place
        self.folder, self.files = str(folder), files
        self.shape, self.dtype = shape, dtype

    def write_velocity(self, values):
        np.save(self.files.velocity_path(self.folder), values)

    def write_counts(self, sensor, start, counts):
        path = self.files.sensor_path(self.folder, sensor)
        if start == 0:
            np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=self.shape).flush()
        stack = np.lib.format.open_memmap(path, mode="r+")
        stack[start:start + len(counts)] = counts
        stack.flush()
        del stack

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def image_model(params: SyntheticParams, run: str, models: dict | None = None) -> image.ImageModel:
    """The expected-count model of ``run`` with ``params``, taken from ``models`` when it holds
    one built with the same parameters but for the counting noise (``noise_free``, ``dtype``),
    and kept there: a noise-free copy written with the same dict builds each model once."""
    if models is None:
        return params.image_model(run)
    key = (dataclasses.replace(params, noise_free=False, dtype="float64"), run)
    if key not in models:
        models[key] = params.image_model(run)
    return models[key]


def write_files(folder: Path, params: SyntheticParams, seed: int, run: str, marker: dict,
                 block_frames: int | None, shown: Path, *, format: str = "npy", compression: str = "zstd",
                 stacked: bool = False, json_marker: bool = True, models: dict | None = None) -> image.ImageModel:
    """Write the velocity, the sensor counts (frames streamed in blocks; an existing file is
    rewritten in place) and, last, the marker (written beside and renamed) into ``folder``, in
    ``format`` (see :func:`write_sample`); ``shown`` names the sample in messages; ``models``
    see :func:`image_model`. Returns the image model drawn from."""
    layout = params.sensor_layout
    dtype = np.dtype(params.dtype)
    files = TreeLayout()
    if block_frames is None:
        block_frames = max(1, _MAX_BLOCK_VALUES // (layout.canvas_shape[0] * layout.canvas_shape[1]))
        if format == "hdf5":  # whole chunks: each is compressed once
            block_frames = max(CHUNK_FRAMES, block_frames - block_frames % CHUNK_FRAMES)
    velocity_rng, sensor_rngs = _generators(seed, run, layout.n_sensors)
    model = image_model(params, run, models)
    folder.mkdir(parents=True, exist_ok=True)
    measured = drive.measured_waveform(model.velocity, params.velocity_gain, params.velocity_noise, velocity_rng)
    if format == "hdf5":
        sink = RunWriter(str(folder), n_frames=params.n_frames, n_sensors=layout.n_sensors,
                         sensor_shape=layout.sensor_shape, dtype=dtype, compression=compression,
                         stacked=stacked, marker=marker)
    else:
        sink = _NpyRun(folder, files, (params.n_frames,) + layout.sensor_shape, dtype)
    with sink:
        sink.write_velocity(measured)
        for start in range(0, params.n_frames, block_frames):
            stop = min(start + block_frames, params.n_frames)
            parts = split(model.expected(start, stop), layout=layout)
            for k, (mu, rng) in enumerate(zip(parts, sensor_rngs)):
                counts = image.detector_counts(mu, rng, params.read_noise, params.trains_integrated, params.noise_free)
                where = (f"{shown / FILE_NAME}[{SENSOR_DATASET.format(k=k)}]" if format == "hdf5"
                         else shown / files.raw_dir / files.sensor_file.format(k=k))
                _check_range(counts, dtype, where)
                sink.write_counts(k, start, counts)
    if format == "npy" or json_marker:
        marker_path = folder / files.marker
        temp = marker_path.with_name(f".{files.marker}.partial-{os.getpid()}")
        temp.write_text(json.dumps(marker, indent=1))
        os.replace(temp, marker_path)
    return model
