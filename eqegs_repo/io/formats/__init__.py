"""Raw-data formats: the registry that :func:`eqegs_repo.io.run.open_run` picks a run's format from.

A format is one object with the attributes of :class:`RawFormat` (usually a module-level
instance in its own module, like :data:`eqegs_repo.io.formats.npy.FORMAT`). Formats come from
three places, in this order:

1. the built-in formats of this package (:data:`BUILTIN_FORMATS`, ``"module:attribute"``);
2. the entry-point group ``eqegs_repo.raw_formats`` of installed packages, so a package outside
   the project adds a format with one line in its ``pyproject.toml``::

       [project.entry-points."eqegs_repo.raw_formats"]
       mydetector = "mypackage.eqegs_format:FORMAT"

3. :func:`register_format` at run time (what the two above go through).

``open_run`` asks each registered format, in this order but the default format
(:data:`DEFAULT_FORMAT`, npy) last, whether it holds a sample folder
(:meth:`RawFormat.guess_can_open`); the first that says yes opens it, and the default format
also opens a folder that no format claims, so its errors name the missing files. See docs/architecture.md#adding-a-raw-data-format.

A format may also say why it does not claim a folder (:meth:`RawFormat.why_not`, optional:
:func:`why_not` gives a generic sentence for a format without it); ``eqegs inspect``
(:mod:`eqegs_repo.io.inspection`) shows these reasons for every registered format.
"""
import importlib
import warnings
from importlib.metadata import entry_points
from typing import Protocol

from eqegs_repo.errors import BadInput

ENTRY_POINT_GROUP = "eqegs_repo.raw_formats"
BUILTIN_FORMATS = (
    "eqegs_repo.io.formats.npy:FORMAT",
    "eqegs_repo.io.formats.hdf5:FORMAT",
)
DEFAULT_FORMAT = "npy"


class RawFormat(Protocol):
    """What a raw-data format declares (a module-level object is enough; no base class).

    In every method ``fs`` is the fsspec filesystem of the tree, ``folder`` the sample folder's
    path on it (no trailing ``/``), ``marker`` the validated ``train_integrated.json`` (a dict
    with ``n_frames``, ``n_sensors``, ``sensor_shape`` and any other keys) and ``layout`` the
    repository's :class:`~eqegs_repo.io.layout.TreeLayout`.
    """

    name: str
    """Short unique name (``"npy"``): the key of :func:`raw_formats` and of error messages."""

    def guess_can_open(self, fs, folder, names, marker, layout):
        """True when this format holds the run of ``folder``; ``names`` are the names of the
        entries of ``folder`` (files and folders, no path). Must be cheap: no array is read."""

    def run_files(self, fs, folder, marker, layout):
        """The paths of every file whose bytes make the run, without opening any: the result
        cache fingerprints their sizes and modification times, ``sample.info()`` lists them."""

    def open_frames(self, fs, folder, marker, layout):
        """``(sensors, velocity)``: one :class:`~eqegs_repo.io.frames.FrameSource` per sensor,
        ``(frames, rows, cols)`` counts, and a :class:`~eqegs_repo.io.frames.ValueSource` of
        shape ``(frames,)``, the measured drive waveform. Reads headers only; raises
        :class:`~eqegs_repo.errors.BadSample` naming the file when one is missing or unreadable
        (the checks against the marker are made by the caller, for every format alike)."""

    def why_not(self, fs, folder, names, marker, layout):
        """Optional: one sentence saying why :meth:`guess_can_open` is False for ``folder``,
        naming what the format looked for and did not find (``"no train_integrated/ folder"``).
        ``marker`` may be ``{}`` when the folder's marker is missing or invalid. Read through
        :func:`why_not`, which has a default for formats without it; shown by ``eqegs inspect``."""


_registry = {}
_loaded = False


def register_format(fmt):
    """Add ``fmt`` (a :class:`RawFormat`) to the formats :func:`~eqegs_repo.io.run.open_run`
    tries, after those already registered. A second format of the same name is refused
    (:func:`unregister_format` the first). Returns ``fmt``."""
    missing = [attr for attr in ("name", "guess_can_open", "run_files", "open_frames")
               if not hasattr(fmt, attr)]
    if missing:
        raise BadInput(f"raw-data format {fmt!r}: expected the attributes name, guess_can_open, "
                       f"run_files and open_frames; missing {', '.join(missing)}")
    _load()
    if fmt.name in _registry and _registry[fmt.name] is not fmt:
        raise BadInput(f"raw-data format {fmt.name!r} is already registered "
                       f"({_registry[fmt.name]!r}); unregister_format({fmt.name!r}) first")
    _registry[fmt.name] = fmt
    return fmt


def unregister_format(name):
    """Remove the format ``name`` (a no-op when it is not registered)."""
    _load()
    _registry.pop(name, None)


def raw_formats():
    """``{name: format}`` of every registered format, in the order they were registered."""
    _load()
    return dict(_registry)


def why_not(fmt, fs, folder, names, marker, layout):
    """Why the format ``fmt`` does not claim ``folder``: its own :meth:`RawFormat.why_not` when
    it has one and it gives a sentence, else a generic one naming the format's files when they
    can be listed (:meth:`RawFormat.run_files`) and its ``guess_can_open`` otherwise."""
    own = getattr(fmt, "why_not", None)
    if own is not None:
        reason = own(fs, folder, names, marker, layout)
        if reason:
            return str(reason)
    try:
        files = [path.removeprefix(f"{folder}/") for path in fmt.run_files(fs, folder, marker, layout)]
    except Exception:  # no valid marker, or a plug-in that cannot list its files here
        files = []
    if files:
        shown = ", ".join(files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
        return f"it does not claim the folder (its files: {shown})"
    return "it does not claim the folder (its guess_can_open is False)"


def _load():
    """Register the built-in and entry-point formats, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for spec in BUILTIN_FORMATS:
        module, _, attr = spec.partition(":")
        fmt = getattr(importlib.import_module(module), attr)
        _registry.setdefault(fmt.name, fmt)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            fmt = ep.load()
            if getattr(fmt, "name", None) not in _registry:  # a built-in format keeps its name
                register_format(fmt)
        except Exception as exc:  # a broken plug-in must not stop the other formats
            warnings.warn(f"raw-data format {ep.name!r} ({ep.value}, entry point group "
                          f"{ENTRY_POINT_GROUP!r}) is left out: {exc}", stacklevel=3)
