"""The repository configuration: ``eqegs.yaml`` in the folder that holds the proposal folders.

One small YAML mapping shared by everyone who opens the tree -- ``Repository(...)`` in Python
and every ``eqegs`` command -- so that they all use the same cache (docs/configuration.md)::

    # eqegs.yaml: settings of this E-QEGS tree
    cache_url: ../../../cache    # cooked results; relative to this file's folder, a path or URL
    spice_url: null               # spice records; null: the .spice/ folders of the tree

:data:`SETTINGS` lists the keys, what each means and how its value is checked; a key not in it
is an error naming the closest known key (a typo never passes silently), and so is a key given
twice. The file lives in the data tree, so it is read as untrusted input: only a regular file of
at most :data:`MAX_FILE_BYTES` is read, nested at most :data:`MAX_NESTING` levels, with PyYAML's
safe loader and no aliases (``*name``: refused before anything is expanded), a folder the
library writes into (the cache, the spice records) must be one of its own
(:func:`folder_of_its_own`), and a URL reaching another machine (``http://``, ``ftp://``,
``s3://`` ...) is refused unless ``$EQEGS_ALLOW_REMOTE_URLS=1`` (:func:`remote_allowed`). An argument given to ``Repository`` wins over the file; without
either, the built-in default applies (``$EQEGS_CACHE_DIR`` or ``~/.cache/eqegs_repo`` for the
cache, the tree's ``.spice/`` folders for spice).
"""
import os
import posixpath
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import fsspec
import yaml

from eqegs_repo.errors import BadInput, closest_keys
from eqegs_repo.io.layout import check_regular_file, read_at_most
from spice.nesting import nesting_depth
from spice.records import short_repr

FILE_NAME = "eqegs.yaml"
MAX_FILE_BYTES = 64 * 1024
"""A larger eqegs.yaml is refused before it is read (the file holds a few lines)."""
MAX_NESTING = 16
"""Nesting levels of collections in eqegs.yaml beyond which it is refused before parsing."""
LOCAL_PROTOCOLS = ("file", "local", "memory")
"""Protocols of a URL in eqegs.yaml that reach no other machine; any other (``http``, ``ftp``,
``s3``, ``sftp`` ...) is refused unless :data:`ALLOW_REMOTE` allows it."""
ALLOW_REMOTE = "EQEGS_ALLOW_REMOTE_URLS"
"""The environment variable that lets ``cache_url``/``spice_url`` of eqegs.yaml name a URL of
another machine (``EQEGS_ALLOW_REMOTE_URLS=1``)."""
SYSTEM_FOLDERS = ("bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "proc", "run", "sbin",
                  "sys", "usr")
"""Top-level folders of the operating system: nothing inside them is a cache or spice folder."""

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _one_line(exc):
    """The message of a YAML error on one line, at most 200 characters (Python's advice on its
    integer digit limit, meant for programmers, left out)."""
    text = " ".join(str(exc).split()).split("; use sys.set_int_max_str_digits")[0]
    text = text or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _why_not_its_own(path):
    """Why the local folder ``path`` (absolute, normalised) is not a folder of its own, or None."""
    parts = [part for part in re.split(r"[\\/]", os.path.splitdrive(path)[1]) if part]
    if not parts:
        return "the root of a filesystem"
    if len(parts) == 1:
        return "a folder directly under the root of a filesystem"
    if parts[0] in SYSTEM_FOLDERS:
        return f"inside the system folder /{parts[0]}"
    home = os.path.expanduser("~")
    if path in (os.path.normpath(home), os.path.realpath(home)):
        return "the home folder itself"
    return None


def folder_of_its_own(location, where, written=None):
    """``location`` (a resolved path or URL; ``written``: as the user wrote it, for the message)
    when the library may create folders in it.

    The rule, for local folders (links resolved; other filesystems are not checked): not the root
    of a filesystem (``/``, ``C:\\``), not a folder directly under a root (``/tmp``, ``/home``),
    not the user's home folder itself, and nothing inside the system folders
    (:data:`SYSTEM_FOLDERS`: ``/bin``, ``/etc``, ``/usr`` ...). Raises BadInput naming ``where``.
    """
    protocol, path = fsspec.core.split_protocol(location)
    if protocol not in (None, "file", "local"):
        return location
    written = written or location
    for spelled in dict.fromkeys((os.path.normpath(path), os.path.realpath(path))):
        reason = _why_not_its_own(spelled)
        if reason:
            raise BadInput(
                f"{where}: expected a folder of its own, found {short_repr(written)}"
                f"{'' if spelled == written else f' ({spelled})'}, {reason}; refused: a "
                "filesystem root, a folder directly under one, the home folder itself, and "
                f"anything inside {', '.join('/' + name for name in SYSTEM_FOLDERS)}")
    return location


def remote_allowed():
    """Whether URLs of other machines may come from eqegs.yaml (:data:`ALLOW_REMOTE` is ``1``,
    ``true`` or ``yes``)."""
    return os.environ.get(ALLOW_REMOTE, "").strip().lower() in ("1", "true", "yes")


def _check_remote(value, where):
    """Refuse a URL written in eqegs.yaml that names a protocol reaching another machine
    (every part of a chained ``a::b`` URL counts), unless :func:`remote_allowed`: a file in the
    data tree must not make every command that opens the tree connect to a host of its choice."""
    remote = [protocol for protocol in (fsspec.core.split_protocol(part)[0] for part in value.split("::"))
              if protocol is not None and protocol not in LOCAL_PROTOCOLS]
    if remote and not remote_allowed():
        raise BadInput(f"{where}: expected a local folder (a path, absolute or relative to the file's "
                       f"folder), found {short_repr(value)}, a URL of the protocol {remote[0]}, which "
                       "reaches another machine; a URL in the tree's settings file is refused unless "
                       f"you allow it with {ALLOW_REMOTE}=1 (or give it yourself: --cache-url, "
                       "--spice-url, Repository(cache_url=..., spice_url=...))")


def _location(value, where, base):
    """A path or fsspec URL; a relative path is taken from ``base`` (the file's folder URL),
    ``~`` and ``~user`` are home folders (an unknown user is an error); a URL of another
    machine only when :func:`remote_allowed`."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where} must be a path or URL (text), found {short_repr(value)}")
    value = value.strip()
    if "://" in value:
        _check_remote(value, where)
        return value
    if value.startswith("/"):
        return value
    if value.startswith("~"):
        expanded = os.path.expanduser(value)
        if expanded.startswith("~"):
            user = re.split(r"[\\/]", value[1:], maxsplit=1)[0]
            raise BadInput(f"{where}: expected ~/..., ~<user>/..., an absolute path, a path "
                           f"relative to the file's folder or a URL, found {short_repr(value)}: "
                           f"no user {short_repr(user)} is known on this machine (no home folder)")
        return os.path.normpath(expanded)
    protocol, folder = base
    joined = posixpath.normpath(posixpath.join(folder, value))
    return joined if protocol == "file" else f"{protocol}://{joined}"


def _folder(value, where, base):
    """:func:`_location` of a folder the library writes into (:func:`folder_of_its_own`)."""
    return folder_of_its_own(_location(value, where, base), where, value)


def _folder_or_false(value, where, base):
    """:func:`_folder`, or ``false`` (no cache)."""
    return False if value is False else _folder(value, where, base)


@dataclass(frozen=True)
class Setting:
    """One key of eqegs.yaml: ``doc`` (what it means) and ``check(value, where, base) -> value``
    (raises BadInput naming ``where`` for a bad value; ``base`` = (protocol, folder of the file))."""

    doc: str
    check: Callable


SETTINGS = {
    "cache_url": Setting("where cooked results are cached: a path (relative to the file's folder) "
                         "or fsspec URL, or false for no cache", _folder_or_false),
    "spice_url": Setting("where spice records live: a path (relative to the file's folder) or "
                         "fsspec URL; null for the .spice/ folders of the tree", _folder),
}
"""The keys of eqegs.yaml. A new per-repository setting is one entry here (and a line in
docs/configuration.md); ``null`` always means "the built-in default"."""


@dataclass(frozen=True)
class RepositoryConfig:
    """The settings read from ``path`` (None when the tree has no eqegs.yaml): ``values`` maps
    the keys present (nulls left out) to their checked, resolved values."""

    path: object
    values: dict

    def get(self, key, default=None):
        """The value of a key of :data:`SETTINGS`, or ``default`` when the file does not set it."""
        if key not in SETTINGS:
            raise KeyError(f"{key!r} is not a repository setting; known: {', '.join(SETTINGS)}")
        return self.values.get(key, default)

    def __repr__(self):
        where = self.path or f"no {FILE_NAME}"
        return f"<RepositoryConfig {where}: {self.values}>"


def check_values(mapping, where, base):
    """Checked and resolved ``{key: value}`` of a mapping read from (or for) eqegs.yaml."""
    if not isinstance(mapping, dict):
        raise BadInput(f"{where}: expected a mapping of settings ({', '.join(SETTINGS)}), "
                       f"found {type(mapping).__name__}")
    out = {}
    for key, value in mapping.items():
        if key not in SETTINGS:
            close = closest_keys(key, list(SETTINGS))
            hint = f"closest: {', '.join(close)}" if close else f"known: {', '.join(SETTINGS)}"
            raise BadInput(f"{where}: unknown setting {short_repr(key)} ({hint})")
        if value is not None:
            out[key] = SETTINGS[key].check(value, f"{where}: {key}", base)
    return out


def _read_text(fs, path):
    """The text of eqegs.yaml at ``path``, or None when there is none: a regular file (a FIFO
    or device would block or never end) of at most :data:`MAX_FILE_BYTES`."""
    try:
        try:
            listed = check_regular_file(fs, path).get("size") or 0
        except BadInput as exc:  # the layout's refusal, without its sample-folder kind
            raise BadInput(str(exc)) from None
        data, size = read_at_most(fs, path, MAX_FILE_BYTES, listed)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadInput(f"{path} cannot be read ({exc})") from None
    if size > MAX_FILE_BYTES:
        raise BadInput(f"{path}: expected a small settings file (at most {MAX_FILE_BYTES} bytes), "
                       f"found {size} bytes; refused before reading")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: expected UTF-8 text, found {exc.reason} at byte "
                       f"{exc.start}") from None


def _shares_a_node(node, seen):
    """True when ``node`` reaches a node already in ``seen`` (ids; updated): a YAML alias. Each
    node is visited once, so an alias bomb costs no more than its text."""
    stack = [node]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            return True
        seen.add(id(item))
        if isinstance(item, yaml.SequenceNode):
            stack.extend(item.value)
        elif isinstance(item, yaml.MappingNode):
            stack.extend(part for pair in item.value for part in pair)
    return False


def _settings_in(node, path):
    """``{key: value}`` of the composed top-level node of eqegs.yaml: a mapping of text keys,
    each once, without aliases; values built by the safe loader only after these checks."""
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
        return {}
    if not isinstance(node, yaml.MappingNode):
        found = ("a list" if isinstance(node, yaml.SequenceNode)
                 else f"the value {short_repr(node.value)}")
        raise BadInput(f"{path}: expected a mapping of settings ({', '.join(SETTINGS)}), "
                       f"found {found}")
    entries, lines, seen = [], {}, set()
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise BadInput(f"{path}, line {line}: expected a setting name (text), found a "
                           f"{'list' if isinstance(key_node, yaml.SequenceNode) else 'mapping'}")
        key = key_node.value
        if key in lines:
            raise BadInput(f"{path}: setting {short_repr(key)} is given twice (lines {lines[key]} "
                           f"and {line}); expected each setting once")
        lines[key] = line
        if _shares_a_node(key_node, seen) or _shares_a_node(value_node, seen):
            raise BadInput(f"{path}: setting {short_repr(key)} (line {line}): expected a plain "
                           "value, found a YAML alias (*name); aliases are refused before they "
                           "are expanded")
        entries.append((key, value_node))
    return dict(entries)


def _parse(text, path):
    """The settings in the text of eqegs.yaml at ``path``, as ``{key: value}`` (unchecked)."""
    if nesting_depth(text, limit=MAX_NESTING) > MAX_NESTING:
        raise BadInput(f"{path}: expected a flat mapping of settings, found collections nested "
                       f"deeper than {MAX_NESTING} levels; refused before reading")
    loader = _Loader(text)
    try:
        nodes = _settings_in(loader.get_single_node(), path)
        values = {}
        for key, node in nodes.items():
            try:
                values[key] = loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, ArithmeticError, TypeError, RecursionError) as exc:
                raise BadInput(f"{path}: setting {short_repr(key)}: expected a plain YAML "
                               f"value, found one the safe loader refuses ({_one_line(exc)})"
                               ) from None
        return values
    except yaml.YAMLError as exc:
        raise BadInput(f"{path} is not valid YAML ({_one_line(exc)})") from None
    finally:
        loader.dispose()


def read_config(fs, root, protocol="file"):
    """The :class:`RepositoryConfig` of the tree whose proposals are in ``root`` (a path on
    ``fs``); an empty one when there is no eqegs.yaml. A file that is not a regular file of at
    most :data:`MAX_FILE_BYTES`, not plain YAML, or not a mapping of known keys each given once
    with a good value raises BadInput naming it (and the setting)."""
    path = f"{root.rstrip('/')}/{FILE_NAME}"
    text = _read_text(fs, path)
    if text is None:
        return RepositoryConfig(None, {})
    values = check_values(_parse(text, path), path, (protocol, root.rstrip("/") or "/"))
    return RepositoryConfig(path, values)


def write_config(root_url, values, overwrite=False):
    """Write ``values`` (keys of :data:`SETTINGS`, as the file should hold them, e.g. a relative
    ``cache_url``) as ``<root_url>/eqegs.yaml``, checked first, through a temporary file renamed
    into place. An existing file is replaced only with ``overwrite=True``. Returns the path."""
    fs, root = fsspec.core.url_to_fs(str(root_url))
    path = f"{root.rstrip('/')}/{FILE_NAME}"
    check_values(dict(values), path, (fsspec.core.split_protocol(str(root_url))[0] or "file", root))
    if fs.exists(path) and not overwrite:
        raise BadInput(f"{path} already exists; pass overwrite=True to replace it")
    lines = [f"# {FILE_NAME}: settings of this E-QEGS tree, read by eqegs_repo (Repository and the eqegs",
             "# command); keys and meaning: docs/configuration.md"]
    for key, value in values.items():
        lines.append(f"# {key}: {SETTINGS[key].doc}")
        lines.append(yaml.safe_dump({key: value}, default_flow_style=False).strip())
    temporary = f"{root.rstrip('/')}/.{FILE_NAME}.tmp-{uuid.uuid4().hex[:8]}"
    with fs.open(temporary, "w") as f:
        f.write("\n".join(lines) + "\n")
    fs.mv(temporary, path)
    return path
