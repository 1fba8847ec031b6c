"""How watch learns that files changed: file events where the filesystem gives them, polling
where it does not (docs/reanalysis.md#watch-mode).

:func:`change_waiter` gives ``wait(seconds)``, which returns after at most ``seconds``: at once
when a file under the watched folder changed (file events), else when the time is up. Either
way watch lists the files after each wait and applies its settle rule, so an event only ends a
wait early; it never decides alone what is cooked. With polling, a sample is cooked one to two
intervals after its last write; with events, one interval after it.

Events come from the ``watchfiles`` package (the ``live`` extra; inotify on Linux) for a folder on
a local filesystem. A network filesystem (NFS, Lustre, GPFS, CIFS, Ceph, FUSE mounts such as
sshfs) does not deliver the events of writes made by other machines -- the beamline's storage is
one -- so there, for a URL that is not a local path, or without watchfiles, watch polls.
:func:`how_changes_are_found` says which, in the words ``eqegs watch`` prints.
"""
import os
import time
import warnings

from eqegs_repo.errors import BadInput, WatchWarning, optional_import

MODES = ("auto", "events", "poll")
"""``changes=`` of :func:`eqegs_repo.watch.watch`: events where possible (``auto``), events or an
error (``events``), polling only (``poll``)."""
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "ceph", "beegfs", "afs",
                       "9p", "glusterfs", "fuse")
"""Filesystem types (``/proc/self/mounts``; ``fuse.*`` included) whose changes made elsewhere
raise no local file event."""


def filesystem_type(path, mounts="/proc/self/mounts"):
    """The type of the filesystem holding ``path`` (e.g. ``"ext4"``, ``"nfs4"``, ``"fuse.sshfs"``),
    from the mount table ``mounts`` (the longest mount point above the path's real path); None
    where there is no such table (not Linux)."""
    try:
        with open(mounts, encoding="utf-8", errors="replace") as table:
            rows = [line.split() for line in table]
    except OSError:
        return None
    real = os.path.realpath(path)
    best, kind = "", None
    for row in rows:
        if len(row) < 3:
            continue
        point = row[1].replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, row[2]
    return kind


def why_no_events(root, *, local, mounts="/proc/self/mounts"):
    """Why file events cannot follow the folder ``root`` (``local``: whether it is on the local
    filesystem, not a URL of fsspec's), or None when they can."""
    if not local:
        return "not a local folder"
    kind = filesystem_type(root, mounts)
    if kind is not None and (kind in NETWORK_FILESYSTEMS or kind.split(".")[0] in NETWORK_FILESYSTEMS):
        return f"{kind} is a network filesystem: writes made by other machines raise no event here"
    if optional_import("watchfiles", "file events", required=False) is None:
        return 'watchfiles is not installed: pip install "eqegs_repo[live]"'
    return None


def how_changes_are_found(root, *, local, mode="auto"):
    """``"file events"`` or ``"polling (<why>)"`` for ``mode`` (:data:`MODES`); BadInput for an
    unknown mode, or for ``"events"`` where there are none."""
    if mode not in MODES:
        raise BadInput(f"changes must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "poll":
        return "polling (asked for)"
    reason = why_no_events(root, local=local)
    if reason is None:
        return "file events"
    if mode == "events":
        raise BadInput(f"changes='events': no file events for {root}: {reason}; use 'auto' or 'poll'")
    return f"polling ({reason})"


def change_waiter(root, interval, *, local, mode="auto", stop=None):
    """``(how, wait)``: :func:`how_changes_are_found` and ``wait(seconds)``, which returns after
    at most ``seconds`` (earlier on a file event under ``root``; ``stop``, a threading.Event,
    ends it too). ``interval`` (s): the longest wait the event watcher is made for. Should the
    events fail (e.g. the kernel's limit of watched folders), one WatchWarning says so and watch
    polls from then on."""
    how = how_changes_are_found(root, local=local, mode=mode)

    def sleep(seconds):
        if stop is not None:
            stop.wait(seconds)
        else:
            time.sleep(seconds)

    if how != "file events":
        return how, sleep
    watchfiles = optional_import("watchfiles", "file events")
    events = [watchfiles.watch(root, stop_event=stop, rust_timeout=max(1, int(interval * 1000)),
                               yield_on_timeout=True, debounce=50, step=10)]

    def wait(seconds):
        if events[0] is None:
            return sleep(seconds)
        try:
            next(events[0], None)
        except (OSError, RuntimeError) as exc:  # e.g. inotify's limit of watched folders
            events[0] = None
            warnings.warn(WatchWarning(f"watch {root}: file events failed ({exc}); polling from now on"),
                          stacklevel=2)
            sleep(seconds)
    return how, wait
