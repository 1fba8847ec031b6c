"""Exceptions raised by eqegs_repo.

Every error a user can cause derives from :class:`EqegsError`; messages name the file or
parameter, what was expected and what was found.
"""
import difflib
import importlib
import threading


class EqegsError(Exception):
    """Base class of all errors raised by eqegs_repo."""


class BadInput(EqegsError, ValueError):
    """A file, URL, key or parameter does not have the expected form."""


class BadSample(BadInput):
    """A sample folder whose marker or raw files are missing, unreadable or inconsistent."""


class _NotFound(EqegsError):
    """Mixin of the two lookup errors below; the message names the closest existing keys."""

    def __init__(self, what, wanted, candidates):
        self.what = what
        self.wanted = wanted
        self.candidates = list(candidates)
        self.closest = closest_keys(wanted, self.candidates)
        super().__init__(self._message())

    def _message(self):
        text = f"no {self.what} {self.wanted!r}"
        if self.closest:
            from spice.natural import same_text  # here: the command line's parser imports this module

            text += "; closest: " + ", ".join(repr(c) for c in self.closest)
            if same_text(self.wanted) in map(same_text, self.closest):
                text += " (differs only by Unicode normalisation, NFC vs NFD: look it up as it is)"
        elif not self.candidates:
            text += " (there are none)"
        return text

    def __str__(self):  # KeyError would otherwise show the message in quotes
        return self._message()

    def __reduce__(self):
        return type(self), (self.what, self.wanted, self.candidates)


class KeyNotFound(_NotFound, KeyError):
    """Item access (``repo["2025A1234"]``) with a key that does not exist."""


class HandleNotFound(_NotFound, AttributeError):
    """Attribute access (``repo.p2025A1234``) with a handle that does not exist."""


def closest_keys(wanted, candidates, n=3):
    """The up to ``n`` candidates most similar to ``wanted`` (case-insensitive, in NFC)."""
    from spice.natural import same_text  # here: the command line's parser imports this module

    by_lower = {}
    for c in candidates:
        by_lower.setdefault(same_text(c).lower(), c)
    hits = difflib.get_close_matches(same_text(wanted).lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[h] for h in hits]


class ResultExists(BadInput):
    """A result that would be overwritten (an exported step folder or zip); ``paths`` names
    what exists."""

    def __init__(self, message, paths=()):
        super().__init__(message)
        self.paths = list(paths)


class EmptySelection(BadInput):
    """A selection (proposal or sample patterns, ``where`` values, a filter) that matches no
    sample; the command line exits with status 2 before any work starts."""

    exit_status = 2


class MissingExtra(EqegsError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


class SkippedWarning(UserWarning):
    """Part of a result was left out (e.g. the figures of an export without matplotlib)."""


class CleanupWarning(UserWarning):
    """Temporary folders or zips left by stopped exports (their process gone, or too old) were
    removed, or could not be; the message names them."""


class WatchWarning(UserWarning):
    """A watched sample whose files keep changing, or whose cook keeps failing, was left
    waiting or given up (:mod:`eqegs_repo.watch`); the message names it and says what happens next."""


class AppReconstructionWarning(UserWarning):
    """A sample is cooked from the app's ``reconstruction/reconstruction.npy`` because its raw
    data cannot be opened (``reconstruction.input`` is ``auto``); the message names the sample,
    the stack and why the raw data were not used (docs/reanalysis.md#from-the-apps-work)."""


class CacheWarning(UserWarning):
    """The result cache could not be written (disk full, read-only, its path a file): the
    result is returned uncached. The message names the cache and the settings that choose it."""


EXTRAS = {"matplotlib": "plot", "distributed": "dask", "dask": "dask", "tqdm": "progress",
          "numba": "fast", "ipywidgets": "live", "watchfiles": "live", "h5py": "hdf5",
          "hdf5plugin": "hdf5"}
"""The extra of pyproject.toml that installs each optional top-level module."""


def install_hint(module):
    """``pip install "eqegs_repo[<extra>]"`` for an optional module (see :data:`EXTRAS`)."""
    return f'pip install "eqegs_repo[{EXTRAS[module.split(".")[0]]}]"'


def optional_import(module, feature, *, required=True):
    """Import an optional dependency: the module, or -- when it is not installed -- a
    :class:`MissingExtra` naming ``feature`` and the extra to install (``required=True``) or
    None (``required=False``: the caller does without, e.g. no progress bar).

    ``module``: dotted name (``"matplotlib.figure"``, ``"distributed"``); its top-level package
    must be in :data:`EXTRAS`. An installed module that fails to import raises its own error.
    """
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != top:  # installed, but something inside it is missing: its own error
            raise
        if not required:
            return None
        raise MissingExtra(f"{feature} needs {top}, which is not installed: {install_hint(top)}") from None


def is_number(value):
    """Whether ``value`` is an int or a float (a bool, which Python counts as an int, is not)."""
    return not isinstance(value, bool) and isinstance(value, (int, float))


def check_seconds(value, name, *, none_allowed=False):
    """``value`` as float seconds, or :class:`BadInput` naming ``name``: a number > 0 and at most
    ``threading.TIMEOUT_MAX`` (the longest wait of this platform; never infinity, which passes a
    comparison and then fails inside the wait). ``None`` passes through when ``none_allowed``."""
    if value is None and none_allowed:
        return None
    if not is_number(value) or not 0 < value <= threading.TIMEOUT_MAX:
        also = " or None" if none_allowed else ""
        raise BadInput(f"{name} must be a number of seconds > 0 and at most {threading.TIMEOUT_MAX:g} "
                       f"(the longest wait of this platform; not infinity){also}, got {value!r}")
    return float(value)


class PhysicsWarning(UserWarning):
    """A result whose physics cannot hold: a check of the E spectrum and ISF failed
    (docs/physics.md#checks-where-the-physics-cannot-hold). The result is still returned; its
    ``attrs["physics_checks"]`` and the reanalysis table's ``checks`` column say which check
    failed, with the measured value and the threshold. One subclass per check."""

    check = ""
    """The name of the check (``eqegs_repo.kernels.e_spectrum.checks.CHECK_NAMES``)."""


class CoarseEnergyStepWarning(PhysicsWarning):
    """The energy step is too coarse for the narrower of the resolution and the line width."""

    check = "energy_step"


class TruncatedWindowWarning(PhysicsWarning):
    """The energy window of the drive cuts the tails of the quasi-elastic line."""

    check = "window"


class FewFramesWarning(PhysicsWarning):
    """Too few frames are left after the start, turn-around and guard cuts."""

    check = "kept_frames"


class F0MismatchWarning(PhysicsWarning):
    """F(0) is far from the fitted f_q, in units of its error."""

    check = "f0_vs_f_q"


PHYSICS_WARNINGS = {cls.check: cls for cls in (CoarseEnergyStepWarning, TruncatedWindowWarning,
                                               FewFramesWarning, F0MismatchWarning)}
"""The warning class of each physics check, by the check's name."""
