"""How a collection writes: seed, update, erase and revert.

A revision is claimed by an exclusive create of the file named after (type, anchor, revision);
a writer that loses gets :class:`SpiceConflict` or, with ``retry``, tries again after a bounded
random wait. Every record is checked exactly as readers check it before it is published (write
limits = read limits). An update that inherits values from an earlier anchor takes them from a
fresh listing and checks them again after publication (docs/spice.md#writing).
"""
import getpass
import os
import random
import time

from .diff import ABSENT
from .errors import SpiceConflict, SpiceError, SpiceRecordError, SpiceStoreError, SpiceValidationError
from .index import DEFAULT_ANCHOR, UnorderableKey, anchor_sort_key
from .records import FORMAT, MAX_REVISION, Record, dump_record, load_record, new_uuid, plain_data, short_repr, utc_now
from .store import MAX_NAME_BYTES, canonical_name, encode_name_part

DEFAULT_RETRIES = 40  # attempts after the first with retry=True
BACKOFF_FIRST, BACKOFF_MAX = 0.002, 0.2  # seconds: random wait before retry k up to
# min(BACKOFF_MAX, BACKOFF_FIRST * 2**k), so retry=True waits at most ~7 s in all


def default_author():
    """``$SPICE_AUTHOR``, else the login name, else ``"unknown"``."""
    name = os.environ.get("SPICE_AUTHOR")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


class Writer:
    """The writing half of :class:`~spice.collection.Collection` (a mixin: it uses the
    collection's store, registry, index, lock and loader)."""

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
                    f"{type_name} at anchor {short_repr(anchor)} already has revision "
                    f"{live[-1].revision} "
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
            raise SpiceError(f"update of {type_name} at anchor {short_repr(anchor)} names no "
                             "field to change")
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
                        f"{type_name} at anchor {short_repr(found.candidates[0].anchor)} is "
                        f"conflicted between {', '.join(r.uuid for r in found.candidates)}; "
                        "pass base=<uuid> to choose the record to update",
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
            if attempt == retries or now.conflicted:  # nothing sound to merge onto
                break
            written, start = record, now.record

            def build(index, written=written, start=start):
                head = index.top(type_name, anchor)
                if [r.uuid for r in head] != [written.uuid]:
                    raise SpiceConflict(
                        f"{type_name} at anchor {short_repr(anchor)}: revision "
                        f"{written.revision} ({written.uuid}) inherited values that changed "
                        "while it was written, "
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
        tried = f" (after {attempt} more revision(s) to catch up)" if attempt else ""
        raise SpiceConflict(
            f"{type_name} at anchor {short_repr(anchor)}: revision {record.revision} "
            f"({record.uuid}) was stored{tried}, but another writer changed what this anchor "
            f"inherits while it was written: {source} now gives {shown}. Update "
            f"{short_repr(anchor)} again to take the new values"
            + ("" if retry else ", or pass retry=True"),
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
                f"anchor {short_repr(anchor)} is too long for a "
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
                except SpiceStoreError:
                    raise
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
            f"{type_name} at anchor {short_repr(anchor)}: revision {revision} was "
            f"published{won_by} "
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
