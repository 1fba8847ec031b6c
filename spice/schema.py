"""Schemas of parameter types: fields with kinds, units, ranges, choices and defaults.

A :class:`Registry` holds the schemas a collection knows. Writing a record of a registered type
checks every value and refuses a bad one with a message naming the field, the value and the
allowed range. Cross-field rules are plain module-level functions ``check(data) -> [messages]``
(module-level so that registries pickle).
"""
import dataclasses
import difflib
import math
import re
from typing import Any, Callable, Optional, Tuple

from .errors import SpiceLookupError, SpiceValidationError
from .records import MAX_INT_DIGITS, plain_copy, short_repr

KINDS = ("int", "float", "bool", "str", "enum", "list", "mapping", "any")


def _bound_text(value):
    """A range bound as text: whole numbers below 10^15 in full (``16777216``), others as %g."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a parameter type.

    Parameters
    ----------
    name : str
        Field name (the key in record data).
    kind : str
        One of ``int, float, bool, str, enum, list, mapping, any``.
    unit : str
        Physical unit ("" for none), shown in tables and docs.
    default : object
        Built-in default; None with ``required=True`` means "must be set before use".
    doc : str
        One line explaining the field.
    minimum, maximum : float, optional
        Allowed range for ``int``/``float`` (and for list items through ``item``).
    min_exclusive, max_exclusive : bool
        Make the corresponding bound strict.
    choices : tuple, optional
        Allowed values of an ``enum``.
    nullable : bool
        Whether null (None) is allowed.
    pattern : str, optional
        Regular expression a ``str`` must match in full.
    length : int, optional
        Exact length of a ``list``.
    item : Field, optional
        Schema of each element of a ``list`` (its name is ignored).
    odd : bool
        For ``int``: the value must be odd.
    required : bool
        The field has no usable default; a resolved view lists it as missing while it is None.
    """

    name: str
    kind: str
    unit: str = ""
    default: Any = None
    doc: str = ""
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: Optional[Tuple] = None
    nullable: bool = False
    pattern: Optional[str] = None
    length: Optional[int] = None
    item: Optional["Field"] = None
    odd: bool = False
    required: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: kind must be one of {KINDS}, "
                             f"found {self.kind!r}")
        if self.kind == "enum" and not self.choices:
            raise ValueError(f"field {self.name!r}: an enum needs choices")

    def describe(self):
        """Human-readable allowed values, e.g. ``"integer >= 0"`` or ``"one of sum, tile"``."""
        if self.kind == "enum":
            text = "one of " + ", ".join(str(c) for c in self.choices)
        elif self.kind in ("int", "float"):
            text = "integer" if self.kind == "int" else "number"
            if self.odd:
                text = "odd " + text
            bounds = []
            if self.minimum is not None:
                bounds.append((">" if self.min_exclusive else ">=") + f" {_bound_text(self.minimum)}")
            if self.maximum is not None:
                bounds.append(("<" if self.max_exclusive else "<=") + f" {_bound_text(self.maximum)}")
            if bounds:
                text += " " + " and ".join(bounds)
        elif self.kind == "str":
            text = "text"
            if self.pattern is not None:
                text += f" matching {self.pattern}"
        elif self.kind == "list":
            text = "list"
            if self.length is not None:
                text += f" of {self.length}"
            if self.item is not None:
                text += f" of ({self.item.describe()})"
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "mapping":
            text = "mapping of text keys"
        else:
            text = "any value"
        if self.nullable:
            text += ", or null"
        return text

    def check(self, value, where):
        """Return the value normalised to the field's kind, or raise SpiceValidationError."""
        if value is None:
            if self.nullable:
                return None
            self._refuse(where, value)
        kind = self.kind
        if kind == "any":
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                self._refuse(where, value)
            return value
        if kind in ("int", "float"):
            return self._check_number(value, where)
        if kind == "str":
            if not isinstance(value, str):
                self._refuse(where, value)
            if self.pattern is not None and not re.fullmatch(self.pattern, value):
                self._refuse(where, value)
            return value
        if kind == "enum":
            if not any(value == choice and type(value) is type(choice)
                       for choice in self.choices):
                self._refuse(where, value)
            return value
        if kind == "mapping":
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                self._refuse(where, value)
            return dict(value)
        # list
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            self._refuse(where, value)
        if self.length is not None and len(value) != self.length:
            raise SpiceValidationError(f"{where} = {short_repr(value)} has {len(value)} "
                                       "element(s); "
                                       f"allowed: {self.describe()}")
        if self.item is None:
            return list(value)
        return [self.item.check(element, f"{where}[{i}]") for i, element in enumerate(value)]

    def _check_number(self, value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
                return self._check_number(value.item(), where)  # numpy scalar
            self._refuse(where, value)
        if self.kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    self._refuse(where, value)
                value = int(value)
            if not -10 ** MAX_INT_DIGITS < value < 10 ** MAX_INT_DIGITS:
                self._refuse(where, value, f" (integers have at most {MAX_INT_DIGITS} digits)")
            if self.odd and value % 2 == 0:
                self._refuse(where, value)
        else:
            try:
                value = float(value)
            except OverflowError:
                self._refuse(where, value, " (too large for a floating-point number)")
            if not math.isfinite(value):  # NaN and +-inf are never a parameter value
                self._refuse(where, value)
        low, high = self.minimum, self.maximum
        if low is not None and (value < low or (self.min_exclusive and value == low)):
            self._refuse(where, value)
        if high is not None and (value > high or (self.max_exclusive and value == high)):
            self._refuse(where, value)
        return value

    def _refuse(self, where, value, why=""):
        unit = f" ({self.unit})" if self.unit else ""
        raise SpiceValidationError(f"{where} = {short_repr(value)} is not allowed{why}; allowed: "
                                   f"{self.describe()}{unit}")


@dataclasses.dataclass(frozen=True)
class TypeSchema:
    """The schema of one parameter type.

    Parameters
    ----------
    name : str
        Type name used in records (``"roi"``).
    version : int
        Schema version stored in every record written against it.
    fields : tuple of Field
        The known fields, in display order.
    doc : str
        What the type is for.
    extra_fields : bool
        Whether records may hold fields the schema does not list (kept unchecked).
    checks : tuple of callables
        Cross-field rules ``check(data) -> list of messages``; ``data`` holds only the fields
        present, so a rule must skip when its fields are absent.
    """

    name: str
    version: int
    fields: Tuple[Field, ...]
    doc: str = ""
    extra_fields: bool = False
    checks: Tuple[Callable, ...] = ()

    def field(self, name):
        """The :class:`Field` called ``name`` (SpiceLookupError naming close names otherwise)."""
        for field in self.fields:
            if field.name == name:
                return field
        raise SpiceLookupError(unknown_name_message(f"field of type {self.name!r}", name,
                                                    [f.name for f in self.fields]))

    def validate(self, data):
        """Check and normalise ``data`` (a mapping of the fields present); return a new dict.

        A ``schema_version`` key equal to this schema's version is accepted and dropped (the
        record carries it); another version is refused.

        Raises SpiceValidationError naming the type, the field, the value and the allowed values.
        """
        known = {field.name: field for field in self.fields}
        out = {}
        data = dict(data)
        version = data.pop("schema_version", self.version)  # kept in the record, not in data
        if version != self.version:
            raise SpiceValidationError(f"{self.name}: data written for schema version "
                                       f"{short_repr(version)}; this is version {self.version}")
        for name, value in data.items():
            if name in known:
                out[name] = known[name].check(value, f"{self.name}.{name}")
            elif self.extra_fields:
                out[name] = value
            else:
                raise SpiceValidationError(unknown_name_message(
                    f"field of type {self.name!r}", name, list(known)))
        messages = [message for check in self.checks for message in check(out)]
        if messages:
            raise SpiceValidationError(f"{self.name}: " + "; ".join(messages))
        return out

    def defaults(self):
        """``{field: default}`` for every field."""
        return {field.name: plain_copy(field.default) for field in self.fields}

    def units(self):
        """``{field: unit}`` for every field."""
        return {field.name: field.unit for field in self.fields}


def unknown_name_message(what, name, known):
    """``unknown <what> 'x'; closest: a, b (known: ...)`` for lookup errors."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=3, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    listing = ", ".join(str(k) for k in known) if len(known) <= 30 else f"{len(known)} names"
    return f"unknown {what} {short_repr(name)}{hint} (known: {listing or 'none'})"


class Registry:
    """The parameter types a collection knows.

    Parameters
    ----------
    schemas : iterable of TypeSchema
    strict : bool
        If True, records of unregistered types are refused on write and skipped (and reported)
        on read. If False, unregistered types are stored and read without checks.
    """

    def __init__(self, schemas=(), *, strict=True):
        self.strict = strict
        self._schemas = {}
        for schema in schemas:
            self.register(schema)

    def register(self, schema):
        """Add a schema (a name may be registered once)."""
        if schema.name in self._schemas:
            raise ValueError(f"type {schema.name!r} is already registered")
        self._schemas[schema.name] = schema

    def __contains__(self, name):
        return name in self._schemas

    def __iter__(self):
        return iter(self._schemas)

    def __len__(self):
        return len(self._schemas)

    def get(self, name):
        """The schema of ``name`` or None."""
        return self._schemas.get(name)

    def __getitem__(self, name):
        try:
            return self._schemas[name]
        except KeyError:
            raise SpiceLookupError(unknown_name_message("parameter type", name,
                                                        list(self._schemas))) from None

    def check_type(self, name):
        """Raise SpiceValidationError when a strict registry does not know ``name``."""
        if self.strict and name not in self._schemas:
            raise SpiceValidationError(unknown_name_message("parameter type", name,
                                                            list(self._schemas)))

    def validate(self, name, data):
        """Validate data of type ``name``; unregistered types pass unchanged when not strict."""
        self.check_type(name)
        schema = self._schemas.get(name)
        return dict(data) if schema is None else schema.validate(data)

    def defaults(self):
        """``{type: {field: default}}`` for every registered type."""
        return {name: schema.defaults() for name, schema in self._schemas.items()}

    def units(self):
        """``{type: {field: unit}}`` for every registered type."""
        return {name: schema.units() for name, schema in self._schemas.items()}

    def __repr__(self):
        return f"Registry({', '.join(self._schemas)}; strict={self.strict})"
