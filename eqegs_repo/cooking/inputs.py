"""What a cook reads besides spice: the raw files of a run, the sensor layout they were written
with, and whether the run is the proposal's background run (docs/layout.md, docs/reanalysis.md)."""
import numpy as np

from eqegs_repo.cooking.cache import file_stats
from eqegs_repo.errors import BadInput
from eqegs_repo.io.run import open_run
from eqegs_repo.kernels.sensors import SensorLayout
from eqegs_repo.naming import same_text
from eqegs_repo.step_table import background_steps
from spice import SpiceError


def is_background_run(sample, params):
    """True when ``params`` (the sample's :class:`StepParameters`, or its resolved spice view)
    name the sample itself as ``q_integration.bg_sample_id``: it is the background
    ("scattering noise") run. Keys are compared in NFC (docs/layout.md)."""
    return same_key(params["q_integration"]["bg_sample_id"], sample.key)


def same_key(named, key):
    """Whether ``named`` (a sample ID from spice, or None) names the sample ``key``, in NFC."""
    return named is not None and same_text(named) == same_text(key)


def background_users(sample):
    """Keys of the other samples of ``sample``'s proposal whose resolved spice names it as
    ``q_integration.bg_sample_id`` (the samples that subtract it), in natural order; a sample
    whose spice does not resolve is left out."""
    users = []
    for key in sample.proposal.keys():
        if key == sample.key:
            continue
        try:
            if same_key(sample.proposal[key].spice["q_integration"]["bg_sample_id"], sample.key):
                users.append(key)
        except (SpiceError, BadInput):
            continue
    return users


def background_refusal(sample, params, step):
    """The message refusing ``step`` for the background run ``sample``: what it is, the steps
    that do apply to it, and the samples that subtract it."""
    users = background_users(sample)
    used = (f"; {', '.join(users)} subtract it as their background (cook one of them for its ISF)"
            if users else "; no sample names it as its background yet")
    return (f"{sample.key} is the background run of proposal {sample.proposal.key} "
            f"({params.describe('q_integration', 'bg_sample_id')}): it holds no sample signal, so {step} does "
            f"not apply to it; cook {' or '.join(background_steps())} instead{used}")


def effective_layout(params, marker, where):
    """The :class:`SensorLayout` of a run: the ``sensor_layout`` fields that a record or an
    override sets, and the marker's layout (``n_sensors`` strips of ``sensor_shape`` side by
    side, docs/layout.md) for the others. Returns ``(layout, source)`` with source ``"marker"``
    (no field set) or ``"spice"``. A record whose ``n_sensors`` or ``sensor_shape`` disagrees
    with the marker ``where`` is a BadInput naming both."""
    values = params["sensor_layout"]
    chosen = {name: values[name] for name in values
              if name != "schema_version" and params.source("sensor_layout", name) != "default"}
    marker_values = {"n_sensors": marker["n_sensors"], "sensor_shape": list(marker["sensor_shape"])}
    for name, value in marker_values.items():
        if name in chosen and list(np.atleast_1d(chosen[name])) != list(np.atleast_1d(value)):
            raise BadInput(f"{params.describe('sensor_layout', name)} disagrees with the marker {where}, "
                           f"which says {name} = {value!r}; fix the record or the marker")
    strips = SensorLayout.strips(n_sensors=marker["n_sensors"], sensor_shape=tuple(marker["sensor_shape"])).to_mapping()
    with params.blame(*(f"sensor_layout.{name}" for name in chosen)):
        layout = SensorLayout.from_mapping({**strips, **chosen})
    return layout, ("spice" if chosen else "marker")


class RawRun:
    """The raw run of one sample (:func:`eqegs_repo.io.run.open_run`): the stats of the marker
    and of the run's files (no file opened), then the sensor stack and the velocity, opened
    (headers checked) on first use; the velocity's values are checked when read."""

    def __init__(self, sample):
        self.sample = sample
        self.run = open_run(sample.fs, sample.path, sample.marker, sample.layout)
        try:
            marker = sample.layout.marker_path(sample.path)  # absent when the raw file holds it
            self.stats = file_stats(sample.fs, [marker] * sample.fs.exists(marker) + self.run.files)
        except FileNotFoundError as exc:
            raise BadInput(f"raw file missing in {sample.path}: {exc}") from None
        self.n_frames = sample.marker["n_frames"]

    @property
    def stack(self):
        return self.run.stack

    @property
    def velocity_path(self):
        """The velocity file's path, for messages."""
        return self.run.velocity.path

    def read_velocity(self):
        """The measured drive waveform, (frames,) float64, checked
        (:meth:`eqegs_repo.io.run.Run.read_velocity`)."""
        return self.run.read_velocity()
