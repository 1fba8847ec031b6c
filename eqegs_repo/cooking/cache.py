"""On-disk cache of cooked datasets, keyed by a fingerprint of everything that makes them.

Where the cache lives (``Repository(..., cache_url=...)``):

* ``cache_url=None`` (default): ``$EQEGS_CACHE_DIR`` if set, else
  ``$XDG_CACHE_HOME/eqegs_repo`` (``~/.cache/eqegs_repo``) -- a user folder, so read-only
  trees can be cooked;
* any path or fsspec URL (``"/scratch/me/eqegs-cache"``, ``"memory://c"``);
* ``cache_url=False``: no cache (every cook computes).

Inside, each sample has a folder ``<proposal>__<sample>__<16 hex of its URL>/<step>/`` (keys cut to 80 characters) holding
one ``<fingerprint>.npz`` per cooked version. An entry is written to a temporary name and
renamed into place, so readers never see half an entry; a broken entry is ignored (re-cooked).
Each entry records its own key and step folder (``entry`` in the header); an entry read under
another name (a file copied or renamed from another step or fingerprint) is a miss, never a
wrong dataset.

A cache that cannot be written (disk full, read-only, its path a file, an unwritable home) never
loses a result: :meth:`DatasetCache.save` issues a :class:`~eqegs_repo.errors.CacheWarning` naming
the cache folder and the settings that choose it (once per cache object) and the cook returns
its dataset, uncached.

Format: an uncompressed ``.npz`` with one array per variable (``var/<name>``) and a JSON header
(``__meta__``) holding dims, attrs, which names are coordinates and the entry's ``key`` and
``step``. Attrs must be JSON data.
"""
import hashlib
import json
import os
import unicodedata
import uuid
import warnings
import zipfile

import numpy as np

from eqegs_repo import snapshot
from eqegs_repo.errors import CacheWarning
from eqegs_repo.urls import open_filesystem
from eqegs_repo.io.layout import listed_info, listing

META = "__meta__"


def user_cache_folder():
    """The package's folder in the user's cache: ``$XDG_CACHE_HOME/eqegs_repo``, else
    ``~/.cache/eqegs_repo``. It holds the default result cache, the demo tree of ``eqegs demo``
    without a folder (``demo/``), numba's compiled kernels (``numba/``, see
    :func:`eqegs_repo.kernels.compiled.numba_cache_dir`) and the kept rows of large listings
    (``listings/``, :mod:`eqegs_repo.listing_cache`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "eqegs_repo")


def default_cache_url():
    """``$EQEGS_CACHE_DIR``, else :func:`user_cache_folder` (``~/.cache/eqegs_repo``)."""
    return os.environ.get("EQEGS_CACHE_DIR") or user_cache_folder()


def write_dataset(ds, handle, entry=None):
    """Write a Dataset (numeric/bool arrays, JSON attrs) as ``.npz`` to a binary file object
    (array by array: no copy of the whole payload in memory). ``entry``: JSON data stored
    with it (the cache stores ``{"key": ..., "step": ...}``) and checked by :func:`read_dataset`."""
    from eqegs_repo.io.app_format.text import json_default  # on first use: a listing imports no xarray

    arrays, meta = {}, {"attrs": ds.attrs, "variables": {}, "entry": entry}
    for name, var in list(ds.coords.items()) + list(ds.data_vars.items()):
        arrays[f"var/{name}"] = np.asarray(var.values)
        meta["variables"][name] = {"dims": list(var.dims), "attrs": var.attrs,
                                   "coord": name in ds.coords}
    text = json.dumps(meta, default=json_default)
    arrays[META] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    np.savez(handle, **arrays)


def read_dataset(handle, entry=None):
    """Inverse of :func:`write_dataset`: the Dataset of an ``.npz`` file object. With ``entry``,
    a file written with another ``entry`` (or none) raises ValueError."""
    import xarray as xr  # on first use: a listing imports no xarray

    with np.load(handle, allow_pickle=False) as data:
        meta = json.loads(bytes(data[META]).decode("utf-8"))
        if not (isinstance(meta, dict) and isinstance(meta.get("variables"), dict)
                and isinstance(meta.get("attrs"), dict)):
            raise ValueError(f"cache metadata must be a JSON object with 'attrs' and 'variables', "
                             f"found {type(meta).__name__}")
        if entry is not None and meta.get("entry") != entry:
            raise ValueError(f"the file holds entry {meta.get('entry')!r}, not {entry!r}")
        coords, data_vars = {}, {}
        for name, info in meta["variables"].items():
            var = xr.Variable(info["dims"], data[f"var/{name}"], info["attrs"])
            (coords if info["coord"] else data_vars)[name] = var
    return xr.Dataset(data_vars, coords=coords, attrs=meta["attrs"])


def file_stats(fs, paths):
    """``[[path, size, mtime], ...]`` of files (mtime from whatever the filesystem reports)."""
    out = []
    for path in paths:
        info = listed_info(fs, path)
        mtime = info.get("mtime", info.get("created", info.get("LastModified")))
        out.append([str(path), int(info.get("size") or 0), str(mtime)])
    return out


def _printable(key):
    """``key`` with every control character (newline, escape, ...) replaced by ``_``."""
    if key.isprintable():  # no control character (most keys; a listing names thousands)
        return key
    return "".join("_" if unicodedata.category(c) == "Cc" else c for c in key)


def sample_folder_name(sample_url, proposal, sample):
    """``<proposal>__<sample>__<tag>``: the folder of one sample's files in the cache (and its
    watch history): the keys cut to 80 characters with control characters as ``_``, ``tag`` the
    hash of the sample's URL, which keeps folders apart."""
    tag = hashlib.sha256(str(sample_url).encode("utf-8")).hexdigest()[:16]
    return f"{_printable(proposal[:80])}__{_printable(sample[:80])}__{tag}"


class DatasetCache:
    """Cooked datasets under ``url`` (a path or fsspec URL; see the module docstring).
    ``write_failure``: the message of the first failed write (warned once), or None."""

    def __init__(self, url):
        self.url = str(url)
        self.fs, self.root = open_filesystem(self.url, "cache_url")
        self.root = self.root.rstrip("/")
        self.write_failure = None

    def folder(self, sample_url, proposal, sample, step):
        """The cache folder of one sample's step: ``<proposal>__<sample>__<tag>/<step>``, the keys cut
        to 80 characters with control characters as ``_`` (the hash ``tag`` of the sample's URL
        keeps folders apart), so names stay printable and under 255 bytes."""
        return f"{self.root}/{sample_folder_name(sample_url, proposal, sample)}/{step}"

    @staticmethod
    def entry(folder, key):
        """What an entry stores about itself: ``{"key": key, "step": <last part of folder>}``."""
        return {"key": str(key), "step": folder.rstrip("/").rsplit("/", 1)[-1]}

    def load(self, folder, key):
        """The dataset stored under ``key`` or None (missing, unreadable, or written for
        another key or step)."""
        path = f"{folder}/{key}.npz"
        try:
            with self.fs.open(path, "rb") as handle:
                return read_dataset(handle, self.entry(folder, key))
        except (ValueError, KeyError, TypeError, AttributeError, OSError, EOFError, RecursionError,
                zipfile.BadZipFile):  # missing, broken or foreign: a miss, cooked again
            return None

    def save(self, folder, key, ds):
        """Store ``ds`` under ``key`` atomically (temporary name, then rename); the final path.
        A write that fails leaves no temporary file, warns (:meth:`_warn_unwritable`) and
        returns None: the caller keeps its dataset."""
        final = f"{folder}/{key}.npz"
        temp = f"{folder}/.tmp-{uuid.uuid4().hex}.npz"
        try:
            self.fs.makedirs(folder, exist_ok=True)
            with self.fs.open(temp, "wb") as f:
                write_dataset(ds, f, self.entry(folder, key))
            self.fs.mv(temp, final)
        except Exception as exc:  # noqa: BLE001 - any failed write: the result is kept, uncached
            self._remove_quietly(temp)
            self._warn_unwritable(folder, exc)
            return None
        except BaseException:  # Ctrl-C and the like: no half entry, then on they go
            self._remove_quietly(temp)
            raise
        return final

    def _remove_quietly(self, path):
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except Exception:  # noqa: BLE001 - the write failed already; that is what is reported
            pass

    def _warn_unwritable(self, folder, exc):
        """One :class:`~eqegs_repo.errors.CacheWarning` per cache object (the first failure)."""
        if self.write_failure is not None:
            return
        self.write_failure = (f"cannot write the result cache {self.url} ({folder}: {type(exc).__name__}: "
                              f"{exc}); results are computed and returned but not cached. Choose "
                              "another cache with cache_url (Repository(..., cache_url=...), "
                              "--cache-url, or cache_url in the tree's eqegs.yaml) or $EQEGS_CACHE_DIR, "
                              "or cache_url=False for none")
        warnings.warn(self.write_failure, CacheWarning, stacklevel=3)

    def keys(self, folder):
        """Fingerprints stored in a step folder (inside a listing, a sample's folders are looked
        for in one listing of the cache, not one per step)."""
        try:
            if snapshot.active():
                samples = snapshot.remembered(("cache folders", self.fs, self.root), self._sample_folders)
                if folder.rsplit("/", 1)[0] not in samples:
                    return []
            names = [e["name"] for e in listing(self.fs, folder)]
        except (FileNotFoundError, OSError):
            return []
        names = [n.rstrip("/").rsplit("/", 1)[-1] for n in names]
        return [n[:-4] for n in names if n.endswith(".npz") and not n.startswith(".")]

    def _sample_folders(self):
        """The paths of the samples' folders in the cache (none when it does not exist yet)."""
        try:
            return {e["name"].rstrip("/") for e in listing(self.fs, self.root)}
        except FileNotFoundError:
            return set()

    def __repr__(self):
        return f"<DatasetCache {self.url}>"
