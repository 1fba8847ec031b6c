"""Compiling kernels with numba (the ``fast`` extra), with their disk cache in the user's cache
folder, never inside the installed package.

``numba.njit(cache=True)`` alone writes ``.nbi``/``.nbc`` files into the ``__pycache__`` next to
the source when it can: inside ``site-packages``. pip does not remove them when it replaces the
install, and the leftover folder then hides a later editable install of the package. So
:func:`compile_kernel` picks the folder itself (:func:`numba_cache_dir`): ``$NUMBA_CACHE_DIR``
when the user set it, else ``$XDG_CACHE_HOME/eqegs_repo/numba``, else
``~/.cache/eqegs_repo/numba``. numba takes the folder from ``numba.config.CACHE_DIR`` when it
builds a kernel's cache locator, at decoration; :func:`compile_kernel` sets it for that moment only,
so the user's other numba code keeps numba's own choice.

When that folder cannot be written (a shared read-only install with an unwritable ``$HOME``: a Dask
worker, a batch node), the kernel is compiled without the disk cache: it works, and is compiled
once per process.
"""
import os
import tempfile
import threading

_DECORATING = threading.Lock()  # numba.config.CACHE_DIR is global: one decoration at a time


def numba_cache_dir():
    """The folder of the compiled kernels' disk cache (numba adds one sub-folder per source
    folder): ``$NUMBA_CACHE_DIR``, else ``$XDG_CACHE_HOME/eqegs_repo/numba``, else
    ``~/.cache/eqegs_repo/numba``: ``numba/`` in :func:`eqegs_repo.cooking.cache.user_cache_folder`
    (written out here: the kernels import nothing above :mod:`eqegs_repo.errors`)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "eqegs_repo", "numba")


def _writable(folder):
    """Whether ``folder`` exists (created if needed) and a file can be written in it."""
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def compile_kernel(function):
    """``function`` compiled by numba without the GIL, cached on disk under
    :func:`numba_cache_dir` when that folder can be written (else not cached on disk); None when
    numba is not installed."""
    try:
        import numba
    except ImportError:
        return None
    folder = numba_cache_dir()
    if not _writable(folder):
        return numba.njit(nogil=True, cache=False)(function)
    with _DECORATING:
        users_choice = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = folder
        try:
            return numba.njit(nogil=True, cache=True)(function)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available for file ..."
            if "cannot cache" not in str(exc) and "locator" not in str(exc):
                raise
        finally:
            numba.config.CACHE_DIR = users_choice
    return numba.njit(nogil=True, cache=False)(function)
