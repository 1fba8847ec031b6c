"""What a cook reads besides spice: the input of a run (its raw files, or the app's
reconstructed stack: :func:`open_input`), the sensor layout they were written with, and whether
the run is the proposal's background run (docs/layout.md, docs/reanalysis.md).

**Which input** (``reconstruction.input``, docs/reanalysis.md#from-the-apps-work):

* ``raw`` -- the raw run (:class:`RawRun`), whatever else the sample holds;
* ``app_reconstruction`` -- the app's ``reconstruction/reconstruction.npy``
  (:class:`AppReconstructionRun`), even when the raw data are there;
* ``auto`` (default) -- the raw run; when the sample holds the app's stack and its raw run cannot
  be opened (files missing, headers unreadable or disagreeing with the marker), the app's stack,
  with an :class:`~eqegs_repo.errors.AppReconstructionWarning` when a step is cooked. The choice
  is made when the run is opened: a bad value met halfway through a pass is an error, never a
  silent switch.
"""
import hashlib
import warnings

import numpy as np

from eqegs_repo.cooking.cache import file_stats
from eqegs_repo.errors import AppReconstructionWarning, BadInput, BadSample
from eqegs_repo.io.app_format import reconstruction as app_reconstruction
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.io.frames import SensorStack
from eqegs_repo.io.layout import listed_exists
from eqegs_repo.io.run import check_velocity, open_run, read_velocity
from eqegs_repo.kernels.sensors import SensorLayout
from eqegs_repo.naming import same_text
from eqegs_repo.params.effective import StepParameters, normalise_overrides
from eqegs_repo.snapshot import remembered
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
    named = remembered(("backgrounds named", sample.proposal), lambda: _backgrounds_named(sample.proposal))
    return [key for key, bg_id in named.items() if key != sample.key and same_key(bg_id, sample.key)]


def _backgrounds_named(proposal):
    """``{sample key: its resolved q_integration.bg_sample_id}`` of the samples of ``proposal``
    whose spice resolves, in natural order."""
    named = {}
    for key in proposal.keys():
        try:
            named[key] = proposal[key].spice["q_integration"]["bg_sample_id"]
        except (SpiceError, BadInput):
            continue
    return named


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
    def build():
        strips = SensorLayout.strips(n_sensors=marker["n_sensors"], sensor_shape=tuple(marker["sensor_shape"]))
        with params.blame(*(f"sensor_layout.{name}" for name in chosen)):
            return SensorLayout.from_mapping({**strips.to_mapping(), **chosen})

    # inside a listing, built once per distinct marker layout and sensor_layout resolution
    layout = remembered(("sensor layout", params.resolution_key("sensor_layout"), marker["n_sensors"],
                         tuple(marker["sensor_shape"])), build)
    return layout, ("spice" if chosen else "marker")


class RawRun:
    """The raw run of one sample (:func:`eqegs_repo.io.run.open_run`): the stats of the marker
    and of the run's files (no file opened), then the sensor stack and the velocity, opened
    (headers checked) on first use; the velocity's values are checked when read."""

    kind = "raw"
    reason = None

    def __init__(self, sample):
        self.sample = sample
        self.run = open_run(sample.fs, sample.path, sample.marker, sample.layout)
        try:
            marker = sample.marker_path  # absent when the raw file holds it
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

    def pass_layout(self, layout):
        """The layout the passes apply to :attr:`stack`: the sample's sensor ``layout``."""
        return layout

    def provenance(self):
        """``attrs["input"]`` of the datasets cooked from this run."""
        return {"kind": self.kind, "format": self.run.format.name}


def canvas_layout(layout):
    """One "sensor" covering the whole canvas of ``layout``: the layout of an already
    reconstructed stack of (H, W) frames (the passes then sum and integrate canvas pixels)."""
    return SensorLayout(n_sensors=1, sensor_shape=layout.canvas_shape, mode="tile", offsets=[(0, 0)],
                        flips=["none"], canvas_shape=layout.canvas_shape)


class AppReconstructionRun:
    """The app's reconstructed stack of one sample, ``reconstruction/reconstruction.npy``
    (frames, H, W), as the input of its cook: :attr:`stack` is one "sensor" of (H, W) frames read
    with :func:`canvas_layout`, and the drive waveform is the raw run's (the app's E spectrum
    reads the train-integrated velocity waveform too, docs/reanalysis.md#from-the-apps-work): the raw format's
    velocity when the raw run opens, else the npy layout's ``train_integrated/velocity.npy``.

    ``layout``: the sample's sensor layout (its canvas is the stack's frame shape);
    ``reason``: why the raw run was not used (None when it was not asked for). The header of the
    stack is read and checked when the run is made (one BadSample naming the file otherwise).
    """

    kind = "app_reconstruction"

    def __init__(self, sample, layout, reason=None):
        self.sample, self.reason = sample, reason
        self.n_frames = sample.marker["n_frames"]
        self.path = app_reconstruction.stack_path(sample.path)
        self.file = app_reconstruction.open_stack(sample.fs, self.path, self.n_frames, layout.canvas_shape)
        self.stack = SensorStack([self.file])
        self._velocity = None
        raw_files = _raw_files(sample)
        velocity_file = sample.layout.velocity_path(sample.path)
        files = [sample.marker_path, self.path]
        files += [f for f in dict.fromkeys(raw_files + [velocity_file]) if sample.fs.exists(f)]
        self.stats = file_stats(sample.fs, files)

    def pass_layout(self, layout):
        """The layout the passes apply to :attr:`stack`: :func:`canvas_layout` of ``layout``."""
        return canvas_layout(layout)

    @property
    def velocity(self):
        """The drive waveform's :class:`~eqegs_repo.io.frames.ValueSource`, opened on first use."""
        if self._velocity is None:
            self._velocity = self._open_velocity()
        return self._velocity

    def _open_velocity(self):
        sample = self.sample
        try:
            return open_run(sample.fs, sample.path, sample.marker, sample.layout).velocity
        except BadSample as exc:
            raw_problem = str(exc)
        path = sample.layout.velocity_path(sample.path)
        if not sample.fs.exists(path):
            raise BadSample(f"{sample.path}: no drive waveform for the E spectrum of the app's reconstruction "
                            f"{self.path}: the raw run cannot be opened ({raw_problem}) and {path} is "
                            "missing; keep the train-integrated velocity file when removing the sensor data")
        return check_velocity(NpyFile(sample.fs, path), self.n_frames)

    @property
    def velocity_path(self):
        return self.velocity.path

    def read_velocity(self):
        """The measured drive waveform, (frames,) float64, checked
        (:func:`eqegs_repo.io.run.read_velocity`)."""
        return read_velocity(self.velocity)

    def provenance(self):
        """``attrs["input"]`` of the datasets cooked from this stack: ``file`` (relative to the
        sample folder), ``path`` (full), ``size`` (bytes), ``mtime``, ``shape``, ``dtype``,
        ``fingerprint`` (SHA-256 of the file name, size, time, shape and dtype: the version of
        the file, as the cache keys it) and ``reason`` (why not the raw data; None when the
        stack was asked for)."""
        _, size, mtime = self.stats[1]
        record = {"kind": self.kind, "file": app_reconstruction.STACK_IN_SAMPLE,
                  "size": size, "mtime": mtime, "shape": list(self.file.shape), "dtype": str(self.file.dtype)}
        record["fingerprint"] = hashlib.sha256(repr(sorted(record.items())).encode()).hexdigest()
        return dict(record, path=self.path, reason=self.reason)


def _raw_files(sample):
    """The raw run's file paths (nothing opened; empty when the format cannot list them)."""
    try:
        return list(open_run(sample.fs, sample.path, sample.marker, sample.layout).files)
    except (BadSample, BadInput):
        return []


def has_app_reconstruction(sample):
    """Whether the sample folder holds the app's ``reconstruction/reconstruction.npy``."""
    return listed_exists(sample.fs, app_reconstruction.stack_path(sample.path))


def open_input(sample, params, layout):
    """The input of ``sample``'s cook by ``reconstruction.input`` of ``params`` (see the module
    docstring): a :class:`RawRun` or an :class:`AppReconstructionRun` (``layout``: the sample's
    sensor layout). With ``auto`` the raw run's headers are opened (only when the sample holds
    the app's stack, i.e. when there is something to fall back to)."""
    choice = params["reconstruction"]["input"]
    if choice == "app_reconstruction":
        path = app_reconstruction.stack_path(sample.path)
        if not sample.fs.exists(path):
            raise BadSample(f"{path}: not found, but {params.describe('reconstruction', 'input')} asks "
                            "for the app's reconstruction")
        return AppReconstructionRun(sample, layout)
    def raw_run():  # inside a listing, once per sample folder (the table's and the cooker's)
        return remembered(("raw run", sample.fs, sample.path, sample.layout), lambda: RawRun(sample))

    if choice == "raw" or not has_app_reconstruction(sample):
        return raw_run()
    try:
        run = raw_run()
        run.stack  # noqa: B018 - opens and checks the headers
        return run
    except (BadSample, BadInput) as exc:
        raw_problem = str(exc)
    try:
        return AppReconstructionRun(sample, layout, reason=raw_problem)
    except BadSample as exc:
        raise BadSample(f"{exc}; the raw data cannot be used either: {raw_problem}") from None


def sample_input(sample, **overrides):
    """The input a cook of ``sample`` reads with its spice (and ``overrides``): a
    :class:`RawRun` or an :class:`AppReconstructionRun` (:func:`open_input`). For the tables,
    ``repr`` and ``info()``; BadInput/BadSample/SpiceError when it cannot be told."""
    params = StepParameters(sample.spice, normalise_overrides(overrides), label=f"{sample.proposal.key}/{sample.key}")
    layout, _ = effective_layout(params, sample.marker, sample.marker_path)
    return open_input(sample, params, layout)


def input_text(run):
    """How the tables name the input ``run``: ``raw``, ``app reconstruction`` (asked for) or
    ``app reconstruction (raw unusable)`` (``auto`` fell back)."""
    if run.kind == "raw":
        return "raw"
    return "app reconstruction" + (" (raw unusable)" if run.reason else "")


def warn_fallback(run):
    """The :class:`~eqegs_repo.errors.AppReconstructionWarning` of a run that ``auto`` took from
    the app's stack because the raw run could not be opened (nothing for other runs)."""
    if run.kind == "app_reconstruction" and run.reason:
        s = run.sample
        warnings.warn(f"{s.proposal.key}/{s.key}: cooked from the app's {run.path} (reconstruction.input "
                      f"auto): the raw data cannot be used: {run.reason}", AppReconstructionWarning, stacklevel=5)
