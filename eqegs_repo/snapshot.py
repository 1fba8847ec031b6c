"""One listing's memory: what a listing of many samples would otherwise work out once per sample.

A listing (``proposal.table()``, its HTML, ``eqegs ls``) reads the proposal as it is at one
moment. Inside :func:`scope`, :func:`remembered` computes a value once per key and hands the
same value to every later caller of that scope (the resolved spice view of a sample, the
background run and the samples that subtract it, a run's files): 5,000 samples then cost 5,000
views, not 25,000, and the background run is opened once, not once per sample. Outside a scope
nothing is remembered, so every other call sees the files and records as they are now.
:func:`recording` and :func:`note` tell a listing which values read files it does not follow.
"""
import contextvars
from contextlib import contextmanager

_MEMORY = contextvars.ContextVar("eqegs_repo_snapshot", default=None)
_NOTES = contextvars.ContextVar("eqegs_repo_snapshot_notes", default=None)


@contextmanager
def scope():
    """Remember values computed by :func:`remembered` until the ``with`` block ends (a scope
    inside another one shares the outer one's memory)."""
    if _MEMORY.get() is not None:
        yield
        return
    token = _MEMORY.set({})
    try:
        yield
    finally:
        _MEMORY.reset(token)


def active():
    """Whether a :func:`scope` is open (values are remembered)."""
    return _MEMORY.get() is not None


def remembered(key, compute):
    """``compute()``, computed once per hashable ``key`` inside a :func:`scope` (every call
    outside one). An exception is not remembered: it is raised again by the next call."""
    memory = _MEMORY.get()
    if memory is None:
        return compute()
    if key not in memory:
        outer, notes = _NOTES.get(), []
        token = _NOTES.set(notes)  # as recording() does, without its cost (thousands of values)
        try:
            value = compute()
        finally:
            _NOTES.reset(token)
            if outer is not None:
                outer.extend(notes)  # passed on to the caller's recording
        memory[key] = (value, tuple(notes))
        return value
    value, notes = memory[key]
    for what in notes:  # a later caller read it too (see :func:`note`)
        note(what)
    return value


@contextmanager
def recording():
    """Collect in the list it yields what :func:`note` is told within the block (a block inside
    another one passes its notes on to the outer one too)."""
    outer = _NOTES.get()
    notes = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)
        if outer is not None:
            outer.extend(notes)


def note(what):
    """Tell the open :func:`recording` blocks that the value being computed read ``what``, a
    file or folder that a listing's kept rows do not follow (a calibration folder: see
    :mod:`eqegs_repo.listing_cache`); nothing outside one. A value :func:`remembered` tells it
    again to every later caller."""
    notes = _NOTES.get()
    if notes is not None:
        notes.append(what)
