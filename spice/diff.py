"""Differences between two records or two resolved views, field by field."""
import dataclasses

from .display import html_table, text_table

ERASED = "(erased)"
ABSENT = "(absent)"


@dataclasses.dataclass(frozen=True)
class Change:
    """One differing field: ``before`` and ``after`` (``ABSENT`` when the field is missing)."""

    type: str
    field: str
    before: object
    after: object


class Diff(list):
    """A list of :class:`Change`; empty (falsy) when nothing differs. Shows itself as a table."""

    headers = ("type", "field", "before", "after")

    def __init__(self, changes=(), labels=("before", "after")):
        super().__init__(changes)
        self.labels = labels

    def rows(self):
        """Tuples (type, field, before, after)."""
        return [(c.type, c.field, c.before, c.after) for c in self]

    def _headers(self):
        return ("type", "field", *self.labels)

    def __repr__(self):
        if not self:
            return "(no differences)"
        return text_table(self._headers(), self.rows())

    def _repr_html_(self):
        return html_table(self._headers(), self.rows())


def diff_mappings(type_name, before, after):
    """Changes between two field mappings of one type (None means erased)."""
    if (before is None) != (after is None):
        return [Change(type_name, "", _state(before), _state(after))]
    before, after = before or {}, after or {}
    changes = []
    for field in list(before) + [f for f in after if f not in before]:
        a, b = before.get(field, ABSENT), after.get(field, ABSENT)
        if a != b or type(a) is not type(b):
            changes.append(Change(type_name, field, a, b))
    return changes


def _state(data):
    return ERASED if data is None else "present"


def _label(record):
    return f"{record.anchor or '(default)'} r{record.revision} {record.uuid[:8]}"


def diff_records(before, after):
    """:class:`Diff` between the data of two records (labelled by anchor, revision and uuid)."""
    if before.type == after.type:
        changes = diff_mappings(before.type, before.data, after.data)
    else:
        changes = [Change("(type)", "", before.type, after.type)]
    return Diff(changes, (_label(before), _label(after)))


def diff_views(before, after, labels=("before", "after")):
    """:class:`Diff` between two resolved views (every type present in either)."""
    a, b = before.to_dict(), after.to_dict()
    changes = []
    for type_name in list(a) + [t for t in b if t not in a]:
        changes.extend(diff_mappings(type_name, a.get(type_name, {}), b.get(type_name, {})))
    return Diff(changes, labels)
