"""The parameters of a synthetic run and the size presets (docs/synthetic.md#presets).

:class:`SyntheticParams` holds every physical and detector parameter the simulator uses;
:data:`PRESETS` fixes the detector size, frame counts and data type of the ``tiny`` to ``full``
trees; :func:`preset_params` combines them. :func:`spice_mappings` and :func:`suggested_boxes`
give the spice values that match a simulated detector. Writing files is
:mod:`eqegs_repo.simulate.synthetic`'s job.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.io.run import MIN_SIGNED_COUNT_BYTES
from eqegs_repo.kernels import physics
from eqegs_repo.kernels.sensors import SensorLayout
from eqegs_repo.simulate import drive, image, spectra


@dataclass(frozen=True)
class SyntheticParams:
    """Parameters of one synthetic run (docs/synthetic.md#presets; units in names).

    Drive: ``waveform`` (``triangle``/``band_limited_triangle``/``sine``), ``v_max_mm_s``,
    ``n_harmonics``, ``phase0`` (cycles), ``velocity_offset_mm_s`` (v₀), ``nonlinearity`` (ε);
    the recorded waveform is v·``velocity_gain`` + N(0, ``velocity_noise``²).
    Source: ``source_lines`` ((u mm/s, weight), …), ``source_fwhm_nev`` (Γ_s).
    Analyser: ``analyser_thickness`` (t_A), ``analyser_fwhm_nev`` (Γ_A),
    ``thickness_path_factor`` (t_A/cos 2θ for scattered photons), ``doppler_angle_model``.
    Dynamics: τ_q = ``tau0_ns``·(q/``q0``)^−``tau_exponent`` (or ``tau_table``), ``f_q``
    (constant, or Gaussian of width ``f_q_width``), KWW ``beta``.
    Scattering: S(q) = ``s0``[1 + ``s_amplitude``·exp(−(q − ``q_peak``)²/2``s_width``²)],
    C(q) = ``c0``/(q² + ``kappa_c``²).
    Beam and detector: ``flux`` Φ (photons per frame per unit), ``flux_drift`` (linear change
    over the cycle), ``direct_beam_counts`` N_db (per unit flux; Φ·τ_s·N_db = 2e5 counts per
    frame by default, ≥ 10× the scattering in the ±20 px box), ``beam_sigma_px``,
    ``sample_transmission`` τ_s, ``dark`` d (counts/frame/pixel), ``read_noise`` (σ per train),
    ``polarisation_deg`` (None = no polarisation factor).
    Geometry: ``centre_xy`` (x_c, y_c) px, ``distance_mm`` L, ``pixel_mm`` p, ``wavelength_nm``.
    Background run: flux Φ/k and dark d/k with k = ``background_scale``. ``background_model``
    (:data:`~eqegs_repo.simulate.image.BACKGROUND_MODELS`): ``cell_attenuated`` (default) attenuates
    the sample run's air/cell scattering by τ_s, so R_s − τ_s·k·R_b removes it (the scale
    ``forward_ratio`` finds); ``unattenuated`` leaves it as it is, so R_s − k·R_b removes it
    (``manual`` with ``bg_scale`` = k). :meth:`subtraction_scale` gives the right scale.
    Files: ``sensor_layout``, ``dtype`` (sensor files), ``trains_integrated``, ``frame_rate_hz``;
    ``noise_free`` writes the expected counts μ themselves, no Poisson or read noise (needs a
    float ``dtype``; the velocity monitor keeps its noise, so a noise-free copy written with the
    same seed has the noisy run's measured waveform).
    Numerics: ``n_q_nodes`` (q nodes of the image model), ``energy_step_nev``,
    ``energy_points`` (fine FFT grid).
    """

    n_frames: int = 4092
    waveform: str = "band_limited_triangle"
    v_max_mm_s: float = 10.0
    n_harmonics: int = 12
    phase0: float = 0.0
    velocity_offset_mm_s: float = 0.0
    nonlinearity: float = 0.0
    velocity_gain: float = 1.0
    velocity_noise: float = 0.005
    source_lines: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    source_fwhm_nev: float = 2.0 * physics.GAMMA0_NEV
    analyser_thickness: float = 3.0
    analyser_fwhm_nev: float = physics.GAMMA0_NEV
    thickness_path_factor: bool = False
    doppler_angle_model: str = "cos2theta"
    tau0_ns: float = 100.0
    q0: float = 12.0
    tau_exponent: float = 2.0
    tau_table: tuple[tuple[float, float], ...] | None = None
    f_q: float = 0.7
    f_q_width: float | None = None
    beta: float = 1.0
    s0: float = 20.0
    s_amplitude: float = 3.0
    q_peak: float = 14.0
    s_width: float = 2.0
    c0: float = 5.0
    kappa_c: float = 1.0
    flux: float = 1.0e4
    flux_drift: float = 0.0
    direct_beam_counts: float = 20.0
    beam_sigma_px: float = 1.2
    sample_transmission: float = 1.0
    dark: float = 0.5
    read_noise: float = 0.0
    polarisation_deg: float | None = None
    centre_xy: tuple[float, float] = (190.3, 300.7)
    distance_mm: float = 100.0
    pixel_mm: float = physics.PIXEL_SIZE_MM
    wavelength_nm: float = physics.WAVELENGTH_NM
    background_scale: float = 1.0
    background_model: str = "cell_attenuated"
    noise_free: bool = False
    sensor_layout: SensorLayout = field(default_factory=SensorLayout.default)
    dtype: str = "uint32"
    trains_integrated: int = 2000
    frame_rate_hz: float = 26100.0
    n_q_nodes: int = 256
    energy_step_nev: float = 0.05
    energy_points: int = 2**17

    def __post_init__(self):
        if int(self.n_frames) < 2:
            raise BadInput(f"SyntheticParams.n_frames must be >= 2, got {self.n_frames!r}")
        dtype = np.dtype(self.dtype)
        if dtype.kind not in "uif" or (dtype.kind == "i" and dtype.itemsize < MIN_SIGNED_COUNT_BYTES):
            raise BadInput(f"SyntheticParams.dtype must be a numeric numpy dtype name the reader takes "
                           f"(signed integers of at least {8 * MIN_SIGNED_COUNT_BYTES} bits), got {self.dtype!r}")
        if not self.background_scale > 0:
            raise BadInput(f"SyntheticParams.background_scale (k) must be > 0, got {self.background_scale!r}")
        if not 0 < self.sample_transmission <= 1:
            raise BadInput(f"SyntheticParams.sample_transmission must lie in (0, 1], got {self.sample_transmission!r}")
        if self.background_model not in image.BACKGROUND_MODELS:
            raise BadInput(f"SyntheticParams.background_model must be one of {', '.join(image.BACKGROUND_MODELS)}, "
                           f"got {self.background_model!r}")
        if self.noise_free and dtype.kind != "f":
            raise BadInput(f"SyntheticParams.noise_free writes expected counts, which are not whole numbers: it needs "
                           f"a float dtype (e.g. dtype='float32'), got {self.dtype!r}")
        if not isinstance(self.sensor_layout, SensorLayout):
            raise BadInput("SyntheticParams.sensor_layout must be a SensorLayout")
        # Build every physics object once, so bad values fail here with the forward model's message.
        self.source(), self.analyser(), self.dynamics(), self.scatterers(), self.energy_grid()

    # --- physics objects -------------------------------------------------------------------
    def source(self) -> spectra.SourceSpectrum:
        return spectra.SourceSpectrum(self.source_lines, self.source_fwhm_nev)

    def analyser(self) -> spectra.Analyser:
        return spectra.Analyser(self.analyser_thickness, self.analyser_fwhm_nev)

    def dynamics(self) -> image.Dynamics:
        return image.Dynamics(self.tau0_ns, self.q0, self.tau_exponent, self.f_q, self.f_q_width, self.beta, self.tau_table)

    def scatterers(self) -> image.Scatterers:
        return image.Scatterers(self.s0, self.s_amplitude, self.q_peak, self.s_width, self.c0, self.kappa_c)

    def energy_grid(self) -> spectra.EnergyGrid:
        return spectra.EnergyGrid(self.energy_step_nev, self.energy_points)

    def velocity(self) -> np.ndarray:
        """True Doppler velocity v_f, mm/s, shape (n_frames,)."""
        return drive.drive_velocity(
            self.n_frames, self.waveform, self.v_max_mm_s, self.n_harmonics, self.phase0,
            self.velocity_offset_mm_s, self.nonlinearity,
        )

    def geometry(self) -> image.PixelGeometry:
        """Pixel geometry of the whole canvas (the layout's canvas_shape)."""
        return image.pixel_geometry(
            self.sensor_layout.canvas_shape, self.centre_xy, self.distance_mm, self.pixel_mm, self.wavelength_nm
        )

    def image_model(self, run: str = "sample") -> image.ImageModel:
        """Expected-count model of the sample run or of the background run (flux Φ/k, dark d/k)."""
        scale = 1.0 if run == "sample" else float(self.background_scale)
        return image.ImageModel(
            self.velocity(),
            self.geometry(),
            run=run,
            dynamics=self.dynamics(),
            scatterers=self.scatterers(),
            source=self.source(),
            analyser=self.analyser(),
            grid=self.energy_grid(),
            doppler_angle_model=self.doppler_angle_model,
            thickness_path_factor=self.thickness_path_factor,
            flux=self.flux / scale,
            flux_drift=self.flux_drift,
            direct_beam_counts=self.direct_beam_counts,
            beam_sigma_px=self.beam_sigma_px,
            sample_transmission=self.sample_transmission,
            dark=self.dark / scale,
            polarisation_deg=self.polarisation_deg,
            n_q_nodes=self.n_q_nodes,
            background_model=self.background_model,
        )

    def subtraction_scale(self) -> float:
        """The scale k′ for which R_s − k′·R_b leaves exactly the sample scattering outside the
        direct beam (dark counts aside, see docs/synthetic.md#the-background-model): τ_s·k with
        ``cell_attenuated`` (what ``bg_scale_mode`` ``forward_ratio`` measures), k with
        ``unattenuated`` (``manual`` with ``bg_scale`` = k)."""
        attenuation = self.sample_transmission if self.background_model == "cell_attenuated" else 1.0
        return float(attenuation * self.background_scale)

    # --- plain data -------------------------------------------------------------------------
    def to_mapping(self) -> dict:
        """JSON-friendly dict of every field (the layout as its spice mapping)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, SensorLayout):
                value = value.to_mapping()
            elif isinstance(value, tuple):
                value = json.loads(json.dumps(value))
            out[f.name] = value
        return out

    @classmethod
    def from_mapping(cls, mapping: dict) -> "SyntheticParams":
        """Inverse of :meth:`to_mapping`; unknown fields raise BadInput."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(mapping) - names)
        if unknown:
            raise BadInput(f"SyntheticParams: unknown fields {unknown}")
        values = dict(mapping)
        if "sensor_layout" in values:
            values["sensor_layout"] = SensorLayout.from_mapping(values["sensor_layout"])
        for name in ("source_lines", "tau_table"):
            if values.get(name) is not None:
                values[name] = tuple(tuple(p) for p in values[name])
        if values.get("centre_xy") is not None:
            values["centre_xy"] = tuple(values["centre_xy"])
        return cls(**values)


@dataclass(frozen=True)
class Preset:
    """Size preset: sensor shape, per-proposal frame counts, sensor dtype, drive amplitude.

    The canvas is ``n_sensors`` strips of ``sensor_shape``; the geometry is the full-size one
    scaled by s = min(H/728, W/384): centre (190.3·W/384, 300.7·H/728) and L = 100·s mm, so
    the S(q) ring (q = 14 nm⁻¹ at r ≈ 268·s px) and the direct beam fit the smaller image.
    """

    name: str
    sensor_shape: tuple[int, int]
    frame_counts: tuple[int, ...]
    dtype: str
    v_max_mm_s: float
    n_q_nodes: int = 256
    n_sensors: int = 3

    @property
    def geometry_scale(self) -> float:
        rows, cols = self.sensor_shape
        return min(rows / 728.0, self.n_sensors * cols / 384.0)

    def bytes_per_sample(self, proposal_index: int = 0) -> int:
        """Size of one sample's sensor files on disk (headers excluded)."""
        rows, cols = self.sensor_shape
        n_frames = self.frame_counts[proposal_index % len(self.frame_counts)]
        return self.n_sensors * n_frames * rows * cols * np.dtype(self.dtype).itemsize


PRESETS = {
    "tiny": Preset("tiny", (64, 16), (128, 96), "uint16", 2.0, n_q_nodes=64),
    "demo": Preset("demo", (64, 16), (1024, 768), "uint16", 10.0, n_q_nodes=64),
    "small": Preset("small", (182, 32), (1024, 1000), "uint16", 10.0),
    "medium": Preset("medium", (364, 64), (2048, 2000), "uint32", 10.0),
    "full": Preset("full", (728, 128), (4092, 4000), "uint32", 10.0),
}
"""tiny: 0.79 MB per sample (tests; its ±2 mm/s window cuts the line tails, so τ comes out a few
per cent low); demo: the tiny detector on a ±10 mm/s drive with 1024 and 768 frames, 6.3 MB per sample
(``eqegs demo``: unbiased with the default E-spectrum settings, docs/synthetic.md#presets); small:
36 MB; medium: 573 MB; full: 4.6 GB (benchmarks)."""


def preset_params(preset: str = "tiny", proposal_index: int = 0, **overrides) -> SyntheticParams:
    """SyntheticParams for a size preset (``PRESETS``); frame count from the proposal index.

    ``overrides`` replace any SyntheticParams field (e.g. ``tau0_ns=50``, ``n_frames=64``).
    """
    if preset not in PRESETS:
        raise BadInput(f"unknown synthetic preset {preset!r}; expected one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    layout = SensorLayout.strips(n_sensors=p.n_sensors, sensor_shape=p.sensor_shape)
    height, width = layout.canvas_shape
    base = dict(
        n_frames=p.frame_counts[proposal_index % len(p.frame_counts)],
        v_max_mm_s=p.v_max_mm_s,
        sensor_layout=layout,
        dtype=p.dtype,
        n_q_nodes=p.n_q_nodes,
        centre_xy=(round(190.3 * width / 384.0, 4), round(300.7 * height / 728.0, 4)),
        distance_mm=100.0 * p.geometry_scale,
    )
    base.update(overrides)
    return SyntheticParams(**base)


def spice_mappings(params: SyntheticParams) -> dict:
    """The ``sensor_layout`` and ``geometry`` record data matching what was simulated.

    Keys follow the spice types (docs/physics.md#type-sensor_layout,
    docs/physics.md#type-geometry); seed them into spice so the inverse steps see the simulated
    detector.
    """
    return {
        "sensor_layout": params.sensor_layout.to_mapping(),
        "geometry": {
            "schema_version": 1,
            "energy_keV": physics.ENERGY_KEV,
            "wavelength_nm": params.wavelength_nm,
            "pixel_size_mm": params.pixel_mm,
            "distance_mm": params.distance_mm,
            "tilt_rot1": 0.0,
            "tilt_rot2": 0.0,
            "polarisation_factor": None if params.polarisation_deg is None else 1.0,
        },
    }


def suggested_boxes(params: SyntheticParams) -> dict:
    """Forward-box and direct-beam exclusion half-widths (px) scaled like the geometry
    (20 and 50 px at full size, at least 4 and 6 px)."""
    scale = params.distance_mm / 100.0
    return {
        "forward_box_halfwidth": max(4, int(round(20 * scale))),
        "direct_exclusion_halfwidth": max(6, int(round(50 * scale))),
    }
