"""Write a step's result as the app's step folder and download zip
(docs/outputs.md#folder-layout-per-step, docs/outputs.md#naming-choices).

``sample.export(step, subdir=None, overwrite=False, skip_existing=False, **overrides)`` calls
:func:`export`: it cooks ``step`` with the overrides (cached, see :mod:`eqegs_repo.cooking.cook`) and
writes ``<sample>/<step>[/<sub>]/`` with the app's file names plus ``dl/info/info.json`` with our
parameters and provenance, then ``<proposal>/download/<zip name>`` holding that folder's ``dl/``.
The file layout of each step and the naming rules are in docs/outputs.md; the names are the
constants and functions below. :mod:`eqegs_repo.io.app_results` reads such folders back.

Safety: nothing on disk is replaced without ``overwrite=True``. Everything is written into a
hidden temporary folder next to the target (``<sample>/.<step>[-<sub>].tmp-<hex>``) and a
temporary zip, then published under an exclusive claim (:mod:`eqegs_repo.cooking.publish`):
of two exports of one result exactly one publishes, and a result becomes visible only when it
is complete. A crash leaves hidden temporary files or a result flagged as incomplete, which the
next export (``skip_existing=True`` included) repairs.
"""
import datetime
import hashlib
import io
import json
import warnings
from dataclasses import dataclass, field

import numpy as np

from eqegs_repo.cooking import passes
from eqegs_repo.cooking.cache import json_default
from eqegs_repo.cooking.calibration import CalibrationFolder
from eqegs_repo.cooking.cook import Cooker
from eqegs_repo.cooking.publish import Busy, Claim, Staging, move, move_into, write_zip
from eqegs_repo.errors import BadInput, ResultExists, SkippedWarning, install_hint, optional_import
from eqegs_repo.io import app_names as names
from eqegs_repo.io.app_names import check_step
from eqegs_repo.io.app_results import incomplete_reason, own_entries
from eqegs_repo.params.chain import chain_types
from eqegs_repo.params.effective import StepParameters, normalise_overrides
from eqegs_repo.steps.sensors import combine

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
            why = f" ({params.describe('e_spectrum', 'output_subdir_mode')} names the folder after the q range)"
            e_subdir = names.q_range_folder(*params.q_range(why))
        else:
            e_subdir = _not_reserved(params, "e_spectrum", "output_subdir")
    subdir = {"reconstruction": "", "q_integration": q_subdir, "e_spectrum_and_isf": e_subdir}[step]
    folder = f"{sample.path}/{step}" + (f"/{subdir}" if subdir else "")
    download = f"{sample.proposal.path}/{sample.layout.download_dir}"
    input_subdir = q_subdir if step == "e_spectrum_and_isf" else ""
    zip_name = names.check_name_length(names.zip_name(step, sample.key, q_subdir, e_subdir),
                                       f"the download zip of {step} of {sample.proposal.key}/{sample.key}")
    return Target(step, subdir, input_subdir, folder, f"{download}/{zip_name}")


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
            raise BadInput(f"export subdir={subdir!r}: the reconstruction step has no sub-folders "
                           "(docs/outputs.md#naming-choices)")
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
        combine(blocks, layout=layout, out=canvas)
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
    from eqegs_repo.figures import export_figures

    upstream = {"q_integration": "reconstruction", "e_spectrum_and_isf": "q_integration"}.get(step)
    return export_figures(step, ds, cooker.dataset(upstream) if upstream else None)


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


def _existing(fs, sample_path, target, claimed=False, stale=False):
    """Paths of the target's folder and zip that hold a complete result. An incomplete folder
    (:func:`~eqegs_repo.io.app_results.incomplete_reason`, or the left-overs of a writer whose
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


def _write_staged(stage, cooker, ds, target):
    """Write every file of the result into ``stage``; info.json and the log last. Returns
    ``(figures written, notes)``: a note says what was left out and why (also warned as
    :class:`~eqegs_repo.errors.SkippedWarning`)."""
    sample, step = cooker.sample, target.step
    WRITERS[step](stage, cooker, ds)
    figures, notes = [], []
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


def _publish(fs, stage, target, temporary_zip, sample, overwrite):
    """Move the staged result and its zip into place under the target's claim. Returns False,
    publishing nothing, when a complete result appeared meanwhile and ``overwrite`` is False."""
    claim = Claim(fs, sample.path, target.step, target.subdir, f"{target.label} of {sample.proposal.key}/{sample.key}")
    stale = claim.acquire()
    half_done = False  # once moving started, a failure keeps the claim: the result stays flagged incomplete
    try:
        if _existing(fs, sample.path, target, claimed=True, stale=stale) and not overwrite:
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


def export(sample, step, subdir=None, overwrite=False, skip_existing=False, use_cache=True, **overrides):
    """Write ``sample.cook(step, **overrides)`` as the app's step folder and download zip.

    ``subdir``: sub-folder of q_integration / e_spectrum_and_isf, instead of the one the
    parameters give ("" for the step folder itself); it is validated like
    ``q_integration.output_subdir``. ``overwrite``: replace an existing result (folder and
    zip); ``skip_existing``: leave an existing result alone and return with ``skipped=True``;
    with neither, an existing result raises BadInput naming it. An incomplete result (a stopped
    export) does not count as existing: it is replaced. Another export publishing the same
    result at the same time makes this one raise, or skip with ``skip_existing``. Returns
    :class:`Exported`.
    """
    check_step(step)
    if overwrite and skip_existing:
        raise BadInput("export: overwrite=True and skip_existing=True contradict each other; choose one")
    normalised = _with_subdir(step, subdir, normalise_overrides(overrides))
    params = StepParameters(sample.spice, normalised, label=f"{sample.proposal.key}/{sample.key}")
    target = resolve_target(sample, step, params)
    fs = sample.fs
    skipped = Exported(step, target.folder, target.zip, target.subdir, target.input_subdir, True)
    existing = _existing(fs, sample.path, target)
    if existing and skip_existing:
        return skipped
    if existing and not overwrite:
        raise _exists_error(existing, target, sample)
    cooker = Cooker(sample, params, use_cache=use_cache)
    ds = cooker.dataset(step)
    try:
        stage = Staging(fs, sample.path, target)
    except (OSError, ValueError, NotImplementedError) as exc:  # a read-only tree
        raise _unwritable(exc, sample) from None
    temporary_zip = None
    try:
        figures, notes = _write_staged(stage, cooker, ds, target)
        temporary_zip = write_zip(fs, stage, target.zip)
        published = _publish(fs, stage, target, temporary_zip, sample, overwrite)
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
                    tuple(figures), tuple(notes))
