"""A collection of records: one scope (a repository or a proposal), its cache and its writers.

Reading is served from an in-memory index that is refreshed from the store's listing (new files
only are read; published files never change). Writing decides the revision at write time by an
exclusive create of the file named after (type, anchor, revision).
"""
import dataclasses
import getpass
import os
import random
import threading
import time
import warnings

from .display import RecordList
from .diff import ABSENT, diff_records
from .errors import (SpiceConflict, SpiceError, SpiceLookupError, SpiceRecordError,
                     SpiceStoreError, SpiceValidationError, SpiceWarning)
from .index import DEFAULT_ANCHOR, RecordIndex, UnorderableKey, anchor_sort_key
from .natural import natural_key
from .records import (FORMAT, MAX_REVISION, TIME_FORMAT, Record, dump_record, load_record,
                      new_uuid, parse_time, plain_data, short_repr, utc_now)
from .schema import unknown_name_message
from .store import MAX_NAME_BYTES, canonical_name, encode_name_part, open_store
from .view import ResolvedView

DEFAULT_RETRIES = 40  # attempts after the first with retry=True
BACKOFF_FIRST, BACKOFF_MAX = 0.002, 0.2  # seconds: random wait before retry k up to
# min(BACKOFF_MAX, BACKOFF_FIRST * 2**k), so retry=True waits at most ~8 s in all


@dataclasses.dataclass(frozen=True)
class StoreProblem:
    """A file that was skipped, with its full path and the reason."""

    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}"


def default_author():
    """``$SPICE_AUTHOR``, else the login name, else ``"unknown"``."""
    name = os.environ.get("SPICE_AUTHOR")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _time_text(moment):
    return parse_time(moment).strftime(TIME_FORMAT)


class Collection:
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
            raise SpiceLookupError(f"uuid prefix {short_repr(uuid)} is ambiguous in {self.store.url}: "
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

    # --- writing -----------------------------------------------------------------------------
    def seed(self, type_name, anchor=DEFAULT_ANCHOR, data=None, *, comment="", author=None,
             replace=False, retry=False, **fields):
        """Write the first record of a type at an anchor.

        Field values come from ``data`` (a mapping) and/or keyword arguments. Fields left out
        take their defaults when views are resolved. Refused when the anchor already holds a
        live record, unless ``replace=True`` (then this record replaces all its fields).
        Returns the new :class:`~spice.records.Record`.
        """
        values = self._prepared(type_name, {**(data or {}), **fields})

        def build(index):
            top = index.top(type_name, anchor)
            live = [r for r in top if not r.erased]
            if live and not replace:
                raise SpiceError(
                    f"{type_name} at anchor {short_repr(anchor)} already has revision {live[-1].revision} "
                    f"({live[-1].uuid}); use update(...) to change fields, or "
                    "seed(..., replace=True) to replace all of them")
            return self._validated(type_name, values), _newest_uuid(top)

        return self._write(type_name, anchor, build, comment, author, retry)

    def update(self, type_name, anchor=DEFAULT_ANCHOR, data=None, *, comment="", author=None,
               base=None, retry=False, **fields):
        """Write a new revision at ``anchor`` holding the current values there merged with changes.

        The values the view shows at ``anchor`` (from this anchor or an earlier one) are copied
        and the given fields replace theirs; the result is written at ``anchor`` only, so keys
        before ``anchor`` keep what they saw. ``base`` (a uuid) picks the record to start from,
        which is needed when the anchor is conflicted. ``retry`` (True or a count) re-reads and
        re-merges when another writer published first.

        Values inherited from an earlier anchor are taken from a fresh listing and checked again
        once the record is published: if another writer changed them meanwhile, the update
        raises :class:`SpiceConflict` (the record is stored; the message names the fields) or,
        with ``retry``, writes one more revision with the new inherited values.
        """
        changes = {**(data or {}), **fields}
        if not changes and base is None:
            raise SpiceError(f"update of {type_name} at anchor {short_repr(anchor)} names no field to change")
        changes = self._prepared(type_name, changes)
        inherited = {}  # "from": the record (or None) of an earlier anchor the values came from

        def build(index):
            inherited.clear()
            if base is not None:
                start = self.get(base)
                if start.type != type_name:
                    raise SpiceError(f"base {start.uuid} is a {start.type} record, "
                                     f"not {type_name}")
            else:
                found = index.resolve(type_name, anchor)
                if not found.conflicted and (found.record is None
                                             or found.record.anchor != anchor):
                    self.refresh()  # inheriting: never from a stale listing
                    found = self._index.resolve(type_name, anchor)
                if found.conflicted:
                    raise SpiceConflict(
                        f"{type_name} at anchor {short_repr(found.candidates[0].anchor)} is conflicted "
                        f"between {', '.join(r.uuid for r in found.candidates)}; pass "
                        "base=<uuid> to choose the record to update",
                        type=type_name, anchor=found.candidates[0].anchor,
                        uuids=[r.uuid for r in found.candidates])
                start = found.record
                if start is None or start.anchor != anchor:
                    inherited["from"] = start
            merged = {**((start.data or {}) if start is not None else {}), **changes}
            parent = start.uuid if start is not None else _newest_uuid(
                index.top(type_name, anchor))
            return self._validated(type_name, merged), parent

        record = self._write(type_name, anchor, build, comment, author, retry)
        if "from" in inherited:
            record = self._confirm_inheritance(record, inherited["from"], changes, comment,
                                               author, retry)
        return record

    def _confirm_inheritance(self, record, start, changes, comment, author, retry):
        """After an update that inherited values from an earlier anchor: list the store again
        and compare what the anchor inherits now with what the record carries.

        Unchanged: return the record. Changed (another writer was faster): raise SpiceConflict,
        or with ``retry`` write the next revision (the changes merged onto the new inherited
        values) as long as nobody else wrote at the anchor meanwhile.
        """
        type_name, anchor = record.type, record.anchor
        retries = DEFAULT_RETRIES if retry is True else int(retry or 0)
        for attempt in range(retries + 1):
            with self._lock:
                self.refresh()
                now = self._index.resolve(type_name, anchor, below=True)
            lost = _lost_changes(start, now, changes)
            if not lost:
                return record
            if attempt == retries:
                break
            written, start = record, now.record

            def build(index, written=written, start=start):
                head = index.top(type_name, anchor)
                if [r.uuid for r in head] != [written.uuid]:
                    raise SpiceConflict(
                        f"{type_name} at anchor {short_repr(anchor)}: revision {written.revision} "
                        f"({written.uuid}) inherited values that changed while it was written, "
                        f"and the anchor was written again meanwhile "
                        f"({', '.join(r.uuid for r in head)}); look at it and update again",
                        type=type_name, anchor=anchor, uuids=[r.uuid for r in head])
                merged = {**((start.data or {}) if start is not None else {}), **changes}
                return self._validated(type_name, merged), written.uuid

            record = self._write(type_name, anchor, build, comment, author, retry=False)
        source = ("conflicting records " + ", ".join(r.uuid for r in now.candidates)
                  if now.conflicted else
                  f"record {now.record.uuid} (anchor {short_repr(now.record.anchor)} "
                  f"r{now.record.revision})" if now.record is not None else "no record")
        shown = "; ".join(f"{field}: {short_repr(old)} -> {short_repr(new)}"
                          for field, (old, new) in lost.items())
        tried = f" (after {retries} retries)" if retries else ""
        raise SpiceConflict(
            f"{type_name} at anchor {short_repr(anchor)}: revision {record.revision} ({record.uuid}) was "
            f"stored{tried}, but another writer changed what this anchor inherits while it was "
            f"written: {source} now gives {shown}. Update {short_repr(anchor)} again to take the new "
            "values" + ("" if retry else ", or pass retry=True"),
            type=type_name, anchor=anchor,
            uuids=[record.uuid] + ([r.uuid for r in now.candidates] if now.conflicted else
                                   [now.record.uuid] if now.record is not None else []))

    def erase(self, type_name, anchor, *, comment="", author=None, retry=False):
        """Write a record with ``data: null``: the anchor no longer applies (keys fall back to
        the previous anchor)."""

        def build(index):
            top = index.top(type_name, anchor)
            if not [r for r in top if not r.erased]:
                anchors = [a for a in index.anchors(type_name)
                           if any(not r.erased for r in index.top(type_name, a))]
                raise SpiceError(f"nothing to erase: {type_name} has no live record at anchor "
                                 f"{short_repr(anchor)} (live anchors: {anchors or 'none'})")
            return None, _newest_uuid(top)

        return self._write(type_name, anchor, build, comment, author, retry)

    def revert(self, uuid, *, comment="", author=None, retry=False):
        """Write a new revision at the record's anchor holding that record's data again."""
        target = self.get(uuid)
        note = comment or f"revert to revision {target.revision} ({target.uuid})"

        def build(index):
            data = None if target.data is None else self._validated(target.type, target.data)
            return data, _newest_uuid(index.top(target.type, target.anchor))

        return self._write(target.type, target.anchor, build, note, author, retry)

    def _prepared(self, type_name, values):
        return values if self.prepare is None else self.prepare(type_name, dict(values))

    def _validated(self, type_name, values):
        if self.registry is None:
            return dict(values)
        return self.registry.validate(type_name, values)

    def _schema_version(self, type_name):
        schema = self.registry.get(type_name) if self.registry is not None else None
        return None if schema is None else schema.version

    def _catch_up(self, type_name, anchor):
        """Load canonical files above the known head at an anchor; return the next revision."""
        top = self._index.top(type_name, anchor)
        highest = top[0].revision if top else 0
        while True:
            name = canonical_name(type_name, anchor, highest + 1)
            if not self.store.exists(name):
                return highest + 1
            highest += 1
            if name not in self._loaded:
                self._load_file(name)

    def _check_place(self, type_name, anchor):
        """Refuse a type or anchor that cannot name a record file, naming the value."""
        if not isinstance(anchor, str):
            raise TypeError(f"anchor must be text (a key, or '' for the default), "
                            f"found {short_repr(anchor)}")
        if not isinstance(type_name, str) or not type_name:
            raise TypeError(f"type must be non-empty text, found {short_repr(type_name)}")
        if self.registry is not None:
            self.registry.check_type(type_name)
        longest = len(canonical_name(type_name, anchor, MAX_REVISION).encode("ascii"))
        if longest > MAX_NAME_BYTES:
            room = MAX_NAME_BYTES - (longest - len(encode_name_part(anchor)))
            raise SpiceValidationError(
                f"anchor {short_repr(anchor)} ({len(anchor)} characters) is too long for a "
                f"{short_repr(type_name)} record: its file name would be {longest} bytes, and "
                f"file names are limited to {MAX_NAME_BYTES}; an anchor of this type may have "
                f"at most {max(room, 0)} characters (A-Z a-z 0-9 _ -; any other character "
                "counts 3 or more)")
        try:
            anchor_sort_key(anchor, self.order)
        except UnorderableKey as exc:
            raise SpiceError(f"anchor {short_repr(anchor)} cannot be placed: {exc}") from None

    def _payload(self, record):
        """The bytes of a record to write, refused unless readers would accept exactly them."""
        where = f"{record.type} at anchor {short_repr(record.anchor)}"
        text = dump_record(record)
        payload = text.encode("utf-8")
        limit = self.store.max_record_bytes
        if len(payload) > limit:
            raise SpiceValidationError(
                f"{where}: the record would be {len(payload)} bytes (comment: "
                f"{len(record.comment)} characters), more than the {limit}-byte limit readers "
                "accept; nothing was stored")
        try:
            load_record(text, where)
        except SpiceRecordError as exc:
            raise SpiceValidationError(f"{exc}; readers would skip this record, so nothing was "
                                       "stored") from None
        return payload

    def _write(self, type_name, anchor, build, comment, author, retry):
        self._check_place(type_name, anchor)
        retries = DEFAULT_RETRIES if retry is True else int(retry or 0)
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(random.uniform(0, min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** attempt)))
            with self._lock:
                self._ensure_fresh()
                revision = self._catch_up(type_name, anchor)
                if revision > MAX_REVISION:
                    raise SpiceError(f"{type_name} at anchor {short_repr(anchor)} has reached "
                                     f"revision {MAX_REVISION}, the last one; write at another "
                                     "anchor")
                data, parent = build(self._index)
                if data is not None:
                    try:
                        data = plain_data(data, f"{type_name} data", convert=True)
                    except SpiceRecordError as exc:
                        raise SpiceValidationError(f"{exc}; nothing was stored") from None
                record = Record(format=FORMAT, type=type_name, uuid=new_uuid(),
                                revision=revision, anchor=anchor, created=utc_now(),
                                author=author or self.author or default_author(),
                                comment=comment, parent=parent,
                                schema_version=self._schema_version(type_name), data=data)
                name = canonical_name(type_name, anchor, revision)
                try:
                    self.store.publish(name, self._payload(record))
                except FileExistsError:
                    winner = self._load_file(name) if name not in self._loaded else None
                    continue
                except OSError as exc:
                    raise SpiceStoreError(f"cannot write {self.store.path_of(name)}: "
                                          f"{exc.strerror or exc}") from exc
                self._loaded[name] = record.uuid
                self._index.add(record)
                return record
        won_by = f" by record {winner.uuid}" if winner is not None else ""
        advice = (f"gave up after {retries + 1} attempts (retry={retry!r}): other writers "
                  "kept publishing first" if retries else
                  "Look at the new head and write again, or pass retry=True")
        raise SpiceConflict(
            f"{type_name} at anchor {short_repr(anchor)}: revision {revision} was published{won_by} "
            f"while this write was prepared; nothing was stored. {advice}",
            type=type_name, anchor=anchor, uuids=[winner.uuid] if winner is not None else [])


def _lost_changes(start, now, changes):
    """``{field: (carried, now)}`` of inherited fields (not in ``changes``) whose value differs
    between the record ``start`` an update inherited from and the resolution ``now``."""
    if now.conflicted:
        return {"(record)": ("one record", f"{len(now.candidates)} conflicting records")}
    before = {k: v for k, v in ((start.data or {}) if start is not None else {}).items()
              if k not in changes}
    after = {k: v for k, v in ((now.record.data or {}) if now.record is not None else {}).items()
             if k not in changes}
    return {k: (before.get(k, ABSENT), after.get(k, ABSENT))
            for k in list(before) + [k for k in after if k not in before]
            if before.get(k, ABSENT) != after.get(k, ABSENT)}


def _newest_uuid(records):
    return max(records, key=lambda r: (r.revision, r.created)).uuid if records else None
