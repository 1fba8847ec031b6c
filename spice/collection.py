"""A collection of records: one scope (a repository or a proposal) and its cache.

Reading is served from an in-memory index that is refreshed from the store's listing (new files
only are read; published files never change). Writing (:mod:`spice.writing`) decides the
revision at write time by an exclusive create of the file named after (type, anchor, revision).
"""
import dataclasses
import os
import threading
import time
import warnings

from .diff import diff_records
from .display import RecordList
from .errors import SpiceError, SpiceLookupError, SpiceRecordError, SpiceStoreError, SpiceWarning
from .index import RecordIndex
from .natural import natural_key
from .records import TIME_FORMAT, Record, load_record, parse_time, short_repr
from .schema import unknown_name_message
from .store import open_store
from .view import ResolvedView
from .writing import Writer


@dataclasses.dataclass(frozen=True)
class StoreProblem:
    """A file that was skipped, with its full path and the reason."""

    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}"


def _time_text(moment):
    return parse_time(moment).strftime(TIME_FORMAT)


class Collection(Writer):
    """Versioned, append-only parameter records of one scope.

    Parameters
    ----------
    store : Store or str
        Where the record files live (a :class:`~spice.store.Store`, a path or an fsspec URL;
        ``"memory://name"`` keeps them in memory).
    registry : Registry, optional
        Known types; values of registered types are checked on write and on read.
    order : callable
        Key function ordering anchors and keys (natural sort by default: ``S2 < S10``).
        The default anchor ``""`` always comes first.
    scope : str
        Name shown as the source of values (``"repository"``, ``"proposal"``).
    author : str, optional
        Author written into records (default: ``$SPICE_AUTHOR`` or the login name).
    listing_ttl : float or None
        Seconds a listing is trusted before reads list the store again (0: list on every
        read; None: only on :meth:`refresh`). Writes always check the head they write onto.
    prepare : callable, optional
        ``prepare(type, values) -> values`` applied to the values given to :meth:`seed` and
        :meth:`update` before they are checked (e.g. to add file hashes); module-level so that
        the collection pickles.
    """

    def __init__(self, store, *, registry=None, order=natural_key, scope="collection",
                 author=None, listing_ttl=2.0, prepare=None):
        self.store = open_store(store) if isinstance(store, (str, os.PathLike)) else store
        self.registry = registry
        self.order = order
        self.scope = scope
        self.author = author
        self.listing_ttl = listing_ttl
        self.prepare = prepare
        self._init_cache()

    # --- cache -------------------------------------------------------------------------------
    def _init_cache(self):
        self._lock = threading.RLock()
        self._loaded = {}  # file name -> uuid
        self._failed = {}  # file name -> (size, StoreProblem)
        self._foreign = []
        self._index = RecordIndex(self.order)
        self._listed_at = None
        self._warned = set()

    def __getstate__(self):
        return {key: self.__dict__[key] for key in
                ("store", "registry", "order", "scope", "author", "listing_ttl",
                 "prepare")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_cache()

    def refresh(self):
        """List the store and load the files not seen before; returns self.

        Raises :class:`SpiceStoreError` (an OSError) naming the folder when it cannot be listed.
        """
        try:
            sizes, foreign = self.store.list_files()
        except OSError as exc:
            raise SpiceStoreError(f"cannot list the spice records in {self.store.url}: "
                                  f"{exc.strerror or exc}") from exc
        with self._lock:
            for name, size in sizes.items():
                if name in self._loaded:
                    continue
                failed = self._failed.get(name)
                if failed is not None and failed[0] == size:
                    continue
                self._load_file(name, size)
            vanished = [name for name in self._loaded if name not in sizes]
            if vanished:  # files are never deleted by spice; someone removed them by hand
                for name in vanished:
                    del self._loaded[name]
                keep = set(self._loaded.values())
                self._index = RecordIndex(
                    self.order, [r for u, r in self._index.by_uuid.items() if u in keep])
            for name in [n for n in self._failed if n not in sizes]:
                del self._failed[name]
            self._foreign = [StoreProblem(self.store.path_of(name),
                                          "not a record file (records are *.yaml); ignored")
                             for name in sorted(foreign)]
            for problem in self._foreign:
                self._warn(problem)
            self._listed_at = time.monotonic()
        return self

    def _ensure_fresh(self):
        ttl = self.listing_ttl
        if self._listed_at is None or (ttl is not None and
                                       time.monotonic() - self._listed_at >= ttl):
            self.refresh()

    def _warn(self, problem):
        if problem.path not in self._warned:
            self._warned.add(problem.path)
            warnings.warn(f"spice: skipped {problem}", SpiceWarning, stacklevel=4)

    def _fail(self, name, size, message):
        problem = StoreProblem(self.store.path_of(name), message)
        self._failed[name] = (size, problem)
        self._warn(problem)

    def _load_file(self, name, size=None):
        """Read, parse and check one file; index it or record the problem. Returns the record."""
        limit = self.store.max_record_bytes
        if size is not None and size > limit:
            self._fail(name, size, f"file is {size} bytes, more than the {limit}-byte limit "
                                   "of a record; not read")
            return None
        try:
            payload = self.store.read_bytes(name)
        except OSError as exc:
            self._fail(name, size, f"cannot be read: {exc}")
            return None
        if len(payload) > limit:
            self._fail(name, size, f"file is larger than the {limit}-byte limit of a record; "
                                   "not read")
            return None
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._fail(name, size, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
            return None
        path = self.store.path_of(name)
        try:
            record = load_record(text, path)
            record = self._checked(record)
        except SpiceError as exc:
            message = str(exc)
            if message.startswith(path + ": "):
                message = message[len(path) + 2:]
            self._fail(name, size, message)
            return None
        except Exception as exc:  # a file must never break its readers, whatever it holds
            self._fail(name, size, f"cannot be checked: {type(exc).__name__}: "
                                   f"{short_repr(str(exc))}")
            return None
        known = self._index.by_uuid.get(record.uuid)
        if known is not None:
            self._fail(name, size, f"uuid {record.uuid} is already used by another file "
                                   "(a copy?); ignored")
            return None
        self._failed.pop(name, None)
        self._loaded[name] = record.uuid
        self._index.add(record)
        return record

    def _checked(self, record):
        """The record with data validated against the registry (raises SpiceError)."""
        if self.registry is None:
            return record
        if self.registry.strict and record.type not in self.registry:
            raise SpiceRecordError(unknown_name_message("parameter type", record.type,
                                                        list(self.registry)) + "; skipped")
        if record.data is None:
            return record
        data = self.registry.validate(record.type, record.data)
        return record if data == record.data else dataclasses.replace(record, data=data)

    def index(self, as_of=None):
        """The :class:`~spice.index.RecordIndex` (of records created at or before ``as_of``)."""
        with self._lock:
            self._ensure_fresh()
            if as_of is None:
                return self._index
            limit = _time_text(as_of)
            return RecordIndex(self.order, [r for r in self._index.by_uuid.values()
                                            if r.created <= limit])

    @property
    def problems(self):
        """Skipped files as :class:`StoreProblem` (path and reason), sorted by path."""
        with self._lock:
            self._ensure_fresh()
            found = [problem for _, problem in self._failed.values()] + self._foreign
            found.extend(StoreProblem(f"{self.store.url} (anchor {short_repr(anchor)})", message)
                         for anchor, message in self._index.unorderable.items())
        return sorted(found, key=lambda p: p.path)

    # --- reading -----------------------------------------------------------------------------
    def __len__(self):
        return len(self.index())

    def types(self):
        """Types that have records in this collection, sorted."""
        return self.index().types()

    def anchors(self, type_name):
        """Anchors of a type, in the collection's order."""
        return self.index().anchors(type_name)

    def get(self, uuid):
        """The record with this uuid (or a unique prefix of at least 4 characters)."""
        index = self.index()
        if isinstance(uuid, Record):
            return uuid
        record = index.by_uuid.get(uuid)
        if record is not None:
            return record
        matches = [u for u in index.by_uuid if len(uuid) >= 4 and u.startswith(uuid)]
        if len(matches) == 1:
            return index.by_uuid[matches[0]]
        if matches:
            raise SpiceLookupError(f"uuid prefix {short_repr(uuid)} is ambiguous in "
                                   f"{self.store.url}: "
                                   f"{', '.join(sorted(matches))}")
        raise SpiceLookupError(f"no record with uuid {short_repr(uuid)} in {self.store.url} "
                               f"({len(index)} records)")

    def _statuses(self, index, records):
        return {r.uuid: index.status(r) for r in records}

    def records(self, type_name=None, anchor=None):
        """Records (optionally of one type and/or anchor) by type, anchor order and revision."""
        index = self.index()
        types = [type_name] if type_name is not None else index.types()
        found = []
        for name in types:
            anchors = [anchor] if anchor is not None else index.anchors(name)
            for at in anchors:
                found.extend(index.at(name, at))
        return RecordList(found, self._statuses(index, found))

    def current(self):
        """The top record(s) at every (type, anchor): what each anchor says now."""
        index = self.index()
        found = [r for name in index.types() for at in index.anchors(name)
                 for r in index.top(name, at)]
        return RecordList(found, self._statuses(index, found))

    def history(self, type_name, anchor=None):
        """Every record of a type (at one anchor, or all), oldest first, with its status."""
        index = self.index()
        if (self.registry is not None and self.registry.strict and type_name not in index.types()
                and type_name not in self.registry):
            raise SpiceLookupError(unknown_name_message("parameter type", type_name,
                                                        list(self.registry)))
        found = self.records(type_name, anchor)
        found.sort(key=lambda r: (r.created, r.revision, r.uuid))
        return found

    def candidates(self, type_name, anchor):
        """The records sharing the top revision at an anchor (two or more mean a conflict)."""
        index = self.index()
        found = index.top(type_name, anchor)
        return RecordList(found, self._statuses(index, found))

    def conflicts(self):
        """``[(type, anchor, [uuids])]`` for every conflicted anchor."""
        return [(t, a, [r.uuid for r in rs]) for t, a, rs in self.index().conflicts()]

    def view(self, key, as_of=None):
        """The :class:`~spice.view.ResolvedView` at ``key``: registry defaults < this collection."""
        return ResolvedView([(self.scope, self, key)], self.registry, as_of=as_of)

    def diff(self, a, b):
        """Field-by-field :class:`~spice.diff.Diff` between two records (uuids or records)."""
        return diff_records(self.get(a), self.get(b))

    def __repr__(self):
        return (f"<spice.Collection scope={self.scope!r} at {self.store.url}: "
                f"{len(self)} records>")

    def _repr_html_(self):
        return self.current()._repr_html_()
