"""Exceptions raised by eqegs_repo.

Every error a user can cause derives from :class:`EqegsError`; messages name the file or
parameter, what was expected and what was found.
"""
import difflib


class EqegsError(Exception):
    """Base class of all errors raised by eqegs_repo."""


class BadInput(EqegsError, ValueError):
    """A file, URL, key or parameter does not have the expected form."""


class BadSample(BadInput):
    """A sample folder whose marker or raw files are missing, unreadable or inconsistent."""


class _NotFound(EqegsError):
    """Mixin of the two lookup errors below; the message names the closest existing keys."""

    def __init__(self, what, wanted, candidates):
        self.what = what
        self.wanted = wanted
        self.candidates = list(candidates)
        self.closest = closest_keys(wanted, self.candidates)
        super().__init__(self._message())

    def _message(self):
        text = f"no {self.what} {self.wanted!r}"
        if self.closest:
            text += "; closest: " + ", ".join(repr(c) for c in self.closest)
        elif not self.candidates:
            text += " (there are none)"
        return text

    def __str__(self):  # KeyError would otherwise show the message in quotes
        return self._message()

    def __reduce__(self):
        return type(self), (self.what, self.wanted, self.candidates)


class KeyNotFound(_NotFound, KeyError):
    """Item access (``repo["2025A1234"]``) with a key that does not exist."""


class HandleNotFound(_NotFound, AttributeError):
    """Attribute access (``repo.p2025A1234``) with a handle that does not exist."""


def closest_keys(wanted, candidates, n=3):
    """The up to ``n`` candidates most similar to ``wanted`` (case-insensitive)."""
    by_lower = {}
    for c in candidates:
        by_lower.setdefault(str(c).lower(), c)
    hits = difflib.get_close_matches(str(wanted).lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[h] for h in hits]
