"""One listing's memory: what a listing of many samples would otherwise work out once per sample.

A listing (``proposal.table()``, its HTML, ``eqegs ls``) reads the proposal as it is at one
moment. Inside :func:`scope`, :func:`remembered` computes a value once per key and hands the
same value to every later caller of that scope (the resolved spice view of a sample, the
background run and the samples that subtract it, a run's files): 5,000 samples then cost 5,000
views, not 25,000, and the background run is opened once, not once per sample. Outside a scope
nothing is remembered, so every other call sees the files and records as they are now.
"""
import contextvars
from contextlib import contextmanager

_MEMORY = contextvars.ContextVar("eqegs_repo_snapshot", default=None)


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
        memory[key] = compute()
    return memory[key]
