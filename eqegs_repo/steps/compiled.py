"""Compiling kernels with numba (the ``fast`` extra), with a fallback when the disk cache of
compiled code cannot be used.

``numba.njit(cache=True)`` needs a writable place for its cache: ``$NUMBA_CACHE_DIR``, the
``__pycache__`` next to the source, or the user's cache folder. On a shared read-only install
with an unwritable ``$HOME`` (a Dask worker, a batch node) there is none and numba raises
``RuntimeError: cannot cache function ...: no locator available``. :func:`compile_kernel`
then compiles without the disk cache: the kernel works, and is compiled once per process.
"""


def compile_kernel(function):
    """``function`` compiled by numba without the GIL, cached on disk when a cache folder can
    be written; None when numba is not installed."""
    try:
        import numba
    except ImportError:
        return None
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available for file ..."
        if "cannot cache" not in str(exc) and "locator" not in str(exc):
            raise
        return numba.njit(nogil=True, cache=False)(function)
