"""Kernels take their parameters keyword-only after the data arrays (docs/kernels.md).

Every public function, constructor and method of ``eqegs_repo.kernels`` may take by position only
the arguments listed in DATA_ARGUMENTS (arrays, the sensor layout or spectra a helper works on,
and the values a rule checks); everything else must come after the ``*``. Result records
(frozen dataclasses the kernels return) are exempt.
"""
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import eqegs_repo.kernels as steps
from eqegs_repo.kernels import e_spectrum as es

DATA_ARGUMENTS = {
    # arrays and blocks of frames
    "image", "block", "variance_block", "sensor_blocks", "sensor_images", "canvas_block", "frames",
    "running", "totals", "summed", "coverage", "matrix", "edges_px", "q_edges", "sums", "r_px", "q",
    "two_theta", "velocity", "measured", "energy", "values", "variance", "keep", "sweeps", "y",
    "sigma", "background", "s", "qe_transform", "forward_transform", "t_ns", "isf", "forward_energy",
    "qe_energy", "forward_counts", "forward_variance", "qe_sums", "qe_variance", "angle_factors",
    "forward_sample", "forward_background", "sample", "sample_var", "background_var", "ratio",
    # what a helper works on: an image shape, a sensor layout (and which sensor), spectra
    "shape", "image_shape", "layout", "k", "mapping", "spectra", "spectrum", "other",
    "function",  # the Python function steps.compiled compiles
    # the values a rule checks
    "q_min", "q_max", "x0", "y0", "x1", "y1", "n_points",
    # the per-frame series a Monte-Carlo draw works on
    "series",
    # the temperatures a tau(T) law is evaluated at
    "temperature_k",
}
RESULT_RECORDS = {"BeamCentre", "Roi", "RoiDetection", "SpectrumGrid", "Spectrum", "EnergySpectra",
                  "RelaxationFit", "NormalisedSpectrum", "IsfResult", "Resampling", "FrameSeries", "TauQLaw", "RangeQ",
                  "TemperatureFit", "CheckResult"}


def public_callables():
    for info in pkgutil.walk_packages(steps.__path__, "eqegs_repo.kernels."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != info.name:
                continue
            if inspect.isfunction(obj):
                yield f"{info.name}.{name}", obj
            elif inspect.isclass(obj) and name not in RESULT_RECORDS:
                yield f"{info.name}.{name}", obj.__init__
                for attr, member in vars(obj).items():
                    member = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                    if not attr.startswith("_") and inspect.isfunction(member):
                        yield f"{info.name}.{name}.{attr}", member


def test_kernel_parameters_after_the_data_arrays_are_keyword_only():
    offenders = {}
    checked = 0
    for label, function in public_callables():
        checked += 1
        positional = [p.name for p in inspect.signature(function).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", "cls")]
        extra = [name for name in positional if name not in DATA_ARGUMENTS]
        if extra:
            offenders[label] = extra
    assert checked > 60
    assert offenders == {}, f"parameters that should follow a '*': {offenders}"


def test_energy_spectra_takes_seven_arrays_by_position_and_the_rest_by_name():
    parameters = inspect.signature(es.energy_spectra).parameters.values()
    assert [p.name for p in parameters if p.kind == p.POSITIONAL_OR_KEYWORD] == [
        "forward_counts", "forward_variance", "qe_sums", "qe_variance", "q", "angle_factors", "velocity"]
    velocity = np.linspace(-10.0, 10.0, 16)
    counts = np.ones(16)
    with pytest.raises(TypeError, match="positional argument"):
        es.energy_spectra(counts, counts, counts[:, None], counts[:, None], np.array([12.0]), np.ones(1),
                          velocity, 10.0, 14.0)
