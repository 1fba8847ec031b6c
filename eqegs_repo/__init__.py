"""E-QEGS data of SPring-8 BL35XU as proposals and samples with lazy raw data,
versioned spice parameters and cooking steps.

Start with :class:`eqegs_repo.Repository`::

    from eqegs_repo import Repository
    repo = Repository("/UserData/{account}/EQEGS/{proposal}/{sample}", account="u0000000")

``eqegs_repo.inspect(folder)`` says why a sample folder opens or not. The modules a user reaches for are attributes too, imported on first use:
``eqegs_repo.figures``, ``eqegs_repo.batch``, ``eqegs_repo.synthetic`` and ``eqegs_repo.demo``
(the last two live in :mod:`eqegs_repo.simulate`). docs/architecture.md shows the whole layout.
"""
import importlib

from eqegs_repo.completion import register_in_running_ipython as _register_in_running_ipython
from eqegs_repo.errors import BadInput, BadSample, EqegsError, HandleNotFound, KeyNotFound
from eqegs_repo.version import __version__

__all__ = ["Repository", "Proposal", "Sample", "inspect", "EqegsError", "BadInput", "BadSample",
           "KeyNotFound", "HandleNotFound", "__version__"]

_LAZY_MODULES = {"figures": "eqegs_repo.figures", "batch": "eqegs_repo.batch",
                 "synthetic": "eqegs_repo.simulate.synthetic", "demo": "eqegs_repo.simulate.demo",
                 "simulate": "eqegs_repo.simulate"}
_LAZY_CLASSES = {"Repository": "eqegs_repo.repository", "Proposal": "eqegs_repo.repository",
                 "Sample": "eqegs_repo.sample", "inspect": "eqegs_repo.io.inspection"}
"""Imported on first use too, so that importing the package (and ``eqegs --help``) stays light:
they bring numpy, pandas and xarray. (``inspect``, why a sample folder opens or not, is a
function: :func:`eqegs_repo.io.inspection.inspect`.)"""


def __getattr__(name):
    """Import the user-facing modules of :data:`_LAZY_MODULES` and the classes of
    :data:`_LAZY_CLASSES` on first access."""
    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
    if name in _LAZY_CLASSES:
        value = getattr(importlib.import_module(_LAZY_CLASSES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'eqegs_repo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES) | set(_LAZY_CLASSES))


_register_in_running_ipython()  # step names complete as strings in IPython (eqegs_repo.completion)
