"""Read step folders on disk -- written by the app or by :mod:`eqegs_repo.cooking.export` -- as datasets.

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
import io
import json
import re
from collections.abc import Mapping

import numpy as np
import xarray as xr
from xarray.core import indexing

from eqegs_repo.errors import BadInput, BadSample, KeyNotFound
from eqegs_repo.io import app_names as names
from eqegs_repo.io.app_names import check_step
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.io.frames import LazyArray
from eqegs_repo.io.layout import check_regular_file
from eqegs_repo.naming import natural_sorted

_NUMBER = re.compile(r"^[+-]?(\d|\.\d|nan|inf)", re.I)
_FIT_VARIABLES = (("f_q", "f_q", ""), ("f_q_error", "f_q_error", ""), ("tau", "tau_ns", "ns"),
                  ("tau_error", "tau_error_ns", "ns"), ("beta", "beta", ""), ("beta_error", "beta_error", ""),
                  ("chi2_red", "chi2_red", ""))


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
    check_step(step)
    folder = f"{sample_path}/{step}"
    out = {}
    if own_entries(fs, folder, keeps_subfolders=step != "reconstruction"):
        out["main"] = folder
    if step != "reconstruction" and fs.isdir(folder):
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
    then its sub-folders (not for reconstruction); hidden (temporary) folders and incomplete
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
                       for step in sample.layout.steps}

    def __getitem__(self, step):
        check_step(step)
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


# --- small readers ---------------------------------------------------------------------------
def read_columns(text, path, min_columns):
    """Numbers of a text table as a (rows, columns) float array. Columns are separated by
    commas and/or whitespace; blank lines, ``#`` comments and header lines (not starting with
    a number) are skipped. Raises BadSample naming ``path`` when no rows are found, rows
    differ in length, or there are fewer than ``min_columns`` columns."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or not _NUMBER.match(line):
            continue
        try:
            rows.append([float(v) for v in re.split(r"[,\s]+", line.strip(", \t"))])
        except ValueError:
            raise BadSample(f"{path}, line {number}: expected numbers separated by commas or spaces, "
                            f"found {line[:80]!r}") from None
        if len(rows[-1]) != len(rows[0]):
            raise BadSample(f"{path}, line {number}: {len(rows[-1])} columns but the first row has "
                            f"{len(rows[0])}")
    if not rows:
        raise BadSample(f"{path}: no rows of numbers found")
    if len(rows[0]) < min_columns:
        raise BadSample(f"{path}: expected at least {min_columns} columns, found {len(rows[0])}")
    return np.array(rows)


def _text(fs, path):
    check_regular_file(fs, path)
    try:
        return fs.cat_file(path).decode("utf-8")
    except UnicodeDecodeError:
        raise BadSample(f"{path}: not a text file (UTF-8 expected)") from None


def _json(fs, path):
    try:
        return json.loads(_text(fs, path))
    except ValueError as exc:
        raise BadSample(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BadSample(f"{path}: JSON nested too deeply to read") from None


def _table(fs, folder, relative, min_columns):
    path = f"{folder}/{relative}"
    return read_columns(_text(fs, path), path, min_columns) if fs.exists(path) else None


def _image(fs, folder, relative):
    """A comma-separated image file as (y, x) variable, or None when absent."""
    table = _table(fs, folder, relative, 1)
    return None if table is None else xr.Variable(("y", "x"), table, {"units": "counts"})


def _read_info(fs, folder, step):
    """attrs from dl/info/info.json: ours (format INFO_FORMAT) restored; the app's kept whole in
    ``parameters``; ``{}`` parameters when there is no info.json."""
    path = f"{folder}/{names.INFO_JSON}"
    info = _json(fs, path) if fs.exists(path) else {}
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


def _dl_files(fs, folder):
    """Names of the files directly in ``<folder>/dl`` (relative to ``folder``, natural order)."""
    base = f"{folder}/{names.DL}"
    if not fs.isdir(base):
        return []
    return natural_sorted(f"{names.DL}/{e['name'].rstrip('/').rsplit('/', 1)[-1]}"
                          for e in fs.ls(base, detail=True) if e.get("type") == "file")


def _pick(fs, folder, prefix, attrs, exclude=None):
    """The file ``<prefix>*`` of a folder: the one info.json lists, else the last in natural
    order (all candidates are recorded in ``attrs["candidates"]``); None when there is none."""
    found = [f for f in _dl_files(fs, folder) if f.startswith(prefix) and not (exclude and f.startswith(exclude))]
    if not found:
        return None
    if len(found) > 1:
        attrs.setdefault("candidates", {})[prefix] = found
    listed = [f for f in found if f in attrs.get("files", [])]
    return (listed or found)[-1]


# --- per-step readers ------------------------------------------------------------------------
def _read_reconstruction(fs, folder, attrs):
    data = {}
    image = _image(fs, folder, names.RECONSTRUCTION_CSV)
    if image is not None:
        data["image"] = image
    npy = f"{folder}/{names.RECONSTRUCTION_NPY}"
    if fs.exists(npy):
        stack = NpyFile(fs, npy)
        if len(stack.shape) != 3:
            raise BadSample(f"{npy}: expected a (frames, rows, cols) stack, found shape {stack.shape}")
        data["images"] = xr.Variable(("frame", "y", "x"), indexing.LazilyIndexedArray(LazyArray(stack)),
                                    {"units": "counts", "long_name": "reconstructed image of each frame"})
    if not data:
        raise BadSample(f"{folder}: neither {names.RECONSTRUCTION_CSV} nor {names.RECONSTRUCTION_NPY} found")
    detection = f"{folder}/{names.ROI_DETECTION_JSON}"
    if "roi" not in attrs and fs.exists(detection):
        found = _json(fs, detection)
        if all(k in found for k in ("x0", "y0", "x1", "y1")):
            attrs["roi"] = [found[k] for k in ("x0", "y0", "x1", "y1")]
        attrs["roi_detection"] = found
    marker = f"{folder}/{names.MARKER_COPY}"
    if fs.exists(marker):
        attrs["train_integrated"] = _json(fs, marker)
    return xr.Dataset(data, attrs=attrs)


def _load_npz(fs, path):
    try:
        with np.load(io.BytesIO(fs.cat_file(path)), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as exc:
        raise BadSample(f"{path}: not a readable .npz file ({exc})") from None


def _read_q_integration(fs, folder, attrs):
    path = f"{folder}/{names.RDF_NPZ}"
    if not fs.exists(path):
        raise BadSample(f"{folder}: {names.RDF_NPZ} not found (the q-integration result)")
    rdf = _load_npz(fs, path)
    missing = [k for k in ("q", "I_sum") if k not in rdf]
    if missing:
        raise BadSample(f"{path}: keys {missing} missing; found {sorted(rdf)}")
    q, intensity = np.ravel(rdf["q"]), np.atleast_2d(rdf["I_sum"])
    if intensity.shape[1] != q.size:
        raise BadSample(f"{path}: I_sum has shape {intensity.shape} but q has {q.size} bins; expected "
                        "(frames, bins)")
    n_frames = intensity.shape[0]
    units = {"q": "nm^-1", "two_theta": "rad", "r_px": "px", "npix": "px", "q_mean": "nm^-1"}
    coords = {"q": xr.Variable("q", q, {"units": "nm^-1"}), "frame": np.arange(n_frames)}
    for name in ("two_theta", "r_px", "npix", "q_mean", "normalisation"):
        if name in rdf and np.size(rdf[name]) == q.size:
            coords[name] = xr.Variable("q", np.ravel(rdf[name]), {"units": units[name]} if name in units else {})
    data = {"intensity": xr.Variable(("frame", "q"), intensity, {"units": "counts"})}
    if "var" in rdf and np.shape(rdf["var"]) == intensity.shape:
        data["variance"] = xr.Variable(("frame", "q"), rdf["var"], {"units": "counts^2"})
    for key, name in (("fwd_sample", "forward_sample"), ("fwd_bg", "forward_background")):
        if key in rdf and np.size(rdf[key]) == n_frames:
            data[name] = xr.Variable("frame", np.ravel(rdf[key]), {"units": "counts"})
    if "centre" in rdf and np.size(rdf["centre"]) == 2:
        attrs.setdefault("centre_x", float(rdf["centre"][0]))
        attrs.setdefault("centre_y", float(rdf["centre"][1]))
    for key in ("roi", "sectors", "k", "mask_hash", "param_record_ids", "fingerprint"):
        if key in rdf:
            attrs.setdefault(key, rdf[key].tolist())
    profile = _table(fs, folder, names.RDF_TXT, 2)
    if profile is not None:
        dim = "q" if len(profile) == q.size else "q_profile"
        if dim != "q":
            coords["q_profile"] = xr.Variable(dim, profile[:, 0], {"units": "nm^-1"})
        data["profile"] = xr.Variable(dim, profile[:, 1], {"units": "counts/px"})
        if profile.shape[1] > 2:
            data["profile_sigma"] = xr.Variable(dim, profile[:, 2], {"units": "counts/px"})
    image = _image(fs, folder, names.DIFF_IMAGE_Q_CSV)
    if image is not None:
        data["image_diff"] = image
    mask = f"{folder}/{names.MASK_NPY}"
    if fs.exists(mask):
        data["mask"] = xr.Variable(("y", "x"), NpyFile(fs, mask).read().astype(bool))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _read_e_spectrum(fs, folder, attrs):
    found = _pick(fs, folder, names.ISF_PREFIX, attrs, exclude=names.ISF_THRESH_PREFIX)
    if found is None:
        raise BadSample(f"{folder}: no {names.ISF_PREFIX}* file (the ISF) found")
    isf = _table(fs, folder, found, 3)
    t = isf[:, 0]
    coords = {"t": xr.Variable("t", t, {"units": "ns"})}
    data = {"isf": xr.Variable("t", isf[:, 1]), "isf_sigma": xr.Variable("t", isf[:, 2])}
    thresh = _pick(fs, folder, names.ISF_THRESH_PREFIX, attrs)
    if thresh is not None:
        accepted = np.isin(t, _table(fs, folder, thresh, 1)[:, 0])
        data["accepted"] = xr.Variable("t", accepted)
        data["isf_thresholded"] = xr.Variable("t", np.where(accepted, isf[:, 1], np.nan))
    fit_file = _pick(fs, folder, names.ISF_FIT_PREFIX, attrs)
    if fit_file is not None:
        fit_curve = _table(fs, folder, fit_file, 2)
        if len(fit_curve) == len(t):
            data["isf_fit"] = xr.Variable("t", fit_curve[:, 1])
    fit = attrs.get("fit")
    if isinstance(fit, dict):
        for name, key, unit in _FIT_VARIABLES:
            if key in fit:
                data[name] = xr.Variable((), fit[key], {"units": unit} if unit else {})
    energy = None
    for prefix, label in ((names.RESOL_PREFIX, "forward"), (names.RELAX_PREFIX, "qe")):
        chosen = _pick(fs, folder, prefix, attrs)
        if chosen is None:
            continue
        table = _table(fs, folder, chosen, 2)
        dim = "energy" if energy is None or np.array_equal(energy, table[:, 0]) else f"energy_{label}"
        if energy is None:
            energy = table[:, 0]
        coords[dim] = xr.Variable(dim, table[:, 0], {"units": "neV"})
        data[f"{label}_absorption"] = xr.Variable(dim, table[:, 1])
        if table.shape[1] > 2:
            data[f"{label}_absorption_sigma"] = xr.Variable(dim, table[:, 2])
    structure = _table(fs, folder, names.STRUCTURE_FACTOR_CSV, 2)
    if structure is not None:
        coords["q"] = xr.Variable("q", structure[:, 0], {"units": "nm^-1"})
        data["structure_factor"] = xr.Variable("q", structure[:, 1], {"units": "counts/px"})
        if structure.shape[1] > 2:
            data["structure_factor_sigma"] = xr.Variable("q", structure[:, 2], {"units": "counts/px"})
    image = _image(fs, folder, names.DIFF_IMAGE_E_CSV)
    if image is not None:
        data["image_diff"] = image
    info_dir = f"{folder}/{names.INFO_DIR}"
    copies = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(info_dir, detail=True)
              if e.get("type") == "file"] if fs.isdir(info_dir) else []
    attrs["calibration_copies"] = sorted(c for c in copies if c != names.INFO_JSON.rsplit("/", 1)[-1])
    return xr.Dataset(data, coords=coords, attrs=attrs)


_READERS = {"reconstruction": _read_reconstruction, "q_integration": _read_q_integration,
            "e_spectrum_and_isf": _read_e_spectrum}


def read_folder(fs, folder, step):
    """The result in ``folder`` (a ``step`` folder or one of its sub-folders) as a Dataset."""
    check_step(step)
    if not fs.isdir(folder):
        raise BadInput(f"{folder}: no such result folder")
    ds = _READERS[step](fs, folder, _read_info(fs, folder, step))
    index = {dim: np.arange(ds.sizes[dim]) for dim in ("y", "x", "frame") if dim in ds.dims and dim not in ds.coords}
    return ds.assign_coords(index)
