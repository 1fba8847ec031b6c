"""Exceptions raised by spice.

Every error names what was being read or written, what was expected and what was found.
"""


class SpiceError(Exception):
    """Base class of all spice errors."""


class SpiceConflict(SpiceError):
    """Two records compete for one place.

    Raised on read when two records share the top revision at one anchor, and on write when
    another writer published the revision this writer was about to publish.

    Attributes
    ----------
    type, anchor : str
        Where the conflict is.
    uuids : list of str
        The uuids of the competing records (on write: the record that won, when known).
    """

    def __init__(self, message, *, type=None, anchor=None, uuids=()):
        super().__init__(message)
        self.type = type
        self.anchor = anchor
        self.uuids = list(uuids)


class SpiceValidationError(SpiceError, ValueError):
    """A value does not fit the schema of its type (field, value and allowed range are named)."""


class SpiceRecordError(SpiceError, ValueError):
    """A file or mapping is not a well-formed spice record (the path and the reason are named)."""


class SpiceLookupError(SpiceError, KeyError, AttributeError):
    """An unknown type, field or uuid was asked for; the message lists the closest names."""

    def __str__(self):  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class SpiceStoreError(SpiceError, OSError):
    """A record file could not be written (read-only folder, name or path too long, ...); the
    message names the file and the reason."""


class SpiceWarning(UserWarning):
    """A file in a store was skipped (unreadable, foreign, hostile or invalid)."""
