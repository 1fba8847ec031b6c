"""Reads that are never torn: a file's identity taken when it is opened, checked before and
after each read.

A reader records the :class:`FileIdentity` of a file (device, inode, size in bytes,
modification time in ns) when it reads the file's header. :func:`unchanged` wraps a read: the
open descriptor's identity is compared with the recorded one before and after it, so a file
truncated, rewritten in place or replaced while a reader holds it is one
:class:`~eqegs_repo.errors.BadSample` naming the file and what changed (expected and found
size), never a crash (a memory map of a truncated file kills the process with SIGBUS) or a
silent mix of old and new bytes. :func:`pread_into` fills a buffer with positioned reads.

A rewrite that keeps the size is seen through the modification time, whose resolution is the
filesystem's (on Linux, the kernel's clock tick: a few ms); a file replaced by renaming another
over its name is seen when the reader opens its descriptor (another inode), and reads through a
descriptor opened before stay those of the old file, whole.
"""
import os
from contextlib import contextmanager
from typing import NamedTuple

from eqegs_repo.errors import BadSample


class FileIdentity(NamedTuple):
    """What a file is, from ``os.stat``: a change in any field means other bytes may be read."""

    device: int
    inode: int
    size: int
    """Bytes."""
    mtime_ns: int
    """Modification time, ns since the epoch."""

    @classmethod
    def of(cls, fd):
        """The identity of the open descriptor ``fd`` (``os.fstat``)."""
        st = os.fstat(fd)
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def describe_change(expected, found):
    """What differs between two identities of one file, in words: sizes first."""
    parts = []
    if found.size != expected.size:
        how = "truncated" if found.size < expected.size else "grown"
        parts.append(f"{how}: expected {expected.size} bytes, found {found.size} bytes")
    if (found.device, found.inode) != (expected.device, expected.inode):
        parts.append("replaced by another file (another inode)")
    if found.mtime_ns != expected.mtime_ns:
        parts.append(f"modified (mtime {expected.mtime_ns} ns, now {found.mtime_ns} ns)")
    return "; ".join(parts)


def check_unchanged(fd, path, expected):
    """BadSample naming ``path`` and what changed when the descriptor ``fd`` no longer has the
    identity ``expected`` (the file was rewritten, truncated or replaced since it was opened)."""
    found = FileIdentity.of(fd)
    if found != expected:
        raise BadSample(f"{path}: changed while it was open ({describe_change(expected, found)}); "
                        "nothing read from it is used: open the sample again to read the file as "
                        "it is now")


@contextmanager
def unchanged(fd, path, expected):
    """Run the reads of the ``with`` body on ``fd`` between two :func:`check_unchanged` checks.

    A read that fails (cut short, or an OS error) while the file changed raises the change
    instead, which says why it failed."""
    check_unchanged(fd, path, expected)
    try:
        yield
    except (BadSample, OSError):
        check_unchanged(fd, path, expected)
        raise
    check_unchanged(fd, path, expected)


def pread_into(fd, path, target, offset):
    """Fill the writable byte buffer ``target`` (a ``memoryview`` of ``len(target)`` bytes) from
    byte ``offset`` of ``fd`` with positioned reads (safe from several threads on one
    descriptor); BadSample naming ``path`` when the file ends first."""
    done, size = 0, len(target)
    while done < size:
        n = os.preadv(fd, [target[done:]], offset + done)
        if not n:
            raise BadSample(f"{path}: ended at byte {offset + done}; expected {size} bytes from byte {offset}")
        done += n
