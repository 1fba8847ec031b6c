"""Progress bars for long work: the passes of a cook, the demo, a reanalysis.

A bar is a tqdm bar (the ``progress`` extra) shown on a terminal and in Jupyter; when the output
is not a terminal (a pipe, a log file, a test) or tqdm is not installed, :func:`bar` gives a
stand-in that does nothing, so callers never check. :func:`quiet` turns bars off inside a block
(the reanalysis workers, the samples the demo cooks under its own bar).
"""
import contextlib
import contextvars
import sys
import threading

from eqegs_repo.errors import optional_import

_QUIET = contextvars.ContextVar("eqegs_progress_quiet", default=False)


class _NoBar:
    """Does nothing, in the shape of a tqdm bar (update, set_postfix_str, close, with)."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, text):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Bar(_NoBar):
    """A tqdm bar whose ``update`` may be called from several threads (the passes' lanes)."""

    def __init__(self, tqdm_bar):
        self._bar = tqdm_bar
        self._lock = threading.Lock()

    def update(self, n=1):
        with self._lock:
            self._bar.update(n)

    def set_postfix_str(self, text):
        with self._lock:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self):
        self._bar.close()


def _in_notebook():
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def shows(enabled=None):
    """True when a bar would show: ``enabled`` (None: a terminal or Jupyter), not inside
    :func:`quiet`, and tqdm installed."""
    if _QUIET.get() or enabled is False:
        return False
    if enabled is None and not (_in_notebook() or getattr(sys.stderr, "isatty", lambda: False)()):
        return False
    return optional_import("tqdm", "progress bars", required=False) is not None


def bar(total, desc, unit="it", *, enabled=None, leave=False):
    """A progress bar of ``total`` ``unit`` s labelled ``desc`` (see :func:`shows`), or a
    stand-in that does nothing. Use it as a context manager, or call ``close()``."""
    if not shows(enabled):
        return _NoBar()
    tqdm_auto = optional_import("tqdm.auto", "progress bars", required=False)
    try:
        made = tqdm_auto.tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)
    except ImportError:  # Jupyter without ipywidgets: a text bar instead
        made = optional_import("tqdm.std", "progress bars").tqdm(total=total, desc=desc, unit=unit,
                                                               leave=leave)
    return _Bar(made)


@contextlib.contextmanager
def quiet():
    """No progress bars inside this block (in this thread or task)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)
