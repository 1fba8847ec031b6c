"""Making an exported result visible only when it is complete (docs/outputs.md#safety).

An export writes everything into a hidden staging folder (:class:`Staging`) and a hidden
temporary zip, then publishes under a claim (:class:`Claim`):

1. the claim ``<sample>/.<step>[-<sub>].publishing`` is created exclusively, so of two exports
   of one result exactly one publishes; while it exists readers treat the result as incomplete
   (:func:`eqegs_repo.io.app_format.reading.incomplete_reason`);
2. the staged entries are moved into the step folder, ``dl/`` (which holds ``info.json``)
   last, then the zip is renamed into ``download/``;
3. the claim is removed: the completeness mark, last.

A writer killed in between leaves its claim behind; the result stays flagged as incomplete
until an export (``skip_existing=True`` included) takes the stale claim over and repairs it. A
claim is stale when its process is gone (same host) or it is older than :data:`STALE_AFTER_S`.
Taking a stale claim over is serialised per sample folder (:func:`takeover_lock`): the claim is
read again under the lock and removed only if it is still stale, so of several exports that
found it stale exactly one holds the claim afterwards (without the lock a racer could remove the
fresh claim of the one that took over first: two holders at once).
"""
import contextlib
import json
import os
import re
import socket
import threading
import time
import uuid
import warnings
import zipfile

from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from eqegs_repo.errors import BadInput, CleanupWarning
from eqegs_repo.io.app_format import names
from eqegs_repo.io.app_format.reading import own_entries

STALE_AFTER_S = 600.0
"""A claim older than this (s) is stale whatever its process; publishing takes seconds."""
TAKEOVER_WAIT_S = 10.0
"""Longest wait (s) for the lock under which a stale claim is taken over; it is held for the
few file operations of one takeover."""
LEFTOVER_STALE_AFTER_S = 86400.0
"""A temporary folder or zip of an export older than this (s) is a left-over whatever its
process (one of another host cannot be asked whether it still runs)."""
_OWNED = re.compile(r"\.(?:tmp|old)-(?P<host>[A-Za-z0-9_]+)-p(?P<pid>[0-9]+)-t(?P<time>[0-9]+)-[0-9a-f]+$")
_UNOWNED = re.compile(r"\.(?:tmp|old)-[0-9a-f]{12}$")  # written before the names told their owner
_MEMORY_LOCK = threading.Lock()  # fsspec's memory filesystem has no exclusive create
_MEMORY_TAKEOVER = threading.Lock()  # ... nor file locks


def _host_label():
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:40] or "host"


def owned_suffix():
    """``<host>-p<pid>-t<epoch s>-<hex>``: the end of every temporary name of an export, telling
    who made it and when (:func:`remove_leftovers` reads it back)."""
    return f"{_host_label()}-p{os.getpid()}-t{int(time.time())}-{uuid.uuid4().hex[:8]}"


def _leftover_reason(fs, path, name):
    """Why the temporary entry ``name`` (at ``path``) is a left-over of a stopped export, or ""."""
    owned = _OWNED.search(name)
    if owned is not None:
        age = time.time() - int(owned["time"])
        if owned["host"] == _host_label() and not _process_alive(int(owned["pid"])):
            return f"process {owned['pid']} of this host is gone"
    elif _UNOWNED.search(name):
        info = fs.info(path)
        age = time.time() - float(info.get("mtime", info.get("created", time.time())))
    else:
        return ""
    return f"{age / 3600:.0f} h old" if age > LEFTOVER_STALE_AFTER_S else ""


def remove_leftovers(fs, sample_path, tag, zip_path, label):
    """Remove the temporary folders (``.<tag>.tmp-``/``.old-``) and zips of ``zip_path`` left by
    stopped exports of one result: their process is gone (same host) or they are older than
    :data:`LEFTOVER_STALE_AFTER_S`. One :class:`~eqegs_repo.errors.CleanupWarning` names what was
    removed, or what could not be; those of running exports are left alone."""
    directory, zip_name = zip_path.rsplit("/", 1)
    removed, failed = [], []
    for folder, prefix in ((sample_path, f".{tag}."), (directory, f".{zip_name}.tmp-")):
        try:
            entries = fs.ls(folder, detail=False) if fs.isdir(folder) else []
        except OSError:
            continue
        for path in entries:
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if not name.startswith(prefix):
                continue
            try:
                reason = _leftover_reason(fs, path, name)
                if reason:
                    fs.rm(path, recursive=True)
                    removed.append(f"{name} ({reason})")
            except FileNotFoundError:
                continue  # removed meanwhile
            except OSError as exc:
                failed.append(f"{name} ({getattr(exc, 'strerror', None) or exc})")
    if removed or failed:
        warnings.warn(f"export of {label}: " + "; ".join(
            ([f"removed {len(removed)} left-over(s) of stopped exports in {sample_path}: " + ", ".join(removed)]
             if removed else [])
            + ([f"could not remove {', '.join(failed)}"] if failed else [])), CleanupWarning, stacklevel=3)
    return removed


class Staging:
    """A hidden temporary folder next to the target that the step's files are written into,
    ``<sample>/.<tag>.tmp-<host>-p<pid>-t<time>-<hex>`` (:func:`owned_suffix`)."""

    def __init__(self, fs, sample_path, target):
        self.fs = fs
        self.tag = names.hidden_tag(target.step, target.subdir)
        self.path = f"{sample_path}/.{self.tag}.tmp-{owned_suffix()}"
        self.written = []
        fs.makedirs(self.path, exist_ok=True)

    def open(self, relative):
        parent = f"{self.path}/{relative}".rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        self.written.append(relative)
        return self.fs.open(f"{self.path}/{relative}", "wb")

    def write(self, relative, payload):
        """Write ``payload`` (bytes or str) to ``relative``."""
        with self.open(relative) as f:
            f.write(payload.encode("utf-8") if isinstance(payload, str) else payload)

    def discard(self):
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)


def write_zip(fs, staging, zip_path):
    """Zip the staged ``dl/`` (entries ``dl/...``) to a temporary name next to ``zip_path``;
    returns that name."""
    fs.makedirs(zip_path.rsplit("/", 1)[0], exist_ok=True)
    directory, name = zip_path.rsplit("/", 1)
    temporary = f"{directory}/.{name}.tmp-{owned_suffix()}"
    base = f"{staging.path}/{names.DL}"
    with fs.open(temporary, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(fs.find(base)):
            archive.writestr(f"{names.DL}/{path[len(base) + 1:]}", fs.cat_file(path))
    return temporary


def move(fs, source, destination):
    """One rename of publishing (a separate function so that tests can stop a writer here)."""
    fs.mv(source, destination, recursive=True)


def move_into(fs, staging, folder, old_entries, sample_path):
    """Move the staged entries into ``folder`` by renames, replacing ``old_entries``; ``dl``
    (with info.json) leaves first and arrives last. A missing folder is one rename."""
    if not fs.exists(folder):
        fs.makedirs(folder.rsplit("/", 1)[0], exist_ok=True)
        move(fs, staging.path, folder)
        return
    old = f"{sample_path}/.{staging.tag}.old-{owned_suffix()}"
    fs.makedirs(old, exist_ok=True)
    for name in sorted(old_entries, key=lambda n: n != names.DL):
        move(fs, f"{folder}/{name}", f"{old}/{name}")
    for name in sorted(own_entries(fs, staging.path, False), key=lambda n: n == names.DL):
        move(fs, f"{staging.path}/{name}", f"{folder}/{name}")
    fs.rm(old, recursive=True)
    staging.discard()


# --- the claim -------------------------------------------------------------------------------
def create_exclusive(fs, path, payload):
    """Create ``path`` holding ``payload`` unless it exists (FileExistsError then)."""
    if isinstance(fs, MemoryFileSystem):
        with _MEMORY_LOCK:
            if fs.exists(path):
                raise FileExistsError(path)
            fs.pipe_file(path, payload)
        return
    try:
        with fs.open(path, "xb") as f:
            f.write(payload)
    except (ValueError, NotImplementedError):  # no exclusive mode: best effort
        if fs.exists(path):
            raise FileExistsError(path) from None
        fs.pipe_file(path, payload)


@contextlib.contextmanager
def takeover_lock(fs, sample_path, label):
    """Hold the lock under which a stale claim of ``sample_path`` is taken over: an exclusive
    ``flock`` of ``<sample>/``:data:`~eqegs_repo.io.app_format.names.TAKEOVER_LOCK` on a local
    filesystem (released by the system when its process dies, so it is never stale), a lock of
    this process for fsspec's memory filesystem. Waits at most :data:`TAKEOVER_WAIT_S`, then
    raises :class:`Busy`. Other filesystems have no lock: a takeover there is best effort."""
    if isinstance(fs, MemoryFileSystem):
        with _MEMORY_TAKEOVER:
            yield
        return
    if not isinstance(fs, LocalFileSystem):
        yield
        return
    import fcntl

    descriptor = os.open(f"{sample_path}/{names.TAKEOVER_LOCK}", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + TAKEOVER_WAIT_S
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Busy(f"{label}: another export kept {sample_path}/{names.TAKEOVER_LOCK} locked "
                               f"for {TAKEOVER_WAIT_S:g} s while taking a stopped export's claim over") from None
                time.sleep(0.005)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _read_claim(fs, path):
    """``(holder dict or None, age in s)``; None holder for an unreadable or empty claim."""
    try:
        info = fs.info(path)
        holder = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        raise
    except (OSError, ValueError):
        holder, info = None, {}
    started = holder.get("started") if isinstance(holder, dict) else info.get("mtime", info.get("created"))
    try:
        age = time.time() - float(started)
    except (TypeError, ValueError):
        age = 0.0
    return (holder if isinstance(holder, dict) else None), age


def is_stale(holder, age):
    """Whether a claim's writer is gone: its process ended (same host), or the claim is older
    than :data:`STALE_AFTER_S`; an unreadable claim is stale after a few seconds."""
    if age > STALE_AFTER_S:
        return True
    if holder is None:
        return age > 5.0
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        return not _process_alive(holder["pid"])
    return False


class Busy(BadInput):
    """Another export is publishing the same result right now."""


class Claim:
    """The exclusive right to publish one result (see the module docstring).

    :meth:`acquire` returns True when it took over a stale claim (the result in place is then
    left-overs of a stopped writer). Raises :class:`Busy` when a live export holds it.
    """

    def __init__(self, fs, sample_path, step, subdir, label):
        self.fs = fs
        self.path = names.publishing_marker(sample_path, step, subdir)
        self.label = label
        self.held = False

    def acquire(self):
        self.token = uuid.uuid4().hex
        payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                              "token": self.token}).encode("utf-8")
        took_over = False
        for _ in range(3):
            try:
                create_exclusive(self.fs, self.path, payload)
                self.held = True
                return took_over
            except FileExistsError:
                pass
            try:
                holder, age = _read_claim(self.fs, self.path)
            except FileNotFoundError:
                continue  # released meanwhile
            if not is_stale(holder, age):
                who = (f"process {holder.get('pid')} on {holder.get('host')}" if holder else "another export")
                raise Busy(f"{self.label} is being written by another export ({who}, claim {self.path}, "
                           f"{age:.0f} s old); it exists once that export finishes")
            took_over = self._remove_stale() or took_over
        raise Busy(f"{self.label}: could not claim {self.path} (other exports keep claiming it)")

    def _remove_stale(self):
        """Remove the claim if it is still stale, under :func:`takeover_lock`; True if removed."""
        with takeover_lock(self.fs, self.path.rsplit("/", 1)[0], self.label):
            try:
                holder, age = _read_claim(self.fs, self.path)
            except FileNotFoundError:
                return False  # released or taken over meanwhile
            if not is_stale(holder, age):
                return False  # another export took it over first: it holds it now
            aside = f"{self.path}.stale-{uuid.uuid4().hex[:12]}"
            try:
                self.fs.mv(self.path, aside)
            except FileNotFoundError:
                return False
            self.fs.rm(aside)
            return True

    def release(self):
        """Remove the claim if it is still this export's own (never another export's)."""
        if self.held:
            self.held = False
            try:
                holder, _ = _read_claim(self.fs, self.path)
            except FileNotFoundError:
                return
            if holder is not None and holder.get("token") == self.token:
                self.fs.rm(self.path)
