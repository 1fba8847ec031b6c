"""The behaviours of the built-in steps -- reconstruction, q_integration, e_spectrum_and_isf --
registered in :mod:`eqegs_repo.cooking.step_cooking` (their declarations are in
:mod:`eqegs_repo.step_table`, their folder formats in :mod:`eqegs_repo.io.app_format`).

What the steps compute is in :mod:`eqegs_repo.cooking.cook` (the Cooker's ``_cook_<step>``
methods); here are what the export needs from the cooking side (the inputs of each folder
writer, the output sub-folders, the extra fields of info.json), the extra inputs of the
fingerprints and the figures.
"""
import json

import numpy as np

from eqegs_repo.cooking import calibration as calibration_module
from eqegs_repo.cooking import passes, step_cooking
from eqegs_repo.cooking.calibration import CalibrationFolder
from eqegs_repo.cooking.cook import Cooker
from eqegs_repo.errors import BadInput
from eqegs_repo.figures.steps import export_figures
from eqegs_repo.io.app_format import names
from eqegs_repo.kernels.sensors import combine


def not_reserved(params, type_name, field_name):
    """The value of a sub-folder parameter, refused when it is ``dl`` or ``log`` (the step
    folder's own folders)."""
    value = params[type_name][field_name]
    if value in (names.DL, names.LOG_DIR):
        raise BadInput(f"{params.describe(type_name, field_name)}: {value!r} is the name of the step "
                       "folder's own dl/ or log/ folder; choose another sub-folder name")
    return value


# --- reconstruction ------------------------------------------------------------------------------
def _reconstructed_frames(cooker):
    """The reconstructed frames of the sample, float32 (n, H, W) blocks in order, read block by
    block (one buffer, reused)."""
    stack, layout = cooker.run.stack, cooker.run.pass_layout(cooker.layout())
    canvas = None
    for start, stop, blocks in passes.iter_blocks(stack):
        if canvas is None or canvas.shape[0] != stop - start:
            canvas = np.empty((stop - start,) + tuple(layout.canvas_shape), np.float32)
        combine(blocks, layout=layout, out=canvas)
        yield canvas


def _reconstruction_inputs(cooker, ds):
    sample = cooker.sample
    path = sample.marker_path  # the marker file, or the app's copy of it
    # the marker file's bytes; the marker as JSON when the raw file's attributes hold it (HDF5)
    marker = sample.fs.cat_file(path) if sample.fs.exists(path) else json.dumps(sample.marker, indent=1).encode()
    return {"n_frames": cooker.run.stack.shape[1], "frame_blocks": _reconstructed_frames(cooker),
            "dtype_out": cooker.params["reconstruction"]["dtype_out"], "marker": marker}


step_cooking.register(
    "reconstruction", cook=Cooker._cook_reconstruction, folder_inputs=_reconstruction_inputs,
    figures=lambda ds, upstream: export_figures("reconstruction", ds, upstream),
    export_types=("reconstruction",))


# --- q_integration -------------------------------------------------------------------------------
def _q_fingerprint(cooker):
    """The background run's raw files and sensor layout (when the sample subtracts one)."""
    background = cooker.background()
    if background is None:
        return {}
    _, bg_params, bg_run = background
    return {"background": {"raw": bg_run.stats, "values": bg_params.fingerprint_values(("sensor_layout",))}}


def _q_folders(params):
    q_subdir = not_reserved(params, "q_integration", "output_subdir")
    return {"subdir": q_subdir, "q_subdir": q_subdir}


step_cooking.register(
    "q_integration", cook=Cooker._cook_q_integration,
    folder_inputs=lambda cooker, ds: {"q_integration": cooker.params["q_integration"],
                                      "geometry": cooker.params["geometry"],
                                      "roi": cooker.dataset("reconstruction").attrs["roi"]},
    figures=lambda ds, upstream: export_figures("q_integration", ds, upstream),
    fingerprint=_q_fingerprint, folders=_q_folders,
    subdir_overrides=lambda subdir: {"q_integration": {"output_subdir": subdir}})


# --- e_spectrum_and_isf --------------------------------------------------------------------------
def _calibration_files(cooker):
    """``{name: bytes}`` of the calibration folder's recorded files (each checked against its hash)."""
    cal = cooker.params["calibration"]
    if not cal["folder"]:
        return {}
    return CalibrationFolder(cal["folder"], cal["files"], cooker.params.source("calibration", "folder"),
                             cooker.trusted_calibration_dirs()).copies()


def _e_inputs(cooker, ds):
    return {"sample_key": cooker.sample.key, "relax_bg_coeff": cooker.params["e_spectrum"]["relax_bg_coeff"],
            "image_diff": cooker.dataset("q_integration")["image_diff"].values,
            "calibration_files": _calibration_files(cooker)}


def _e_fingerprint(cooker):
    files = calibration_module.folder_fingerprint(cooker.params, cooker.trusted_calibration_dirs())
    return {"calibration_files": files} if files else {}


def _e_folders(params):
    """Output sub-folder from ``e_spectrum.output_subdir_mode`` (``q_range``:
    :func:`names.q_range_folder`; ``specify``: ``output_subdir``, "" for none) and $QS =
    ``e_spectrum.input_subdir`` or, when that is empty, ``q_integration.output_subdir``."""
    q_subdir = not_reserved(params, "q_integration", "output_subdir")
    q_subdir = not_reserved(params, "e_spectrum", "input_subdir") or q_subdir
    if params["e_spectrum"]["output_subdir_mode"] == "q_range":
        why = f" ({params.describe('e_spectrum', 'output_subdir_mode')} names the folder after the q range)"
        e_subdir = names.q_range_folder(*params.q_range(why))
    else:
        e_subdir = not_reserved(params, "e_spectrum", "output_subdir")
    return {"subdir": e_subdir, "input_subdir": q_subdir, "q_subdir": q_subdir, "e_subdir": e_subdir}


step_cooking.register(
    "e_spectrum_and_isf", cook=Cooker._cook_e_spectrum_and_isf, folder_inputs=_e_inputs,
    figures=lambda ds, upstream: export_figures("e_spectrum_and_isf", ds, upstream),
    fingerprint=_e_fingerprint, folders=_e_folders,
    subdir_overrides=lambda subdir: {"e_spectrum": {"output_subdir_mode": "specify", "output_subdir": subdir}},
    info=lambda cooker, target: {"input_subdir": target.input_subdir,
                                 "upstream_fingerprint": cooker.key("q_integration")})
