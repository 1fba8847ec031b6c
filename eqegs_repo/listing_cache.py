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
* for each row (:func:`manifest`): every file and folder below the sample folder (name, type,
  permissions, size, mtime and ctime in ns, inode; links followed), the sample's folder in the
  result cache (its step folders: their times tell the names of the entries), and the folder of the background run its spice names; for the background
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
MAX_SPICE_FILES = 200_000
"""Files of a spice store beyond which no row is kept."""
MAX_FILE_BYTES = 256 << 20


def manifest(path, levels=MAX_DEPTH, files=True, limit=MAX_ENTRIES):
    """``(names, digest, newest_ns)`` of the folder ``path``: the names relative to it of the
    entries below it (``""`` for ``path`` itself; files too when ``files``; ``levels`` levels of
    folders, links to folders followed), and their :func:`manifest_digest`. ``names`` is ``[]``
    when ``path`` does not exist. None when it cannot be read in full, holds more than ``limit``
    entries or, with ``files``, folders more than ``levels`` deep."""
    names = [""]
    try:
        if os.path.isdir(path):
            _collect(path, "", levels, files, names, limit)
        elif not os.path.lexists(path):
            return [], MISSING, 0
    except (OSError, _TooLarge):
        return None
    found = manifest_digest(path, names)
    return None if found is None else (names, *found)


class _TooLarge(Exception):
    pass


def _collect(folder, rel, levels, files, names, limit):
    with os.scandir(folder) as found:
        entries = sorted(found, key=_name)
    for entry in entries:
        name = f"{rel}/{entry.name}" if rel else entry.name
        folder_too = entry.is_dir()
        if folder_too or files:
            names.append(name)
        if folder_too and levels > 1:
            _collect(entry.path, name, levels - 1, files, names, limit)
        elif folder_too and files:
            raise _TooLarge  # a folder (or a loop of links) deeper than ``levels``
        if len(names) > limit:
            raise _TooLarge


def _name(entry):
    return entry.name


def manifest_digest(path, names):
    """``(digest, newest_ns)`` of the entries ``names`` below ``path`` (see :func:`manifest`):
    each one's mode, size, mtime and ctime (ns), inode and device, for a link its text and its
    target's too; ``newest_ns`` the latest mtime or ctime. A folder's times change when an entry
    is added, removed or renamed in it, so equal digests of the same ``names`` mean the same
    entries. None when an entry is gone or cannot be read."""
    items, newest = [], 0
    try:
        for name in names:
            full = f"{path}/{name}" if name else path
            st = os.lstat(full)
            items.append((name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev))
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
            if stat.S_ISLNK(st.st_mode):
                items.append(os.readlink(full))
                if os.path.exists(full):
                    st = os.stat(full)
                    items.append((st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev))
                    newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    except OSError:
        return None
    return _digest(items), newest


MISSING = "missing"
_JSON_EXACT = (str, int, float, bool)
"""Types of the values a kept row may hold: JSON writes and reads them back exactly (NaN too)."""


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

    spice_states = [manifest(folder, limit=MAX_SPICE_FILES) for folder in folders]
    if any(state is None for state in spice_states):
        return None
    environment = sorted((k, v) for k, v in os.environ.items()
                         if k.startswith(("EQEGS_", "LC_")) or k in ("LANG", "LANGUAGE", "PYTHONUTF8"))
    settings = (repo.url, repr(repo.pattern), repr(repo.layout), cache.url if cache else None,
                repr(getattr(repo, "spice_url", None)), repr(getattr(repo, "trusted_calibration_dirs", None)),
                proposal.key, proposal.path)
    state = (FORMAT, __version__, sys.version, numpy.__version__, check, settings, environment,
             [s[:2] for s in spice_states], _source_state())
    return _digest(state), max(s[2] for s in spice_states)


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
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # dumps: the C encoder (dump is Python)
            f.write(json.dumps({"format": FORMAT, "state": state, "rows": rows}, separators=(",", ":")))
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
        self.backgrounds = {}
        self._keys_digest = None
        self.settled_before = time.time_ns() - int(SETTLE_S * 1e9)
        cache = proposal.repository.cache
        try:  # before any row is computed: a folder made meanwhile shows in the next listing
            self.cached = set() if cache is None else set(os.listdir(cache.root))
        except FileNotFoundError:
            self.cached = set()
        except OSError:
            self.cached = None

    def folders(self, key):
        """``(sample folder, its folder in the result cache or None)`` of ``key``."""
        proposal, repo = self.proposal, self.proposal.repository
        path = repo.pattern.sample_path(proposal.key, key)
        if repo.cache is None:
            return path, None
        return path, repo.cache.folder(path, proposal.key, key, "x").rsplit("/", 1)[0]

    def cache_manifest(self, folder):
        """:func:`manifest` of a sample's folder in the result cache (its step folders: their
        times tell the entries' names, all the cache status reads); ``([], MISSING, 0)`` when
        the cache has no such folder, None when the cache cannot be listed."""
        if folder is None:
            return [], MISSING, 0
        if self.cached is None:
            return None
        if folder.rsplit("/", 1)[1] not in self.cached:
            return [], MISSING, 0
        return manifest(folder, levels=1, files=False)

    def unchanged(self, key, entry):
        """Whether the folders of ``key`` are as the kept ``entry`` saw them."""
        path, cached = self.folders(key)
        own, kept_cache = entry.get("own"), entry.get("cache")
        if not (_pair(own) and own[0] and (kept_cache == MISSING or _pair(kept_cache))):
            return False
        if kept_cache == MISSING:
            if cached is not None and (self.cached is None or cached.rsplit("/", 1)[1] in self.cached):
                return False
        elif cached is None or (manifest_digest(cached, kept_cache[0]) or (None,))[0] != kept_cache[1]:
            return False
        return (manifest_digest(path, own[0]) or (None,))[0] == own[1]

    def signature(self, key, background, role):
        """Digest of what the row of ``key`` depends on in other folders: the background run
        named ``background`` (None: none) and, for the background run's own row (``role``), the
        proposal's sample keys; None when the background run's folder cannot be read."""
        proposal = self.proposal
        named = None if background is None else naming.find_key(background, proposal._known_keys())
        found = None
        if named is not None and named != key:
            if named not in self.backgrounds:
                self.backgrounds[named] = manifest(self.folders(named)[0])
            if self.backgrounds[named] is None:
                return None
            found = self.backgrounds[named][1:]
        if role == "background" and self._keys_digest is None:
            self._keys_digest = _digest(list(proposal._known_keys()))
        keys = self._keys_digest if role == "background" else None
        return _digest((background, named, role, keys, found and found[0])), (found[1] if found else 0)

    def row(self, key, compute):
        """The row of ``key``: kept, or ``compute()`` (kept when it may be)."""
        entry = self.kept.get(key)
        if (isinstance(entry, dict) and isinstance(entry.get("row"), dict) and entry["row"].get("key") == key
                and self.unchanged(key, entry)):
            found = self.signature(key, entry.get("background"), entry.get("role"))
            if found is not None and found[0] == entry.get("sig"):
                self.fresh[key] = entry
                return dict(entry["row"], handle=self.proposal._handle_of(key))
        path, cached = self.folders(key)
        states = (manifest(path), self.cache_manifest(cached))  # before the row is computed
        with snapshot.recording() as notes:
            row = compute()
        self._keep(key, row, notes, states)
        return row

    def _keep(self, key, row, notes, states):
        if notes or row.get("problem") or row.get("role") not in ("sample", "background") or None in states:
            return
        if not all(value is None or type(value) in _JSON_EXACT for value in row.values()):
            return  # kept only what JSON gives back as it was
        try:
            background = self.proposal[key].spice["q_integration"]["bg_sample_id"]
        except Exception:  # noqa: BLE001 - a row whose background cannot be told is not kept
            return
        if background is not None and not isinstance(background, str):
            return
        found = self.signature(key, background, row["role"])
        own, cached = states
        if found is None or not own[0] or max(found[1], own[2], cached[2]) >= self.settled_before:
            return
        self.fresh[key] = {"sig": found[0], "background": background, "role": row["role"], "row": row,
                           "own": own[:2], "cache": MISSING if cached[1] == MISSING else list(cached[:2])}

    def save(self):
        if self.fresh.keys() != self.kept.keys() or any(self.fresh[k] is not self.kept.get(k) for k in self.fresh):
            _write_kept(self.path, self.state[0], self.fresh)


def _pair(value):
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], list)
            and all(isinstance(n, str) for n in value[0]) and isinstance(value[1], str))


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
