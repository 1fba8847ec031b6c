"""NeXus/HDF5 files: a tree of groups and fields written through a temporary file moved into
place, and read back (docs/outputs.md#nexus-files).

A file is described by :class:`Group` (an HDF5 group with its ``NX_class``) holding
:class:`Field` (an HDF5 dataset with its ``units``) and further groups. :func:`write_nexus`
writes the tree under an ``NXroot`` (``file_name``, ``file_time``, ``creator``,
``HDF5_Version``, ``h5py_version``, ``default``); :func:`read_nexus` reads any HDF5 file back
into the same classes; :func:`tree_text` prints one. This module knows nothing of cooking:
which groups a sample's file holds is :mod:`eqegs_repo.cooking.nexus_export`.

Rules the writer enforces: every group has an ``NX_class``; every numeric field has ``units``
(``"1"`` for a pure number); text is variable-length UTF-8 (a field of one text, or an array of
texts). Files are local paths: h5py writes through the operating system.
"""
import datetime
import os
import uuid
from dataclasses import dataclass, field

import numpy as np

from eqegs_repo.errors import BadInput, ResultExists
from eqegs_repo.io.formats.hdf5 import h5py_module


@dataclass
class Field:
    """One HDF5 dataset: ``value`` (a number, a text, a numpy array or a list of texts),
    ``units`` (required for numbers, None for text) and further ``attrs``."""

    value: object
    units: str | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def is_text(self):
        value = self.value
        if isinstance(value, str):
            return True
        array = np.asarray(value)
        return array.dtype.kind in "OUS"


@dataclass
class Group:
    """One HDF5 group: its ``nx_class`` (``"NXentry"``, ``"NXdata"`` ...), ``children`` (name ->
    :class:`Group` or :class:`Field`, in writing order) and further ``attrs`` (``signal``,
    ``axes``, ``default`` ...)."""

    nx_class: str
    children: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    def __getitem__(self, path):
        """The child at ``path`` (``"entry/data/I"``)."""
        node = self
        for name in path.strip("/").split("/"):
            if not isinstance(node, Group) or name not in node.children:
                raise KeyError(f"{path!r}: no {name!r} here")
            node = node.children[name]
        return node


def _check_name(path, name):
    if not name or "/" in name or name in (".", ".."):
        raise BadInput(f"NeXus name {name!r} at {path or '/'}: expected a non-empty name without '/'")


def _attribute(h5py, value):
    """``value`` as an HDF5 attribute: texts as variable-length UTF-8, lists of texts too."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return np.array(value, dtype=h5py.string_dtype("utf-8"))
    return value


def _write_field(h5py, parent, name, node, path):
    if node.is_text:
        items = [node.value] if isinstance(node.value, str) else np.asarray(node.value, dtype=object).ravel()
        if not all(isinstance(item, str) for item in items):
            raise BadInput(f"NeXus field {path}: expected numbers or texts, found "
                           f"{type(next(i for i in items if not isinstance(i, str))).__name__}")
        text = h5py.string_dtype("utf-8")
        data = node.value if isinstance(node.value, str) else np.array(node.value, dtype=object)
        dataset = parent.create_dataset(name, data=data, dtype=text)
    else:
        if node.units is None:
            raise BadInput(f"NeXus field {path}: a number without units; give units ('1' for a pure number)")
        value = np.asarray(node.value)
        if value.dtype.kind not in "biuf":
            raise BadInput(f"NeXus field {path}: expected numbers or text, found dtype {value.dtype}")
        dataset = parent.create_dataset(name, data=value)
    if node.units is not None:
        dataset.attrs["units"] = node.units
    for key, value in node.attrs.items():
        dataset.attrs[key] = _attribute(h5py, value)


def _write_group(h5py, parent, group, path):
    if not group.nx_class:
        raise BadInput(f"NeXus group {path or '/'}: no NX_class")
    parent.attrs["NX_class"] = group.nx_class
    for key, value in group.attrs.items():
        parent.attrs[key] = _attribute(h5py, value)
    for name, node in group.children.items():
        _check_name(path, name)
        child_path = f"{path}/{name}"
        if isinstance(node, Group):
            _write_group(h5py, parent.create_group(name), node, child_path)
        elif isinstance(node, Field):
            _write_field(h5py, parent, name, node, child_path)
        else:
            raise BadInput(f"NeXus node {child_path}: expected a Group or Field, found {type(node).__name__}")


def local_path(path, what="NeXus file"):
    """``path`` as a local file path (``file://`` URLs too), or BadInput naming it."""
    text = os.fspath(path)
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif "://" in text:
        raise BadInput(f"{what} {text}: only local paths can be written (h5py writes through the "
                       "operating system); expected a path, found a URL")
    return text


def check_writable(path, overwrite=False):
    """``path`` as a local path whose folder exists and, unless ``overwrite``, that does not
    exist yet: else BadInput (:class:`~eqegs_repo.errors.ResultExists` for an existing file)."""
    path = local_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BadInput(f"cannot write NeXus file {path}: its folder {folder} does not exist")
    if os.path.isdir(path):
        raise BadInput(f"cannot write NeXus file {path}: it is a folder; expected a file name")
    if os.path.lexists(path) and not overwrite:
        raise ResultExists(f"NeXus file {path} exists; pass overwrite=True (--overwrite) to replace it", [path])
    return path


def write_nexus(path, entries, *, overwrite=False, creator="eqegs_repo"):
    """Write ``entries`` (name -> :class:`Group`, normally ``NXentry``) as a NeXus/HDF5 file at
    ``path`` (a local path); returns the path.

    The file is written to a hidden temporary name in the same folder and moved into place
    only when complete: a failing write leaves no file (and no temporary one). An existing
    file raises :class:`~eqegs_repo.errors.ResultExists` unless ``overwrite=True``; without it
    the move itself refuses a file that appeared meanwhile (a hard link never replaces).
    """
    h5py = h5py_module()
    path = check_writable(path, overwrite)
    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(folder, f".{os.path.basename(path)}.tmp-p{os.getpid()}-{uuid.uuid4().hex[:8]}")
    root = Group("NXroot", dict(entries), {
        "file_name": os.path.basename(path),
        "file_time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "creator": creator, "HDF5_Version": h5py.version.hdf5_version, "h5py_version": h5py.version.version,
        **({"default": next(iter(entries))} if entries else {})})
    try:
        with h5py.File(temporary, "w") as f:
            _write_group(h5py, f, root, "")
        if overwrite:
            os.replace(temporary, path)
        else:
            _move_exclusive(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
    return path


def _move_exclusive(temporary, path):
    """Move ``temporary`` to ``path`` unless ``path`` exists (then ResultExists)."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise ResultExists(f"NeXus file {path} appeared while it was written; pass overwrite=True to "
                           "replace it", [path]) from None
    except OSError:  # no hard links on this filesystem: checked, then renamed (best effort)
        if os.path.lexists(path):
            raise ResultExists(f"NeXus file {path} exists; pass overwrite=True to replace it", [path]) from None
        os.replace(temporary, path)
        return
    os.unlink(temporary)


def _read_attrs(attrs):
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, np.ndarray) and value.dtype.kind in "OS":
            value = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in value.tolist()]
        out[key] = value
    return out


def _read_node(h5py, node):
    attrs = _read_attrs(node.attrs)
    if isinstance(node, h5py.Dataset):
        if h5py.check_string_dtype(node.dtype) is not None:
            value = node.asstr()[()]
            value = value.tolist() if isinstance(value, np.ndarray) else value
        else:
            value = node[()]
        return Field(value, attrs.pop("units", None), attrs)
    nx_class = attrs.pop("NX_class", "")
    return Group(nx_class, {name: _read_node(h5py, child) for name, child in node.items()}, attrs)


def read_nexus(path):
    """The whole file at ``path`` as a :class:`Group` (the ``NXroot``; text as ``str``, arrays as
    numpy). A file that is not HDF5 raises BadInput naming it."""
    h5py = h5py_module()
    path = local_path(path)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise BadInput(f"NeXus file {path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"{path} is not an HDF5 (NeXus) file: {exc}") from None
    with f:
        return _read_node(h5py, f)


def tree_text(group, name="", indent=""):
    """The tree of ``group`` as text, one line per group (``name:NX_class``) and field
    (``name = value [units]`` for scalars, ``name float64 (shape) [units]`` for arrays)."""
    lines = [f"{indent}{name or '/'}:{group.nx_class}"
             + "".join(f" @{key}={value}" for key, value in group.attrs.items() if key in ("signal", "axes", "default"))]
    for child_name, node in group.children.items():
        if isinstance(node, Group):
            lines.append(tree_text(node, child_name, indent + "  "))
            continue
        units = f" [{node.units}]" if node.units is not None else ""
        value = np.asarray(node.value) if not isinstance(node.value, (str, list)) else node.value
        if isinstance(value, np.ndarray) and value.ndim:
            lines.append(f"{indent}  {child_name} {value.dtype} {value.shape}{units}")
        elif isinstance(value, list):
            lines.append(f"{indent}  {child_name} text ({len(value)},)")
        else:
            text = value if isinstance(value, str) else f"{value.item():.6g}"
            text = text if len(text) <= 40 else text[:37] + "..."
            lines.append(f"{indent}  {child_name} = {text}{units}")
    return "\n".join(lines)
