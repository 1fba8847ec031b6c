"""List and read step folders on disk -- written by the app or by :mod:`eqegs_repo.cooking.export` --
as datasets (each step's reader is in its own module of :mod:`eqegs_repo.io.app_format`).

``sample.results`` is a :class:`Results`: a mapping step -> :class:`StepResults`, itself a
mapping from the result's name (``"main"`` for the step folder itself, else the sub-folder
name) to an ``xarray.Dataset`` read on first access. Variable names are those of the cooked
datasets (``intensity``, ``isf``, ``isf_sigma`` ...), so the same code and the same
:mod:`eqegs_repo.figures` work on both. ``.attrs["parameters"]`` holds the parameters read from
``dl/info/info.json``: our ``{type: {field: value}}`` record, or the app's info.json as it is.
Incomplete results (an export still publishing, or stopped: :func:`incomplete_reason`) are left
out and named in ``StepResults.incomplete`` (docs/outputs.md#safety).

What each step's folder gives (missing optional files simply give fewer variables):

* reconstruction: ``image`` (y, x) from reconstruction.csv; ``images`` (frame, y, x) from
  reconstruction.npy, read lazily (only the frames indexed); ``roi`` from info.json or
  roi_detection.json.
* q_integration: rdf.npz (required) -> ``intensity`` (frame, q) from ``I_sum``, ``variance``
  from ``var``, ``forward_sample``/``forward_background`` from ``fwd_sample``/``fwd_bg``,
  coordinates ``q``, ``two_theta``, ``r_px``, ``npix``, ``q_mean``, ``normalisation``;
  ``profile``/``profile_sigma`` from rdf_diff_scattering_noise.txt; ``image_diff`` from
  2Dimage_diff_SCATTERING_NOISE.csv; ``mask`` from mask.npy.
* e_spectrum_and_isf: time_Sq_std_* (required; columns t, F, sigma, whitespace or comma
  separated, header lines skipped) -> ``isf``, ``isf_sigma``; time_Sq_std_THRESH_* ->
  ``accepted``, ``isf_thresholded``; Energyfit_resol_*/Energyfit_relax_* ->
  ``forward_absorption``/``qe_absorption`` (+ ``_sigma``) on ``energy``; ISF_fit_* and the
  fit record of info.json -> ``isf_fit``, ``f_q``, ``tau`` ...; 1D_SCATTERING_intensity.csv ->
  ``structure_factor`` (+ ``_sigma``); 2Dimage_diff.csv -> ``image_diff``.
"""
from collections.abc import Mapping

import numpy as np

from eqegs_repo import step_table
from eqegs_repo.errors import BadInput, BadSample, KeyNotFound
from eqegs_repo.io.app_format import folder_format, names
from eqegs_repo.io.app_format.text import read_json
from eqegs_repo.naming import natural_sorted


# --- finding result folders ------------------------------------------------------------------
def own_entries(fs, folder, keeps_subfolders):
    """Names of the entries of ``folder`` that belong to the result in it: every visible entry,
    or, for a step folder that holds sub-folder results (``keeps_subfolders``), its files and
    ``dl``/``log`` only. Empty when the folder does not exist."""
    if not fs.isdir(folder):
        return []
    out = []
    for entry in fs.ls(folder, detail=True):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if name.startswith("."):
            continue
        if not keeps_subfolders or entry.get("type") != "directory" or name in (names.DL, names.LOG_DIR):
            out.append(name)
    return sorted(out)


def _candidate_folders(fs, sample_path, step):
    """``{name: folder}`` of every folder that holds (part of) a result of ``step``."""
    subfolders = folder_format(step).subfolders
    folder = f"{sample_path}/{step}"
    out = {}
    if own_entries(fs, folder, keeps_subfolders=subfolders):
        out["main"] = folder
    if subfolders and fs.isdir(folder):
        subs = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(folder, detail=True)
                if e.get("type") == "directory"]
        for name in natural_sorted(subs):
            if not name.startswith(".") and name not in (names.DL, names.LOG_DIR):
                out[name] = f"{folder}/{name}"
    return out


def incomplete_reason(fs, sample_path, step, subdir, folder, marker=True):
    """Why the result in ``folder`` is incomplete, or "" when it is complete.

    Incomplete: its publishing marker exists (an export is moving it into place, or one was
    stopped while doing so; not looked at with ``marker=False``), or it was written by this
    library (``log/eqegs_export.log``) but ``dl/info/info.json``, which arrives last, is
    missing. The app's folders count as complete.
    """
    path = names.publishing_marker(sample_path, step, subdir)
    if marker and fs.exists(path):
        return f"being written, or its export was stopped ({path} exists)"
    if fs.exists(f"{folder}/{names.LOG_FILE}") and not fs.exists(f"{folder}/{names.INFO_JSON}"):
        return f"{names.INFO_JSON} is missing (an export was stopped before it finished)"
    return ""


def step_folders(fs, sample_path, step):
    """``({name: folder}, {name: reason})``: the complete results of ``step`` in a sample
    folder and the incomplete ones (see :func:`incomplete_reason`)."""
    complete, incomplete = {}, {}
    for name, folder in _candidate_folders(fs, sample_path, step).items():
        reason = incomplete_reason(fs, sample_path, step, "" if name == "main" else name, folder)
        if reason:
            incomplete[name] = reason
        else:
            complete[name] = folder
    return complete, incomplete


def result_folders(fs, sample_path, step):
    """``{name: folder path}`` of the complete results of ``step`` in a sample folder:
    ``"main"`` when the step folder holds a result of its own (files, ``dl/`` or ``log/``),
    then its sub-folders (for the steps whose format has them); hidden (temporary) folders and incomplete
    results (:func:`step_folders`) are left out."""
    return step_folders(fs, sample_path, step)[0]


class StepResults(Mapping):
    """Results of one step: name (``"main"`` or sub-folder) -> Dataset, each read on first
    access and kept. ``paths`` maps the names to the folders; ``incomplete`` maps the names of
    incomplete results (left out of the mapping) to the reason."""

    def __init__(self, fs, step, paths, incomplete=None):
        self.fs, self.step, self.paths = fs, step, dict(paths)
        self.incomplete = dict(incomplete or {})
        self._loaded = {}

    def __getitem__(self, name):
        if name in self.incomplete:
            raise BadSample(f"{self.step} result {name!r} is incomplete: {self.incomplete[name]}; "
                            "export it again (skip_existing=True or reanalyze(export=True) repairs it)")
        if name not in self.paths:
            raise KeyNotFound(f"{self.step} result", name, list(self.paths))
        if name not in self._loaded:
            self._loaded[name] = read_folder(self.fs, self.paths[name], self.step)
        return self._loaded[name]

    def __contains__(self, name):
        return name in self.paths

    def __iter__(self):
        return iter(self.paths)

    def __len__(self):
        return len(self.paths)

    def __repr__(self):
        broken = f"; incomplete: {', '.join(self.incomplete)}" if self.incomplete else ""
        return f"<{self.step} results: {', '.join(self.paths) or 'none'}{broken}>"


class Results(Mapping):
    """Past results of a sample on disk: step -> :class:`StepResults` (listed when created)."""

    def __init__(self, sample):
        self.sample = sample
        self._steps = {step: StepResults(sample.fs, step, *step_folders(sample.fs, sample.path, step))
                       for step in step_table.names()}

    def __getitem__(self, step):
        step_table.check_step(step)
        return self._steps[step]

    def __contains__(self, step):
        return step in self._steps

    def __iter__(self):
        return iter(self._steps)

    def __len__(self):
        return len(self._steps)

    def __repr__(self):
        found = "; ".join(f"{s}: {', '.join(r)}" + (f" (incomplete: {', '.join(r.incomplete)})" if r.incomplete else "")
                          for s, r in self._steps.items() if len(r) or r.incomplete)
        return f"<results of {self.sample.proposal.key}/{self.sample.key}: {found or 'none'}>"


def _read_info(fs, folder, step):
    """attrs from dl/info/info.json: ours (format INFO_FORMAT) restored; the app's kept whole in
    ``parameters``; ``{}`` parameters when there is no info.json."""
    path = f"{folder}/{names.INFO_JSON}"
    info = read_json(fs, path) if fs.exists(path) else {}
    if not isinstance(info, dict):
        raise BadSample(f"{path}: expected a JSON object, found {type(info).__name__}")
    attrs = {"folder": folder, "step": step}
    if info.get("format") == names.INFO_FORMAT:
        attrs.update(info.get("attrs", {}))
        for key in names.PROVENANCE_ATTRS + ("subdir", "input_subdir", "zip", "written_utc", "files",
                                             "upstream_fingerprint"):
            if key in info:
                attrs[key] = info[key]
        attrs["written_by"] = "eqegs_repo"
    else:
        attrs.update(parameters=info, written_by="app" if info else "unknown")
    return attrs


def read_folder(fs, folder, step):
    """The result in ``folder`` (a ``step`` folder or one of its sub-folders) as a Dataset."""
    reader = folder_format(step).read
    if not fs.isdir(folder):
        raise BadInput(f"{folder}: no such result folder")
    ds = reader(fs, folder, _read_info(fs, folder, step))
    index = {dim: np.arange(ds.sizes[dim]) for dim in ("y", "x", "frame") if dim in ds.dims and dim not in ds.coords}
    return ds.assign_coords(index)
