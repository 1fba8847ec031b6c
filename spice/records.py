"""The spice record: one immutable, versioned set of parameter values of one type at one anchor.

A record is stored as one YAML mapping with the keys of :data:`RECORD_KEYS`. This module turns
records into YAML text and back, and checks the structure of anything read (it never trusts a
file: only PyYAML's safe loader is used, sizes and nesting are bounded, every key is typed).
"""
import dataclasses
import datetime as _dt
import numbers
import re
import reprlib
import uuid as _uuid

import yaml

from .errors import SpiceRecordError
from .nesting import nesting_depth

FORMAT = "spice/1"
RECORD_KEYS = ("format", "type", "uuid", "revision", "anchor", "created", "author",
               "comment", "parent", "schema_version", "data")
_OPTIONAL_KEYS = {"schema_version"}
MAX_RECORD_BYTES = 1_000_000  # a record file larger than this is never read, nor written
MAX_DATA_NODES = 100_000  # values inside one record's data, aliases expanded
MAX_DEPTH = 32  # nesting levels inside data
MAX_INT_DIGITS = 60  # an integer value has at most this many decimal digits
MAX_REVISION = 999_999_999  # revisions are 1 .. this (file names carry them)
# Whole-document limits checked on the YAML events before anything is built: every value and
# key of a record within the data limits, plus the top-level keys.
MAX_DOCUMENT_NODES = 2 * MAX_DATA_NODES + 64
MAX_DOCUMENT_DEPTH = MAX_DEPTH + 3
# Text whose every possible nesting is this shallow, with no alias and this short, goes straight
# to PyYAML; anything else is first scanned event by event (see _scan_events).
_FAST_DEPTH_BOUND = 100
_FAST_TEXT_CHARS = 65_536
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    """The safe dumper writing shared values out in full (no ``&anchor`` / ``*alias``)."""

    def ignore_aliases(self, data):
        return True


@dataclasses.dataclass(frozen=True)
class Record:
    """One published parameter record.

    Attributes
    ----------
    format : str
        Record format, ``"spice/1"``.
    type : str
        Parameter type, e.g. ``"roi"``.
    uuid : str
        Unique id of this record (UUID4 text).
    revision : int
        1 for the first record of the type at the anchor, +1 for each later one.
    anchor : str
        Key from which on the record applies; ``""`` is the default for every key.
    created : str
        UTC time of writing, ISO 8601 with a ``Z`` suffix.
    author, comment : str
        Who wrote it and why.
    parent : str or None
        uuid of the record this one was derived from (superseded or merged into), or None.
    schema_version : int or None
        Version of the type's schema the data was checked against (None: unregistered type).
    data : dict or None
        Field values; None means the anchor is erased.
    """

    format: str
    type: str
    uuid: str
    revision: int
    anchor: str
    created: str
    author: str
    comment: str
    parent: object
    schema_version: object
    data: object

    @property
    def erased(self):
        """True when this record erases its anchor (``data`` is None)."""
        return self.data is None

    def to_dict(self):
        """The record as a plain mapping in the key order of the file."""
        return {key: getattr(self, key) for key in RECORD_KEYS}

    def __repr__(self):
        state = "erased" if self.erased else dict(self.data)
        return (f"Record({self.type!r} @ {self.anchor!r} r{self.revision}, {self.uuid[:8]}, "
                f"{self.created}, {self.author!r}: {state})")


def new_uuid():
    """A fresh random record id."""
    return str(_uuid.uuid4())


def utc_now():
    """The current UTC time as ISO text with microseconds and a ``Z`` suffix."""
    return _dt.datetime.now(_dt.timezone.utc).strftime(TIME_FORMAT)


def parse_time(value):
    """Turn ISO text (or a datetime) into an aware UTC datetime; naive input is taken as UTC."""
    if isinstance(value, _dt.datetime):
        moment = value
    elif isinstance(value, _dt.date):
        moment = _dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 time such as 2025-06-01T12:00:00Z, "
                             f"found {short_repr(value)}") from None
    else:
        raise TypeError(f"expected an ISO 8601 time text or datetime, found {short_repr(value)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    try:
        return moment.astimezone(_dt.timezone.utc)
    except OverflowError:
        raise ValueError(f"time {short_repr(value)} is outside the years 1 to 9999 "
                         "in UTC") from None


class _ShortRepr(reprlib.Repr):
    """reprlib with small limits that never turns a huge integer into text."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict = 3, 6, 6, 6
        self.maxstring, self.maxother, self.maxlong = 60, 60, 40

    def repr_int(self, value, level):
        if value.bit_length() > 200:  # repr() of > 4300 digits raises; of fewer is long anyway
            return f"<integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
        return super().repr_int(value, level)

    def repr_str(self, value, level):
        text = super().repr_str(value, level)
        return text if len(value) <= self.maxstring else f"{text} ({len(value)} characters)"


_short = _ShortRepr()


def short_repr(value):
    """``repr(value)`` cut to about 60 characters (a cut text says its length); nested values
    abbreviated with ``...``.

    Used in every message about a value, so that a hostile or huge value never expands into
    the message.
    """
    return _short.repr(value)


def plain_data(value, where="data", *, convert=False):
    """Check (and with ``convert`` make) plain record data: the one rule for reading and writing.

    Plain data is None, booleans, text, integers of at most :data:`MAX_INT_DIGITS` digits,
    floats, lists and mappings with text keys, at most :data:`MAX_DATA_NODES` values and
    :data:`MAX_DEPTH` levels. With ``convert=True`` tuples become lists and numpy scalars and
    arrays Python numbers and lists (a new value is returned); otherwise ``value`` itself is
    returned. Raises :class:`SpiceRecordError` naming ``where`` (``data.x[3]``).
    """
    budget = [MAX_DATA_NODES]
    int_limit = 10 ** MAX_INT_DIGITS

    def walk(item, place, depth):
        budget[0] -= 1
        if budget[0] < 0:
            raise SpiceRecordError(f"{where} holds more than {MAX_DATA_NODES} values; "
                                   "refused (too large for a parameter record)")
        if depth > MAX_DEPTH:
            raise SpiceRecordError(f"{place} is nested deeper than {MAX_DEPTH} levels")
        if item is None or type(item) in (bool, str, float):
            return item
        if isinstance(item, (str, float)):  # subclasses, e.g. numpy.float64: exact types
            return (str(item) if isinstance(item, str) else float(item)) if convert else item
        if isinstance(item, int) or (convert and isinstance(item, numbers.Integral)):
            if not -int_limit < item < int_limit:
                raise SpiceRecordError(f"{place} = {short_repr(int(item))} has more than "
                                       f"{MAX_INT_DIGITS} digits; refused")
            return int(item) if convert else item
        if convert and isinstance(item, numbers.Real):
            return float(item)
        if isinstance(item, dict):
            out = {} if convert else item
            for key, element in item.items():
                if not isinstance(key, str):
                    raise SpiceRecordError(f"{place} has a non-text key {short_repr(key)}")
                checked = walk(element, f"{place}.{key}", depth + 1)
                if convert:
                    out[key] = checked
            return out
        if isinstance(item, list) or (convert and isinstance(item, tuple)):
            checked = [walk(element, f"{place}[{i}]", depth + 1)
                       for i, element in enumerate(item)]
            return checked if convert else item
        if convert and hasattr(item, "tolist"):  # numpy arrays and scalars
            budget[0] += 1
            return walk(item.tolist(), place, depth)
        raise SpiceRecordError(f"{place} is a {type(item).__name__} ({short_repr(item)}); "
                               "record data may hold numbers, text, booleans, null, lists and "
                               "mappings only")

    return walk(value, where, 0)


def plain_copy(value):
    """A copy of nested lists and dicts (so callers cannot change cached records)."""
    if isinstance(value, list):
        return [plain_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}
    return value


def dump_record(record):
    """The YAML text of a record (UTF-8 ready)."""
    return yaml.dump(record.to_dict(), Dumper=_Dumper, sort_keys=False,
                     allow_unicode=True, default_flow_style=None, width=100)


def load_record(text, source="<text>"):
    """Parse YAML text with the safe loader and check it is a spice record.

    Raises :class:`SpiceRecordError` naming ``source`` when the text is not valid YAML, uses
    tags the safe loader refuses (such as ``!!python/object/apply``), would expand (through
    aliases) beyond the size and nesting limits, holds a value PyYAML cannot build (an integer
    of more than 4,300 digits, a date such as 2025-13-45), or is not a well-formed record.
    Limits are checked on the parser's events before any value is built, so an alias bomb
    costs no memory and no time.
    """
    return record_from_mapping(_parse(text, source), source)


def _yaml_reason(exc):
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    first = first.split("; use sys.set_int_max_str_digits")[0]  # advice for programmers only
    return first if len(first) <= 200 else first[:199] + "…"


def _may_be_deep_or_aliased(text):
    """False when the text certainly has no alias, is short, and nests at most a hundred
    levels (every level needs one of ``[ { - : ?``): then PyYAML may build it directly."""
    if len(text) > _FAST_TEXT_CHARS or "*" in text:
        return True
    return sum(text.count(c) for c in "[{-:?") > _FAST_DEPTH_BOUND


def _too_deep(source):
    return SpiceRecordError(f"{source}: not a spice record, nested deeper than "
                            f"{MAX_DOCUMENT_DEPTH} levels; refused before reading")


def _scan_events(text, source):
    """Walk the parser's events, counting nodes and characters with aliases expanded.

    Raises SpiceRecordError as soon as the document would exceed :data:`MAX_DOCUMENT_NODES`
    values, :data:`MAX_RECORD_BYTES` characters of text or :data:`MAX_DOCUMENT_DEPTH` levels,
    or uses an alias inside its own anchor. Nothing is built; the scan stops at the first
    excess, so its cost is bounded whatever the file holds.
    """
    nodes = chars = 0
    anchors = {}  # anchor -> (nodes, chars, height) of its value
    frames = []  # open collections: [anchor, nodes at start, chars at start, height below]

    def reached(height):
        if len(frames) + height > MAX_DOCUMENT_DEPTH:
            raise _too_deep(source)
        if frames:
            frames[-1][3] = max(frames[-1][3], height + 1)

    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise SpiceRecordError(f"{source}: not a spice record, alias "
                                       f"*{short_repr(event.anchor)[1:-1]} refers to no "
                                       "complete anchor (a recursive or undefined alias)")
            n, c, height = anchors[event.anchor]
            nodes, chars = nodes + n, chars + c
            reached(height)
        elif isinstance(event, yaml.ScalarEvent):
            nodes, chars = nodes + 1, chars + len(event.value)
            reached(0)
            if event.anchor is not None:
                anchors[event.anchor] = (1, len(event.value), 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            nodes += 1
            reached(0)
            frames.append([event.anchor, nodes, chars, 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, nodes_before, chars_before, height = frames.pop()
            reached(height)
            if anchor is not None:
                anchors[anchor] = (nodes - nodes_before + 1, chars - chars_before, height)
        if nodes > MAX_DOCUMENT_NODES or chars > MAX_RECORD_BYTES:
            what = (f"more than {MAX_DOCUMENT_NODES} values" if nodes > MAX_DOCUMENT_NODES
                    else f"more than {MAX_RECORD_BYTES} characters of text")
            raise SpiceRecordError(f"{source}: not a spice record, it would expand (through "
                                   f"aliases) to {what}; refused before reading")


def _parse(text, source):
    """The top-level YAML value of a record text, built only after the limits were checked."""
    loader = None
    try:
        if _may_be_deep_or_aliased(text):
            if nesting_depth(text, limit=MAX_DOCUMENT_DEPTH) > MAX_DOCUMENT_DEPTH:
                raise _too_deep(source)  # before libyaml, which may refuse it in its own words
            _scan_events(text, source)
        loader = _SafeLoader(text)
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            return None if node is None else loader.construct_document(node)
        mapping = {}
        for key_node, value_node in node.value:
            if not (isinstance(key_node, yaml.ScalarNode)
                    and key_node.tag == "tag:yaml.org,2002:str"):
                raise SpiceRecordError(f"{source}: not a spice record, top-level keys must be "
                                       f"text, found {short_repr(key_node.value)}")
            key = key_node.value
            try:
                mapping[key] = loader.construct_object(value_node, deep=True)
            except (yaml.YAMLError, ValueError, ArithmeticError, TypeError,
                    RecursionError) as exc:
                raise SpiceRecordError(f"{source}: key {short_repr(key)}: value refused by "
                                       f"the safe loader: {_yaml_reason(exc)}") from None
        return mapping
    except yaml.YAMLError as exc:
        raise SpiceRecordError(f"{source}: not a spice record, YAML refused by the safe loader: "
                               f"{_yaml_reason(exc)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _require(condition, source, key, expected, found):
    if not condition:
        raise SpiceRecordError(f"{source}: key {key!r} must be {expected}, "
                               f"found {short_repr(found)}")


def record_from_mapping(mapping, source="<mapping>"):
    """Check a parsed mapping key by key and build a :class:`Record` from it."""
    if not isinstance(mapping, dict):
        raise SpiceRecordError(f"{source}: not a spice record, expected a YAML mapping with keys "
                               f"{', '.join(RECORD_KEYS)}, found {type(mapping).__name__}")
    fmt = mapping.get("format")
    if fmt != FORMAT:
        raise SpiceRecordError(f"{source}: not a spice record, expected format {FORMAT!r}, "
                               f"found {short_repr(fmt)}")
    missing = [key for key in RECORD_KEYS if key not in mapping and key not in _OPTIONAL_KEYS]
    if missing:
        raise SpiceRecordError(f"{source}: spice record lacks key(s) {', '.join(missing)}")
    unknown = [short_repr(key) for key in mapping if key not in RECORD_KEYS]
    if unknown:
        raise SpiceRecordError(f"{source}: unknown key(s) {', '.join(unknown)} in a {FORMAT} "
                               f"record (allowed: {', '.join(RECORD_KEYS)})")
    for key in ("type", "uuid"):
        value = mapping[key]
        _require(isinstance(value, str) and value.strip() != "", source, key,
                 "non-empty text", value)
    for key in ("anchor", "author", "comment"):
        _require(isinstance(mapping[key], str), source, key, "text", mapping[key])
    revision = mapping["revision"]
    _require(isinstance(revision, int) and not isinstance(revision, bool)
             and 1 <= revision <= MAX_REVISION,
             source, "revision", f"an integer from 1 to {MAX_REVISION}", revision)
    parent = mapping["parent"]
    _require(parent is None or (isinstance(parent, str) and parent), source, "parent",
             "null or a uuid", parent)
    schema_version = mapping.get("schema_version")
    _require(schema_version is None or (isinstance(schema_version, int)
                                        and not isinstance(schema_version, bool)
                                        and 0 <= schema_version <= MAX_REVISION),
             source, "schema_version", f"null or an integer from 0 to {MAX_REVISION}",
             schema_version)
    created = mapping["created"]
    if not (isinstance(created, str) and _CANONICAL_TIME.fullmatch(created)):
        try:
            created = parse_time(created).strftime(TIME_FORMAT)
        except (TypeError, ValueError) as exc:
            raise SpiceRecordError(f"{source}: key 'created' {exc}") from None
    data = mapping["data"]
    _require(data is None or isinstance(data, dict), source, "data",
             "a mapping of field values or null (erase)", type(data).__name__)
    if data is not None:
        plain_data(data, f"{source}: data")
    return Record(format=FORMAT, type=mapping["type"], uuid=mapping["uuid"], revision=revision,
                  anchor=mapping["anchor"], created=created, author=mapping["author"],
                  comment=mapping["comment"], parent=parent, schema_version=schema_version,
                  data=data)
