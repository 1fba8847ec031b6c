"""The E-spectrum and ISF kernels (docs/physics.md#energy-spectrum-and-isf): frames → energy
spectra → ISF with errors and fit.

Pure functions, numpy in, numpy out, no I/O. Units: velocity v in mm/s, energy E in neV, time t
in ns, q in nm⁻¹, angles 2θ in rad. The chain, in two calls:

1. :func:`~.spectra.energy_spectra` drops the first ``start_cut_frames``, applies the
   turn-around cut, puts the forward spectrum (E = κ(v − v₀)) and every q bin of the range
   (E = κ(v − v₀)·g(2θ_b)) on one common energy grid and sums the q bins into the quasi-elastic
   (QE) spectrum (:mod:`.velocity` holds the calibrations and frame cuts, :mod:`.spectra` the
   grid and binning).
2. :func:`~.isf.isf_from_spectra` fits the wing background, normalises to absorption spectra,
   Fourier transforms them, forms F = ŝ_q/ŝ₀ with Monte-Carlo errors, keeps the points under
   ``isf_error_threshold`` and fits f_q·exp(−(t/τ)^β) (:mod:`.isf`).

The public names of the three modules are importable from this package
(``from eqegs_repo.kernels import e_spectrum as es; es.energy_spectra``).
"""
from eqegs_repo.kernels.e_spectrum.checks import (  # noqa: F401
    CHECK_NAMES,
    CheckResult,
    line_fwhm,
    line_width_from_tau,
    physics_checks,
)
from eqegs_repo.kernels.e_spectrum.isf import (  # noqa: F401
    DEFAULT_WING_POINTS,
    FIT_MODELS,
    ISF_NORMALISATIONS,
    MC_NOISE,
    IsfResult,
    NormalisedSpectrum,
    RelaxationFit,
    convex_spectrum,
    fit_relaxation,
    isf_from_spectra,
    isf_ratio,
    monte_carlo_spectra,
    spectrum_transform,
    unit_scale,
    wing_background,
    wing_points,
)
from eqegs_repo.kernels.e_spectrum.spectra import (  # noqa: F401
    BINNING_MODES,
    EnergySpectra,
    FrameSeries,
    Resampling,
    Spectrum,
    SpectrumGrid,
    common_energy_grid,
    energy_spectra,
    resampling,
    select_q_bins,
)
from eqegs_repo.kernels.e_spectrum.velocity import (  # noqa: F401
    ANGLE_KINDS,
    VELOCITY_KINDS,
    angle_factor,
    calibrated_velocity,
    energy_from_velocity,
    frame_selection,
    sweep_labels,
    turning_points,
)
