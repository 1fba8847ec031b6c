"""Versioned, append-only parameter records ("spice"); knows nothing of E-QEGS.

A :class:`Collection` holds records ``{format, type, uuid, revision, anchor, created, author,
comment, parent, schema_version, data}`` of one scope in a :mod:`store <spice.store>` (one YAML
file per record). A :class:`ResolvedView` gives the effective values at a key, layered over
registry defaults, and tells which record every value came from.

The package exports what users call: collections, views, records, schemas, stores and errors
(plus the tables they return). Internals (``spice.index.RecordIndex``,
``spice.index.Resolution``, ``spice.store.canonical_name``, ...) are reached through their
modules.

>>> import spice
>>> c = spice.Collection("memory://spice-doctest")
>>> _ = c.seed("roi", "", x0=1, x1=5)
>>> _ = c.update("roi", "S10", x1=7)
>>> c.view("S9").roi.x1, c.view("S10").roi.x1
(5, 7)
"""
from .collection import Collection, StoreProblem
from .diff import Change, Diff
from .display import RecordList
from .errors import (
                     SpiceConflict,
                     SpiceError,
                     SpiceLookupError,
                     SpiceRecordError,
                     SpiceStoreError,
                     SpiceValidationError,
                     SpiceWarning,
)
from .natural import natural_key, natural_sorted
from .records import Record, dump_record, load_record
from .schema import Field, Registry, TypeSchema
from .store import FsspecStore, LocalStore, MemoryStore, Store, open_store
from .view import DEFAULT, ResolvedView, Source, TypeView

__all__ = [
    # collections and views
    "Collection", "ResolvedView", "TypeView", "Source", "DEFAULT", "natural_key",
    "natural_sorted",
    # records and schemas
    "Record", "dump_record", "load_record", "Field", "Registry", "TypeSchema",
    # stores
    "Store", "LocalStore", "MemoryStore", "FsspecStore", "open_store",
    # what reads and writes return
    "StoreProblem", "RecordList", "Diff", "Change",
    # errors and warnings
    "SpiceError", "SpiceConflict", "SpiceValidationError", "SpiceRecordError",
    "SpiceLookupError", "SpiceStoreError", "SpiceWarning",
]
