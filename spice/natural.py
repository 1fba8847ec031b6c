"""Natural ordering of keys: ``S2 < S10``, ``r9 < r10``; the default order of a collection."""
import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(key):
    """Sort key that compares runs of digits as numbers and the rest case-insensitively.

    >>> sorted(["S10", "S9", "s1"], key=natural_key)
    ['s1', 'S9', 'S10']

    Ties between spellings of one number (``S01`` and ``S1``) are broken by the raw text,
    so the order is total and deterministic.
    """
    parts, raw = [], []
    for i, chunk in enumerate(_DIGITS.split(str(key))):
        if not chunk:
            continue
        parts.append((0, int(chunk)) if i % 2 else (1, chunk.casefold()))
        raw.append(chunk)
    return (tuple(parts), tuple(raw))


def natural_sorted(keys):
    """The keys as a list in natural order."""
    return sorted(keys, key=natural_key)
