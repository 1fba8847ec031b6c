"""The files of the app's calibration folders, read safely: each file is opened once, only a
regular file of at most :data:`MAX_CALIBRATION_FILE_BYTES` is read, and what was opened (its real
path, checked by device and inode) is known before a byte is read, so that whoever decides whether
the file may run decides on the file that is then read (docs/robustness.md). Also the SHA-256 of
each file, so a later run can tell that a calibration file changed (docs/spice.md, the
``calibration`` type).
"""
import hashlib
import os
import stat

import fsspec

from eqegs_repo.errors import BadInput

MAX_CALIBRATION_FILE_BYTES = 16 * 2**20
"""The largest calibration file read (bytes): the app's files are a few kB of Python, JSON or CSV."""

_LOCAL = ("file", "local")
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))


def protocol_of(fs):
    """The protocol of ``fs``: ``"file"`` for the local disk (where links, devices and FIFOs
    exist), else fsspec's name (``"memory"``, ``"s3"``, ...)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return "file" if protocol in _LOCAL else protocol


def _kind(mode):
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refused(path, found):
    return BadInput(f"{path}: expected a regular calibration file, found {found}; only regular files "
                    "are read from a calibration folder (a FIFO or device could block for ever)")


def _too_large(path, size):
    return BadInput(f"{path}: calibration file of {size} bytes; expected at most "
                    f"{MAX_CALIBRATION_FILE_BYTES} bytes (a few kB of Python, JSON or CSV)")


class OpenedFile:
    """One calibration file, opened once: :attr:`real_path` is where the open file is on the
    file system of :attr:`protocol` (links resolved on the local disk) and :meth:`read` returns
    the bytes of that same open file. Use as a context manager; see :func:`open_calibration_file`."""

    def __init__(self, path, protocol, real_path, handle, size):
        self.path = path
        self.protocol = protocol
        self.real_path = real_path
        self._handle = handle
        self._size = size

    def read(self):
        """The file's bytes (at most :data:`MAX_CALIBRATION_FILE_BYTES`)."""
        if isinstance(self._handle, int):
            chunks, total = [], 0
            while total <= MAX_CALIBRATION_FILE_BYTES:
                chunk = os.read(self._handle, min(1 << 20, MAX_CALIBRATION_FILE_BYTES + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            payload = b"".join(chunks)
        else:
            payload = self._handle.read(MAX_CALIBRATION_FILE_BYTES + 1)
        if len(payload) > MAX_CALIBRATION_FILE_BYTES:  # it grew after it was opened
            raise _too_large(self.path, f"more than {len(payload) - 1}")
        return payload

    def close(self):
        if isinstance(self._handle, int):
            os.close(self._handle)
        else:
            self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open_local(path):
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)  # non-blocking: opening a FIFO never waits for a writer
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise _refused(path, _kind(found.st_mode))
        if found.st_size > MAX_CALIBRATION_FILE_BYTES:
            raise _too_large(path, found.st_size)
        real = _real_path(fd, path)
        try:
            there = os.lstat(real)
        except OSError:
            there = None
        if there is None or (there.st_dev, there.st_ino) != (found.st_dev, found.st_ino):
            raise BadInput(f"{path}: the file changed place while it was opened (its links were "
                           "changed); it was not read")
        return OpenedFile(path, "file", real, fd, found.st_size)
    except BaseException:
        os.close(fd)
        raise


def _real_path(fd, path):
    """The real path of the open descriptor ``fd``: the kernel's name for it where it gives one
    (``/proc/self/fd``), else ``path`` with its links resolved (the caller checks the inode)."""
    proc = f"/proc/self/fd/{fd}"
    if os.path.islink(proc):
        return os.readlink(proc)
    return os.path.realpath(path)


def open_calibration_file(fs, path):
    """Open the calibration file ``path`` on ``fs`` once, as an :class:`OpenedFile`.

    Raises BadInput naming the file when it is not a regular file (a FIFO, socket, device or
    folder: refused before anything is read, so nothing blocks) or is larger than
    :data:`MAX_CALIBRATION_FILE_BYTES`; FileNotFoundError and other OSErrors pass through.
    """
    protocol = protocol_of(fs)
    if protocol == "file":
        return _open_local(path)
    info = fs.info(path)
    if info.get("type") != "file":
        raise _refused(path, info.get("type") or "not a regular file")
    size = info.get("size") or 0
    if size > MAX_CALIBRATION_FILE_BYTES:
        raise _too_large(path, size)
    return OpenedFile(path, protocol, path.rstrip("/"), fs.open(path, "rb"), size)


def hash_calibration_folder(folder, fs=None):
    """``{file name: sha256 hex}`` of the regular files directly in a calibration folder, each
    read through :func:`open_calibration_file` (so a FIFO or a huge file is refused naming it).

    ``folder`` is a path or fsspec URL (``fs``: the filesystem it is on). Raises
    FileNotFoundError naming the folder when it does not exist.
    """
    if fs is None:
        fs, folder = fsspec.core.url_to_fs(str(folder))
    if not fs.isdir(folder):
        raise FileNotFoundError(f"calibration folder {folder} does not exist or is not a folder")
    hashes = {}
    for entry in sorted(fs.ls(folder, detail=True), key=lambda e: e["name"]):
        if entry.get("type") != "file":
            continue
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        with open_calibration_file(fs, entry["name"]) as opened:
            hashes[name] = hashlib.sha256(opened.read()).hexdigest()
    return hashes
