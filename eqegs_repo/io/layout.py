"""Where files live inside a sample folder and a proposal folder (the app's layout).

Raw input (written by the train-integration app; the files beside the marker are those of the
built-in npy format, :mod:`eqegs_repo.io.formats.npy`, other formats hold them otherwise)::

    <sample>/train_integrated.json            marker + integration info
    <sample>/train_integrated/sensor_<k>.npy  (frames, rows, cols) counts, k = 0..n_sensors-1
    <sample>/train_integrated/velocity.npy    (frames,) measured drive waveform

Step outputs (written by the analysis app or by us)::

    <sample>/reconstruction/                 reconstruction.npy; dl/info/train_integrated.json, the
                                             app's copy of the marker (used when the marker is gone)
    <sample>/q_integration[/<sub>]/
    <sample>/e_spectrum_and_isf[/<sub>]/
    <proposal>/download/*.zip
"""
import json
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass

from eqegs_repo import snapshot, step_table
from eqegs_repo.errors import BadInput, BadSample

REQUIRED_MARKER_FIELDS = {"n_frames": int, "n_sensors": int, "sensor_shape": list}
HDF5_FILE = "train_integrated.h5"
"""The HDF5 raw-data format's file (:mod:`eqegs_repo.io.formats.hdf5`), which may hold the
marker as its attributes instead of the JSON file beside it."""
MAX_MARKER_BYTES = 1 << 20


@dataclass(frozen=True)
class TreeLayout:
    """File and folder names of the tree; every name can be changed for another layout
    (``raw_dir``, ``sensor_file`` and ``velocity_file`` are those of the npy raw-data format)."""

    marker: str = "train_integrated.json"
    marker_copy: str = "reconstruction/dl/info/train_integrated.json"
    raw_dir: str = "train_integrated"
    sensor_file: str = "sensor_{k}.npy"
    velocity_file: str = "velocity.npy"
    download_dir: str = "download"

    def marker_path(self, sample_path):
        return f"{sample_path}/{self.marker}"

    def marker_copy_path(self, sample_path):
        """The app's copy of the marker in the reconstruction folder (docs/outputs.md#folder-layout-per-step)."""
        return f"{sample_path}/{self.marker_copy}"

    def found_marker_path(self, fs, sample_path):
        """The marker of a sample folder: :meth:`marker_path`, or, when that file is missing and
        the app's reconstruction folder holds its copy, :meth:`marker_copy_path` (a sample whose
        train-integrated data were removed after the app reconstructed it)."""
        path = self.marker_path(sample_path)
        copy = self.marker_copy_path(sample_path)
        try:
            listed_info(fs, path)
        except FileNotFoundError:
            return copy if listed_exists(fs, copy) else path
        except OSError:
            return path
        return path

    def sensor_path(self, sample_path, k):
        return f"{sample_path}/{self.raw_dir}/{self.sensor_file.format(k=k)}"

    def velocity_path(self, sample_path):
        return f"{sample_path}/{self.raw_dir}/{self.velocity_file}"

    def never_samples(self):
        """Folder names that are never samples, whatever they hold (the step folders included:
        each is named after its step, :mod:`eqegs_repo.step_table`)."""
        return {self.download_dir, self.raw_dir, *step_table.names()}


def parse_marker(text, path):
    """Validate the marker's JSON text and return it as a dict.

    Required: ``n_frames`` (int >= 1), ``n_sensors`` (int >= 1), ``sensor_shape`` ([rows, cols],
    ints >= 1). Other keys are kept as they are. ``text`` is ``str`` or the file's bytes (UTF-8,
    or UTF-16/32 with a byte-order mark, as JSON allows). ``path`` is used in error messages.
    """
    if isinstance(text, bytes):
        text = _decoded(text, path)
    try:
        marker = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadSample(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BadSample(f"{path}: JSON nested too deeply to read; expected a flat JSON object") from None
    if not isinstance(marker, dict):
        raise BadSample(f"{path}: expected a JSON object, found {type(marker).__name__}")
    for name, kind in REQUIRED_MARKER_FIELDS.items():
        if name not in marker:
            raise BadSample(f"{path}: the field {name!r} is missing (required: {', '.join(REQUIRED_MARKER_FIELDS)})")
        value = marker[name]
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        else:
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
            )
        if not ok:
            expected = "an integer >= 1" if kind is int else "[rows, cols] with integers >= 1"
            raise BadSample(f"{path}: field {name!r} must be {expected}, found {value!r}")
    return marker


def _decoded(data, path):
    """The text of a JSON file's bytes ``data``; BadSample naming ``path``, the encoding expected
    and the first byte that does not decode (its offset, line and column) otherwise."""
    encoding = json.detect_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        name = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
        raise BadSample(f"{path}: not {name} text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                        f"(line {line}, column {column}) does not decode; expected a UTF-8 JSON file "
                        "(saved as Shift-JIS or another encoding?)") from None


def is_local(fs):
    """Whether ``fs`` is the local filesystem (its paths are the operating system's)."""
    protocol = fs.protocol
    return "file" in ((protocol,) if isinstance(protocol, str) else protocol)


def listing(fs, folder):
    """``fs.ls(folder, detail=True)``: listed once per listing (:func:`eqegs_repo.snapshot.scope`),
    at every call outside one. Errors pass through (a missing folder is remembered as missing).
    A local folder is listed with one ``os.scandir`` (the same entries as fsspec's, without its
    per-entry path handling)."""
    def ls():
        try:
            if is_local(fs) and os.sep == "/" and folder.startswith("/"):
                try:
                    return _scanned(folder)
                except NotADirectoryError:
                    pass  # fsspec lists a file as itself
            return fs.ls(folder, detail=True)
        except FileNotFoundError as exc:
            return exc

    found = snapshot.remembered(("listing", fs, folder), ls)
    if isinstance(found, FileNotFoundError):
        raise (FileNotFoundError(*found.args) if found.errno is None
               else FileNotFoundError(found.errno, found.strerror, found.filename))
    return found


def _scanned(folder):
    """The entries of the local ``folder`` as fsspec's LocalFileSystem lists them (name, size,
    type, created, islink, mode, uid, gid, mtime, ino, nlink; a link's size is its target's and
    ``destination`` where it points)."""
    base = folder.rstrip("/")
    entries = []
    with os.scandir(folder) as found:
        for entry in found:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed meanwhile
            link = stat.S_ISLNK(st.st_mode)
            size = st.st_size
            if link:
                try:
                    size = os.stat(entry.path).st_size
                except OSError:
                    size = 0
            kind = ("directory" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode)
                    else "other")
            entries.append({"name": f"{base}/{entry.name}", "size": size, "type": kind,
                            "created": st.st_ctime, "islink": link, "mode": st.st_mode,
                            "uid": st.st_uid, "gid": st.st_gid, "mtime": st.st_mtime,
                            "ino": st.st_ino, "nlink": st.st_nlink}
                           | ({"destination": os.readlink(entry.path)} if link else {}))
    return entries


def listed_info(fs, path):
    """``fs.info(path)``; inside a listing (:func:`eqegs_repo.snapshot.scope`), the entry of
    ``path`` in the one :func:`listing` of its folder (``fs.info`` when it is not there, so a
    missing file raises FileNotFoundError as ever)."""
    if not snapshot.active():
        return fs.info(path)
    folder = path.rsplit("/", 1)[0]
    try:
        entries = snapshot.remembered(("listing by name", fs, folder),
                                      lambda: {e["name"]: e for e in listing(fs, folder)})
    except FileNotFoundError:
        raise FileNotFoundError(2, "No such file or directory", path) from None  # nor its folder
    except OSError:
        entries = {}
    found = entries.get(path)
    return fs.info(path) if found is None or found.get("islink") else found  # a link: its target's


def listed_exists(fs, path):
    """``fs.exists(path)``, by :func:`listed_info` (inside a listing, from its folder's listing)."""
    try:
        listed_info(fs, path)
    except OSError:  # missing, or its folder cannot be read
        return False
    return True


@contextmanager
def opening(path, unreadable):
    """Errors of opening and reading the header of the raw file ``path`` as one BadSample naming
    it: not found, no permission, or, for any other OSError, ValueError or EOFError, the text
    ``unreadable`` with ``{exc}`` replaced by the error (e.g. ``"not a readable .npy file
    ({exc})"``). A BadSample passes as it is."""
    try:
        yield
    except BadSample:
        raise
    except FileNotFoundError:
        raise BadSample(f"{path}: file not found") from None
    except PermissionError as exc:
        raise BadSample(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, OSError, EOFError) as exc:
        raise BadSample(f"{path}: " + unreadable.format(exc=exc)) from None


def check_regular_file(fs, path):
    """``fs.info(path)`` of a regular file; refuses FIFOs, sockets and devices (opening one can
    block forever) with BadSample. FileNotFoundError and PermissionError pass through."""
    info = listed_info(fs, path)
    if info.get("type") != "file":
        found = "a folder" if info.get("type") == "directory" else "not a regular file (a FIFO, socket or device?)"
        raise BadSample(f"{path}: expected a regular file, found {found}; only regular files are read")
    return info


def read_at_most(fs, path, limit, listed_size):
    """``(data, size)`` of the file ``path``: nothing is opened when its ``listed_size`` (bytes,
    from ``fs.info``) is over ``limit``, and at most ``limit + 1`` bytes are read otherwise (the
    file may grow meanwhile). ``size`` is the larger of the listed and the read size: the
    caller refuses the file when it is over ``limit``."""
    if listed_size > limit:
        return b"", listed_size
    if is_local(fs):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))  # never waits on a FIFO
        try:
            data = os.read(fd, limit + 1)
        finally:
            os.close(fd)
        return data, max(listed_size, len(data))
    with fs.open(path, "rb") as f:
        data = f.read(limit + 1)
    return data, max(listed_size, len(data))


def read_marker(fs, path):
    """Read and validate the marker file ``path`` on filesystem ``fs`` (regular files only).
    Without that file, the marker is the attributes of the folder's HDF5 raw file
    (:func:`eqegs_repo.io.formats.hdf5.marker_from_file`) when there is one."""
    folder = path.rsplit("/", 1)[0]
    try:
        text, size = read_at_most(fs, path, MAX_MARKER_BYTES, check_regular_file(fs, path).get("size") or 0)
        if size > MAX_MARKER_BYTES:
            raise BadSample(f"{path}: marker is {size} bytes; expected a small JSON file (< 1 MiB)")
    except FileNotFoundError:
        if not fs.exists(folder):
            raise BadSample(f"{folder}: the sample folder does not exist (a link to a missing "
                            "folder?)") from None
        if fs.exists(f"{folder}/{HDF5_FILE}"):
            from eqegs_repo.io.formats.hdf5 import marker_from_file  # that module imports this one

            marker = marker_from_file(fs, folder)
            if marker is not None:
                return marker
            raise BadSample(f"{path}: marker file not found, and {folder}/{HDF5_FILE} has no "
                            "marker attributes (n_frames, n_sensors, sensor_shape)") from None
        raise BadSample(f"{path}: marker file not found") from None
    except PermissionError as exc:
        raise BadSample(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except OSError as exc:
        raise BadSample(f"{path}: cannot be read ({exc})") from None
    return parse_marker(text, path)


def marker_present(fs, path):
    """Whether a listed folder is shown as a sample: its marker ``path`` exists (or, instead, an
    HDF5 raw file that may hold the marker as attributes: ``train_integrated.h5``), cannot be
    checked (an unreadable folder), or the folder is a link to nothing. The last two are
    shown, as broken samples, instead of vanishing."""
    folder = path.rsplit("/", 1)[0]
    try:
        if is_local(fs) and os.sep == "/" and path.startswith("/"):
            os.lstat(path)  # what fs.info does, without its path handling (a listing of thousands)
        else:
            fs.info(path)
    except FileNotFoundError:
        return fs.exists(f"{folder}/{HDF5_FILE}") or not fs.exists(folder)
    except OSError:
        return True
    return True


def _folder_link(fs, entry):
    """True for a listing entry that is a symbolic link to a folder, or to nothing (a dangling
    link is listed, so that it shows as broken instead of vanishing)."""
    if not entry.get("islink"):
        return False
    try:
        return fs.info(entry["name"]).get("type") == "directory"
    except FileNotFoundError:
        return True
    except OSError:
        return True


def list_folders(fs, path, what):
    """Names of the sub-folders of ``path``, links to folders included (they are followed);
    a clear error when ``path`` cannot be read."""
    try:
        entries = listing(fs, path)
    except FileNotFoundError:
        raise BadInput(f"{what} folder {path} does not exist") from None
    except PermissionError as exc:
        raise BadInput(f"{what} folder {path} cannot be read ({exc.strerror or exc})") from None
    except OSError as exc:
        raise BadInput(f"{what} folder {path} cannot be read ({exc})") from None
    return [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries
            if e.get("type") == "directory" or _folder_link(fs, e)]


def find_sample_folders(fs, path, layout, max_depth=4, max_folders=400):
    """``(depth, [sample folder paths])``: the folders holding the marker (or an HDF5 raw file)
    at the smallest depth
    below ``path`` (0 = ``path`` itself), looking at most ``max_depth`` levels down and at
    ``max_folders`` folders (breadth first, hidden and step folders skipped); ``(None, [])``
    when none is found. Used to say where the samples are when a URL names the wrong level."""
    level, seen = [path.rstrip("/") or "/"], 0
    for depth in range(max_depth + 1):
        found = [p for p in level if fs.exists(layout.marker_path(p)) or fs.exists(f"{p}/{HDF5_FILE}")]
        if found:
            return depth, found
        below = []
        for folder in level:
            if seen >= max_folders:
                return None, []
            seen += 1
            try:
                names = list_folders(fs, folder, "tree")
            except BadInput:
                continue
            below += [f"{folder.rstrip('/')}/{n}" for n in sorted(names)
                      if not n.startswith(".") and n not in layout.never_samples()]
        level = below
        if not level:
            break
    return None, []
