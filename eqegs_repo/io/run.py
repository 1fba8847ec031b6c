"""One sample's raw run, whatever its format: :func:`open_run` picks the format and lists the
run's files once; the result cache's fingerprint, the sample's listing checks, ``sample.info()``,
``sample.raw`` and the xarray engine all read the run through it.
"""
import numpy as np

from eqegs_repo.errors import BadSample
from eqegs_repo.io.formats import DEFAULT_FORMAT, raw_formats
from eqegs_repo.io.frames import FrameSource, SensorStack, ValueSource, provides
from eqegs_repo.io.layout import listing
from eqegs_repo.naming import natural_key
from eqegs_repo.snapshot import remembered

MIN_SIGNED_COUNT_BYTES = 2
"""Signed integer counts need at least this many bytes (int16): int8 counts wrap to negative
values above 127, so such a file holds wrapped counts, never real ones."""


class Run:
    """The raw run of one sample folder in one format.

    ``format`` is the :class:`~eqegs_repo.io.formats.RawFormat` that holds it and ``files`` the
    paths of the files that make it (nothing opened). :attr:`stack` (a
    :class:`~eqegs_repo.io.frames.SensorStack`, shape ``(sensors, frames, rows, cols)``) and
    :attr:`velocity` (a :class:`~eqegs_repo.io.frames.ValueSource`, shape ``(frames,)``) are
    opened on first use, their headers checked against each other and the marker.
    """

    def __init__(self, fs, folder, marker, layout, fmt):
        self.fs, self.folder, self.marker, self.layout, self.format = fs, folder, marker, layout, fmt
        self.files = list(fmt.run_files(fs, folder, marker, layout))
        self._opened = None

    def _open(self):
        if self._opened is None:
            sensors, velocity = self.format.open_frames(self.fs, self.folder, self.marker, self.layout)
            self._opened = check_frames(self.folder, self.marker, self.format, sensors, velocity)
        return self._opened

    @property
    def stack(self):
        """The sensors as one lazy ``(sensors, frames, rows, cols)`` array of counts."""
        return self._open()[0]

    @property
    def velocity(self):
        """The measured drive waveform, ``(frames,)``, read lazily."""
        return self._open()[1]

    def read_velocity(self):
        """The measured drive waveform read and checked (:func:`read_velocity`)."""
        return read_velocity(self.velocity)

    def __repr__(self):
        return f"<Run {self.folder}: format {self.format.name}, {len(self.files)} files>"


def read_velocity(source):
    """The drive waveform of ``source`` (a :class:`~eqegs_repo.io.frames.ValueSource`) read and
    checked, ``(frames,)`` float64 (a.u.): BadSample naming the velocity file, the first bad frame
    and the number of bad values when a value is NaN or infinite. (Opening checks only the
    header: :func:`check_velocity`.)"""
    values = np.asarray(source.read(), dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise BadSample(f"{source.path}: frame {first} holds {values[first]} ({int(bad.sum())} of "
                        f"{values.size} values are NaN or infinite); expected a finite velocity for "
                        "every frame")
    return values


def open_run(fs, folder, marker, layout):
    """The :class:`Run` of the sample folder ``folder`` on filesystem ``fs``.

    The folder is listed once and the registered formats
    (:func:`eqegs_repo.io.formats.raw_formats`) are asked in turn whether they hold it, the
    default format (npy) last; when none does, the default format opens it, so the error names
    its missing files. No array and no header is read until :attr:`Run.stack` or
    :attr:`Run.velocity` is used.
    """
    return remembered(("run", fs, folder, layout), lambda: _open_run(fs, folder, marker, layout))


def _open_run(fs, folder, marker, layout):
    formats = raw_formats()
    default = formats[DEFAULT_FORMAT]
    names = _entry_names(fs, folder)
    tried = [fmt for name, fmt in formats.items() if name != DEFAULT_FORMAT] + [default]
    chosen = next((fmt for fmt in tried if fmt.guess_can_open(fs, folder, names, marker, layout)), default)
    return Run(fs, folder, marker, layout, chosen)


def run_file_sizes(fs, files):
    """``{file name: size in bytes}`` of the ``files`` that exist, in natural order of their
    names; one listing per folder, no file opened."""
    sizes = {}
    for folder in dict.fromkeys(path.rsplit("/", 1)[0] for path in files):
        try:
            entries = listing(fs, folder)
        except (FileNotFoundError, PermissionError):
            continue
        sizes.update({(folder, e["name"].rstrip("/").rsplit("/", 1)[-1]): int(e.get("size") or 0)
                      for e in entries if e.get("type") == "file"})
    found = {path.rsplit("/", 1)[-1]: sizes[tuple(path.rsplit("/", 1))] for path in files
             if tuple(path.rsplit("/", 1)) in sizes}
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def _entry_names(fs, folder):
    """Names of the entries of ``folder`` (empty when it cannot be listed: the format's own
    errors then name what is missing)."""
    try:
        entries = listing(fs, folder)
    except OSError:
        return set()
    return {str(e["name"]).rstrip("/").rsplit("/", 1)[-1] for e in entries}


def check_frames(folder, marker, fmt, sensors, velocity):
    """``(SensorStack, velocity)`` once the arrays a format opened agree with each other and
    the marker; BadSample naming the file, what was expected and what was found otherwise."""
    n_frames = marker["n_frames"]
    rows, cols = marker["sensor_shape"]
    if len(sensors) != marker["n_sensors"]:
        raise BadSample(f"{folder}: format {fmt.name} found {len(sensors)} sensors but the marker "
                        f"says n_sensors={marker['n_sensors']}")
    for f in [*sensors, velocity]:
        wanted = FrameSource if f is not velocity else ValueSource
        if not provides(f, wanted):
            raise BadSample(f"{folder}: format {fmt.name} returned {f!r}, which lacks the "
                            f"attributes of {wanted.__name__} (eqegs_repo.io.frames)")
    for f in sensors:
        if len(f.shape) != 3:
            raise BadSample(f"{f.path}: expected a (frames, rows, cols) array, found shape {f.shape}")
        if f.dtype.kind not in "uif":
            raise BadSample(f"{f.path}: expected integer or float counts, found dtype {f.dtype}")
        if f.dtype.kind == "i" and f.dtype.itemsize < MIN_SIGNED_COUNT_BYTES:
            raise BadSample(f"{f.path}: found dtype {f.dtype}, signed counts of {8 * f.dtype.itemsize} bits: "
                            f"they wrap to negative values above {np.iinfo(f.dtype).max}; expected unsigned "
                            f"counts or signed ones of at least {8 * MIN_SIGNED_COUNT_BYTES} bits")
    frames = {f.path: f.shape[0] for f in sensors}
    if len(set(frames.values())) > 1:
        listing = ", ".join(f"{p.rsplit('/', 1)[-1]}: {n}" for p, n in frames.items())
        raise BadSample(f"{folder}: the sensors' frame counts differ ({listing})")
    for f in sensors:
        if f.shape[0] != n_frames:
            raise BadSample(f"{f.path}: has {f.shape[0]} frames but the marker says n_frames={n_frames}")
        if list(f.shape[1:]) != [rows, cols]:
            raise BadSample(
                f"{f.path}: frames of {f.shape[1]} x {f.shape[2]} but the marker says "
                f"sensor_shape=[{rows}, {cols}]"
            )
    return SensorStack(sensors), check_velocity(velocity, n_frames)


def check_velocity(velocity, n_frames):
    """``velocity`` (a :class:`~eqegs_repo.io.frames.ValueSource`) when its header says one real
    value per frame (``n_frames``); BadSample naming its file otherwise."""
    if velocity.dtype.kind not in "uif":
        raise BadSample(f"{velocity.path}: expected a real-valued velocity (integer or float), found "
                        f"dtype {velocity.dtype}")
    if tuple(velocity.shape) != (n_frames,):
        raise BadSample(
            f"{velocity.path}: expected a velocity array of shape ({n_frames},) (one value per "
            f"frame), found shape {tuple(velocity.shape)}"
        )
    return velocity
