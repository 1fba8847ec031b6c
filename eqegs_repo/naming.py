"""Keys (names on disk) and handles (Python identifiers for tab completion).

Rules (documented in docs/layout.md):

* natural order (:func:`spice.natural.natural_key`, the order spice anchors use too):
  ``S2 < S10`` — digit runs compare as numbers, the rest case-insensitively;
* a handle is the key with every character outside ``[0-9A-Za-z_]`` replaced by ``_``;
  it gets the prefix (``p`` for proposals, ``s`` for samples) when it does not start with a
  letter, and ``<prefix>_`` when it is a Python keyword or a name the object already uses
  (``all``, ``spice``, ``table``...), so a key never hides a method;
* keys whose handles collide are taken in natural order: the first keeps the handle, the next
  ones get ``_2``, ``_3``... (skipping handles that are already taken);
* keys are compared in Unicode normalisation form NFC (:func:`spice.natural.same_text`): a
  folder ``ゲル002`` copied from macOS (NFD) is found, selected and given spice records as
  ``ゲル002`` typed (NFC); the folder's own name is kept as the key and for its paths;
* a folder name that is not text in the file system's encoding (a UTF-8 name under
  ``LC_ALL=C PYTHONUTF8=0``: Python holds its bytes as lone surrogates) is not a usable key.
"""
import keyword
import re
import sys

from spice.natural import natural_key, natural_sorted, same_text  # noqa: F401 - the one order and comparison of listings and spice anchors, used as naming.natural_key too

_INVALID = re.compile(r"[^0-9A-Za-z_]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # the bytes of a name that is not text in the file system's encoding


def key_problem(key):
    """Why ``key`` cannot be a key (empty, ``/``, ``\\``, ``..``, a leading dot, or bytes that are
    not text in the file system's encoding), or ""."""
    if not isinstance(key, str) or not key:
        return "it must be a non-empty string"
    if "/" in key or "\\" in key or ".." in key or key.startswith("."):
        return "it must not contain '/', '\\' or '..' nor start with '.'"
    if _SURROGATE.search(key):
        return (f"its name is not text in the file system's encoding ({sys.getfilesystemencoding()}); "
                "run under a UTF-8 locale (LC_ALL=C.UTF-8) or with PYTHONUTF8=1")
    return ""


def shown_name(name):
    """A folder name as text for messages: bytes that are not text in the file system's
    encoding are read as UTF-8 (``\\x..`` where even that fails)."""
    if not _SURROGATE.search(name):
        return name
    return name.encode(sys.getfilesystemencoding(), "surrogateescape").decode("utf-8", "backslashreplace")


def find_key(key, keys):
    """The one of ``keys`` equal to ``key`` in NFC (``key`` itself when present), or None."""
    if key in keys:
        return key
    wanted = same_text(key)
    return next((k for k in keys if same_text(k) == wanted), None)


def check_key(key, what):
    """Refuse keys that could leave their folder: empty, ``/``, ``\\``, ``..`` or a leading dot.

    Returns the key; raises :class:`~eqegs_repo.errors.BadInput` naming ``what``.
    """
    from eqegs_repo.errors import BadInput

    problem = key_problem(key)
    if problem:
        raise BadInput(f"{what} key {key!r} is not a folder name: {problem}")
    return key


def handles_for(keys, prefix, reserved=()):
    """Map keys to unique identifiers (see the module docstring for the rules).

    ``keys``: iterable of str; ``prefix``: ``"p"`` or ``"s"``; ``reserved``: names that a
    handle must not take (the attributes of the class that exposes the handles).
    Returns dict key -> handle in natural order of the keys.
    """
    reserved = set(reserved)
    taken = set()
    out = {}
    for key in natural_sorted(keys):
        base = _INVALID.sub("_", key)
        if not base[:1].isalpha():
            base = prefix + base
        elif keyword.iskeyword(base) or base in reserved:
            base = f"{prefix}_{base}"
        handle, n = base, 1
        while handle in taken or handle in reserved:
            n += 1
            handle = f"{base}_{n}"
        taken.add(handle)
        out[key] = handle
    return out


class ShowsPublic(type):
    """Metaclass of the navigation classes: ``dir()`` of the class lists its ``_public`` names
    (the calls of a user) and the underscore names, not the internals (``fs``, ``layout``...),
    so that tab completion, which also reads the class's ``dir()``, offers what a user calls.
    Every attribute stays reachable by name."""

    def __dir__(cls):
        return sorted(set(cls._public) | {name for name in type.__dir__(cls) if name.startswith("_")})
