"""The forward model of an E-QEGS measurement, and the synthetic trees and demo built on it.

The forward model (docs/physics.md#forward-model) is pure functions, numpy in, numpy out, in
three modules: :mod:`~eqegs_repo.simulate.drive` (the velocity drive),
:mod:`~eqegs_repo.simulate.spectra` (source, analyser, transmission functional, quasi-elastic
broadening, the spectral-only count model) and :mod:`~eqegs_repo.simulate.image` (pixel geometry,
scattering, the expected counts of a run and their noise). Their public names are importable from
this package too (``from eqegs_repo import simulate as fw; fw.drive_velocity(...)``).
:mod:`~eqegs_repo.simulate.synthetic` writes trees on disk from them and
:mod:`~eqegs_repo.simulate.demo` cooks such a tree and compares with the truth. The kernels in
:mod:`eqegs_repo.kernels` never import this package; the tests use it as the known ground truth.

Units everywhere: energy E, δ in neV; velocity v in mm/s; time t in ns; q in nm⁻¹; lengths in
mm; angles in radians unless a name ends in ``_deg``; pixel coordinates x = column (right),
y = row (down).
"""
from eqegs_repo.simulate.drive import (  # noqa: F401 - the forward model's public names
    WAVEFORMS,
    band_limited_triangle_wave,
    drive_velocity,
    frame_phase,
    measured_waveform,
    sine_wave,
    triangle_wave,
)
from eqegs_repo.simulate.image import (  # noqa: F401 - the forward model's public names
    BACKGROUND_MODELS,
    RUN_KINDS,
    Dynamics,
    ImageModel,
    PixelGeometry,
    Scatterers,
    air_scattering,
    detector_counts,
    direct_beam,
    pixel_geometry,
    polarisation_factor,
    structure_factor,
)
from eqegs_repo.simulate.spectra import (  # noqa: F401 - the forward model's public names
    SOURCE_PRESETS,
    Analyser,
    EnergyGrid,
    SourceSpectrum,
    doppler_factor,
    forward_transmission,
    isf_truth,
    linewidth_from_tau,
    lorentzian,
    quasielastic_transmission,
    relaxation_isf,
    source_preset,
    spectral_only_counts,
    spectrum_transform_from_samples,
    tau_power_law,
    transmission_curve,
    transmission_functional,
)
