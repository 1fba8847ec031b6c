"""Watch mode: cook samples as they arrive (docs/reanalysis.md#watch-mode).

:func:`watch` polls the tree every ``interval`` seconds and keeps one :class:`Tracked` state
per sample. The rules:

* **settled**: a sample is cooked once its files -- the marker, every file under its raw
  folder (``train_integrated/``), hidden ones included (rsync's partial files), and the files
  its raw-data format names (``train_integrated.h5``, a plug-in's files) -- have kept the
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

* **followed**: a sample whose files, or its background run's, change after it was cooked (a
  growing integration: more trains summed into the same frames, its files rewritten) waits again and is cooked again once
  they settle. When several samples are ready in one poll, the one whose files changed last (the
  newest modification time among them) is cooked first.
* **never torn**: the file signature (names, sizes, modification times, inodes of the sample's
  files and of its background run's, :func:`watched_signature`) is taken before and after each cook; when it changed, the cook read files that were being rewritten: its row is
  dropped (never reported, never in the history), the cache entries it wrote are removed, and the
  sample is cooked again once its files settle.
* **one cook per sample**: samples are cooked one after the other in the watching process; a
  timed-out cook whose work still runs in the background keeps its sample from being cooked
  again until that work ends.
* **history**: each cook of a sample with a new result appends a row to its history
  (:mod:`eqegs_repo.history`: exposure, τ, f_q, their errors and the stop rule's projection) and
  calls ``on_update``.

Changes are found by listing the files after each wait of at most ``interval``; file events end
a wait early where the filesystem gives them, polling alone where it does not (network
filesystems, URLs, no watchfiles): :mod:`eqegs_repo.file_events`, named in the banner of
``eqegs watch``.
"""
import threading
import time
import warnings
from dataclasses import dataclass, field

from eqegs_repo.batch import _matches, _patterns, _steps_of, background_of, check_watch_arguments, cook_sample
from eqegs_repo.cooking.export import export_needed
from eqegs_repo.errors import BadInput, BadSample, WatchWarning
from eqegs_repo.file_events import change_waiter
from eqegs_repo.history import Book, projected_exposure, read_history  # noqa: F401 - the face of the history
from eqegs_repo.io.layout import is_local
from eqegs_repo.io.run import open_run
from eqegs_repo.naming import natural_key
from eqegs_repo.step_table import chain
from eqegs_repo.step_table import names as step_names

DONE = ("ok", "up-to-date", "background")
"""Row statuses after which a sample is not cooked again."""
UNSETTLED_WARNING_S = 600.0
"""A sample whose files still change after this long (s) gets one WatchWarning."""
_clock = time.monotonic  # tests move time on by hand


@dataclass
class Tracked:
    """What watch knows of one sample: ``signature`` (its files' names, sizes, mtimes and inodes
    at the last poll), ``changing_since`` (clock time its files were first seen changing, None
    once settled), ``failures`` (failed cooks with the current files), ``retry_at`` (clock time
    of the next try), ``status`` (``waiting``, ``cooked``, ``failed``, ``given up``, ``left
    alone``), ``warned`` (a WatchWarning was given for the current files) and ``busy`` (held
    while a cook of the sample runs)."""

    signature: tuple = None
    changing_since: float = None
    failures: int = 0
    retry_at: float = 0.0
    status: str = "waiting"
    warned: bool = False
    busy: threading.Lock = field(default_factory=threading.Lock)


def check_retries(retries):
    """``retries`` of :func:`watch`, or BadInput: a whole number >= 0."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise BadInput(f"retries must be a whole number >= 0, got {retries!r}")
    return retries


def file_signature(sample):
    """``((path, size, mtime, inode), ...)`` of the marker, every file under the raw folder
    (hidden files included: rsync's partial files) and the files of the run as its raw-data
    format names them (:func:`eqegs_repo.io.run.open_run`: e.g. ``train_integrated.h5``, or a
    plug-in's files; none while the marker cannot be read), sorted; a file that vanishes while
    listed counts as changed (the inode is None where the filesystem does not give one)."""
    fs, layout = sample.fs, sample.layout
    try:
        run_files = open_run(fs, sample.path, sample.marker, layout).files
    except (BadSample, BadInput, OSError):  # arriving or broken: the marker and raw folder tell
        run_files = []
    listed = sorted(set(fs.find(f"{sample.path}/{layout.raw_dir}")) | set(run_files))
    out = []
    for path in [f"{sample.path}/{layout.marker}"] + listed:
        try:
            info = fs.info(path)
        except FileNotFoundError:
            info = {"size": -1}
        out.append((path, info.get("size"), info.get("mtime", info.get("created", info.get("LastModified"))),
                    info.get("ino")))
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



def watched_signature(sample, overrides):
    """:func:`file_signature` of ``sample`` followed by that of the background run its q
    integration subtracts with ``overrides`` (:func:`eqegs_repo.batch.background_of`; none when
    it has none, is the background run, or it is not there): a sample whose background grows is
    cooked again too, and a background rewritten during a cook makes that cook torn."""
    signature = file_signature(sample)
    background = background_of(sample, overrides)
    if background is None or background[1] == sample.key:
        return signature
    try:
        return signature + file_signature(sample.proposal[background[1]])
    except KeyError:  # the background run is not there (yet): the cook says so
        return signature


def newest_change(signature):
    """The newest modification time (s since the epoch) in a :func:`file_signature`, or 0.0 when
    the filesystem gives none as a number or a datetime."""
    times = []
    for entry in signature or ():
        mtime = entry[2]
        if hasattr(mtime, "timestamp"):
            mtime = mtime.timestamp()
        if isinstance(mtime, (int, float)) and not isinstance(mtime, bool):
            times.append(float(mtime))
    return max(times, default=0.0)


def watch(repo, *, proposals=None, samples=None, steps=("e_spectrum_and_isf",), overrides=None,
          export=False, interval=5.0, existing=False, retries=2, stop=None, on_result=None,
          max_polls=None, timeout=None, on_update=None, target_error=0.05, history_dir=None, changes="auto"):
    """Cook the samples of ``repo`` as they arrive and settle, and again whenever their files
    change (the rules: module docstring).

    ``proposals``/``samples``: keys or shell patterns (all when None); ``steps``, ``overrides``,
    ``export``, ``timeout``: as for :func:`eqegs_repo.batch.cook_sample`, whose row (the columns
    of :data:`eqegs_repo.batch.COLUMNS`) each cook passes to ``on_result``. A failed row that
    will be tried again says when in its ``error``. ``existing``: also give the samples present
    at the start, cooked already, their row. ``retries``: further tries of a failing sample with
    unchanged files (a whole number >= 0). Every ``interval`` seconds the listing is refreshed;
    stops on Ctrl-C (KeyboardInterrupt), when ``stop`` (a threading.Event) is set, or after
    ``max_polls`` polls. ``changes`` (:data:`eqegs_repo.file_events.MODES`): ``"auto"`` ends a
    wait early on a file event where the filesystem gives them, ``"poll"`` only lists,
    ``"events"`` insists on events. ``interval``, ``timeout``, ``changes`` and ``target_error``
    are checked before the first poll (:func:`eqegs_repo.batch.check_watch_arguments`,
    :func:`check_retries`).

    History: each cook with a new result appends a row to the sample's history
    (:mod:`eqegs_repo.history`; in ``history_dir`` or the result cache) with the stop rule's
    projection for ``target_error`` (relative error of τ), then ``on_update(history, sample,
    row)`` is called: ``history`` a pandas.DataFrame of every row of every sample seen so far,
    ``row`` the new row (a dict of :data:`eqegs_repo.history.COLUMNS`). Returns the rows of every
    cook.
    """
    interval, timeout = check_watch_arguments(interval, timeout)
    check_retries(retries)
    _, wait = change_waiter(repo.root, interval, local=is_local(repo.fs), mode=changes, stop=stop)
    book = Book(repo, history_dir, target_error)
    proposals, samples = _patterns(proposals, "proposals"), _patterns(samples, "samples")
    overrides = dict(overrides or {})
    tracked, rows, polls = {}, [], 0

    def present():
        repo.refresh()
        found = [(p, s) for p in repo.keys() if _matches(p, proposals)
                 for s in repo[p].keys() if _matches(s, samples)]
        return sorted(found, key=lambda ps: tuple(map(natural_key, ps)))

    def report(sample, row):
        rows.append(row)
        if on_result is not None:
            on_result(row)
        if row["status"] == "background":
            return
        recorded = book.record(sample, row)
        if recorded is not None and on_update is not None:
            try:
                on_update(book.all(), sample, recorded[0])
            except Exception as exc:  # a view that fails (a full disk) never ends a night's watch
                warnings.warn(WatchWarning(
                    f"watch: on_update failed after the row of {sample.proposal.key}/{sample.key} "
                    f"({type(exc).__name__}: {exc}); the history has the row and the watch goes on"), stacklevel=2)

    try:
        for key in present():
            state = tracked[key] = Tracked()
            sample = repo[key[0]][key[1]]
            if book.where is not None:
                book.rows_of(sample)
            if existing:
                continue
            if repo.cache is None:
                state.status = "left alone"
            elif cooked_already(sample, steps, overrides, export):
                state.status = "cooked"
            if state.status != "waiting":
                try:
                    state.signature = watched_signature(sample, overrides)  # followed from here on
                except OSError:
                    pass
        if repo.cache is None and not existing and tracked:
            warnings.warn(f"watch {repo.root}: no result cache records which samples are cooked, so the "
                          f"{len(tracked)} sample(s) present at the start are left alone until their files "
                          "change; pass existing=True (--existing) to cook them", WatchWarning, stacklevel=2)
        while not (stop is not None and stop.is_set()):
            ready = []
            for key in present():
                sample, state = repo[key[0]][key[1]], tracked.setdefault(key, Tracked())
                if _ready(sample, state, interval, overrides):
                    ready.append((sample, state))
            ready.sort(key=lambda item: -newest_change(item[1].signature))  # newest first; ties in natural order
            for sample, state in ready:
                row = _cook(sample, state, steps, overrides, export, timeout, interval, retries)
                if row is not None:
                    report(sample, row)
            polls += 1
            if max_polls is not None and polls >= max_polls:
                break
            wait(interval)
    except KeyboardInterrupt:
        pass
    return rows


def _ready(sample, state, interval, overrides):
    """One poll of one sample: whether it is to be cooked now (``state`` updated)."""
    now = _clock()
    where = f"{sample.proposal.key}/{sample.key}"
    try:
        signature = watched_signature(sample, overrides)
    except OSError:
        return False  # the folder went away, or is being renamed: next poll
    if signature != state.signature:  # new or changing files: wait until they settle
        state.signature, state.failures, state.retry_at = signature, 0, 0.0
        if state.status in ("given up", "cooked", "left alone"):
            state.status, state.warned = "waiting", False
        if state.changing_since is None:
            state.changing_since = now
        elif now - state.changing_since > UNSETTLED_WARNING_S and not state.warned:
            state.warned = True
            warnings.warn(f"watch: the files of {where} still change after {now - state.changing_since:.0f} s; "
                          f"it is cooked once they keep their sizes and times for one interval ({interval:g} s)",
                          WatchWarning, stacklevel=4)
        return False
    state.changing_since = None
    if state.status in ("given up", "cooked", "left alone") or now < state.retry_at:
        return False
    return not state.busy.locked()  # a timed-out cook of it still runs: not a second one


def _cache_entries(sample):
    """``{step folder: fingerprints}`` of ``sample`` in the result cache (empty without one)."""
    cache = sample.repository.cache
    if cache is None:
        return {}
    folders = [cache.folder(sample.path, sample.proposal.key, sample.key, step) for step in step_names()]
    return {folder: set(cache.keys(folder)) for folder in folders}


def _forget_new_entries(sample, before):
    """Remove the cache entries of ``sample`` written since ``before`` (:func:`_cache_entries`):
    a torn cook's, stored under the fingerprint of the files as they were before the rewrite."""
    cache = sample.repository.cache
    for folder, keys in _cache_entries(sample).items():
        for key in keys - before.get(folder, set()):
            try:
                cache.fs.rm(f"{folder}/{key}.npz")
            except FileNotFoundError:
                pass


def _cook(sample, state, steps, overrides, export, timeout, interval, retries):
    """Cook a settled sample: its row, or None when its files changed during the cook (the torn
    result is dropped, its cache entries removed, and the sample waits to settle again)."""
    where = f"{sample.proposal.key}/{sample.key}"
    if not state.busy.acquire(blocking=False):
        return None
    entries = _cache_entries(sample)
    row = cook_sample(sample, steps, overrides, export, timeout, finished=state.busy.release)
    try:
        after = watched_signature(sample, overrides)
    except OSError:
        after = None
    now = _clock()
    if after != state.signature and row["status"] != "timed out":
        _forget_new_entries(sample, entries)
        state.signature, state.changing_since, state.status = after, now, "waiting"
        return None
    if row["status"] in DONE:
        state.status = "cooked"
        return row
    state.failures += 1
    if row["status"] == "timed out" or state.failures > retries:
        state.status = "given up"
        warnings.warn(f"watch: gave {where} up after {state.failures} failed cook(s) of the same files "
                      f"(last: {row['error']}); it is tried again when its files change", WatchWarning,
                      stacklevel=4)
        return row
    wait = interval * 2 ** state.failures
    state.status, state.retry_at = "failed", now + wait
    row["error"] = (f"{row['error']} (try {state.failures} of {retries + 1}; tried again in {wait:g} s, "
                    "or when its files change)")
    return row
