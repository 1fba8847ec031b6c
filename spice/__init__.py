"""Versioned, append-only parameter records ("spice"); knows nothing of E-QEGS.

A :class:`Collection` holds records ``{format, type, uuid, revision, anchor, created, author,
comment, parent, schema_version, data}`` of one scope in a :mod:`store <spice.store>` (one YAML
file per record). A :class:`ResolvedView` gives the effective values at a key, layered over
registry defaults, and tells which record every value came from.

>>> import spice
>>> c = spice.Collection("memory://spice-doctest")
>>> _ = c.seed("roi", "", x0=1, x1=5)
>>> _ = c.update("roi", "S10", x1=7)
>>> c.view("S9").roi.x1, c.view("S10").roi.x1
(5, 7)
"""
from .collection import Collection, StoreProblem, default_author
from .diff import Change, Diff, diff_records, diff_views
from .display import RecordList
from .errors import (SpiceConflict, SpiceError, SpiceLookupError, SpiceRecordError,
                     SpiceValidationError, SpiceWarning)
from .index import DEFAULT_ANCHOR, RecordIndex, Resolution
from .natural import natural_key, natural_sorted
from .records import FORMAT, Record, dump_record, load_record
from .schema import Field, Registry, TypeSchema
from .store import FsspecStore, LocalStore, MemoryStore, Store, canonical_name, open_store
from .view import DEFAULT, ResolvedView, Source, TypeView

__all__ = [
    "Collection", "StoreProblem", "default_author", "Change", "Diff", "diff_records",
    "diff_views", "RecordList", "SpiceConflict", "SpiceError", "SpiceLookupError",
    "SpiceRecordError", "SpiceValidationError", "SpiceWarning", "DEFAULT_ANCHOR", "RecordIndex",
    "Resolution", "natural_key", "natural_sorted", "FORMAT", "Record", "dump_record",
    "load_record", "Field", "Registry", "TypeSchema", "FsspecStore", "LocalStore", "MemoryStore",
    "Store", "canonical_name", "open_store", "DEFAULT", "ResolvedView", "Source", "TypeView",
]
