"""The parameters of one cooking run: a sample's resolved spice plus one-off overrides.

:class:`StepParameters` merges ``sample.spice`` (defaults < repository < proposal records) with
overrides given to ``sample.cook(step, **overrides)``. Overrides write no spice; they are
validated against the same schemas and show up in the provenance as ``"override"``.

Override keywords (:func:`normalise_overrides`):

* a type name with a mapping: ``roi={"x0": 10, "y0": 20, "x1": 60, "y1": 50}``;
* a field name that belongs to exactly one type: ``q_min=10.1`` (``q_range``),
  ``n_mc=200`` (``e_spectrum``). Ambiguous names (``output_subdir``, ``number``) must be given
  through their type.

Errors a parameter causes are re-raised by :meth:`StepParameters.blame` with the parameter's
value and the record it came from (scope, anchor, revision, uuid), or ``override``/``default``.
A conflicted type raises :class:`ParameterConflict`, which is both a ``spice.SpiceConflict``
(with its ``type``, ``anchor`` and ``uuids``) and a :class:`~eqegs_repo.errors.BadInput`
naming the sample (docs/spice.md#conflicts).
"""
import contextlib
import hashlib
import json
import re

from eqegs_repo.errors import BadInput, BadSample, closest_keys
from eqegs_repo.kernels import rules
from eqegs_repo.params import types as eqegs_params
from eqegs_repo.params.chain import EXPORT_ONLY
from eqegs_repo.snapshot import remembered
from spice import DEFAULT, SpiceConflict, SpiceError
from spice.records import short_repr


class ParameterConflict(SpiceConflict, BadInput):
    """A spice type needed for cooking is conflicted (two records share the top revision).

    Caught by ``except spice.SpiceConflict`` (``.type``, ``.anchor``, ``.uuids`` of the
    competing records) as well as by ``except BadInput``; the message names the sample and the
    records. The original conflict is chained as ``__cause__``.
    """


def normalise_overrides(overrides):
    """``{type: {field: value}}`` from cook keywords (see the module docstring)."""
    if not overrides:
        return {}
    fields_of = {}
    for schema in eqegs_params.SCHEMAS:
        for field in schema.fields:
            fields_of.setdefault(field.name, []).append(schema.name)
    out = {}
    for name, value in overrides.items():
        if name in eqegs_params.REGISTRY:
            if not isinstance(value, dict):
                raise BadInput(f"override {name}= must be a mapping of {name} fields, "
                               f"e.g. {name}={{...}}; found {value!r}")
            out.setdefault(name, {}).update(value)
            continue
        owners = fields_of.get(name, [])
        if not owners:
            close = closest_keys(name, list(fields_of) + list(eqegs_params.REGISTRY))
            hint = f"closest: {', '.join(close)}" if close else "none is close"
            raise BadInput(f"unknown parameter {name!r} in cook overrides ({hint}); expected a field or "
                           "type name of the spice types (eqegs spice types lists them)")
        if len(owners) > 1:
            raise BadInput(f"parameter {name!r} belongs to several types ({', '.join(owners)}); "
                           f"give it through its type, e.g. {owners[0]}={{{name!r}: ...}}")
        out.setdefault(owners[0], {})[name] = value
    return out


def check_overrides(overrides):
    """:func:`normalise_overrides`, then each type's values checked against its schema (the
    fields given only), so that a bad name or value fails once, before any sample is cooked.
    Returns ``{type: {field: value}}``."""
    out = normalise_overrides(overrides)
    for type_name, values in out.items():
        try:
            eqegs_params.REGISTRY[type_name].validate(values)
        except SpiceError as exc:
            raise BadInput(f"override: {exc}") from None
    return out


def _plain(value):
    return json.loads(json.dumps(value, default=str))


class StepParameters:
    """Effective parameter values of a sample for cooking.

    ``view``: the sample's :class:`spice.ResolvedView`; ``overrides``: ``{type: {field: value}}``
    (see :func:`normalise_overrides`). ``label``: how errors name the sample.
    """

    def __init__(self, view, overrides=None, label=""):
        self.view = view
        self.overrides = {t: dict(v) for t, v in (overrides or {}).items()}
        self.label = label
        self._values = {}

    def values(self, type_name):
        """``{field: value}`` of a type with the overrides applied, validated (a copy). Inside
        a listing (:func:`eqegs_repo.snapshot.scope`), samples whose views resolve the same
        records share the validated values."""
        if type_name not in self._values:
            self._values[type_name] = remembered(
                ("step values", self._view_signature(), type_name, self._overrides_key(type_name)),
                lambda: self._validated(type_name))
        return dict(self._values[type_name])

    def resolution_key(self, type_name):
        """A hashable key equal for two parameter sets whose ``type_name`` values (and their
        sources) are the same: the view's signature and the overrides of that type."""
        return self._view_signature(), self._overrides_key(type_name)

    def _view_signature(self):
        """What the view's values depend on (:attr:`spice.ResolvedView.signature`)."""
        return getattr(self.view, "signature", id(self.view))

    def _overrides_key(self, type_name):
        """The overrides of ``type_name`` as a hashable key (None when there are none)."""
        given = self.overrides.get(type_name)
        return digest(given) if given else None

    def _validated(self, type_name):
        """The values of ``type_name``: the view's with the overrides applied, validated."""
        where = f"spice of {self.label or self.view.key!r}"
        try:
            base = self.view[type_name].to_dict()
        except SpiceConflict as exc:
            raise ParameterConflict(f"{where}: {exc}", type=exc.type, anchor=exc.anchor,
                                    uuids=exc.uuids) from exc
        except SpiceError as exc:
            raise BadInput(f"{where}: {exc}") from None
        merged = {**base, **self.overrides.get(type_name, {})}
        try:
            eqegs_params.REGISTRY.validate(type_name, merged)
        except SpiceError as exc:
            sources = "; ".join(f"{type_name}.{f} = {short_repr(merged[f])} (from {self.source(type_name, f)})"
                                for f in merged if re.search(rf"\b{re.escape(f)}\b", str(exc)))
            raise BadInput(f"{exc}" + (f" [{sources}]" if sources else "")) from None
        return merged

    def __getitem__(self, type_name):
        return self.values(type_name)

    def source(self, type_name, field):
        """``"override"``, ``"default"`` or the record (``proposal S001 r2 1a2b3c4d``)."""
        if field in self.overrides.get(type_name, {}):
            return "override"
        return str(self.view[type_name].source(field))

    def describe(self, type_name, field):
        """``type.field = value (from <source>)`` for messages."""
        value = self.values(type_name).get(field)
        return f"{type_name}.{field} = {short_repr(value)} (from {self.source(type_name, field)})"

    @contextlib.contextmanager
    def blame(self, *items):
        """Re-raise a BadInput raised inside with the values and sources of the parameters.

        ``items`` are ``"type.field"`` or ``"type"`` (all its fields). Fields whose names the
        message mentions are described; when none is mentioned, every ``"type.field"`` item is.
        A :class:`~eqegs_repo.errors.BadSample` (a broken file, not a parameter) passes unchanged.
        """
        try:
            yield
        except BadSample:
            raise
        except BadInput as exc:
            named, explicit = [], []
            for item in items:
                type_name, _, field = item.partition(".")
                fields = [field] if field else list(self.values(type_name))
                if field:
                    explicit.append((type_name, field))
                named += [(type_name, f) for f in fields
                          if re.search(rf"(?<![A-Za-z_]){re.escape(f)}(?![A-Za-z_])", str(exc))]
            chosen = list(dict.fromkeys(named or explicit))
            if not chosen:
                raise
            where = "; ".join(self.describe(t, f) for t, f in chosen)
            raise BadInput(f"{exc} [{where}]") from None

    def q_range(self, why=""):
        """``(q_min, q_max)`` in nm⁻¹ of the ``q_range`` type, or BadInput when
        :func:`eqegs_repo.kernels.rules.q_range_problems` finds a problem (an unset end: the message
        says how to set it). ``why``: what the range is needed for, added to the message."""
        values = self.values("q_range")
        problems = rules.q_range_problems(values["q_min"], values["q_max"])
        if problems:
            found = "; ".join(f"{problem} for {self.label}" for problem in problems)
            raise BadInput(f"{found}{why}: seed it, e.g. "
                           f"proposal.spice.seed('q_range', q_min=10.1, q_max=14.1), or pass q_min=... "
                           f"and q_max=... as overrides to cook or export")
        return values["q_min"], values["q_max"]

    def fingerprint_values(self, types):
        """The values of ``types`` that can change a result (export-only fields left out), a
        copy per type (inside a listing the values are shared, so a caller may change its own)."""
        return {type_name: dict(remembered(("fingerprint values", self._view_signature(), type_name,
                                            self._overrides_key(type_name)),
                                           lambda: self._fingerprint_values(type_name)))
                for type_name in types}

    def _fingerprint_values(self, type_name):
        values = self.values(type_name)
        for field in EXPORT_ONLY.get(type_name, ()):
            values.pop(field, None)
        return _plain(values)

    def provenance(self, types):
        """``{type: [{scope, anchor, uuid, revision}, ...]}`` of the records behind ``types``."""
        out = {}
        for type_name in types:
            type_view = self.view[type_name]
            used = {type_view.source(f) for f in type_view} - {DEFAULT}
            out[type_name] = [dict(s._asdict()) for s in sorted(used, key=lambda s: (s.scope, s.uuid))]
        return out

    def overrides_for(self, types):
        """The overrides that apply to ``types`` (plain data)."""
        return _plain({t: v for t, v in self.overrides.items() if t in types})


def digest(payload):
    """SHA-256 hex of a JSON-able payload (sorted keys)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
