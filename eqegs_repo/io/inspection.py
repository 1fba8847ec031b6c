"""Why a folder opens or not: ``eqegs inspect PATH`` and ``eqegs_repo.inspect(PATH)``.

:func:`inspect` looks at one sample folder the way :func:`eqegs_repo.io.run.open_run` does and
reports it as an :class:`Inspection`: the files it found, the marker and its problem, every
registered raw-data format (:func:`eqegs_repo.io.formats.raw_formats`) in the order ``open_run``
asks them and what each said (a format that does not claim the folder says why through
:func:`eqegs_repo.io.formats.why_not`; one that claims it is opened and checked against the
marker like ``sample.raw``, and its error is its reason), what is missing and which readable
layout is closest. Only listings, the marker, the formats' headers and the drive waveform are
read. See docs/layout.md#when-a-folder-does-not-open.
"""
import os
from dataclasses import asdict, dataclass, field

import fsspec

from eqegs_repo import step_table
from eqegs_repo.errors import BadInput, BadSample
from eqegs_repo.io import formats
from eqegs_repo.io.app_format import reconstruction as app_reconstruction
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.io.layout import TreeLayout, find_sample_folders, read_marker
from eqegs_repo.io.run import Run, run_file_sizes

MAX_ENTRIES = 500
"""Entries listed at most (the folder and its sub-folders one level down)."""
MAX_SHOWN = 40
"""Entries shown in the text of a report (all are in :meth:`Inspection.to_dict`)."""


@dataclass
class Entry:
    """One entry of the inspected folder: ``kind`` is ``"file"``, ``"folder"``, ``"step
    folder"`` (the results of a cooking step, not looked into), ``"hidden folder"`` or
    ``"other"`` (a FIFO, socket, device or dangling link); ``size`` in bytes (files),
    ``entries`` the number of entries (folders; None for a folder two levels down, not listed)."""

    kind: str
    size: int = 0
    entries: int | None = 0

    def __str__(self):
        if self.kind == "file":
            return f"{self.size:,} bytes"
        if self.entries is None:
            return f"{self.kind} (not looked into)"
        if self.kind in ("folder", "step folder", "hidden folder"):
            return f"{self.kind}, {self.entries} entries"
        return "not a regular file or folder (never read)"


@dataclass
class FormatVerdict:
    """What one registered format said about the folder.

    ``claims``: its ``guess_can_open`` said yes; ``reads``: it opened the run and the arrays
    agree with the marker; ``reason``: why it does not read the folder (empty when it does);
    ``expected``: the files of its run relative to the folder (empty when they cannot be
    listed, e.g. without a valid marker); ``missing``: those of ``expected`` not found;
    ``elsewhere``: ``{expected file: path where a file of that name was found instead}``;
    ``score``: how close the folder is to the format's layout (1 for a claim, plus the fraction
    of its files present, plus half the fraction found elsewhere).
    """

    name: str
    claims: bool
    reads: bool
    reason: str
    expected: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    elsewhere: dict = field(default_factory=dict)
    score: float = 0.0


@dataclass(repr=False)
class Inspection:
    """The report of :func:`inspect`; ``str()`` and ``repr()`` give its text (what ``eqegs
    inspect`` prints, and what a notebook shows).

    ``readable``: ``sample.raw`` would open (``format`` names the format that reads it and
    ``summary`` gives frames, sensors, sensor shape, dtype and the run's files); ``entries``:
    ``{path relative to the folder: Entry}``; ``marker``: the validated marker or None, with
    ``marker_problem``; ``verdicts``: one :class:`FormatVerdict` per registered format, in the
    order ``open_run`` asks them; ``closest``: the format whose layout the folder is closest to;
    ``missing``: what to add for it to be read; ``notes``: further hints.
    """

    path: str
    readable: bool
    format: str | None
    entries: dict
    marker: dict | None
    marker_problem: str
    verdicts: list
    closest: str | None
    missing: list
    summary: dict
    notes: list

    def to_dict(self):
        """The report as plain JSON-ready values."""
        out = asdict(self)
        out["entries"] = {name: asdict(entry) for name, entry in self.entries.items()}
        return out

    def __str__(self):
        lines = [f"{self.path}: " + (f"readable as {self.format}" if self.readable else "not readable")]
        if self.readable:
            s = self.summary
            rows, cols = s["sensor_shape"]
            lines.append(f"  {s['frames']} frames, {s['sensors']} sensors of {rows} x {cols}, {s['dtype']}; "
                         f"{len(s['files'])} files, {s['raw_bytes']:,} bytes")
        lines.append(f"entries ({len(self.entries)}{'+' if len(self.entries) >= MAX_ENTRIES else ''}):")
        width = min(48, max((len(n) for n in self.entries), default=0) + 2)
        lines += [f"  {name:<{width}} {entry}" for name, entry in list(self.entries.items())[:MAX_SHOWN]]
        if len(self.entries) > MAX_SHOWN:
            lines.append(f"  ... and {len(self.entries) - MAX_SHOWN} more")
        if not self.entries:
            lines.append("  (none)")
        if self.marker is not None:
            m = self.marker
            lines.append(f"marker: ok ({m['n_frames']} frames, {m['n_sensors']} sensors of "
                         f"{m['sensor_shape'][0]} x {m['sensor_shape'][1]})")
        else:
            lines.append(f"marker: {self.marker_problem}")
        lines.append("formats, in the order they are asked:")
        width = max(len(v.name) for v in self.verdicts)
        for v in self.verdicts:
            said = "reads it" if v.reads else f"refused: {v.reason}"
            lines.append(f"  {v.name:<{width}}  {said}")
            lines += [f"  {'':<{width}}  found {where}, expected {name}" for name, where in v.elsewhere.items()]
        if not self.readable:
            if self.missing:
                shown = self.missing[:8] + ([f"... ({len(self.missing) - 8} more)"] if len(self.missing) > 8 else [])
                lines.append("missing: " + ", ".join(shown))
            if self.closest is not None:
                lines.append(f"closest readable layout: {self.closest}")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    __repr__ = __str__


def inspect(path, *, layout=None, storage_options=None):
    """The :class:`Inspection` of the sample folder ``path`` (a path, ``os.PathLike`` or
    fsspec URL; ``storage_options`` go to fsspec; ``layout``: a
    :class:`~eqegs_repo.io.layout.TreeLayout` for other file names).

    Raises :class:`~eqegs_repo.errors.BadInput` when ``path`` does not exist or is not a
    folder; everything else, a broken marker or a format's error included, is in the report.
    """
    layout = layout or TreeLayout()
    fs, folder = fsspec.core.url_to_fs(os.fspath(path), **(storage_options or {}))
    folder = folder.rstrip("/") or "/"
    try:
        kind = fs.info(folder).get("type")
    except FileNotFoundError:
        raise BadInput(f"{folder}: no such folder") from None
    except OSError as exc:
        raise BadInput(f"{folder}: cannot be read ({exc})") from None
    if kind != "directory":
        found = "a file" if kind == "file" else "neither a file nor a folder (a FIFO, socket or device?)"
        raise BadInput(f"{folder}: expected a sample folder, found {found}")
    entries, names = _listing(fs, folder)
    try:
        marker, marker_problem = read_marker(fs, layout.found_marker_path(fs, folder)), ""
    except BadSample as exc:
        marker, marker_problem = None, str(exc)

    registered = formats.raw_formats()
    order = [f for name, f in registered.items() if name != formats.DEFAULT_FORMAT] + [registered[formats.DEFAULT_FORMAT]]
    verdicts = [_verdict(fmt, fs, folder, names, entries, marker, layout) for fmt in order]
    chosen = next((v for v in verdicts if v.claims), verdicts[-1])
    if not chosen.claims and marker is not None:  # open_run reads an unclaimed folder as the default
        _open(order[-1], fs, folder, marker, layout, chosen)
    for v in verdicts:
        if v is not chosen and v.claims and v.reads:
            v.reads = False
            v.reason = f"it would read the folder, but {chosen.name} claims it first"
    readable = marker is not None and chosen.reads
    closest = chosen if readable else max(reversed(verdicts), key=lambda v: v.score)
    missing = [] if readable else _missing(layout, marker, marker_problem, closest)
    summary = _summary(fs, folder, marker, layout, order[verdicts.index(chosen)]) if readable else {}
    notes = [] if readable else _notes(fs, folder, layout, entries, marker_problem, verdicts, registered)
    app_stack = None if readable else _app_stack_note(fs, folder, marker)
    notes += [app_stack] if app_stack else []
    return Inspection(path=folder, readable=readable, format=chosen.name if readable else None,
                      entries=entries, marker=marker, marker_problem=marker_problem, verdicts=verdicts,
                      closest=closest.name, missing=missing, summary=summary, notes=notes)


def _listing(fs, folder):
    """``(entries, names)``: ``{relative name: Entry}`` of ``folder`` and of its sub-folders one
    level down (step and hidden folders counted, not listed), in sorted order, at most
    :data:`MAX_ENTRIES`; ``names``, the names of all of ``folder``'s own entries (what the
    formats' ``guess_can_open`` is given, as in ``open_run``)."""
    top = _ls(fs, folder)
    names = {_name(info) for info in top}
    entries = {}
    for info in top:
        if len(entries) >= MAX_ENTRIES:
            break
        name = _name(info)
        if info.get("type") != "directory":
            entries[name] = _entry(info)
            continue
        inside = _ls(fs, f"{folder}/{name}")
        kind = ("hidden folder" if name.startswith(".") else
                "step folder" if name in step_table.names() else "folder")
        entries[f"{name}/"] = Entry(kind, entries=len(inside))
        if kind == "folder":
            for sub in inside[:MAX_ENTRIES - len(entries)]:
                entries[f"{name}/{_name(sub)}" + ("/" if sub.get("type") == "directory" else "")] = _entry(sub)
    return entries, names


def _ls(fs, folder):
    try:
        return sorted(fs.ls(folder, detail=True), key=lambda info: info["name"])
    except OSError:
        return []


def _name(info):
    return info["name"].rstrip("/").rsplit("/", 1)[-1]


def _entry(info):
    kind = {"file": "file", "directory": "folder"}.get(info.get("type"), "other")
    return Entry(kind, size=int(info.get("size") or 0) if kind == "file" else 0,
                 entries=None if kind == "folder" else 0)


def _verdict(fmt, fs, folder, names, entries, marker, layout):
    """What ``fmt`` says of the folder; a claiming format is opened (:func:`_open`). A plug-in
    that raises is reported, never let through: the report is about every format."""
    verdict = FormatVerdict(fmt.name, claims=False, reads=False, reason="")
    try:
        verdict.claims = bool(fmt.guess_can_open(fs, folder, names, marker or {}, layout))
    except Exception as exc:  # a plug-in's error: its verdict, not the report's failure
        verdict.reason = f"guess_can_open raised {type(exc).__name__}: {exc}"
        return verdict
    if marker is not None:
        try:
            verdict.expected = [p.removeprefix(f"{folder}/") for p in fmt.run_files(fs, folder, marker, layout)]
        except Exception:  # files it cannot list without opening: left out of the score
            verdict.expected = []
    present = {name for name, entry in entries.items() if entry.kind == "file"}
    verdict.missing = [name for name in verdict.expected if name not in present and not _exists(fs, folder, name)]
    by_name = {}
    for name in sorted(present):
        by_name.setdefault(name.rsplit("/", 1)[-1], name)
    verdict.elsewhere = {name: by_name[name.rsplit("/", 1)[-1]] for name in verdict.missing
                         if name.rsplit("/", 1)[-1] in by_name}
    if verdict.expected:
        n = len(verdict.expected)
        verdict.score = (n - len(verdict.missing)) / n + 0.5 * len(verdict.elsewhere) / n
    verdict.score += 1.0 if verdict.claims else 0.0
    if not verdict.claims:
        try:
            verdict.reason = formats.why_not(fmt, fs, folder, names, marker or {}, layout)
        except Exception as exc:  # a plug-in's error
            verdict.reason = f"why_not raised {type(exc).__name__}: {exc}"
    elif marker is None:
        verdict.reason = "it claims the folder, but the marker is not valid (see above)"
    else:
        _open(fmt, fs, folder, marker, layout, verdict)
    return verdict


def _open(fmt, fs, folder, marker, layout, verdict):
    """Open the run with ``fmt`` as ``sample.raw`` does, and read its drive waveform as the
    E-spectrum step does: ``verdict.reads``, or its reason (added to a refusal's reason)."""
    try:
        Run(fs, folder, marker, layout, fmt).read_velocity()
    except (BadSample, BadInput) as exc:
        error = str(exc)
    except Exception as exc:  # a plug-in's error
        error = f"{type(exc).__name__}: {exc}"
    else:
        verdict.reads = True
        return
    verdict.reason = f"{verdict.reason}; read anyway as the default format: {error}" if verdict.reason else error


def _exists(fs, folder, name):
    """Whether ``folder/name`` exists when it lies deeper than the listing went."""
    if name.count("/") < 2:
        return False
    try:
        return fs.isfile(f"{folder}/{name}")
    except OSError:
        return False


def _missing(layout, marker, marker_problem, closest):
    missing = []
    if marker is None:
        missing.append(layout.marker if "not found" in marker_problem else f"a valid {layout.marker}")
    return missing + closest.missing


def _summary(fs, folder, marker, layout, fmt):
    """Frames, sensors, shape, dtype and files of a readable run."""
    run = Run(fs, folder, marker, layout, fmt)
    files = run_file_sizes(fs, run.files)
    return {"format": fmt.name, "frames": marker["n_frames"], "sensors": marker["n_sensors"],
            "sensor_shape": list(marker["sensor_shape"]), "dtype": str(run.stack.dtype),
            "files": files, "raw_bytes": sum(files.values())}


def _app_stack_note(fs, folder, marker):
    """What a cook of a folder whose raw data do not open makes of the app's
    ``reconstruction/reconstruction.npy`` in it (None without one): its header, read like a cook
    reads it (docs/reanalysis.md#from-the-apps-work)."""
    path = app_reconstruction.stack_path(folder)
    if not fs.exists(path):
        return None
    try:
        stack = NpyFile(fs, path)
    except BadSample as exc:
        return f"the app's reconstruction stack is there but cannot be read: {exc}"
    note = (f"the app's {app_reconstruction.STACK_IN_SAMPLE} {stack.shape} of {stack.dtype} is there: a cook "
            "reads it instead of the raw data (reconstruction.input auto), from q integration on")
    if marker is not None and stack.shape[0] != marker["n_frames"]:
        note += f", but its {stack.shape[0]} frames differ from the marker's n_frames {marker['n_frames']}"
    return note


def _notes(fs, folder, layout, entries, marker_problem, verdicts, registered):
    """Hints for an unreadable folder: sample folders below it; files that no format uses when
    the marker is valid and no format claims the folder (a format package not installed?)."""
    marker_valid = not marker_problem
    notes = []
    if "not found" in marker_problem:
        depth, found = find_sample_folders(fs, folder, layout, max_depth=3)
        if found:
            shown = ", ".join(p.removeprefix(f"{folder}/") for p in found[:3])
            notes.append(f"this is not a sample folder: {len(found)} sample folder(s) {depth} level(s) "
                         f"below it ({shown}{', ...' if len(found) > 3 else ''}); inspect one of them")
    used = {layout.marker} | {name for v in verdicts for name in v.expected} | set().union(
        *(v.elsewhere.values() for v in verdicts))
    unknown = [name for name, entry in entries.items()
               if entry.kind == "file" and name not in used and not name.startswith(".")]
    if unknown and marker_valid and not any(v.claims for v in verdicts):
        shown = ", ".join(unknown[:6]) + (f" and {len(unknown) - 6} more" if len(unknown) > 6 else "")
        notes.append(f"no registered format uses {shown}; if a detector's format holds the run, install "
                     f"the package that reads it (entry-point group {formats.ENTRY_POINT_GROUP!r}; "
                     f"registered now: {', '.join(registered)}; docs/formats.md)")
    return notes
