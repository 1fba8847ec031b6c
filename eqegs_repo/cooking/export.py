"""Write a step's result as the app's step folder and download zip
(docs/outputs.md#folder-layout-per-step, docs/outputs.md#naming-choices).

``sample.export(step, subdir=None, overwrite=False, skip_existing=False, **overrides)`` calls
:func:`export`: it cooks ``step`` with the overrides (cached, see :mod:`eqegs_repo.cooking.cook`) and
writes ``<sample>/<step>[/<sub>]/`` with the app's file names plus ``dl/info/info.json`` with our
parameters and provenance, then ``<proposal>/download/<zip name>`` holding that folder's ``dl/``.
The file layout of each step and the naming rules are in docs/outputs.md; the format -- names,
each step's writer and reader -- is :mod:`eqegs_repo.io.app_format`, and the cooking side of
each step (what its writer needs, its sub-folders, its figures) is registered in
:mod:`eqegs_repo.cooking.step_cooking`. This module stages, claims and publishes.

Safety: nothing on disk is replaced without ``overwrite=True``, except, with
``replace_stale=True`` (what reanalysis and watch pass), a result this library wrote for the same
overrides but other inputs (:func:`stale_fingerprint`). Everything is written into a
hidden temporary folder next to the target (``<sample>/.<step>[-<sub>].tmp-<host>-p<pid>-t<time>-<hex>``)
and a temporary zip, then published under an exclusive claim (:mod:`eqegs_repo.cooking.publish`):
of two exports of one result exactly one publishes, and a result becomes visible only when it
is complete. A crash leaves hidden temporary files or a result flagged as incomplete, which the
next export (``skip_existing=True`` included) repairs; that export also removes the temporary
folders and zips of the result whose process is gone (:func:`~eqegs_repo.cooking.publish.remove_leftovers`).
"""
import datetime
import io
import json
import warnings
from dataclasses import dataclass, field

from eqegs_repo.cooking.cook import Cooker
from eqegs_repo.cooking.publish import Busy, Claim, Staging, move, move_into, remove_leftovers, write_zip
from eqegs_repo.cooking.step_cooking import cooking_of
from eqegs_repo.errors import BadInput, ResultExists, SkippedWarning, install_hint, optional_import
from eqegs_repo.io.app_format import folder_format, names
from eqegs_repo.io.app_format.reading import incomplete_reason, own_entries
from eqegs_repo.io.app_format.text import json_text, read_json
from eqegs_repo.params.chain import chain_types
from eqegs_repo.params.effective import StepParameters, normalise_overrides
from eqegs_repo.step_table import check_step
from eqegs_repo.step_table import get as declared

# --- naming ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a step's result goes: ``folder`` (path on the sample's filesystem), ``zip`` (path),
    ``subdir`` (the step's sub-folder, "" for the step folder itself) and ``input_subdir``
    (E spectrum: the q-integration sub-folder $QS; "" otherwise)."""

    step: str
    subdir: str
    input_subdir: str
    folder: str
    zip: str

    @property
    def keeps_subfolders(self):
        """True for a step folder that can hold sub-folder results besides its own."""
        return folder_format(self.step).subfolders and not self.subdir

    @property
    def label(self):
        """``step`` or ``step/sub`` (how messages and info.json name the folder)."""
        return f"{self.step}/{self.subdir}" if self.subdir else self.step


def resolve_target(sample, step, params):
    """The :class:`Target` of ``step`` for ``sample`` with :class:`StepParameters` ``params``.

    The sub-folders come from the step's ``folders`` (:mod:`eqegs_repo.cooking.step_cooking`):
    q_integration: ``q_integration.output_subdir``; E spectrum: from
    ``e_spectrum.output_subdir_mode``, with $QS = ``e_spectrum.input_subdir`` or, when that is
    empty, ``q_integration.output_subdir``. Names are validated by the parameter schemas (only
    0-9, a-z, A-Z and _), so a bad name is reported with the record it came from.
    """
    check_step(step)
    found = cooking_of(step).folders(params)
    subdir, input_subdir = found.get("subdir", ""), found.get("input_subdir", "")
    folder = f"{sample.path}/{step}" + (f"/{subdir}" if subdir else "")
    download = f"{sample.proposal.path}/{sample.layout.download_dir}"
    zip_name = names.check_file_name(names.zip_name(step, sample.key, found.get("q_subdir", ""),
                                                    found.get("e_subdir", "")),
                                     f"the download zip of {step} of {sample.proposal.key}/{sample.key}")
    return Target(step, subdir, input_subdir, folder, f"{download}/{zip_name}")


def _with_subdir(step, subdir, overrides):
    """Route export's ``subdir`` through the output-folder parameters (validated like them)."""
    if subdir is None:
        return overrides
    if not isinstance(subdir, str):
        raise BadInput(f"export subdir must be a folder name (str) or None, found {subdir!r}")
    out = {t: dict(v) for t, v in overrides.items()}
    routes = cooking_of(step).subdir_overrides
    if routes is None:
        if subdir:
            raise BadInput(f"export subdir={subdir!r}: the {step} step has no sub-folders "
                           "(docs/outputs.md#naming-choices)")
        return out
    for type_name, values in routes(subdir).items():
        out.setdefault(type_name, {}).update(values)
    return out


def _figures(step, cooker, ds):
    """``{file name: function() -> Figure}`` of the figures written to dl/fig/ (manual numbers,
    see :func:`eqegs_repo.figures.export_figures`)."""
    upstream = declared(step).upstream
    return cooking_of(step).figures(ds, cooker.dataset(upstream) if upstream else None)


def can_draw():
    """True when matplotlib is installed (figures are written to dl/fig/ only then)."""
    return optional_import("matplotlib", "figures", required=False) is not None


def _write_figures(stage, step, cooker, ds):
    """Draw the step's figures into dl/fig/; returns their paths relative to the step folder."""
    written = []
    for name, draw in _figures(step, cooker, ds).items():
        buffer = io.BytesIO()
        draw().savefig(buffer, format="png", dpi=100)
        written.append(f"{names.FIG_DIR}/{name}")
        stage.write(written[-1], buffer.getvalue())
    return written


def info_record(cooker, ds, target, written):
    """The content of dl/info/info.json (see docs/outputs.md)."""
    sample, params, step = cooker.sample, cooker.params, target.step
    behaviour = cooking_of(step)
    types = chain_types(step) + behaviour.export_types
    record = {"format": names.INFO_FORMAT, "step": step, "proposal": sample.proposal.key, "sample": sample.key,
              "folder": target.label, "subdir": target.subdir, "zip": target.zip.rsplit("/", 1)[-1],
              "written_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "library_version": ds.attrs["library_version"], "fingerprint": ds.attrs["fingerprint"],
              "parameters": {t: params.values(t) for t in types},
              "spice": ds.attrs["spice"], "overrides": ds.attrs["overrides"], "input": ds.attrs["input"],
              "attrs": {k: v for k, v in ds.attrs.items() if k not in names.PROVENANCE_ATTRS},
              "files": sorted(written)}
    record.update(behaviour.info(cooker, target))
    return record


# --- export ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exported:
    """What :func:`export` did: the step ``folder`` and ``zip`` (paths on the sample's
    filesystem), the sub-folder names, ``skipped`` (left alone because it existed), the
    cooked ``dataset`` (None when skipped), ``figures`` (the dl/fig/ files written, relative to
    the folder), ``notes`` (what was left out and why, e.g. the figures without matplotlib, and
    what was replaced) and ``replaced`` (the fingerprint of the stale result this export
    replaced, "" when none)."""

    step: str
    folder: str
    zip: str
    subdir: str
    input_subdir: str
    skipped: bool
    dataset: object = field(default=None, repr=False)
    figures: tuple = ()
    notes: tuple = ()
    replaced: str = ""


def recorded_info(fs, folder):
    """The ``dl/info/info.json`` this library wrote into ``folder`` (a dict with its
    ``fingerprint``), or None: a folder of the app, without info.json, or unreadable."""
    path = f"{folder}/{names.INFO_JSON}"
    try:
        info = read_json(fs, path) if fs.exists(path) else None
    except (BadInput, OSError):
        return None
    if isinstance(info, dict) and info.get("format") == names.INFO_FORMAT and isinstance(info.get("fingerprint"), str):
        return info
    return None


def stale_reason(sample, step, folder):
    """Why the exported result of ``step`` in ``folder`` is stale, or "": this library wrote it
    for a fingerprint other than the one its own recipe gives now (the sample's spice now, the
    overrides recorded in its info.json, the raw files and library version now). The app's
    folders are never stale (they record no fingerprint)."""
    info = recorded_info(sample.fs, folder)
    if info is None:
        return ""
    overrides = info.get("overrides") if isinstance(info.get("overrides"), dict) else {}
    params = StepParameters(sample.spice, overrides, label=f"{sample.proposal.key}/{sample.key}")
    now = Cooker(sample, params).key(step)
    if now == info["fingerprint"]:
        return ""
    return (f"exported {info.get('written_utc', '')} for fingerprint {info['fingerprint'][:12]}; "
            f"its inputs now give {now[:12]}")


def stale_fingerprint(fs, target, cooker):
    """The fingerprint of the result in ``target.folder`` when ``replace_stale`` may replace it,
    else "": this library wrote it with the same overrides as ``cooker``'s but its fingerprint
    differs from the current one (a spice record, the raw files or the library changed). A
    result written with other overrides, or by the app, is never stale in this sense."""
    info = recorded_info(fs, target.folder)
    if info is None or info["fingerprint"] == cooker.key(target.step):
        return ""
    same = json.dumps(info.get("overrides"), sort_keys=True, default=str) == json.dumps(
        cooker.params.overrides_for(chain_types(target.step)), sort_keys=True, default=str)
    return info["fingerprint"] if same else ""


def export_needed(sample, step, subdir=None, **overrides):
    """Whether ``export(sample, step, subdir, skip_existing=True, replace_stale=True, **overrides)``
    would write: no complete result at its folder, or a stale one of the same overrides
    (:func:`stale_fingerprint`). Nothing is cooked."""
    normalised = _with_subdir(step, subdir, normalise_overrides(overrides))
    params = StepParameters(sample.spice, normalised, label=f"{sample.proposal.key}/{sample.key}")
    target = resolve_target(sample, step, params)
    if not _existing(sample.fs, sample.path, target):
        return True
    return bool(stale_fingerprint(sample.fs, target, Cooker(sample, params)))


def _existing(fs, sample_path, target, claimed=False, stale=False):
    """Paths of the target's folder and zip that hold a complete result. An incomplete folder
    (:func:`~eqegs_repo.io.app_format.reading.incomplete_reason`, or the left-overs of a writer whose
    claim was ``stale``) and its zip do not count: an export repairs them. ``claimed``: this
    export holds the claim (its marker says nothing about the result then)."""
    if stale or incomplete_reason(fs, sample_path, target.step, target.subdir, target.folder, marker=not claimed):
        return []
    found = []
    if own_entries(fs, target.folder, target.keeps_subfolders):
        found.append(target.folder)
    if fs.exists(target.zip):
        found.append(target.zip)
    return found


def _exists_error(existing, target, sample):
    return ResultExists(f"{' and '.join(existing)} already exist(s) (result of {target.label} for "
                        f"{sample.proposal.key}/{sample.key}); pass overwrite=True to replace, or "
                        "skip_existing=True to leave it", existing)


def _write_staged(stage, cooker, ds, target, notes=()):
    """Write every file of the result into ``stage``; info.json and the log last. Returns
    ``(figures written, notes)``: ``notes`` given, then what was left out and why (also warned as
    :class:`~eqegs_repo.errors.SkippedWarning`); the log lists them all."""
    sample, step = cooker.sample, target.step
    folder_format(step).write(stage, ds, cooking_of(step).folder_inputs(cooker, ds))
    figures, notes = [], list(notes)
    if can_draw():
        figures = _write_figures(stage, step, cooker, ds)
    else:
        notes.append(f"figures skipped: drawing them needs matplotlib ({install_hint('matplotlib')})")
        warnings.warn(f"export of {target.label} for {sample.proposal.key}/{sample.key}: {notes[-1]}",
                      SkippedWarning, stacklevel=3)
    written = list(stage.written) + [names.INFO_JSON, names.LOG_FILE]
    record = info_record(cooker, ds, target, written)
    stage.write(names.INFO_JSON, json_text(record))
    stage.write(names.LOG_FILE, f"{record['written_utc']} eqegs_repo {record['library_version']}: exported "
                                f"{target.label} of {sample.proposal.key}/{sample.key} (fingerprint "
                                f"{record['fingerprint']})\n" + "".join(f"  {n}\n" for n in sorted(written))
                                + "".join(f"  note: {n}\n" for n in notes))
    return figures, notes


def _publish(fs, stage, target, temporary_zip, sample, overwrite, replacing=""):
    """Move the staged result and its zip into place under the target's claim. Returns False,
    publishing nothing, when a complete result is there and ``overwrite`` is False, unless it is
    still the stale result of fingerprint ``replacing``."""
    claim = Claim(fs, sample.path, target.step, target.subdir, f"{target.label} of {sample.proposal.key}/{sample.key}")
    stale = claim.acquire()
    half_done = False  # once moving started, a failure keeps the claim: the result stays flagged incomplete
    try:
        existing = _existing(fs, sample.path, target, claimed=True, stale=stale)
        still_stale = replacing and (recorded_info(fs, target.folder) or {}).get("fingerprint") == replacing
        if existing and not overwrite and not still_stale:
            return False
        half_done = True
        move_into(fs, stage, target.folder, own_entries(fs, target.folder, target.keeps_subfolders), sample.path)
        move(fs, temporary_zip, target.zip)
        half_done = False
    finally:
        if not half_done:
            claim.release()
    return True


def _unwritable(exc, sample):
    """BadInput for a write the filesystem refused (read-only tree, zip archive, full disk)."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    path = getattr(exc, "filename", None)
    return BadInput(f"cannot write the result into {sample.path}: {reason}" + (f" ({path})" if path else ""))


def export(sample, step, subdir=None, overwrite=False, skip_existing=False, use_cache=True, replace_stale=False,
           **overrides):
    """Write ``sample.cook(step, **overrides)`` as the app's step folder and download zip.

    ``subdir``: sub-folder of q_integration / e_spectrum_and_isf, instead of the one the
    parameters give ("" for the step folder itself); it is validated like
    ``q_integration.output_subdir``. ``overwrite``: replace an existing result (folder and
    zip); ``skip_existing``: leave an existing result alone and return with ``skipped=True``;
    with neither, an existing result raises BadInput naming it. An incomplete result (a stopped
    export) does not count as existing: it is replaced. Another export publishing the same
    result at the same time makes this one raise, or skip with ``skip_existing``.
    ``replace_stale``: replace an existing result that this library wrote with the same
    overrides for other inputs (:func:`stale_fingerprint`: a spice record, a raw file or the
    library changed since), by the same staged, claimed publishing (the old entries are removed
    only once the new ones are in place); its fingerprint is in ``Exported.replaced`` and a
    note, and the new log says what it replaced. Returns :class:`Exported`.
    """
    check_step(step)
    if overwrite and skip_existing:
        raise BadInput("export: overwrite=True and skip_existing=True contradict each other; choose one")
    normalised = _with_subdir(step, subdir, normalise_overrides(overrides))
    params = StepParameters(sample.spice, normalised, label=f"{sample.proposal.key}/{sample.key}")
    target = resolve_target(sample, step, params)
    fs = sample.fs
    skipped = Exported(step, target.folder, target.zip, target.subdir, target.input_subdir, True)
    cooker = Cooker(sample, params, use_cache=use_cache)
    existing = _existing(fs, sample.path, target)
    replacing = stale_fingerprint(fs, target, cooker) if existing and replace_stale and not overwrite else ""
    if existing and skip_existing and not replacing:
        return skipped
    if cooker.run.kind == "app_reconstruction" and cooker.run.path.startswith(target.folder + "/"):
        raise BadInput(f"{target.folder}: the {target.label} result of {sample.proposal.key}/{sample.key} holds "
                       f"{cooker.run.path}, the input of this cook (reconstruction.input "
                       f"{params['reconstruction']['input']}); it is never replaced by a result made from it")
    if existing and not overwrite and not replacing:
        raise _exists_error(existing, target, sample)
    ds = cooker.dataset(step)
    try:
        remove_leftovers(fs, sample.path, names.hidden_tag(target.step, target.subdir), target.zip,
                         f"{target.label} for {sample.proposal.key}/{sample.key}")
        stage = Staging(fs, sample.path, target)
    except (OSError, ValueError, NotImplementedError) as exc:  # a read-only tree
        raise _unwritable(exc, sample) from None
    temporary_zip = None
    try:
        figures, notes = _write_staged(stage, cooker, ds, target,
                                       [f"replaces the stale result of fingerprint {replacing}"] if replacing else [])
        temporary_zip = write_zip(fs, stage, target.zip)
        published = _publish(fs, stage, target, temporary_zip, sample, overwrite, replacing)
    except Busy:
        if skip_existing:
            return skipped
        raise
    except (OSError, NotImplementedError) as exc:
        raise _unwritable(exc, sample) from None
    finally:
        stage.discard()
        if temporary_zip is not None and fs.exists(temporary_zip):
            fs.rm(temporary_zip)
    if not published:
        if skip_existing:
            return skipped
        raise _exists_error(_existing(fs, sample.path, target) or [target.folder], target, sample)
    return Exported(step, target.folder, target.zip, target.subdir, target.input_subdir, False, ds,
                    tuple(figures), tuple(notes), replacing)
