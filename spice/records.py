"""The spice record: one immutable, versioned set of parameter values of one type at one anchor.

A record is stored as one YAML mapping with the keys of :data:`RECORD_KEYS`. This module turns
records into YAML text and back, and checks the structure of anything read (it never trusts a
file: only PyYAML's safe loader is used, sizes and nesting are bounded, every key is typed).
"""
import dataclasses
import datetime as _dt
import numbers
import re
import uuid as _uuid

import yaml

from .errors import SpiceRecordError

FORMAT = "spice/1"
RECORD_KEYS = ("format", "type", "uuid", "revision", "anchor", "created", "author",
               "comment", "parent", "schema_version", "data")
_OPTIONAL_KEYS = {"schema_version"}
MAX_DATA_NODES = 100_000  # values inside one record's data (guards against alias bombs)
MAX_DEPTH = 32
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


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

    @property
    def created_time(self):
        """``created`` as a timezone-aware :class:`datetime.datetime`."""
        return parse_time(self.created)

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
                             f"found {value!r}") from None
    else:
        raise TypeError(f"expected an ISO 8601 time text or datetime, found {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc)


def to_plain(value, where="data"):
    """Convert a value into plain YAML-safe Python (dict/list/str/int/float/bool/None).

    Tuples become lists and numpy scalars and arrays become Python numbers and lists.
    Anything else raises :class:`SpiceRecordError` naming ``where``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpiceRecordError(f"{where}: keys must be text, found {key!r}")
            out[key] = to_plain(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [to_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_plain(value.tolist(), where)
    raise SpiceRecordError(f"{where}: cannot store a value of type {type(value).__name__} "
                           f"({value!r}); use numbers, text, booleans, null, lists or mappings")


def plain_copy(value):
    """A copy of nested lists and dicts (so callers cannot change cached records)."""
    if isinstance(value, list):
        return [plain_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}
    return value


def dump_record(record):
    """The YAML text of a record (UTF-8 ready)."""
    return yaml.dump(record.to_dict(), Dumper=_SafeDumper, sort_keys=False,
                     allow_unicode=True, default_flow_style=None, width=100)


def load_record(text, source="<text>"):
    """Parse YAML text with the safe loader and check it is a spice record.

    Raises :class:`SpiceRecordError` naming ``source`` when the text is not valid YAML, uses
    tags the safe loader refuses (such as ``!!python/object/apply``), or is not a well-formed
    record.
    """
    try:
        mapping = yaml.load(text, Loader=_SafeLoader)  # the C build of yaml.safe_load
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpiceRecordError(f"{source}: not a spice record, YAML refused by the safe loader: "
                               f"{reason}") from None
    return record_from_mapping(mapping, source)


def _require(condition, source, key, expected, found):
    if not condition:
        raise SpiceRecordError(f"{source}: key {key!r} must be {expected}, found {found!r}")


def record_from_mapping(mapping, source="<mapping>"):
    """Check a parsed mapping key by key and build a :class:`Record` from it."""
    if not isinstance(mapping, dict):
        raise SpiceRecordError(f"{source}: not a spice record, expected a YAML mapping with keys "
                               f"{', '.join(RECORD_KEYS)}, found {type(mapping).__name__}")
    fmt = mapping.get("format")
    if fmt != FORMAT:
        raise SpiceRecordError(f"{source}: not a spice record, expected format {FORMAT!r}, "
                               f"found {fmt!r}")
    missing = [key for key in RECORD_KEYS if key not in mapping and key not in _OPTIONAL_KEYS]
    if missing:
        raise SpiceRecordError(f"{source}: spice record lacks key(s) {', '.join(missing)}")
    unknown = [str(key) for key in mapping if key not in RECORD_KEYS]
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
    _require(isinstance(revision, int) and not isinstance(revision, bool) and revision >= 1,
             source, "revision", "an integer >= 1", revision)
    parent = mapping["parent"]
    _require(parent is None or (isinstance(parent, str) and parent), source, "parent",
             "null or a uuid", parent)
    schema_version = mapping.get("schema_version")
    _require(schema_version is None or (isinstance(schema_version, int)
                                        and not isinstance(schema_version, bool)),
             source, "schema_version", "null or an integer", schema_version)
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
        _check_data(data, source)
    return Record(format=FORMAT, type=mapping["type"], uuid=mapping["uuid"], revision=revision,
                  anchor=mapping["anchor"], created=created, author=mapping["author"],
                  comment=mapping["comment"], parent=parent, schema_version=schema_version,
                  data=data)


def _check_data(data, source):
    """Walk the data (counting expanded nodes) and refuse anything not plain YAML data."""
    budget = [MAX_DATA_NODES]

    def walk(value, where, depth):
        budget[0] -= 1
        if budget[0] < 0:
            raise SpiceRecordError(f"{source}: data holds more than {MAX_DATA_NODES} values; "
                                   "refused (too large for a parameter record)")
        if depth > MAX_DEPTH:
            raise SpiceRecordError(f"{source}: {where} is nested deeper than {MAX_DEPTH} levels")
        if value is None or isinstance(value, (bool, int, str)):
            return
        if isinstance(value, float):
            return
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SpiceRecordError(f"{source}: {where} has a non-text key {key!r}")
                walk(item, f"{where}.{key}", depth + 1)
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]", depth + 1)
            return
        raise SpiceRecordError(f"{source}: {where} is a {type(value).__name__} ({value!r}); "
                               "record data may hold numbers, text, booleans, null, lists and "
                               "mappings only")

    walk(data, "data", 0)

