"""In-memory index of loaded records and the resolution rule.

For a key K and a type: take the greatest anchor <= K in the collection's order (the default
anchor ``""`` comes before every key), then the highest revision at that anchor. An erased
anchor (top record with ``data: null``) is passed over in favour of the previous anchor. Two
records sharing the top revision at the chosen anchor are a conflict.

Anchors and keys are compared in NFC (:func:`spice.natural.same_text`): records whose anchors
differ only by Unicode normalisation share one anchor, and an NFC anchor applies to the NFD
spelling of the key (a folder copied from macOS). :meth:`RecordIndex.anchors` gives the NFC form.
"""
import bisect
import dataclasses
from typing import Optional, Tuple

from .natural import same_text
from .records import Record, short_repr

DEFAULT_ANCHOR = ""


@dataclasses.dataclass(frozen=True)
class Resolution:
    """Outcome of resolving one type at one key in one collection.

    Attributes
    ----------
    type : str
    key : str
        The key resolved for.
    record : Record or None
        The record that applies (None when no live record applies or on conflict).
    candidates : tuple of Record
        The records sharing the top revision at the conflicted anchor (empty if no conflict).
    passed_over : tuple of str
        Erased anchors that were skipped on the way down.
    """

    type: str
    key: str
    record: Optional[Record]
    candidates: Tuple[Record, ...] = ()
    passed_over: Tuple[str, ...] = ()

    @property
    def conflicted(self):
        """True when two or more records share the top revision at the deciding anchor."""
        return bool(self.candidates)


class UnorderableKey(ValueError):
    """The collection's order function failed for a key."""


def anchor_sort_key(anchor, order):
    """Position of an anchor: ``""`` first, then by ``order(anchor)``, ties by the text (NFC)."""
    if anchor == DEFAULT_ANCHOR:
        return (0,)
    try:
        return (1, order(anchor), same_text(anchor))
    except Exception as exc:  # a user key function may fail in any way
        raise UnorderableKey(f"the collection's order function failed for {short_repr(anchor)}: "
                             f"{type(exc).__name__}: {exc}") from exc


class RecordIndex:
    """Records grouped by type and anchor, with anchors kept sorted in the collection's order.

    Parameters
    ----------
    order : callable
        Key function for anchors and keys.
    records : iterable of Record
        Records to add at once (all distinct uuids).
    """

    def __init__(self, order, records=()):
        self.order = order
        self.by_uuid = {}
        self.unorderable = {}  # anchor -> message; such anchors never apply (kept for history)
        self._slots = {}  # type -> {NFC anchor: [records sorted by revision]}
        self._anchors = {}  # type -> sorted [(sort key, NFC anchor)]
        for record in records:
            self.add(record)

    def add(self, record):
        """Insert one record (ignored if its uuid is already indexed)."""
        if record.uuid in self.by_uuid:
            return
        self.by_uuid[record.uuid] = record
        slots = self._slots.setdefault(record.type, {})
        anchor = same_text(record.anchor)
        at_anchor = slots.get(anchor)
        if at_anchor is None:
            slots[anchor] = [record]
            try:
                position = (anchor_sort_key(anchor, self.order), anchor)
            except UnorderableKey as exc:
                self.unorderable[anchor] = str(exc)
                return
            bisect.insort(self._anchors.setdefault(record.type, []), position)
        else:
            bisect.insort(at_anchor, record, key=lambda r: (r.revision, r.created, r.uuid))

    def __len__(self):
        return len(self.by_uuid)

    def types(self):
        """Types with at least one record, sorted."""
        return sorted(self._slots)

    def anchors(self, type_name):
        """Anchors of a type in the collection's order (unorderable anchors last)."""
        ordered = [anchor for _, anchor in self._anchors.get(type_name, [])]
        rest = sorted(a for a in self._slots.get(type_name, {}) if a in self.unorderable)
        return ordered + rest

    def at(self, type_name, anchor):
        """All records of a type at an anchor (compared in NFC), by revision."""
        return list(self._slots.get(type_name, {}).get(same_text(anchor), []))

    def top(self, type_name, anchor):
        """The records sharing the highest revision at an anchor (compared in NFC; [] if none)."""
        records = self._slots.get(type_name, {}).get(same_text(anchor))
        if not records:
            return []
        head = records[-1].revision
        return [r for r in records if r.revision == head]

    def resolve(self, type_name, key, *, below=False):
        """The :class:`Resolution` of a type at a key (``below=True``: from the anchors strictly
        before ``key`` only, i.e. what an anchor ``key`` would inherit)."""
        return self._resolve_at(type_name, key, self._position(key), below)

    def _position(self, key):
        """Where ``key`` sorts among the anchors."""
        return (anchor_sort_key(key, self.order), same_text(key))

    def _resolve_at(self, type_name, key, position, below=False):
        anchors = self._anchors.get(type_name)
        if not anchors:
            return Resolution(type_name, key, None)
        i = (bisect.bisect_left if below else bisect.bisect_right)(anchors, position) - 1
        passed = []
        while i >= 0:
            anchor = anchors[i][1]
            top = self.top(type_name, anchor)
            if len(top) > 1:
                return Resolution(type_name, key, None, tuple(top), tuple(passed))
            if not top[0].erased:
                return Resolution(type_name, key, top[0], (), tuple(passed))
            passed.append(anchor)
            i -= 1
        return Resolution(type_name, key, None, (), tuple(passed))

    def resolve_all(self, key):
        """``{type: Resolution}`` for every type with records."""
        position = self._position(key)
        return {type_name: self._resolve_at(type_name, key, position) for type_name in self._slots}

    def conflicts(self):
        """``[(type, anchor, [records])]`` for every anchor whose top revision is shared."""
        found = []
        for type_name in self.types():
            for anchor in self.anchors(type_name):
                top = self.top(type_name, anchor)
                if len(top) > 1:
                    found.append((type_name, anchor, top))
        return found

    def status(self, record):
        """``current``, ``erased``, ``superseded`` or ``conflict`` for an indexed record."""
        top = self.top(record.type, record.anchor)
        if record not in top:
            return "superseded"
        if len(top) > 1:
            return "conflict"
        return "erased" if record.erased else "current"
