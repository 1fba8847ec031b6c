"""The local Dask cluster of a reanalysis started without a client (docs/reanalysis.md)."""
import os
import re
import sys
import warnings

from eqegs_repo.errors import optional_import

_GUARD = re.compile(r"""^if\s+(__name__\s*==\s*['"]__main__['"]|['"]__main__['"]\s*==\s*__name__)\s*:""", re.M)


def unguarded_script():
    """The path of the running script when Dask's worker processes would run it again on start
    (no ``if __name__ == "__main__":`` guard, processes started by spawn or forkserver); None
    in Jupyter, IPython, ``python -c``, ``python -m package`` and guarded scripts."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    if path is None or (spec is not None and spec.name.split(".")[-1] == "__main__"):
        return None
    dask = optional_import("dask", "reanalysis on Dask")
    if dask.config.get("distributed.worker.multiprocessing-method", "spawn") == "fork":
        return None
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    return None if _GUARD.search(text) else path


def _caller_level():
    """The ``stacklevel`` of warnings.warn, called in the function calling this, that names the
    first caller outside eqegs_repo (the user's line, through repo.reanalyze or batch.reanalyze)."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def local_cluster(distributed, workers, dashboard):
    """A LocalCluster of ``workers`` processes (default: one per core) with one thread each,
    from the module ``distributed``. Without a dashboard unless ``dashboard`` is True (any free
    port; the link is printed) or an address (``":8787"``). Called from a script without the
    ``if __name__ == "__main__":`` guard it uses threads instead (worker processes would re-run
    the script) and warns."""
    n_workers = workers or os.cpu_count() or 1
    address = None if dashboard is False or dashboard is None else (":0" if dashboard is True else str(dashboard))
    # Without a dashboard the scheduler still serves its HTTP routes, on port 8787 unless told
    # otherwise ("Port 8787 is already in use" when another cluster runs): any free port instead.
    quiet_http = {"dashboard_address": ":0"} if address is None else {}
    script = unguarded_script()
    if script is not None:
        warnings.warn(f"{script} has no 'if __name__ == \"__main__\":' guard, so Dask's worker processes "
                      f"would run it again; cooking on {n_workers} thread(s) of this process instead "
                      "(put the script's work under the guard for processes, see docs/reanalysis.md)",
                      RuntimeWarning, stacklevel=_caller_level())
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=n_workers, processes=False,
                                           dashboard_address=address, scheduler_kwargs=quiet_http)
    else:
        cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                           dashboard_address=address, scheduler_kwargs=quiet_http)
    if address is not None:
        print(f"Dask dashboard: {cluster.dashboard_link}", file=sys.stderr, flush=True)
    return cluster
