"""The repository configuration: ``eqegs.yaml`` in the folder that holds the proposal folders.

One small YAML mapping shared by everyone who opens the tree -- ``Repository(...)`` in Python
and every ``eqegs`` command -- so that they all use the same cache (docs/configuration.md)::

    # eqegs.yaml: settings of this E-QEGS tree
    cache_url: ../../../cache    # cooked results; relative to this file's folder, a path or URL
    spice_url: null               # spice records; null: the .spice/ folders of the tree

:data:`SETTINGS` lists the keys, what each means and how its value is checked; a key not in it
is an error naming the closest known key (a typo never passes silently). Only plain YAML is
read (``yaml.safe_load``). An argument given to ``Repository`` wins over the file; without
either, the built-in default applies (``$EQEGS_CACHE_DIR`` or ``~/.cache/eqegs_repo`` for the
cache, the tree's ``.spice/`` folders for spice).
"""
import os
import posixpath
import uuid
from dataclasses import dataclass
from typing import Callable

import fsspec
import yaml

from eqegs_repo.errors import BadInput, closest_keys

FILE_NAME = "eqegs.yaml"


def _location(value, where, base):
    """A path or fsspec URL; a relative path is taken from ``base`` (the file's folder URL)."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where} must be a path or URL (text), found {value!r}")
    value = value.strip()
    if "://" in value or value.startswith("/"):
        return value
    if value.startswith("~"):
        return os.path.expanduser(value)
    protocol, folder = base
    joined = posixpath.normpath(posixpath.join(folder, value))
    return joined if protocol == "file" else f"{protocol}://{joined}"


def _location_or_false(value, where, base):
    """:func:`_location`, or ``false`` (no cache)."""
    return False if value is False else _location(value, where, base)


@dataclass(frozen=True)
class Setting:
    """One key of eqegs.yaml: ``doc`` (what it means) and ``check(value, where, base) -> value``
    (raises BadInput naming ``where`` for a bad value; ``base`` = (protocol, folder of the file))."""

    doc: str
    check: Callable


SETTINGS = {
    "cache_url": Setting("where cooked results are cached: a path (relative to the file's folder) "
                         "or fsspec URL, or false for no cache", _location_or_false),
    "spice_url": Setting("where spice records live: a path (relative to the file's folder) or "
                         "fsspec URL; null for the .spice/ folders of the tree", _location),
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
            raise BadInput(f"{where}: unknown setting {key!r} ({hint})")
        if value is not None:
            out[key] = SETTINGS[key].check(value, f"{where}: {key}", base)
    return out


def read_config(fs, root, protocol="file"):
    """The :class:`RepositoryConfig` of the tree whose proposals are in ``root`` (a path on
    ``fs``); an empty one when there is no eqegs.yaml. A file that is not a YAML mapping of
    known keys raises BadInput naming it."""
    path = f"{root.rstrip('/')}/{FILE_NAME}"
    try:
        text = fs.cat_file(path).decode("utf-8")
    except FileNotFoundError:
        return RepositoryConfig(None, {})
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path} cannot be read ({exc})") from None
    try:
        mapping = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadInput(f"{path} is not valid YAML ({exc})") from None
    values = check_values({} if mapping is None else mapping, path, (protocol, root.rstrip("/") or "/"))
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
