"""Where record files live: one folder per collection, one YAML file per record.

Publication is append-only and exclusive: a record file is written under a hidden temporary
name and then published under its canonical name (which carries type, anchor and revision)
without ever overwriting an existing file. Of two writers racing for one name exactly one wins;
the other gets :class:`FileExistsError`.

Three implementations share one interface (:class:`Store`):

- :class:`LocalStore` -- a local folder; publication by ``os.link`` (atomic, exclusive), or
  where the filesystem has no hard links by an exclusive create of the name followed by an
  atomic rename of the full file onto it (:func:`claim_without_links`).
- :class:`MemoryStore` -- fsspec's in-process memory filesystem, guarded by a lock.
- :class:`FsspecStore` -- any other fsspec filesystem: temp file, existence check, move, then a
  read-back check. Object stores offer no atomic exclusive create, so there two writers racing
  within a few milliseconds may both believe they won; the read-back catches most such races.
"""
import abc
import errno
import os
import threading
import uuid as _uuid

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from .errors import SpiceStoreError
from .records import MAX_RECORD_BYTES

RECORD_SUFFIX = ".yaml"
TEMP_PREFIX = ".tmp-"
MAX_NAME_BYTES = 255  # longest file name most filesystems take
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_MEMORY_LOCK = threading.Lock()
NO_HARD_LINKS = frozenset(code for code in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                                            errno.EXDEV) if code is not None)
"""``errno`` values of ``os.link`` on a filesystem without hard links (FAT, exFAT, some network
and FUSE mounts): publication falls back to :func:`claim_without_links`."""


def encode_name_part(text):
    """File-name-safe text: ``[A-Za-z0-9_-]`` kept, every other UTF-8 byte as ``~XX``."""
    return "".join(ch if ch in _SAFE else "".join(f"~{b:02X}" for b in ch.encode("utf-8"))
                   for ch in text)


def canonical_name(type_name, anchor, revision):
    """File name that claims (type, anchor, revision), e.g. ``roi.S010.r000002.yaml``.

    The default anchor ``""`` gives ``roi..r000001.yaml``.
    """
    return (f"{encode_name_part(type_name)}.{encode_name_part(anchor)}.r{revision:06d}"
            f"{RECORD_SUFFIX}")


def is_record_name(name):
    """True for names a store treats as record files (``*.yaml``, not hidden)."""
    return name.endswith(RECORD_SUFFIX) and not name.startswith(".")


def unwritable_folder(folder, name, exc):
    """SpiceStoreError for a write refused by the filesystem (read-only tree, permissions, a file
    in the way): names the record file, the folder and the reason."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return SpiceStoreError(f"cannot write {name} into the spice folder {folder} ({reason}); "
                           "nothing was stored")


def remove_quietly(path):
    """Remove the file ``path`` if it is there (a temporary file after a failed write)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def claim_without_links(temp, final):
    """Publish the complete file ``temp`` as ``final`` without hard links, never overwriting.

    The name is claimed by an exclusive create (``O_EXCL``: of two writers exactly one gets it;
    FileExistsError for the other), then the full file is renamed onto the empty claim, which
    is atomic. A reader may see the claim empty for that moment (skipped and read again once it
    grows); a writer killed in between leaves an empty record file, which readers report.
    """
    descriptor = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(descriptor)
    try:
        os.replace(temp, final)
    except BaseException:
        remove_quietly(final)  # our own empty claim: give the revision back
        raise


class Store(abc.ABC):
    """A folder of record files (interface shared by all implementations).

    Attributes
    ----------
    url : str
        Where the folder is, for messages.
    max_record_bytes : int
        Files larger than this are reported and never read.
    lasting : bool
        Whether the records outlive the process (False for :class:`MemoryStore`: a program
        that ends loses them, so a command-line tool should refuse to write there).
    """

    max_record_bytes = MAX_RECORD_BYTES
    lasting = True

    @abc.abstractmethod
    def list_files(self):
        """``({record file name: size in bytes}, [names of other, foreign files])``."""

    @abc.abstractmethod
    def read_bytes(self, name):
        """Up to ``max_record_bytes + 1`` bytes of a file."""

    @abc.abstractmethod
    def exists(self, name):
        """Whether a file of that name exists."""

    @abc.abstractmethod
    def publish(self, name, payload):
        """Create ``name`` holding ``payload`` (bytes) atomically; FileExistsError if taken."""

    def path_of(self, name):
        """Full path or URL of a file, for messages."""
        return f"{self.url.rstrip('/')}/{name}"

    def __repr__(self):
        return f"{type(self).__name__}({self.url!r})"


class LocalStore(Store):
    """Records in a local folder (created on first write)."""

    def __init__(self, path, *, fsync=True):
        self.path = os.path.abspath(os.fspath(path))
        self.url = self.path
        self.fsync = fsync

    def list_files(self):
        sizes, foreign = {}, []
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return sizes, foreign
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if is_record_name(name) and entry.is_file():
                sizes[name] = entry.stat().st_size
            else:
                foreign.append(name)
        return sizes, foreign

    def read_bytes(self, name):
        descriptor = os.open(os.path.join(self.path, name), os.O_RDONLY)
        try:
            chunks, left = [], self.max_record_bytes + 1
            while left > 0:
                chunk = os.read(descriptor, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(descriptor)

    def exists(self, name):
        return os.path.exists(os.path.join(self.path, name))

    def publish(self, name, payload):
        final = os.path.join(self.path, name)
        temp = os.path.join(self.path, f"{TEMP_PREFIX}{_uuid.uuid4().hex}.part")
        try:
            try:
                os.makedirs(self.path, exist_ok=True)
            except FileExistsError:  # a file is in the way: not a lost race
                raise NotADirectoryError(20, "not a folder", self.path) from None
            self._write_temporary(temp, payload)
        except OSError as exc:
            raise unwritable_folder(self.path, name, exc) from None
        try:
            try:
                os.link(temp, final)  # atomic; fails if final exists; never overwrites
            except OSError as exc:
                if isinstance(exc, FileExistsError) or exc.errno not in NO_HARD_LINKS:
                    raise
                claim_without_links(temp, final)
        finally:
            remove_quietly(temp)

    def _write_temporary(self, temp, payload):
        """Write ``payload`` to the new file ``temp`` (flushed, fsync-ed unless ``fsync`` is
        False); a write that fails (disk full, file too large) removes ``temp`` again."""
        handle = open(temp, "xb")
        try:
            with handle:
                handle.write(payload)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
        except BaseException:
            remove_quietly(temp)
            raise

    def path_of(self, name):
        return os.path.join(self.path, name)


class FsspecStore(Store):
    """Records in a folder of any fsspec filesystem (best-effort exclusivity, see module doc)."""

    def __init__(self, fs, path):
        self.fs = fs
        self.path = fs._strip_protocol(path).rstrip("/")
        self.url = fs.unstrip_protocol(self.path) if hasattr(fs, "unstrip_protocol") else path

    def _full(self, name):
        return f"{self.path}/{name}"

    def list_files(self):
        sizes, foreign = {}, []
        try:
            entries = self.fs.ls(self.path, detail=True)
        except FileNotFoundError:
            return sizes, foreign
        for entry in entries:
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("."):
                continue
            if is_record_name(name) and entry.get("type") == "file":
                sizes[name] = int(entry.get("size") or 0)
            else:
                foreign.append(name)
        return sizes, foreign

    def read_bytes(self, name):
        return self.fs.cat_file(self._full(name), start=0, end=self.max_record_bytes + 1)

    def exists(self, name):
        return self.fs.exists(self._full(name))

    def publish(self, name, payload):
        final = self._full(name)
        if self.fs.exists(final):
            raise FileExistsError(final)
        temp = self._full(f"{TEMP_PREFIX}{_uuid.uuid4().hex}.part")
        try:
            self.fs.pipe_file(temp, payload)
        except (OSError, ValueError, NotImplementedError) as exc:  # a read-only or zip filesystem
            self._remove_quietly(temp)  # a part written before the failure
            raise unwritable_folder(self.url, name, exc) from None
        try:
            if self.fs.exists(final):
                raise FileExistsError(final)
            self.fs.mv(temp, final)
        finally:
            if self.fs.exists(temp):
                self.fs.rm_file(temp)
        if self.fs.cat_file(final) != payload:
            raise FileExistsError(final)

    def _remove_quietly(self, path):
        try:
            if self.fs.exists(path):
                self.fs.rm_file(path)
        except (OSError, ValueError, NotImplementedError):
            pass


class MemoryStore(FsspecStore):
    """Records in fsspec's in-process memory filesystem.

    Pickling carries a snapshot of the records, so a copy sent to another process (a Dask
    worker) sees the same records; records written there stay there.
    """

    lasting = False

    def __init__(self, path):
        super().__init__(MemoryFileSystem(), path)

    def publish(self, name, payload):
        final = self._full(name)
        with _MEMORY_LOCK:  # the memory filesystem is per process: a lock makes this exclusive
            if self.fs.exists(final):
                raise FileExistsError(final)
            self.fs.pipe_file(final, payload)  # a memory file appears whole, on close

    def __getstate__(self):
        sizes, _ = self.list_files()
        return {"path": self.path, "files": {name: self.fs.cat_file(self._full(name))
                                             for name in sizes}}

    def __setstate__(self, state):
        self.__init__(state["path"])
        with _MEMORY_LOCK:
            for name, payload in state["files"].items():
                if not self.fs.exists(self._full(name)):
                    self.fs.pipe_file(self._full(name), payload)


def open_store(url, fs=None, **options):
    """The store for a folder given as a path or URL (``memory://x``, ``s3://b/x``, ``/data/x``).

    With ``fs`` (an fsspec filesystem) ``url`` is a path on it. ``options`` go to
    :class:`LocalStore` (``fsync``) for local folders.
    """
    if fs is None:
        fs, path = fsspec.core.url_to_fs(str(url))
    else:
        path = fs._strip_protocol(str(url))
    if isinstance(fs, LocalFileSystem):
        return LocalStore(path, **options)
    if isinstance(fs, MemoryFileSystem):
        return MemoryStore(path)
    return FsspecStore(fs, path)
