"""Write a step's result as the app's step folder and download zip (manual §6.3, §7.4, §8.5, §10).

``sample.export(step, subdir=None, overwrite=False, skip_existing=False, **overrides)`` calls
:func:`export`: it cooks ``step`` with the overrides (cached, see :mod:`eqegs_repo.cooking.cook`) and
writes ``<sample>/<step>[/<sub>]/`` with the app's file names plus ``dl/info/info.json`` with our
parameters and provenance, then ``<proposal>/download/<zip name>`` holding that folder's ``dl/``.
The file layout of each step and the naming rules are in docs/outputs.md; the names are the
constants and functions below. :mod:`eqegs_repo.io.app_results` reads such folders back.

Safety: nothing on disk is replaced without ``overwrite=True``. Everything is written into a
hidden temporary folder next to the target (``<sample>/.<step>[-<sub>].tmp-<hex>``) and then
moved into place by renames; the zip is written to a temporary name in ``download/`` and
renamed. A crash leaves at most a hidden temporary folder or file, never a half-written result.
"""
import datetime
import hashlib
import io
import json
import uuid
import warnings
import zipfile
from dataclasses import dataclass, field

import numpy as np

from eqegs_repo.cooking import passes
from eqegs_repo.cooking.cache import json_default
from eqegs_repo.cooking.calibration import CalibrationFolder
from eqegs_repo.cooking.cook import Cooker
from eqegs_repo.errors import BadInput, ResultExists, SkippedWarning, install_hint, optional_import
from eqegs_repo.io import app_names as names
from eqegs_repo.io.app_names import check_step
from eqegs_repo.io.app_results import own_entries
from eqegs_repo.params.chain import chain_types
from eqegs_repo.params.effective import StepParameters, normalise_overrides
from eqegs_repo.steps.sensors import combine

# --- file names (paths relative to the step folder) ------------------------------------------


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
        return self.step != "reconstruction" and not self.subdir

    @property
    def label(self):
        """``step`` or ``step/sub`` (how messages and info.json name the folder)."""
        return f"{self.step}/{self.subdir}" if self.subdir else self.step


def resolve_target(sample, step, params):
    """The :class:`Target` of ``step`` for ``sample`` with :class:`StepParameters` ``params``.

    q_integration: ``q_integration.output_subdir``. E spectrum: the output sub-folder from
    ``e_spectrum.output_subdir_mode`` (``q_range``: :func:`names.q_range_folder`; ``specify``:
    ``output_subdir``, "" for none) and $QS = ``e_spectrum.input_subdir`` or, when that is empty,
    ``q_integration.output_subdir``. Names are validated by the parameter schemas (only
    0-9, a-z, A-Z and _), so a bad name is reported with the record it came from.
    """
    check_step(step)
    q_subdir = e_subdir = ""
    if step != "reconstruction":
        q_subdir = _not_reserved(params, "q_integration", "output_subdir")
    if step == "e_spectrum_and_isf":
        ep = params["e_spectrum"]
        q_subdir = _not_reserved(params, "e_spectrum", "input_subdir") or q_subdir
        if ep["output_subdir_mode"] == "q_range":
            q_range = params["q_range"]
            for name in ("q_min", "q_max"):
                if q_range[name] is None:
                    raise BadInput(f"{params.describe('e_spectrum', 'output_subdir_mode')} names the "
                                   f"folder after the q range, but q_range.{name} is not set for "
                                   f"{params.label}")
            e_subdir = names.q_range_folder(q_range["q_min"], q_range["q_max"])
        else:
            e_subdir = _not_reserved(params, "e_spectrum", "output_subdir")
    subdir = {"reconstruction": "", "q_integration": q_subdir, "e_spectrum_and_isf": e_subdir}[step]
    folder = f"{sample.path}/{step}" + (f"/{subdir}" if subdir else "")
    download = f"{sample.proposal.path}/{sample.layout.download_dir}"
    input_subdir = q_subdir if step == "e_spectrum_and_isf" else ""
    return Target(step, subdir, input_subdir, folder, f"{download}/{names.zip_name(step, sample.key, q_subdir, e_subdir)}")


def _not_reserved(params, type_name, field_name):
    """The value of a sub-folder parameter, refused when it is ``dl`` or ``log`` (the step
    folder's own folders)."""
    value = params[type_name][field_name]
    if value in (names.DL, names.LOG_DIR):
        raise BadInput(f"{params.describe(type_name, field_name)}: {value!r} is the name of the step "
                       "folder's own dl/ or log/ folder; choose another sub-folder name")
    return value


def _with_subdir(step, subdir, overrides):
    """Route export's ``subdir`` through the output-folder parameters (validated like them)."""
    if subdir is None:
        return overrides
    if not isinstance(subdir, str):
        raise BadInput(f"export subdir must be a folder name (str) or None, found {subdir!r}")
    out = {t: dict(v) for t, v in overrides.items()}
    if step == "reconstruction":
        if subdir:
            raise BadInput(f"export subdir={subdir!r}: the reconstruction step has no sub-folders (manual §6.3)")
    elif step == "q_integration":
        out.setdefault("q_integration", {})["output_subdir"] = subdir
    else:
        out.setdefault("e_spectrum", {}).update(output_subdir_mode="specify", output_subdir=subdir)
    return out


# --- text formats ----------------------------------------------------------------------------
def table_text(columns, delimiter=" ", comment="# "):
    """Columns of equal length as text: a header line (names; prefixed by ``comment``), then one
    row per line, each number written as the shortest text that reads back exactly."""
    names = list(columns)
    arrays = [np.asarray(columns[n], dtype=np.float64).ravel().tolist() for n in names]
    lines = [comment + delimiter.join(names)]
    lines += [delimiter.join(map(repr, row)) for row in zip(*arrays)]
    return "\n".join(lines) + "\n"


def image_text(image):
    """A 2D array as comma-separated rows (one image row per line, no header)."""
    rows = np.asarray(image, dtype=np.float64).tolist()
    return "\n".join(",".join(map(repr, row)) for row in rows) + "\n"


def mask_sha256(mask):
    """SHA-256 hex of a mask as (H, W) uint8 bytes in C order (recorded in rdf.npz and q.json)."""
    return hashlib.sha256(np.ascontiguousarray(mask, dtype=np.uint8).tobytes()).hexdigest()


def json_text(record):
    return json.dumps(record, indent=2, default=json_default) + "\n"


# --- staging and publishing ------------------------------------------------------------------
class _Staging:
    """A hidden temporary folder next to the target that the step's files are written into."""

    def __init__(self, fs, sample_path, target):
        self.fs = fs
        self.tag = target.step + (f"-{target.subdir}" if target.subdir else "")
        self.path = f"{sample_path}/.{self.tag}.tmp-{uuid.uuid4().hex[:12]}"
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


def _publish(fs, staging, folder, old_entries, sample_path):
    """Move the staged entries into ``folder`` by renames, replacing ``old_entries``.

    ``dl`` (which holds info.json, the mark of a complete result) leaves first and arrives last.
    """
    if not fs.exists(folder):
        fs.makedirs(folder.rsplit("/", 1)[0], exist_ok=True)
        fs.mv(staging.path, folder, recursive=True)
        return
    old = f"{sample_path}/.{staging.tag}.old-{uuid.uuid4().hex[:12]}"
    fs.makedirs(old, exist_ok=True)
    for name in sorted(old_entries, key=lambda n: n != names.DL):
        fs.mv(f"{folder}/{name}", f"{old}/{name}", recursive=True)
    new = own_entries(fs, staging.path, False)
    for name in sorted(new, key=lambda n: n == names.DL):
        fs.mv(f"{staging.path}/{name}", f"{folder}/{name}", recursive=True)
    fs.rm(old, recursive=True)
    staging.discard()


def _write_zip(fs, staging, zip_path):
    """Zip the staged ``dl/`` (entries ``dl/...``) to a temporary name next to ``zip_path``;
    returns that name."""
    fs.makedirs(zip_path.rsplit("/", 1)[0], exist_ok=True)
    directory, name = zip_path.rsplit("/", 1)
    temporary = f"{directory}/.{name}.tmp-{uuid.uuid4().hex[:12]}"
    base = f"{staging.path}/{names.DL}"
    with fs.open(temporary, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(fs.find(base)):
            archive.writestr(f"{names.DL}/{path[len(base) + 1:]}", fs.cat_file(path))
    return temporary


# --- per-step writers ------------------------------------------------------------------------
def _write_stack(stream, cooker, dtype):
    """Stream the reconstructed (frames, H, W) stack into an open .npy file, block by block."""
    stack, layout = cooker.run.stack, cooker.layout()
    dtype = np.dtype(dtype)
    shape = (stack.shape[1],) + tuple(layout.canvas_shape)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(stream, header)
    canvas = None
    for start, stop, blocks in passes.iter_blocks(stack):
        if canvas is None or canvas.shape[0] != stop - start:
            canvas = np.empty((stop - start,) + tuple(layout.canvas_shape), np.float32)
        combine(blocks, layout, out=canvas)
        values = canvas if dtype == np.float32 else np.rint(canvas).astype(dtype)
        stream.write(np.ascontiguousarray(values).tobytes())


def _write_reconstruction(stage, cooker, ds):
    sample = cooker.sample
    with stage.open(names.RECONSTRUCTION_NPY) as f:
        _write_stack(f, cooker, cooker.params["reconstruction"]["dtype_out"])
    stage.write(names.RECONSTRUCTION_CSV, image_text(ds["image"].values))
    if ds.attrs.get("roi_detection"):
        stage.write(names.ROI_DETECTION_JSON, json_text(ds.attrs["roi_detection"]))
    stage.write(names.MARKER_COPY, sample.fs.cat_file(sample.layout.marker_path(sample.path)))


def _write_q_integration(stage, cooker, ds):
    params = cooker.params
    qp = params["q_integration"]
    mask = ds["mask"].values
    background = ds.attrs.get("background")
    sectors = np.asarray(qp["sectors"] if qp["angle_mode"] == "specify" else [], dtype=np.float64).reshape(-1, 2)
    rec = cooker.dataset("reconstruction")
    arrays = {name: ds[name].values for name in ("q", "two_theta", "r_px", "npix", "q_mean", "normalisation")}
    arrays.update({
        "I_sum": ds["intensity"].values, "var": ds["variance"].values, "fwd_sample": ds["forward_sample"].values,
        "k": np.float64(background["k"] if background else np.nan),
        "centre": np.array([ds.attrs["centre_x"], ds.attrs["centre_y"]]),
        "roi": np.array(rec.attrs["roi"], dtype=np.int64), "sectors": sectors,
        "mask_hash": np.array(mask_sha256(mask)),
        "param_record_ids": np.array(json.dumps(ds.attrs["spice"], sort_keys=True)),
        "fingerprint": np.array(ds.attrs["fingerprint"]),
    })
    if "forward_background" in ds:
        arrays["fwd_bg"] = ds["forward_background"].values
    with stage.open(names.RDF_NPZ) as f:
        np.savez(f, **arrays)
    if qp["angle_mode"] == "specify":
        with stage.open(names.MASK_NPY) as f:
            np.save(f, mask)
    geometry = params["geometry"]
    q_record = {
        "centre_x": ds.attrs["centre_x"], "centre_y": ds.attrs["centre_y"], "centre": ds.attrs["centre"],
        "roi": rec.attrs["roi"], "wavelength_nm": geometry["wavelength_nm"],
        "pixel_size_mm": geometry["pixel_size_mm"], "distance_mm": geometry["distance_mm"],
        "radial_bin_px": qp["radial_bin_px"], "n_bins": int(ds.sizes["q"]),
        "q_first": float(ds["q"][0]), "q_last": float(ds["q"][-1]),
        "bg_sample_id": background["sample"] if background else None,
        "bg_scale_mode": background["mode"] if background else None,
        "k": background["k"] if background else None, "angle_mode": qp["angle_mode"],
        "sectors": sectors.tolist(), "mask_sha256": mask_sha256(mask), "n_pixels_used": ds.attrs["n_pixels_used"],
    }
    stage.write(names.Q_JSON, json_text(q_record))
    stage.write(names.DIFF_IMAGE_Q_CSV, image_text(ds["image_diff"].values))
    stage.write(names.RDF_TXT, table_text({"q_nm^-1": ds["q"].values, "I_per_px": ds["profile"].values,
                                     "sigma": ds["profile_sigma"].values, "r_px": ds["r_px"].values,
                                     "npix": ds["npix"].values}))


def _write_e_spectrum(stage, cooker, ds):
    params = cooker.params
    suffix = names.file_suffix(cooker.sample.key, ds.attrs["q_min"], ds.attrs["q_max"],
                         params["e_spectrum"]["relax_bg_coeff"])
    stage.write(names.STRUCTURE_FACTOR_CSV, table_text({"q_nm^-1": ds["q"].values,
                                                  "I_per_px": ds["structure_factor"].values,
                                                  "sigma": ds["structure_factor_sigma"].values},
                                                 delimiter=",", comment=""))
    stage.write(names.DIFF_IMAGE_E_CSV, image_text(cooker.dataset("q_integration")["image_diff"].values))
    for prefix, name in ((names.RELAX_PREFIX, "qe"), (names.RESOL_PREFIX, "forward")):
        stage.write(prefix + suffix, table_text({"E_neV": ds["energy"].values,
                                                 "normalised": ds[f"{name}_absorption"].values,
                                                 "sigma": ds[f"{name}_absorption_sigma"].values}))
    t, isf, sigma = ds["t"].values, ds["isf"].values, ds["isf_sigma"].values
    stage.write(names.ISF_PREFIX + suffix, table_text({"t_ns": t, "F": isf, "sigma": sigma}))
    accepted = ds["accepted"].values.astype(bool)
    stage.write(names.ISF_THRESH_PREFIX + suffix, table_text({"t_ns": t[accepted], "F": isf[accepted],
                                                        "sigma": sigma[accepted]}))
    if "isf_fit" in ds:
        stage.write(names.ISF_FIT_PREFIX + suffix, table_text({"t_ns": t, "F_fit": ds["isf_fit"].values}))
    _copy_calibration_files(stage, params)


def _copy_calibration_files(stage, params):
    """Copies of the calibration folder's files in dl/info/ (each checked against its hash)."""
    cal = params["calibration"]
    if not cal["folder"]:
        return
    folder = CalibrationFolder(cal["folder"], cal["files"], params.source("calibration", "folder"))
    for name in folder.files():
        if name in folder.recorded:
            stage.write(f"{names.INFO_DIR}/{name}", folder.read(name))


WRITERS = {"reconstruction": _write_reconstruction, "q_integration": _write_q_integration,
           "e_spectrum_and_isf": _write_e_spectrum}


def _figures(step, cooker, ds):
    """``{file name: function() -> Figure}`` of the figures written to dl/fig/ (manual numbers,
    see :func:`eqegs_repo.figures.export_figures`)."""
    from eqegs_repo import figures

    upstream = {"q_integration": "reconstruction", "e_spectrum_and_isf": "q_integration"}.get(step)
    return figures.export_figures(step, ds, cooker.dataset(upstream) if upstream else None)


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
    types = chain_types(step) + (("reconstruction",) if step == "reconstruction" else ())
    record = {"format": names.INFO_FORMAT, "step": step, "proposal": sample.proposal.key, "sample": sample.key,
              "folder": target.label, "subdir": target.subdir, "zip": target.zip.rsplit("/", 1)[-1],
              "written_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "library_version": ds.attrs["library_version"], "fingerprint": ds.attrs["fingerprint"],
              "parameters": {t: params.values(t) for t in types},
              "spice": ds.attrs["spice"], "overrides": ds.attrs["overrides"],
              "attrs": {k: v for k, v in ds.attrs.items() if k not in names.PROVENANCE_ATTRS},
              "files": sorted(written)}
    if step == "e_spectrum_and_isf":
        record["input_subdir"] = target.input_subdir
        record["upstream_fingerprint"] = cooker.key("q_integration")
    return record


# --- export ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exported:
    """What :func:`export` did: the step ``folder`` and ``zip`` (paths on the sample's
    filesystem), the sub-folder names, ``skipped`` (left alone because it existed), the
    cooked ``dataset`` (None when skipped), ``figures`` (the dl/fig/ files written, relative to
    the folder) and ``notes`` (what was left out and why, e.g. the figures without matplotlib)."""

    step: str
    folder: str
    zip: str
    subdir: str
    input_subdir: str
    skipped: bool
    dataset: object = field(default=None, repr=False)
    figures: tuple = ()
    notes: tuple = ()


def _existing(fs, target):
    """Paths of the target's folder and zip that already hold something."""
    found = []
    if own_entries(fs, target.folder, target.keeps_subfolders):
        found.append(target.folder)
    if fs.exists(target.zip):
        found.append(target.zip)
    return found


def export(sample, step, subdir=None, overwrite=False, skip_existing=False, use_cache=True, **overrides):
    """Write ``sample.cook(step, **overrides)`` as the app's step folder and download zip.

    ``subdir``: sub-folder of q_integration / e_spectrum_and_isf, instead of the one the
    parameters give ("" for the step folder itself); it is validated like
    ``q_integration.output_subdir``. ``overwrite``: replace an existing result (folder and
    zip); ``skip_existing``: leave an existing result alone and return with ``skipped=True``;
    with neither, an existing result raises BadInput naming it. Returns :class:`Exported`.
    """
    check_step(step)
    if overwrite and skip_existing:
        raise BadInput("export: overwrite=True and skip_existing=True contradict each other; choose one")
    normalised = _with_subdir(step, subdir, normalise_overrides(overrides))
    params = StepParameters(sample.spice, normalised, label=f"{sample.proposal.key}/{sample.key}")
    target = resolve_target(sample, step, params)
    fs = sample.fs
    existing = _existing(fs, target)
    if existing and skip_existing:
        return Exported(step, target.folder, target.zip, target.subdir, target.input_subdir, True)
    if existing and not overwrite:
        raise ResultExists(f"{' and '.join(existing)} already exist(s) (result of {target.label} for "
                           f"{sample.proposal.key}/{sample.key}); pass overwrite=True to replace, or "
                           "skip_existing=True to leave it", existing)
    cooker = Cooker(sample, params, use_cache=use_cache)
    ds = cooker.dataset(step)
    stage = _Staging(fs, sample.path, target)
    temporary_zip = None
    figures, notes = [], []
    try:
        WRITERS[step](stage, cooker, ds)
        if can_draw():
            figures = _write_figures(stage, step, cooker, ds)
        else:
            notes.append(f"figures skipped: drawing them needs matplotlib ({install_hint('matplotlib')})")
            warnings.warn(f"export of {target.label} for {sample.proposal.key}/{sample.key}: {notes[-1]}",
                          SkippedWarning, stacklevel=2)
        written = list(stage.written) + [names.INFO_JSON, names.LOG_FILE]
        record = info_record(cooker, ds, target, written)
        stage.write(names.INFO_JSON, json_text(record))
        stage.write(names.LOG_FILE, f"{record['written_utc']} eqegs_repo {record['library_version']}: exported "
                              f"{target.label} of {sample.proposal.key}/{sample.key} (fingerprint "
                              f"{record['fingerprint']})\n" + "".join(f"  {n}\n" for n in sorted(written))
                              + "".join(f"  note: {n}\n" for n in notes))
        temporary_zip = _write_zip(fs, stage, target.zip)
        _publish(fs, stage, target.folder, own_entries(fs, target.folder, target.keeps_subfolders), sample.path)
        fs.mv(temporary_zip, target.zip)
    except BaseException:
        stage.discard()
        if temporary_zip is not None and fs.exists(temporary_zip):
            fs.rm(temporary_zip)
        raise
    return Exported(step, target.folder, target.zip, target.subdir, target.input_subdir, False, ds,
                    tuple(figures), tuple(notes))
