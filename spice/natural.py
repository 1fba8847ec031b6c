"""Natural ordering of keys: ``S2 < S10``, ``r9 < r10``; the default order of a collection.

Keys are compared in Unicode normalisation form NFC (:func:`same_text`): a folder name copied
from macOS (decomposed, NFD) and the same name typed elsewhere (composed, NFC) are one key.
"""
import functools
import re
import unicodedata

_DIGITS = re.compile(r"(\d+)")


def same_text(key):
    """``key`` as the text that comparisons use: its NFC form (``"ゲ"`` typed and ``"ケ\u3099"``
    from a macOS folder name are equal)."""
    return unicodedata.normalize("NFC", str(key))


def natural_key(key):
    """Sort key that compares runs of digits as numbers and the rest case-insensitively.

    >>> sorted(["S10", "S9", "s1"], key=natural_key)
    ['s1', 'S9', 'S10']

    Ties between spellings of one number (``S01`` and ``S1``) are broken by the text (NFC),
    so the order is total and deterministic; NFC and NFD spellings of one key sort equal.
    """
    return _natural_key(same_text(key))


@functools.lru_cache(maxsize=1 << 16)
def _natural_key(text):
    """:func:`natural_key` of an NFC text, worked out once per text (a listing sorts and looks
    up thousands of keys, each more than once)."""
    parts, raw = [], []
    for i, chunk in enumerate(_DIGITS.split(text)):
        if not chunk:
            continue
        parts.append((0, int(chunk)) if i % 2 else (1, chunk.casefold()))
        raw.append(chunk)
    return (tuple(parts), tuple(raw))


def natural_sorted(keys):
    """The keys as a list in natural order."""
    return sorted(keys, key=natural_key)
