"""The resolved view: the effective parameters at one key, built from layers of collections.

Layers are applied field by field, lowest priority first: registry defaults, then each
``(scope, collection, key)`` layer (for an E-QEGS sample: the repository collection at the
proposal key, then the proposal collection at the sample key). Every value remembers the record
it came from.
"""
import collections
import hashlib
import html
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .diff import Diff, diff_views
from .display import STATUS_STYLES, RecordList, format_value, html_table, text_table
from .errors import SpiceConflict, SpiceLookupError, SpiceValidationError
from .records import parse_time, plain_copy, short_repr
from .schema import unknown_name_message

DEFAULT = "default"


class Source(collections.namedtuple("Source", "scope anchor uuid revision")):
    """Where a value came from: the record's scope, anchor, uuid and revision."""

    __slots__ = ()

    def __str__(self):
        return f"{self.scope} {self.anchor or '(default)'} r{self.revision} {self.uuid[:8]}"


def _source_text(source):
    return source if isinstance(source, str) else str(source)


class TypeView:
    """The resolved fields of one type: ``view.roi.x0``, ``view.roi["x0"]``, ``dict(view.roi)``.

    Methods are few (``keys``, ``to_dict``, ``source``, ``unit``); a field whose name equals
    one of them is reached by item access.
    """

    def __init__(self, type_name, values, sources, units):
        self._type = type_name
        self._values = values
        self._sources = sources
        self._units = units

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise SpiceLookupError(unknown_name_message(f"field of {self._type!r}", name,
                                                        list(self._values))) from None

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __contains__(self, name):
        return name in self._values

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._values))

    def __eq__(self, other):
        if isinstance(other, TypeView):
            return self._values == other._values
        if isinstance(other, dict):
            return self._values == other
        return NotImplemented

    def keys(self) -> list[str]:
        """Field names."""
        return list(self._values)

    def to_dict(self) -> dict[str, Any]:
        """``{field: value}`` (a copy)."""
        return plain_copy(self._values)

    def unit(self, field: str) -> str:
        """Unit of a field ("" if none or unknown)."""
        return self._units.get(field, "")

    def source(self, field: str | None = None) -> "Source | str":
        """:class:`Source` of a field, or ``"default"``; without a field, the most specific
        record that contributed to this type (or ``"default"``)."""
        if field is not None:
            self[field]  # raises a lookup error naming close fields
            return self._sources[field]
        records = [s for s in self._sources.values() if not isinstance(s, str)]
        return records[-1] if records else DEFAULT

    def rows(self) -> list[tuple]:
        """(field, value, unit, source) per field."""
        return [(f, v, self._units.get(f, ""), _source_text(self._sources[f]))
                for f, v in self._values.items()]

    def __repr__(self):
        return f"{self._type}:\n" + text_table(("field", "value", "unit", "source"), self.rows())

    def _repr_html_(self):
        return html_table(("field", "value", "unit", "source"), self.rows(), caption=self._type)


def _signature(resolved):
    """:attr:`ResolvedView.signature` of ``[(scope, key, {type: Resolution})]``."""
    return tuple((scope, tuple((name, None if r.record is None else r.record.uuid,
                                tuple(c.uuid for c in r.candidates), key if r.conflicted else None)
                               for name, r in sorted(found.items())))
                 for scope, key, found in resolved)


class ResolvedView:
    """Effective parameters at a key (see the module docstring).

    Parameters
    ----------
    layers : list of (scope, collection, key)
        Lowest priority first.
    registry : Registry, optional
        Supplies defaults, units and the checks of :meth:`check`.
    as_of : str or datetime, optional
        Only records created at or before this time count.
    shared : dict, optional
        Views built with one ``shared`` dict and one registry share what they resolved when
        their :attr:`signature` is equal (the same records at every layer): listing many keys
        that inherit the same records resolves, checks and validates them once.
    """

    def __init__(self, layers, registry=None, *, as_of=None, shared=None):
        self._layers = list(layers)
        self._registry = registry
        self._as_of = None if as_of is None else parse_time(as_of)
        resolved = [(scope, key, collection.index(self._as_of).resolve_all(key))
                    for scope, collection, key in self._layers]
        self.signature = _signature(resolved)
        """What the view's values and sources depend on, hashable: per layer, the scope and
        the uuid of the record each type resolved to (the candidates of a conflict, with the
        key the conflict message names)."""
        entry = None if shared is None else shared.get(self.signature)
        if entry is None:
            entry = (*self._resolve(resolved), {})
            if shared is not None:
                shared[self.signature] = entry
        self._types, self._conflicts, self._memo = entry

    @property
    def key(self) -> Any:
        """The key of the most specific layer (e.g. the sample key)."""
        return self._layers[-1][2] if self._layers else None

    def _resolve(self, resolved):
        """``({type: TypeView}, {type: [(scope, key, Resolution)]})`` of the
        ``[(scope, key, {type: Resolution})]`` of the layers: the types (a conflicted one is
        None) and the conflicts."""
        types, conflicts = {}, {}
        defaults = self._registry.defaults() if self._registry is not None else {}
        units = self._registry.units() if self._registry is not None else {}
        extra = sorted({name for _, _, found in resolved for name in found} - set(defaults))
        for name in list(defaults) + extra:
            values = defaults.get(name, {})
            sources = {field: DEFAULT for field in values}
            for scope, key, found in resolved:
                resolution = found.get(name)
                if resolution is None:
                    continue
                if resolution.conflicted:
                    conflicts.setdefault(name, []).append((scope, key, resolution))
                elif resolution.record is not None:
                    record = resolution.record
                    source = Source(scope, record.anchor, record.uuid, record.revision)
                    for field, value in record.data.items():
                        values[field] = plain_copy(value)
                        sources[field] = source
            if name in defaults or any(not isinstance(s, str) for s in sources.values()):
                types[name] = TypeView(name, values, sources, units.get(name, {}))
            elif name in conflicts:
                types[name] = None
        return types, conflicts

    # --- access ------------------------------------------------------------------------------
    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name):
        if name in self._conflicts:
            raise self._conflict_error(name)
        try:
            return self._types[name]
        except KeyError:
            raise SpiceLookupError(unknown_name_message("parameter type", name,
                                                        list(self._types))) from None

    def _conflict_error(self, name):
        parts, uuids = [], []
        for scope, key, resolution in self._conflicts[name]:
            first = resolution.candidates[0]
            ids = [r.uuid for r in resolution.candidates]
            uuids.extend(ids)
            parts.append(f"{scope} scope at anchor {short_repr(first.anchor)} "
                         f"(for key {short_repr(key)}): "
                         f"{len(ids)} records share revision {first.revision}: "
                         f"{', '.join(ids)}")
        return SpiceConflict(
            f"{name} is conflicted in the " + "; and in the ".join(parts) +
            f". List them with .candidates({name!r}); write a new revision at that anchor "
            "(update with base=<uuid>, seed with replace=True, erase or revert) to resolve it",
            type=name, anchor=self._conflicts[name][0][2].candidates[0].anchor, uuids=uuids)

    def __iter__(self):
        return iter(self._types)

    def __len__(self):
        return len(self._types)

    def __contains__(self, name):
        return name in self._types

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._types))

    def keys(self) -> list[str]:
        """Type names (registered types first, then others found in records)."""
        return list(self._types)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{type: {field: value}}``; raises SpiceConflict if any type is conflicted."""
        return {name: self[name].to_dict() for name in self._types}

    def source(self, type_name: str, field: str | None = None) -> "Source | str":
        """:class:`Source` (scope, anchor, uuid, revision) of a type or field, or ``"default"``."""
        return self[type_name].source(field)

    def units(self, type_name: str) -> dict[str, str]:
        """``{field: unit}`` of a type."""
        return {field: self[type_name].unit(field) for field in self[type_name]}

    # --- conflicts, provenance, checks -------------------------------------------------------
    @property
    def conflicts(self) -> dict[str, list[str]]:
        """``{type: [uuids]}`` of conflicted types."""
        return {name: [r.uuid for _, _, res in found for r in res.candidates]
                for name, found in self._conflicts.items()}

    def candidates(self, type_name: str) -> RecordList:
        """The conflicting records of a type (empty when it is not conflicted)."""
        return RecordList([r for _, _, res in self._conflicts.get(type_name, [])
                           for r in res.candidates])

    def provenance(self) -> dict[str, list[dict]]:
        """``{type: [{scope, anchor, uuid, revision}, ...]}`` of the records used (no defaults)."""
        out = {}
        for name in self._types:
            if name in self._conflicts:
                raise self._conflict_error(name)
            used = {s for s in self._types[name]._sources.values() if not isinstance(s, str)}
            out[name] = [s._asdict() for s in sorted(used, key=lambda s: (s.scope, s.uuid))]
        return out

    def fingerprint(self, types: Iterable[str] | None = None) -> str:
        """SHA-256 hex of the resolved values of ``types`` (all by default).

        Equal values give equal fingerprints whichever records they came from.
        """
        names = list(self._types) if types is None else list(types)
        values = {name: self[name].to_dict() for name in names}
        text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def missing(self) -> list[str]:
        """``["type.field", ...]`` of required fields still null."""
        if self._registry is None:
            return []
        found = []
        for name, type_view in self._types.items():
            schema = self._registry.get(name)
            if schema is None or name in self._conflicts:
                continue
            found.extend(f"{name}.{f.name}" for f in schema.fields
                         if f.required and type_view[f.name] is None)
        return found

    def check(self) -> list[str]:
        """Messages for conflicts, missing required fields and cross-field rules broken by the
        combination of layers (e.g. q_min from one scope >= q_max from another)."""
        messages = [f"{name}: conflicted between {', '.join(ids)}"
                    for name, ids in self.conflicts.items()]
        messages.extend(f"{item}: required, not set" for item in self.missing())
        if self._registry is not None:
            for name, type_view in self._types.items():
                if name in self._conflicts or self._registry.get(name) is None:
                    continue
                try:
                    self._registry.validate(name, type_view.to_dict())
                except SpiceValidationError as exc:
                    messages.append(str(exc))
        return messages

    def validate(self) -> None:
        """Raise SpiceValidationError (or SpiceConflict) unless :meth:`check` finds nothing."""
        for name in self._conflicts:
            raise self._conflict_error(name)
        messages = self.check()
        if messages:
            raise SpiceValidationError(f"spice at {short_repr(self.key)} is not usable: "
                                       + "; ".join(messages))

    @property
    def status(self) -> str:
        """``"conflicted"``, ``"incomplete"`` (required fields missing) or ``"complete"``."""
        if "status" not in self._memo:
            self._memo["status"] = ("conflicted" if self._conflicts else
                                    "incomplete" if self.missing() else "complete")
        return self._memo["status"]

    @property
    def problems(self) -> list:
        """Skipped files of the collections behind this view."""
        return [p for _, collection, _ in self._layers for p in collection.problems]

    # --- other views -------------------------------------------------------------------------
    def as_of(self, moment: "str | datetime") -> "ResolvedView":
        """The same view counting only records created at or before ``moment`` (UTC)."""
        return ResolvedView(self._layers, self._registry, as_of=moment)

    def diff(self, other: "ResolvedView") -> Diff:
        """:class:`~spice.diff.Diff` of resolved values between this view and another."""
        return diff_views(self, other, (str(self.key), str(other.key)))

    # --- display -----------------------------------------------------------------------------
    def rows(self) -> list[tuple]:
        """(type, field, value, unit, source) for every resolved value."""
        rows = []
        for name, type_view in self._types.items():
            if name in self._conflicts:
                rows.append((name, "", "CONFLICT", "", ", ".join(
                    u[:8] for u in self.conflicts[name])))
                continue
            rows.extend((name, *row) for row in type_view.rows())
        return rows

    def _title(self):
        layers = " < ".join(f"{scope} @ {key!r}" for scope, _, key in self._layers)
        when = f", as of {self._as_of.isoformat()}" if self._as_of is not None else ""
        return f"spice view: defaults < {layers}{when} [{self.status}]"

    def _group_summary(self, name):
        """One line about where a type's values come from: the records, then ``defaults``."""
        if name in self._conflicts:
            return "CONFLICT between records " + ", ".join(u[:8] for u in self.conflicts[name])
        sources = list(self._types[name]._sources.values())
        records = list(dict.fromkeys(s for s in sources if not isinstance(s, str)))
        defaults = sum(1 for s in sources if isinstance(s, str))
        parts = [str(r) for r in records]
        if defaults:
            parts.append("defaults" if not records else f"{defaults} default(s)")
        return ", ".join(parts) or "no fields"

    def text(self, types: Iterable[str] | None = None, width: int = 120) -> str:
        """The view grouped by type, in lines of at most about ``width`` characters: a type
        whose values are all defaults is one line (``roi  defaults: x0 null, ...``), any other
        one line with its records and then its fields (source shown where it is not the
        type's only record). ``types``: only these type names."""
        names = [n for n in self._types if types is None or n in types]
        pad = max([len(n) for n in names] + [4])
        lines = [self._title()]
        for name in names:
            head = f"{name.ljust(pad)}  {self._group_summary(name)}"
            if name in self._conflicts:
                lines.append(head)
                continue
            type_view = self._types[name]
            sources = set(map(_source_text, type_view._sources.values()))
            if sources == {DEFAULT}:
                values = ", ".join(f"{f} {format_value(v, 24)}" for f, v in type_view._values.items())
                line = f"{name.ljust(pad)}  defaults: {values}".rstrip()
                lines.append(line if len(line) <= width else line[:width - 1] + "…")
                continue
            lines.append(head)
            rows = [(f, format_value(v), u, "" if len(sources) == 1 else src)
                    for f, v, u, src in type_view.rows()]
            field_pad = max(len(r[0]) for r in rows)
            value_pad = min(max(len(r[1]) for r in rows), 40)
            unit_pad = max(len(r[2]) for r in rows)
            for f, v, u, src in rows:
                lines.append(f"  {f.ljust(field_pad)}  {v.ljust(value_pad)}  {u.ljust(unit_pad)}  {src}".rstrip())
        return "\n".join(lines)

    def __repr__(self):
        return self.text()

    def _repr_html_(self):
        """One collapsible section per type (``<details>``, like xarray's): open when records
        set some of its values or it is conflicted, closed when it is all defaults."""
        parts = [f"<p>{html.escape(self._title())}</p>"]
        for name in self._types:
            summary = html.escape(self._group_summary(name))
            if name in self._conflicts:
                style = STATUS_STYLES["conflict"]
                parts.append(f"<details open><summary style='{style}'><b>{html.escape(name)}</b>: {summary}"
                             "</summary></details>")
                continue
            type_view = self._types[name]
            defaults_only = set(map(_source_text, type_view._sources.values())) == {DEFAULT}
            rows = [(f, format_value(v), u, src) for f, v, u, src in type_view.rows()]
            parts.append(f"<details{'' if defaults_only else ' open'}><summary><b>{html.escape(name)}</b> "
                         f"({len(rows)} fields): {summary}</summary>"
                         + html_table(("field", "value", "unit", "source"), rows) + "</details>")
        return "<div class='spice-view'>" + "".join(parts) + "</div>"
