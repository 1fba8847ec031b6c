"""Watch mode: cook samples as they arrive (docs/reanalysis.md#watch-mode).

:func:`watch` polls the tree every ``interval`` seconds and keeps one :class:`Tracked` state
per sample. The rules:

* **settled**: a sample is cooked once its files -- the marker and every file under its raw
  folder (``train_integrated/``), hidden ones included (rsync's partial files) -- have kept the
  same sizes and modification times over one interval (two polls in a row). A sample whose files
  are still changing after :data:`UNSETTLED_WARNING_S` gets one :class:`~eqegs_repo.errors.WatchWarning`
  and is cooked as soon as they settle.
* **retried**: a cook that fails (a raw file missing because the marker came first, a file on a
  mount that hiccupped) is tried again when the files change and settle again, and, with the same
  files, at most ``retries`` more times, after waits of ``2 interval``, ``4 interval``, ... After
  that (or after a ``timed out`` cook, whose work may still be running) the sample is given up
  with one WatchWarning until its files change.
* **caught up**: samples present at the start that are cooked already (every step up to the last
  one cached and fresh for the current spice and overrides; with ``export``, their step folders
  exported and not stale) are left alone; the others are cooked, so a restarted watch cooks
  exactly what arrived, or failed, while it was down. ``existing=True`` gives every sample present
  at the start its row (those cooked already answered from the cache). Without a result cache
  nothing records what was cooked: the samples present at the start are then left alone unless
  ``existing=True``, and a WatchWarning says so.

A sample is cooked once (a later change of its files is not followed); never two cooks of one
sample run at once, since samples are cooked one after the other in the watching process.
"""
import time
import warnings
from dataclasses import dataclass

from eqegs_repo.batch import _matches, _patterns, _steps_of, check_watch_arguments, cook_sample
from eqegs_repo.cooking.export import export_needed
from eqegs_repo.errors import BadInput, WatchWarning
from eqegs_repo.naming import natural_key
from eqegs_repo.step_table import chain

DONE = ("ok", "up-to-date", "background")
"""Row statuses after which a sample is not cooked again."""
UNSETTLED_WARNING_S = 600.0
"""A sample whose files still change after this long (s) gets one WatchWarning."""
_clock = time.monotonic  # tests move time on by hand


@dataclass
class Tracked:
    """What watch knows of one sample: ``signature`` (its files' names, sizes and mtimes at the
    last poll), ``changing_since`` (clock time its files were first seen changing, None once
    settled), ``failures`` (failed cooks with the current files), ``retry_at`` (clock time of the
    next try), ``status`` (``waiting``, ``cooked``, ``failed``, ``given up``, ``left alone``) and
    ``warned`` (a WatchWarning was given for the current files)."""

    signature: tuple = None
    changing_since: float = None
    failures: int = 0
    retry_at: float = 0.0
    status: str = "waiting"
    warned: bool = False


def check_retries(retries):
    """``retries`` of :func:`watch`, or BadInput: a whole number >= 0."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise BadInput(f"retries must be a whole number >= 0, got {retries!r}")
    return retries


def file_signature(sample):
    """``((path, size, mtime), ...)`` of the marker and every file under the raw folder
    (hidden files included), sorted; a file that vanishes while listed counts as changed."""
    fs, layout = sample.fs, sample.layout
    out = []
    for path in [f"{sample.path}/{layout.marker}"] + sorted(fs.find(f"{sample.path}/{layout.raw_dir}")):
        try:
            info = fs.info(path)
        except FileNotFoundError:
            info = {"size": -1}
        out.append((path, info.get("size"), info.get("mtime", info.get("created", info.get("LastModified")))))
    return tuple(out)


def cooked_already(sample, steps, overrides, export):
    """Whether ``sample`` needs nothing: every step up to the last of ``steps`` that applies is
    cached and fresh for ``overrides``, and with ``export`` each step's folder is exported and not
    stale. False when that cannot be told (spice that does not resolve, a raw file missing)."""
    try:
        steps, last, _ = _steps_of(sample, steps, overrides)
        fresh = sample.cache_status(**overrides)
        if not all(fresh[step] == "fresh" for step in chain(last)):
            return False
        return not (export and any(export_needed(sample, step, **overrides) for step in steps))
    except Exception:  # noqa: BLE001 - then it is cooked, and the cook names the problem
        return False


def watch(repo, *, proposals=None, samples=None, steps=("e_spectrum_and_isf",), overrides=None,
          export=False, interval=5.0, existing=False, retries=2, stop=None, on_result=None,
          max_polls=None, timeout=None):
    """Cook the samples of ``repo`` as they arrive and settle (the rules: module docstring).

    ``proposals``/``samples``: keys or shell patterns (all when None); ``steps``, ``overrides``,
    ``export``, ``timeout``: as for :func:`eqegs_repo.batch.cook_sample`, whose row (the columns
    of :data:`eqegs_repo.batch.COLUMNS`) each cook passes to ``on_result``. A failed row that
    will be tried again says when in its ``error``. ``existing``: also give the samples present
    at the start, cooked already, their row. ``retries``: further tries of a failing sample with
    unchanged files (a whole number >= 0). Every ``interval`` seconds the listing is refreshed;
    stops on Ctrl-C (KeyboardInterrupt), when ``stop`` (a threading.Event) is set, or after
    ``max_polls`` polls. ``interval`` and ``timeout`` are checked before the first poll
    (:func:`eqegs_repo.batch.check_watch_arguments`, :func:`check_retries`). Returns the rows of
    every cook.
    """
    interval, timeout = check_watch_arguments(interval, timeout)
    check_retries(retries)
    proposals, samples = _patterns(proposals, "proposals"), _patterns(samples, "samples")
    overrides = dict(overrides or {})
    tracked, rows, polls = {}, [], 0

    def present():
        repo.refresh()
        found = [(p, s) for p in repo.keys() if _matches(p, proposals)
                 for s in repo[p].keys() if _matches(s, samples)]
        return sorted(found, key=lambda ps: tuple(map(natural_key, ps)))

    def report(row):
        rows.append(row)
        if on_result is not None:
            on_result(row)

    try:
        for key in present():
            tracked[key] = Tracked()
            if existing:
                continue
            if repo.cache is None:
                tracked[key].status = "left alone"
            elif cooked_already(repo[key[0]][key[1]], steps, overrides, export):
                tracked[key].status = "cooked"
        if repo.cache is None and not existing and tracked:
            warnings.warn(f"watch {repo.root}: no result cache records which samples are cooked, so the "
                          f"{len(tracked)} sample(s) present at the start are left alone; pass existing=True "
                          "(--existing) to cook them", WatchWarning, stacklevel=2)
        while not (stop is not None and stop.is_set()):
            for key in present():
                state = tracked.setdefault(key, Tracked())
                if state.status in ("cooked", "left alone"):
                    continue
                row = _poll_sample(repo[key[0]][key[1]], state, steps, overrides, export, timeout, interval,
                                   retries)
                if row is not None:
                    report(row)
            polls += 1
            if max_polls is not None and polls >= max_polls:
                break
            if stop is not None:
                stop.wait(interval)
            else:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return rows


def _poll_sample(sample, state, steps, overrides, export, timeout, interval, retries):
    """One poll of one sample: its row when it was cooked, else None (``state`` updated)."""
    now = _clock()
    where = f"{sample.proposal.key}/{sample.key}"
    try:
        signature = file_signature(sample)
    except OSError:
        return None  # the folder went away, or is being renamed: next poll
    if signature != state.signature:  # new or changing files: wait until they settle
        state.signature, state.failures, state.retry_at = signature, 0, 0.0
        if state.status == "given up":
            state.status, state.warned = "waiting", False
        if state.changing_since is None:
            state.changing_since = now
        elif now - state.changing_since > UNSETTLED_WARNING_S and not state.warned:
            state.warned = True
            warnings.warn(f"watch: the files of {where} still change after {now - state.changing_since:.0f} s; "
                          f"it is cooked once they keep their sizes and times for one interval ({interval:g} s)",
                          WatchWarning, stacklevel=3)
        return None
    state.changing_since = None
    if state.status == "given up" or now < state.retry_at:
        return None
    row = cook_sample(sample, steps, overrides, export, timeout)
    if row["status"] in DONE:
        state.status = "cooked"
        return row
    state.failures += 1
    if row["status"] == "timed out" or state.failures > retries:
        state.status = "given up"
        warnings.warn(f"watch: gave {where} up after {state.failures} failed cook(s) of the same files "
                      f"(last: {row['error']}); it is tried again when its files change", WatchWarning,
                      stacklevel=3)
        return row
    wait = interval * 2 ** state.failures
    state.status, state.retry_at = "failed", now + wait
    row["error"] = (f"{row['error']} (try {state.failures} of {retries + 1}; tried again in {wait:g} s, "
                    "or when its files change)")
    return row
