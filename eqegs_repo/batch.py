"""Reanalysis across samples and proposals, one coarse Dask task per sample.

:func:`select_samples` picks samples by proposal/sample keys or shell-style patterns, by resolved
spice values (``{"calibration.velocity_number": 1}``) and by any callable;
:func:`reanalyze` cooks them on a ``dask.distributed`` client (a local cluster of processes when
none is given) and returns one pandas.DataFrame (:data:`COLUMNS`). Watch mode, which cooks
samples as they arrive with :func:`cook_sample`, is :mod:`eqegs_repo.watch`.
"""
import fnmatch
import os
import threading
import time

import pandas as pd

from eqegs_repo.cooking import progress as progress_bars
from eqegs_repo.cooking.cook import applicable_steps
from eqegs_repo.cooking.nexus_export import table_to_nexus
from eqegs_repo.errors import BadInput, EmptySelection, check_seconds, closest_keys, is_number, optional_import
from eqegs_repo.io.nexus import check_writable
from eqegs_repo.kernels.e_spectrum.range_q import RangeQ
from eqegs_repo.local_cluster import local_cluster
from eqegs_repo.naming import natural_key, same_text
from eqegs_repo.params.conditions import CONDITION_COLUMNS, condition_columns, free_columns
from eqegs_repo.params.effective import StepParameters, check_overrides, normalise_overrides
from eqegs_repo.params.types import REGISTRY
from eqegs_repo.scheduler import SCHEDULER_TIMEOUT, check_address, check_timeout, connect
from eqegs_repo.step_table import chain, check_step
from eqegs_repo.step_table import names as step_names

COLUMNS = ("proposal", "sample", "status", "checks", "error", "duration_s", "spice_fingerprint",
           "f_q", "f_q_error", "tau_ns", "tau_error_ns", "beta", "beta_error", "chi2_red",
           "centre_x", "centre_y", "q_min", "q_max",
           "q_weighted", "q_pixel_min", "q_pixel_max", "input") + CONDITION_COLUMNS
"""Columns of the reanalysis table; ``status`` is ``ok``, ``up-to-date``, ``background`` (the
proposal's background run: the steps that apply to it were cooked), ``failed`` or ``timed out``;
``checks`` names the physics checks of the E spectrum and ISF that failed, each with its measured
value and threshold (``window 2.7 < 5; energy_step 16 > 5.3``;
docs/physics.md#checks-where-the-physics-cannot-hold), "" when every check passed, None without
an E spectrum (a failed cook, the background run, an earlier step): the sample is still cooked;
``input`` is ``raw`` or ``app_reconstruction`` (cooked from the app's reconstruction.npy);
``q_min``, ``q_max`` the requested q range, ``q_weighted`` the intensity-weighted mean q of the
pixels used and ``q_pixel_min``, ``q_pixel_max`` their extreme q (nm⁻¹, docs/outputs.md);
``temperature_K`` and ``pressure_Pa`` are the sample's resolved ``conditions`` (None when not
recorded); each free condition field adds a ``conditions.<name>`` column after them."""
_FIT_VARIABLES = {"f_q": "f_q", "f_q_error": "f_q_error", "tau_ns": "tau",
                  "tau_error_ns": "tau_error", "beta": "beta", "beta_error": "beta_error",
                  "chi2_red": "chi2_red"}


def _patterns(value, what):
    if value is None:
        return None
    patterns = [value] if isinstance(value, str) else list(value)
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise BadInput(f"{what} must be a key or pattern or a list of them, got {value!r}")
    return patterns


def _matches(key, patterns):
    """Whether ``key`` matches one of the shell ``patterns`` (None: all), compared in NFC."""
    return patterns is None or any(fnmatch.fnmatchcase(same_text(key), same_text(p)) for p in patterns)


def _check_patterns(patterns, keys, what):
    """Raise EmptySelection naming the first pattern that matches none of ``keys``."""
    for pattern in patterns or ():
        if not any(_matches(key, [pattern]) for key in keys):
            close = closest_keys(pattern, keys)
            hint = f"closest: {', '.join(close)}" if close else f"there are {len(keys)}: " + ", ".join(keys[:8]) + (
                " ..." if len(keys) > 8 else "")
            raise EmptySelection(f"no {what} matches {pattern!r} ({hint})")


def parse_where(items):
    """``["calibration.velocity_number=1"]`` -> ``{"calibration.velocity_number": 1}`` (``--where``).

    Values are read as YAML scalars: ``1`` is an int, ``1.5`` a float, ``true`` a bool, ``null``
    None, anything else a string.
    """
    import yaml

    out = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep:
            raise BadInput(f"expected TYPE.FIELD=VALUE, got {item!r}")
        try:
            out[name] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadInput(f"--where {item!r}: the value is not a YAML scalar ({exc})") from None
    return out


def _check_where(where):
    for name in where:
        type_name, _, field = name.partition(".")
        if type_name not in REGISTRY or not field:
            close = closest_keys(type_name, list(REGISTRY)) if field else []
            hint = f"closest: {', '.join(close)}" if close else f"types: {', '.join(REGISTRY)}"
            raise BadInput(f"where: {name!r} is not TYPE.FIELD of a spice type ({hint})")
        fields = [f.name for f in REGISTRY[type_name].fields]
        if field not in fields:
            close = closest_keys(field, fields)
            hint = f"closest: {', '.join(close)}" if close else f"fields: {', '.join(fields)}"
            raise BadInput(f"where: {type_name} has no field {field!r} ({hint})")


def _spice_matches(sample, where):
    view = sample.spice
    return all(view[name.split(".")[0]][name.split(".")[1]] == value for name, value in where.items())


def select_samples(repo, proposals=None, samples=None, where=None, select=None):
    """Samples of ``repo`` chosen by every criterion given (all samples when none is).

    ``proposals``/``samples``: a key, a shell-style pattern (``"2025A*"``, ``"S00[1-3]"``) or a
    list of them; ``where``: ``{"TYPE.FIELD": value}`` compared with each sample's resolved
    spice; ``select``: a callable ``sample -> bool``. Returns Sample objects in natural order.
    A sample whose spice cannot be resolved (a conflict, a broken record) is kept, so that its
    problem shows in the reanalysis table instead of the sample disappearing.
    A proposal or sample pattern that matches no key raises :class:`EmptySelection` naming the
    closest keys (a typo never selects nothing silently).
    """
    proposals = _patterns(proposals, "proposals")
    samples = _patterns(samples, "samples")
    where = dict(where or {})
    _check_where(where)
    _check_patterns(proposals, repo.keys(), "proposal")
    chosen_proposals = [repo[key] for key in repo.keys() if _matches(key, proposals)]
    _check_patterns(samples, sorted({k for p in chosen_proposals for k in p.keys()}, key=natural_key),
                    "sample of the chosen proposals")
    chosen = []
    for proposal in chosen_proposals:
        for sample_key in proposal.keys():
            if not _matches(sample_key, samples):
                continue
            sample = proposal[sample_key]
            if where:
                try:
                    if not _spice_matches(sample, where):
                        continue
                except Exception:  # noqa: BLE001 - reported by cook_sample as a failure
                    pass
            if select is None or select(sample):
                chosen.append(sample)
    return chosen


def _last_step(steps):
    steps = [steps] if isinstance(steps, str) else list(steps)
    if not steps:
        raise BadInput("steps must name at least one of " + ", ".join(step_names()))
    for step in steps:
        check_step(step)
    return steps, max(steps, key=step_names().index)


MIN_INTERVAL = 0.05
"""Shortest ``interval`` of :func:`eqegs_repo.watch.watch` (seconds): each poll lists the tree again."""
WORKERS_PER_CORE = 4
"""A local cluster has at most this many worker processes per core (:func:`max_workers`)."""


def _check_timeout(timeout):
    return check_seconds(timeout, "timeout", none_allowed=True)


def max_workers():
    """The most worker processes of a local cluster: :data:`WORKERS_PER_CORE` per core."""
    return WORKERS_PER_CORE * (os.cpu_count() or 1)


def _check_workers(workers):
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= max_workers():
        raise BadInput(f"workers must be a whole number of processes >= 1 and at most {max_workers()} "
                       f"({WORKERS_PER_CORE} per core; this machine has {os.cpu_count() or 1}) "
                       f"or None (one per core), got {workers!r}")
    return workers


def check_watch_arguments(interval, timeout):
    """``(interval, timeout)`` of :func:`eqegs_repo.watch.watch` as floats (timeout None or a float), or
    BadInput naming the argument: ``interval`` from :data:`MIN_INTERVAL` to
    ``threading.TIMEOUT_MAX`` seconds, ``timeout`` None or > 0 up to the same limit."""
    if not is_number(interval) or not MIN_INTERVAL <= interval <= threading.TIMEOUT_MAX:
        raise BadInput(f"interval must be a number of seconds from {MIN_INTERVAL:g} to {threading.TIMEOUT_MAX:g} "
                       f"(the longest wait of this platform), got {interval!r}")
    return float(interval), _check_timeout(timeout)


def cook_sample(sample, steps=("e_spectrum_and_isf",), overrides=None, export=False, timeout=None,
                finished=None):
    """Cook one sample and return its row of the reanalysis table (never raises).

    The chain is cooked up to the last of ``steps``; with ``export`` each of ``steps`` is also
    written as the app's step folder (existing folders are left alone, incomplete ones are
    repaired, stale ones -- written by this library for inputs that changed since -- are
    replaced: ``replace_stale`` of :func:`~eqegs_repo.cooking.export.export`). ``status`` is ``up-to-date`` when every result came from the cache, ``ok`` when
    something was computed, ``background`` for the proposal's background run (only the steps
    that apply to it, :func:`~eqegs_repo.cooking.cook.applicable_steps`, are cooked and
    exported), ``failed`` with the error message otherwise. ``timeout``: seconds after which the
    sample is given up as ``timed out`` (a hung network file, say); its work goes on in a
    background thread that is left behind, and its row says so. ``finished``: a callable called
    without arguments when the cook's work has ended (for a timed-out cook: when its thread ends),
    so a caller can tell that no cook of the sample runs any more.
    """
    timeout = _check_timeout(timeout)

    def work():
        try:
            return _cook_row(sample, steps, overrides, export)
        finally:
            if finished is not None:
                finished()

    if timeout is None:
        return work()
    done = {}
    worker = threading.Thread(target=lambda: done.update(row=work()),
                              name=f"cook {sample.proposal.key}/{sample.key}", daemon=True)
    worker.start()
    worker.join(timeout)
    if "row" in done:
        return done["row"]
    row = dict.fromkeys(COLUMNS)
    row.update(proposal=sample.proposal.key, sample=sample.key, status="timed out", duration_s=timeout,
               error=f"no result after {timeout:g} s (a file that does not answer?); the cook was "
                     "left running in the background")
    return row


def _steps_of(sample, steps, overrides):
    """``(steps, last, background)``: the ``steps`` that apply to ``sample`` (its last
    applicable step when none does), the last of them, and whether it is the background run."""
    steps, _ = _last_step(steps)
    applicable = applicable_steps(sample, **overrides)
    steps = [step for step in steps if step in applicable] or [applicable[-1]]
    return steps, max(steps, key=step_names().index), len(applicable) < len(step_names())


def nothing_to_do(sample, steps=("e_spectrum_and_isf",), overrides=None, export=False):
    """True when :func:`cook_sample` would only read the cache: every step up to the last of
    ``steps`` that applies to ``sample`` is cached and fresh for ``overrides``, and nothing is
    to be exported. Also True when the check fails (spice that does not resolve, a missing raw
    file): the cook fails at the same point at once, without work. No raw data is read."""
    if export:
        return False
    overrides = dict(overrides or {})
    try:
        _, last, _ = _steps_of(sample, steps, overrides)
        fresh = sample.cache_status(**overrides)
    except Exception:  # noqa: BLE001 - cook_sample reports it as a failed row
        return True
    return all(fresh[step] == "fresh" for step in chain(last))


def _cook_row(sample, steps, overrides, export):
    start = time.perf_counter()
    overrides = dict(overrides or {})
    row = dict.fromkeys(COLUMNS)
    row.update(proposal=sample.proposal.key, sample=sample.key)
    try:
        steps, last, background = _steps_of(sample, steps, overrides)
        with progress_bars.quiet():  # one bar for the batch, none per pass
            fresh = sample.cache_status(**overrides)
            ds = sample.cook(last, **overrides)
            up_to_date = all(fresh[s] == "fresh" for s in chain(last))
            if export:
                for step in steps:
                    sample.export(step, skip_existing=True, replace_stale=True, **overrides)
        row["spice_fingerprint"] = ds.attrs.get("fingerprint")
        row["input"] = ds.attrs.get("input", {}).get("kind")
        for column, variable in _FIT_VARIABLES.items():
            if variable in ds:
                row[column] = float(ds[variable])
        row.update({name: ds.attrs[name] for name in RangeQ.NAMES if name in ds.attrs})
        if "physics_checks" in ds.attrs:
            row["checks"] = checks_text(ds.attrs["physics_checks"])
        if "centre_x" in ds.attrs:  # q_integration and e_spectrum_and_isf carry the beam centre
            row.update(centre_x=ds.attrs["centre_x"], centre_y=ds.attrs["centre_y"])
        row["status"] = "background" if background else ("up-to-date" if up_to_date else "ok")
        row["error"] = ""
    except Exception as exc:  # noqa: BLE001 - a failing sample never stops the batch
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    try:
        row.update(condition_columns(sample.spice))
    except Exception:  # noqa: BLE001 - spice that does not resolve: the row's error says so
        pass
    row["duration_s"] = round(time.perf_counter() - start, 3)
    return row


def checks_text(checks):
    """The ``checks`` column of a row: the failed checks of ``attrs["physics_checks"]`` as
    ``name value < threshold`` (a ``min`` bound) or ``name value > threshold`` (``max``), joined
    by ``; ``; "" when every check passed."""
    return "; ".join(f"{c['name']} {c['value']:.3g} {'<' if c['bound'] == 'min' else '>'} {c['threshold']:.3g}"
                     for c in checks if c["failed"])


def reanalyze(repo, *, proposals=None, samples=None, where=None, select=None,
              steps=("e_spectrum_and_isf",), overrides=None, export=False, client=None,
              workers=None, progress=None, dashboard=False, timeout=None, scheduler=None,
              scheduler_timeout=SCHEDULER_TIMEOUT, nexus=None):
    """Cook many samples at once and return one pandas.DataFrame (:data:`COLUMNS`).

    Selection: ``proposals``, ``samples``, ``where``, ``select`` as in :func:`select_samples`;
    a selection that matches no sample raises :class:`~eqegs_repo.errors.EmptySelection`.
    ``steps``: step names; the chain runs up to the last one. ``overrides``: one-off parameter
    values for every sample (written to no spice), checked once before anything starts.
    ``export``: also write the app's step folders. ``client``: a ``dask.distributed.Client``
    (a LocalCluster, a SLURMCluster...); without one a local cluster of ``workers`` processes
    (:func:`~eqegs_repo.local_cluster.local_cluster`; without a dashboard unless ``dashboard``
    is True or an address) is started and closed again. ``scheduler``: instead of ``client``,
    the address of a running Dask scheduler (``tcp://host:8786``), connected to within
    ``scheduler_timeout`` seconds (:func:`eqegs_repo.scheduler.connect`; one BadInput naming
    the address when it does not answer as a scheduler) and disconnected at the end.
    ``progress``: a bar (tqdm) -- None: on a terminal or in Jupyter; True: always; False: never.
    The samples with nothing to do (:func:`nothing_to_do`: cached and fresh, no export) are
    answered from the cache in this process first; the cluster is started (or ``client`` used)
    only for the others, so a reanalysis with nothing to do starts no cluster.
    Each sample to cook is one task; a failing sample is a ``failed`` row, never an exception. Results
    are cached by fingerprint, so running again only cooks what failed or changed. Samples that
    subtract the same background run start after the first of them, which integrates the
    background and caches it for the others (:mod:`eqegs_repo.cooking.background`): the
    background is read once, not once per sample. ``timeout``: seconds per sample, after which
    it is reported as ``timed out`` (:func:`cook_sample`); None waits forever. ``nexus``: also
    write the table as one NeXus/HDF5 file at this local path
    (:func:`eqegs_repo.cooking.nexus_export.table_to_nexus`; an existing file is refused before
    anything is cooked).
    """
    _last_step(steps)
    if nexus is not None:
        check_writable(nexus)
    timeout = _check_timeout(timeout)
    workers = _check_workers(workers)
    if scheduler is not None:
        if client is not None:
            raise BadInput("give either client (a dask.distributed.Client) or scheduler (its address), not both")
        scheduler, scheduler_timeout = check_address(scheduler), check_timeout(scheduler_timeout)
    overrides = dict(overrides or {})
    check_overrides(overrides)
    chosen = select_samples(repo, proposals=proposals, samples=samples, where=where, select=select)
    if not chosen:
        raise EmptySelection(f"no sample of {repo.root} matches the selection (proposals={proposals!r}, "
                             f"samples={samples!r}, where={where!r}"
                             + (", select=<callable>)" if select is not None else ")"))
    with progress_bars.bar(len(chosen), "reanalyze", "sample", enabled=progress, leave=True) as bar:
        to_cook, rows = [], []
        for sample in chosen:
            if nothing_to_do(sample, steps, overrides, export):
                rows.append(cook_sample(sample, steps, overrides, export, timeout))
                _advance(bar, sample)
            else:
                to_cook.append(sample)
        if to_cook:
            distributed = optional_import("distributed", "reanalysis on Dask")
            if scheduler is not None:
                with connect(scheduler, scheduler_timeout) as remote:
                    rows += _run(remote, to_cook, steps, overrides, export, bar, timeout)
            elif client is None:
                with local_cluster(distributed, workers, dashboard) as cluster, distributed.Client(cluster) as own:
                    rows += _run(own, to_cook, steps, overrides, export, bar, timeout)
            else:
                rows += _run(client, to_cook, steps, overrides, export, bar, timeout)
    order = {(s.proposal.key, s.key): i for i, s in enumerate(chosen)}
    rows.sort(key=lambda r: order[r["proposal"], r["sample"]])
    table = pd.DataFrame(rows, columns=list(COLUMNS) + free_columns(rows))
    if nexus is not None:
        table_to_nexus(table, nexus)
    return table


def background_of(sample, overrides=None):
    """``(proposal, background sample id)`` that ``sample``'s q integration subtracts with
    ``overrides``, or None (no background, or spice that does not resolve)."""
    try:
        background = StepParameters(sample.spice, normalise_overrides(dict(overrides or {})))[
            "q_integration"]["bg_sample_id"]
    except Exception:  # noqa: BLE001 - cook_sample reports it
        return None
    return None if background is None else (sample.proposal.key, background)


def _cook_after(first_row, sample, steps, overrides, export, timeout):
    """:func:`cook_sample`, run by Dask once ``first_row`` (the row of the sample that cooked the
    shared background) is there."""
    return cook_sample(sample, steps, overrides, export, timeout)


def _submit(client, chosen, steps, overrides, export, timeout):
    """{future: sample}: one task per sample; the samples sharing a background wait for the
    first of them (see :func:`reanalyze`)."""
    _, last = _last_step(steps)
    shares = "q_integration" in chain(last)
    firsts, futures = {}, {}
    for sample in chosen:
        group = background_of(sample, overrides) if shares else None
        if group in firsts:
            future = client.submit(_cook_after, firsts[group], sample, steps, overrides, export, timeout,
                                   pure=False)
        else:
            future = client.submit(cook_sample, sample, steps, overrides, export, timeout, pure=False)
            if group is not None:
                firsts[group] = future
        futures[future] = sample
    return futures


def _advance(bar, sample):
    bar.set_postfix_str(f"{sample.proposal.key}/{sample.key}")
    bar.update()


def _run(client, chosen, steps, overrides, export, bar, timeout=None):
    """The rows of ``chosen``, cooked on ``client`` (one task per sample), advancing ``bar``."""
    as_completed = optional_import("distributed", "reanalysis on Dask").as_completed
    futures = _submit(client, chosen, steps, overrides, export, timeout)
    rows = []
    for future in as_completed(futures):
        sample = futures[future]
        try:
            rows.append(future.result())
        except Exception as exc:  # noqa: BLE001 - e.g. the worker died
            row = dict.fromkeys(COLUMNS)
            row.update(proposal=sample.proposal.key, sample=sample.key, status="failed",
                       error=f"{type(exc).__name__}: {exc}")
            rows.append(row)
        _advance(bar, sample)
    return rows
