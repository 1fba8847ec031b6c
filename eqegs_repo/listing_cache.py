"""Rows of ``Proposal.table()`` kept between listings, never shown stale.

A row of a proposal's table costs about a millisecond of Python (the marker, the spice view,
the raw run's headers, the cache status and its fingerprints); a proposal of 5,000 samples
would take seconds each time it is listed. The rows of a proposal of at least
:data:`MIN_SAMPLES` samples are therefore kept in one JSON file in the user's cache folder
(``~/.cache/eqegs_repo/listings/``, :func:`~eqegs_repo.cooking.cache.user_cache_folder`) and a
kept row is shown again only when everything it was computed from is as it was:

* for the whole file (:func:`listing_state`): the library's source files (size and time of
  every module of ``eqegs_repo`` and ``spice``) and version, the Python and numpy versions,
  the repository's settings (URL, layout, cache and spice URLs, trusted calibration folders),
  the ``EQEGS_*`` and locale environment variables, ``check``, and every file of the spice
  stores of the repository and of the proposal;
* for each row (:func:`tree_state`): every file and folder below the sample folder (name, type,
  permissions, size, mtime and ctime in ns, inode; links followed), the sample's folder in the
  result cache, and the folder of the background run its spice names; for the background
  run's own row (it names the samples that subtract it) the proposal's sample keys too.

The file's stat signature stands for its content: a file changed within :data:`SETTLE_S`
seconds before the listing (the same clock tick could hide a second change) makes its row be
computed and not kept. Rows that read anything else are computed every time and never kept:
a row with a problem, a row whose fingerprint hashed a calibration folder (:func:`eqegs_repo.snapshot.note`). Nothing
is kept when the trees, the cache or the spice stores are not on the local filesystem, when a
plug-in raw format or step is registered, or when the cache folder cannot be written; a cache
file that is missing, corrupt, foreign or not a regular file counts as empty.
"""
import hashlib
import json
import os
import stat
import sys
import tempfile
import time

from eqegs_repo import naming, snapshot, step_table
from eqegs_repo.cooking.cache import user_cache_folder
from eqegs_repo.io.layout import is_local
from eqegs_repo.version import __version__

MIN_SAMPLES = 200
"""Proposals with fewer samples are listed afresh (under about 0.3 s) and keep no file."""
SETTLE_S = 2.0
"""A file or folder changed (mtime or ctime) less than this many seconds before the listing
keeps its row out of the file."""
FORMAT = 1
MAX_ENTRIES = 5000
"""Entries below one sample folder beyond which its row is not kept (walking it would cost as
much as computing the row)."""
MAX_DEPTH = 8
MAX_FILE_BYTES = 256 << 20


def tree_state(path):
    """``(signature, newest_ns)`` of the file or folder ``path`` and everything below it:
    ``signature`` a hex digest of each entry's relative name, mode, size, mtime and ctime (ns),
    inode and device (a link: its text and its target's stat; links to folders followed),
    ``newest_ns`` the latest mtime or ctime met. ``(digest of "missing", 0)`` when ``path``
    does not exist; None when it cannot be read in full, holds more than :data:`MAX_ENTRIES`
    entries or links deeper than :data:`MAX_DEPTH` folders."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return _digest("missing"), 0
    except OSError:
        return None
    items = [_stat_item(".", st)]
    try:
        newest = max(st.st_mtime_ns, st.st_ctime_ns,
                     _walk(path, ".", 0, items) if stat.S_ISDIR(st.st_mode) else 0)
    except (OSError, _TooLarge):
        return None
    return _digest(items), newest


class _TooLarge(Exception):
    pass


def _stat_item(name, st):
    return name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


def _walk(folder, rel, depth, items):
    """Append the entries below ``folder`` to ``items``; the latest mtime or ctime met."""
    if depth >= MAX_DEPTH or len(items) > MAX_ENTRIES:
        raise _TooLarge
    newest = 0
    with os.scandir(folder) as found:
        entries = sorted(found, key=_name)
    for entry in entries:
        name = f"{rel}/{entry.name}"
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            items.append((name, os.readlink(entry.path)))
            try:
                st = os.stat(entry.path)
            except FileNotFoundError:
                continue  # a dangling link: its text tells it
        items.append(_stat_item(name, st))
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
        if stat.S_ISDIR(st.st_mode):
            newest = max(newest, _walk(entry.path, name, depth + 1, items))
    return newest


def _name(entry):
    return entry.name


def names_state(path):
    """Hex digest of the names (and whether each is a folder) of everything below the folder
    ``path``, "missing" when it does not exist: what the result cache's status reads (entries
    are named by their fingerprints and written under a temporary name, then renamed); None
    when it cannot be read."""
    items = []
    todo = [(path, ".")]
    try:
        while todo:
            folder, rel = todo.pop()
            with os.scandir(folder) as found:
                for entry in sorted(found, key=_name):
                    folder_too = entry.is_dir()
                    items.append((rel, entry.name, folder_too))
                    if folder_too and rel == ".":
                        todo.append((entry.path, entry.name))
    except FileNotFoundError:
        return "missing" if not items else None
    except OSError:
        return None
    return _digest(items)


def _digest(value):
    return hashlib.blake2b(repr(value).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def _builtin_registries():
    """Whether only the library's own raw formats and steps are registered (a plug-in's
    files and fingerprints are not covered by the signatures)."""
    import importlib

    from eqegs_repo.io.formats import BUILTIN_FORMATS, raw_formats

    builtin = [getattr(importlib.import_module(module), attr)
               for module, _, attr in (spec.partition(":") for spec in BUILTIN_FORMATS)]
    if list(raw_formats().values()) != builtin:
        return False
    if not all(str(step_table.get(name).cooking).startswith("eqegs_repo.") for name in step_table.names()):
        return False
    cooking = sys.modules.get("eqegs_repo.cooking.step_cooking")  # registered behaviours, if any yet
    hooks = [] if cooking is None else [h for found in cooking._COOKING.values() for h in vars(found).values()]
    return all(getattr(h, "__module__", "eqegs_repo.").startswith("eqegs_repo.") for h in hooks if callable(h))


def _source_state():
    """Size and mtime of every module of the packages ``eqegs_repo`` and ``spice``."""
    import spice

    items = []
    for package in (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.abspath(spice.__file__))):
        for folder, _, names in sorted(os.walk(package)):
            for name in sorted(n for n in names if n.endswith(".py")):
                st = os.stat(os.path.join(folder, name))
                items.append((folder, name, st.st_size, st.st_mtime_ns))
    return items


def _spice_folders(proposal):
    """The local folders of the repository's and the proposal's spice stores, or None when a
    store is not a local folder."""
    repo = proposal.repository
    url = getattr(repo, "spice_url", None)
    if url is None:
        return [f"{str(repo.root).rstrip('/')}/.spice", f"{str(proposal.path).rstrip('/')}/.spice"]
    url = str(url)
    if "://" in url and not url.startswith("file://"):
        return None
    base = url.removeprefix("file://").rstrip("/")
    return [f"{base}/repository", f"{base}/proposals/{proposal.key}"]


def listing_state(proposal, check):
    """``(state digest, newest_ns)`` of what every row of ``proposal``'s table depends on besides
    its own folders (see the module docstring), or None when rows cannot be kept."""
    repo = proposal.repository
    cache = repo.cache
    if not is_local(repo.fs) or (cache is not None and not is_local(cache.fs)) or not _builtin_registries():
        return None
    folders = _spice_folders(proposal)
    if folders is None:
        return None
    import numpy

    spice_states = [tree_state(folder) for folder in folders]
    if any(state is None for state in spice_states):
        return None
    environment = sorted((k, v) for k, v in os.environ.items()
                         if k.startswith(("EQEGS_", "LC_")) or k in ("LANG", "LANGUAGE", "PYTHONUTF8"))
    settings = (repo.url, repr(repo.pattern), repr(repo.layout), cache.url if cache else None,
                repr(getattr(repo, "spice_url", None)), repr(getattr(repo, "trusted_calibration_dirs", None)),
                proposal.key, proposal.path)
    state = (FORMAT, __version__, sys.version, numpy.__version__, check, settings, environment,
             [s[0] for s in spice_states], _source_state())
    return _digest(state), max(s[1] for s in spice_states)


def cache_file(proposal, check):
    """The file keeping the rows of ``proposal``'s table (one per proposal, repository
    settings and ``check``)."""
    repo = proposal.repository
    name = _digest((repo.url, proposal.path, repo.cache.url if repo.cache else None,
                    str(getattr(repo, "spice_url", None)), check))
    return os.path.join(user_cache_folder(), "listings", f"{name}.json")


def _read_kept(path, state):
    """``{key: entry}`` kept in ``path`` for ``state``; ``{}`` for a missing, corrupt or
    foreign file, a file of another state, or one that is not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return {}
        with os.fdopen(os.dup(fd), "rb") as f:
            found = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    finally:
        os.close(fd)
    if not (isinstance(found, dict) and found.get("format") == FORMAT and found.get("state") == state
            and isinstance(found.get("rows"), dict)):
        return {}
    return found["rows"]


def _write_kept(path, state, rows):
    """Write ``rows`` atomically (a temporary file renamed into place); nothing when the
    folder cannot be written."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=os.path.dirname(path))
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, "state": state, "rows": rows}, f)
        os.replace(temp, path)
    except (OSError, TypeError, ValueError):
        try:
            os.unlink(temp)
        except OSError:
            pass


class _Rows:
    """The kept rows of one listing and the states of the folders they depend on."""

    def __init__(self, proposal, check, state):
        self.proposal, self.state = proposal, state
        self.path = cache_file(proposal, check)
        self.kept = _read_kept(self.path, state[0])
        self.fresh = {}
        self.states = {}
        self._keys_digest = None
        self.settled_before = time.time_ns() - int(SETTLE_S * 1e9)
        cache = proposal.repository.cache
        try:  # before any row is computed: a folder made meanwhile shows in the next listing
            self.cached = set() if cache is None else set(os.listdir(cache.root))
        except FileNotFoundError:
            self.cached = set()
        except OSError:
            self.cached = None

    def _folder_state(self, path):
        if path not in self.states:
            self.states[path] = tree_state(path)
        return self.states[path]

    def own_states(self, key):
        """The states of the sample folder of ``key`` and of its folder in the result cache,
        taken once per listing (before its row is computed)."""
        proposal, repo = self.proposal, self.proposal.repository
        path = repo.pattern.sample_path(proposal.key, key)
        if (path, "cache") not in self.states:
            cached = "no cache"
            if repo.cache is not None and self.cached is None:
                cached = None  # its folders cannot be listed
            elif repo.cache is not None:
                folder = repo.cache.folder(path, proposal.key, key, "x").rsplit("/", 1)[0]
                cached = names_state(folder) if folder.rsplit("/", 1)[1] in self.cached else "missing"
            self.states[path, "cache"] = cached
        return self._folder_state(path), self.states[path, "cache"]

    def signature(self, key, background, role):
        """``(digest, settled)`` of what the row of ``key`` depends on besides the listing's
        state: its folders, those of the background run named ``background`` (None: none), and
        for the background run's own row (``role``) the proposal's sample keys; None when a
        folder cannot be read."""
        proposal, repo = self.proposal, self.proposal.repository
        own, cached = self.own_states(key)
        named = None if background is None else naming.find_key(background, proposal._known_keys())
        states = [own]
        if named is not None and named != key:
            states.append(self._folder_state(repo.pattern.sample_path(proposal.key, named)))
        if cached is None or any(s is None for s in states):
            return None
        keys = self.keys_digest() if role == "background" else None
        return (_digest((background, named, role, keys, cached, [s[0] for s in states])),
                max(s[1] for s in states) < self.settled_before)

    def keys_digest(self):
        if self._keys_digest is None:
            self._keys_digest = _digest(list(self.proposal._known_keys()))
        return self._keys_digest

    def row(self, key, compute):
        """The row of ``key``: kept, or ``compute()`` (kept when it may be)."""
        entry = self.kept.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("row"), dict) and isinstance(entry.get("sig"), str):
            found = self.signature(key, entry.get("background"), entry.get("role"))
            if found is not None and found[0] == entry["sig"] and entry["row"].get("key") == key:
                self.fresh[key] = entry
                return dict(entry["row"], handle=self.proposal._handle_of(key))
        self.own_states(key)  # before the row is computed
        with snapshot.recording() as notes:
            row = compute()
        self._keep(key, row, notes)
        return row

    def _keep(self, key, row, notes):
        if notes or row.get("problem") or row.get("role") not in ("sample", "background"):
            return
        try:
            background = self.proposal[key].spice["q_integration"]["bg_sample_id"]
            text = json.dumps(row, allow_nan=True)
        except Exception:  # noqa: BLE001 - a row that cannot be told or written is not kept
            return
        if background is not None and not isinstance(background, str) or repr(json.loads(text)) != repr(row):
            return
        found = self.signature(key, background, row["role"])
        if found is not None and found[1]:
            self.fresh[key] = {"sig": found[0], "background": background, "role": row["role"], "row": row}

    def save(self):
        if self.fresh.keys() != self.kept.keys() or any(self.fresh[k] is not self.kept.get(k) for k in self.fresh):
            _write_kept(self.path, self.state[0], self.fresh)


def table_rows(proposal, keys, check, compute):
    """The rows of ``proposal``'s table for ``keys`` (``compute(key)``: a row computed now),
    each kept one shown only when its inputs are unchanged (see the module docstring)."""
    state = listing_state(proposal, check) if len(keys) >= MIN_SAMPLES else None
    if state is None:
        return [compute(key) for key in keys]
    rows = _Rows(proposal, check, state)
    out = [rows.row(key, lambda key=key: compute(key)) for key in keys]
    if state[1] < rows.settled_before:
        rows.save()
    return out
